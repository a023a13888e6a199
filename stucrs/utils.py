"""補助関数: 形状の調整、数値微分による勾配チェック、計算グラフの可視化など。

Utilities: shape helpers used by backward passes, numerical gradient checking, graph drawing.
"""
import os
import shutil
import subprocess
import tempfile

import numpy as np

from stucrs import cuda
from stucrs.core import Variable, as_variable  # noqa: F401 - also public here, as in dezero.utils


# =============================================================================
# 形状の調整 / shape helpers
# =============================================================================
def sum_to(x, shape):
    """配列 ``x`` の要素を足し合わせて形状 ``shape`` にする (ブロードキャストの逆)。

    Sum ``x`` (an ndarray) down to ``shape``; the inverse of broadcasting.
    """
    shape = tuple(shape)
    if x.shape == shape:
        return x
    ndim = len(shape)
    lead = x.ndim - ndim
    lead_axis = tuple(range(lead))
    axis = tuple(i + lead for i, sx in enumerate(shape) if sx == 1 and x.shape[i + lead] != 1)
    y = x.sum(lead_axis + axis, keepdims=True)
    if lead > 0:
        y = y.reshape(y.shape[lead:])
    return y


def reshape_sum_backward(gy, x_shape, axis, keepdims):
    """sum の逆伝播で、勾配 ``gy`` を入力の次元数に合わせて形を戻す。

    Reshape ``gy`` (a Variable) so that it broadcasts back to ``x_shape`` after a sum over ``axis``.
    """
    ndim = len(x_shape)
    if axis is None:
        tupled_axis = None
    elif not isinstance(axis, tuple):
        tupled_axis = (axis,)
    else:
        tupled_axis = axis

    if not (ndim == 0 or tupled_axis is None or keepdims):
        actual_axis = sorted(a if a >= 0 else a + ndim for a in tupled_axis)
        shape = list(gy.shape)
        for a in actual_axis:
            shape.insert(a, 1)
    else:
        shape = gy.shape
    return gy.reshape(shape)


def max_keepdims(x, axis):
    """``x.max(axis=axis, keepdims=True)`` と同じ値の新しい配列。

    NumPy の 2 次元配列の行ごとの最大 (``axis=1``) は、``max`` の reduce の手間が行の数だけかかる
    (100 × 10 のロジットで約 4.6 µs)。``argmax`` で行ごとの最大の位置を探して取り出すと、同じ値
    (NaN があれば NaN) が半分以下の時間で求まる (約 2 µs、英語の Performance notes)。それ以外 (CuPy の配列、
    ほかの軸、列のない配列) は ``max`` のまま。
    """
    if (type(x) is np.ndarray and x.ndim == 2 and axis in (1, -1) and x.shape[1] > 0
            and x.dtype.kind == "f"):
        rows = np.arange(x.shape[0])
        return x[rows, x.argmax(axis=1)][:, None]
    return x.max(axis=axis, keepdims=True)


def logsumexp(x, axis=1):
    """log(sum(exp(x), axis)) を桁あふれなく計算する (keepdims=True の配列を返す)。"""
    xp = cuda.get_array_module(x)
    m = max_keepdims(x, axis)
    y = x - m
    xp.exp(y, out=y)
    s = y.sum(axis=axis, keepdims=True)
    xp.log(s, out=s)
    m += s
    return m


def max_backward_shape(x, axis):
    """max/min の逆伝播で使う、keepdims=True 相当の形状。"""
    if axis is None:
        axis = range(x.ndim)
    elif isinstance(axis, int):
        axis = (axis,)
    axis = [a if a >= 0 else a + x.ndim for a in axis]
    return [s if ax not in axis else 1 for ax, s in enumerate(x.shape)]


# =============================================================================
# 畳み込み用 / conv helpers
# =============================================================================
def get_conv_outsize(input_size, kernel_size, stride, pad):
    """畳み込み・プーリングの出力サイズ。/ Output size of a convolution."""
    return (input_size + pad * 2 - kernel_size) // stride + 1


def get_deconv_outsize(size, k, s, p):
    """転置畳み込みの出力サイズ。/ Output size of a transposed convolution."""
    return s * (size - 1) + k - 2 * p


def pair(x):
    """int なら (x, x) に、長さ 2 のタプルならそのまま返す。"""
    if isinstance(x, (int, np.integer)):
        return (int(x), int(x))
    if isinstance(x, tuple) and len(x) == 2:
        return x
    raise ValueError(f"expected an int or a pair of ints, got {x!r}")


# =============================================================================
# 勾配チェック / gradient check
# =============================================================================
def numerical_grad(f, x, *args, **kwargs):
    """中心差分 (刻み 1e-4) による数値微分。/ Central-difference numerical gradient of ``f`` at ``x``.

    ``f`` はスカラー (または任意形状、その総和を微分する) を返す関数。``args`` と ``kwargs`` は
    そのまま ``f`` に渡します (DeZero と同じ。``eps`` などのキーワードも ``f`` のもの)。
    """
    eps = 1e-4
    x = x.data if isinstance(x, Variable) else x
    xp = cuda.get_array_module(x)
    if xp is not np:
        np_x = cuda.as_numpy(x)
    else:
        np_x = x
    grad = np.zeros_like(np_x)

    it = np.nditer(np_x, flags=["multi_index"], op_flags=["readwrite"])
    while not it.finished:
        idx = it.multi_index
        tmp_val = np_x[idx].copy()

        np_x[idx] = tmp_val + eps
        y1 = f(x if xp is np else cuda.as_cupy(np_x), *args, **kwargs)
        y1 = _sum_value(y1)

        np_x[idx] = tmp_val - eps
        y2 = f(x if xp is np else cuda.as_cupy(np_x), *args, **kwargs)
        y2 = _sum_value(y2)

        grad[idx] = (y1 - y2) / (2 * eps)
        np_x[idx] = tmp_val
        it.iternext()
    return grad if xp is np else cuda.as_cupy(grad)


def _sum_value(y):
    if isinstance(y, Variable):
        y = y.data
    return float(cuda.as_numpy(y).sum())


def gradient_check(f, x, *args, rtol=1e-4, atol=1e-5, **kwargs):
    """逆伝播の勾配と数値微分を比べ、一致すれば True を返す。

    Compare backprop's gradient with the numerical one; True when they agree.
    """
    x = as_variable(x)
    x.data = x.data.astype(np.float64)

    num_grad = numerical_grad(f, x, *args, **kwargs)
    y = f(x, *args, **kwargs)
    y.backward()
    bp_grad = x.grad.data

    assert bp_grad.shape == num_grad.shape, (bp_grad.shape, num_grad.shape)
    res = array_allclose(num_grad, bp_grad, atol=atol, rtol=rtol)
    if not res:
        print("")
        print("========== FAILED (Gradient Check) ==========")
        print("Numerical Grad")
        print(f" shape: {num_grad.shape}")
        print(f" values: {cuda.as_numpy(num_grad).flatten()[:10]} ...")
        print("Backprop Grad")
        print(f" shape: {bp_grad.shape}")
        print(f" values: {cuda.as_numpy(bp_grad).flatten()[:10]} ...")
    return bool(res)


def array_equal(a, b):
    """2 つの配列 (または Variable) が等しいか。/ True if equal (Variables and CuPy accepted)."""
    a = a.data if isinstance(a, Variable) else a
    b = b.data if isinstance(b, Variable) else b
    a, b = cuda.as_numpy(a), cuda.as_numpy(b)
    return bool(np.array_equal(a, b))


def array_allclose(a, b, rtol=1e-4, atol=1e-5):
    """2 つの配列 (または Variable) がほぼ等しいか。/ True if close."""
    a = a.data if isinstance(a, Variable) else a
    b = b.data if isinstance(b, Variable) else b
    a, b = cuda.as_numpy(a), cuda.as_numpy(b)
    return bool(np.allclose(a, b, atol=atol, rtol=rtol))


# =============================================================================
# ダウンロード / download (DeZero の get_file と同じ使い方)
# =============================================================================
cache_dir = os.path.join(os.path.expanduser("~"), ".stucrs")
"""ダウンロードしたファイルを置くフォルダ (DeZero の ``~/.dezero`` に当たる)。/ The download cache."""


def show_progress(block_num, block_size, total_size):
    """``urllib.request.urlretrieve`` の進捗表示 (30 文字のバー)。/ Progress bar for downloads."""
    if total_size <= 0:  # サーバが長さを教えないとき / size unknown
        print(f"\r{block_num * block_size / 1e6:.1f} MB", end="")
        return
    downloaded = block_num * block_size
    p = min(downloaded / total_size * 100, 100.0)
    i = min(int(downloaded / total_size * 30), 30)
    print(f"\r[{'#' * i}{'.' * (30 - i)}] {p:.2f}%", end="")


def get_file(url, file_name=None):
    """``url`` のファイルを ``cache_dir`` にダウンロードし、そのパスを返す (既にあれば何もしない)。

    Download ``url`` into :data:`cache_dir` unless it is already there; return the absolute path.
    The file is written under a temporary name and renamed when complete, so an interrupted
    download never leaves a truncated file behind that a later call would take for the real one.
    """
    if file_name is None:
        file_name = url[url.rfind("/") + 1:]
    file_path = os.path.join(cache_dir, file_name)
    os.makedirs(cache_dir, exist_ok=True)
    if os.path.exists(file_path):
        return file_path

    print("Downloading: " + file_name)
    fd, tmp_path = tempfile.mkstemp(dir=cache_dir, prefix="." + file_name + ".", suffix=".part")
    os.close(fd)
    try:
        import urllib.request  # 起動を速くするため、ダウンロードするときだけ読み込む

        urllib.request.urlretrieve(url, tmp_path, show_progress)
        os.replace(tmp_path, file_path)
    except BaseException:  # 失敗・中断 (Ctrl-C) では書きかけを消して、元の例外をそのまま投げる
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        raise
    print(" Done")
    return file_path


# =============================================================================
# 計算グラフの可視化 / graph visualisation (Graphviz DOT)
# =============================================================================
def _dot_var(v, verbose=False):
    name = "" if v.name is None else v.name
    if verbose and v.data is not None:
        if v.name is not None:
            name += ": "
        name += f"{v.shape} {v.dtype}"
    name = name.replace('"', '\\"')
    return f'{id(v)} [label="{name}", color=orange, style=filled]\n'


def _dot_func(f):
    txt = f'{id(f)} [label="{type(f).__name__}", color=lightblue, style=filled, shape=box]\n'
    for x in f.inputs:
        txt += f"{id(x)} -> {id(f)}\n"
    for y in f.outputs:
        out = y()
        if out is not None:
            txt += f"{id(f)} -> {id(out)}\n"
    return txt


def get_dot_graph(output, verbose=True):
    """計算グラフを Graphviz の DOT 言語の文字列にする。/ The graph behind ``output`` as DOT text."""
    txt = ""
    funcs = []
    seen = set()

    def add_func(f):
        if id(f) not in seen:
            funcs.append(f)
            seen.add(id(f))

    if output.creator is not None:
        add_func(output.creator)
    txt += _dot_var(output, verbose)

    while funcs:
        func = funcs.pop()
        txt += _dot_func(func)
        for x in func.inputs:
            txt += _dot_var(x, verbose)
            if x.creator is not None:
                add_func(x.creator)

    return "digraph g {\n" + txt + "}"


def plot_dot_graph(output, verbose=True, to_file="graph.png"):
    """計算グラフを画像に描く (Graphviz の ``dot`` コマンドが必要)。

    Render the graph to ``to_file`` with Graphviz's ``dot``. The DOT text is returned in any case;
    when ``dot`` is missing a clear error says how to install it.
    """
    dot_graph = get_dot_graph(output, verbose)
    dot = shutil.which("dot")
    if dot is None:
        raise RuntimeError(
            "plot_dot_graph needs Graphviz's 'dot' program, which is not installed "
            "(Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz). "
            "get_dot_graph(output) returns the DOT text without it."
        )
    to_file = os.fspath(to_file)
    extension = os.path.splitext(to_file)[1][1:] or "png"
    out_dir = os.path.dirname(os.path.abspath(to_file))
    os.makedirs(out_dir, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        graph_path = os.path.join(tmp, "graph.dot")
        with open(graph_path, "w", encoding="utf-8") as f:
            f.write(dot_graph)
        fd, tmp_out = tempfile.mkstemp(dir=out_dir, suffix="." + extension)
        os.close(fd)
        try:
            subprocess.run([dot, graph_path, "-T", extension, "-o", tmp_out], check=True,
                           capture_output=True)
            os.replace(tmp_out, to_file)
        except BaseException:
            if os.path.exists(tmp_out):
                os.remove(tmp_out)
            raise
    return dot_graph
