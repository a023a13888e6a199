"""StuCrs の心臓部: Variable と Function による define-by-run 自動微分。

Core of StuCrs: ``Variable`` / ``Function`` build the computational graph while the forward pass
runs (define-by-run), and ``Variable.backward`` walks it back.

設計の要点 (なぜこう書くか):

* ``Function.forward`` は生の配列 (ndarray) を受け取って計算し、``Function.backward`` は
  Variable を使って計算します。逆伝播そのものが計算グラフになるので、``create_graph=True``
  を指定すれば 2 階以上の微分がそのまま求まります (本の第 3 ステージ)。
* 出力 Variable への参照は弱参照 (weakref) です。損失の Variable を手放すと計算グラフ全体が
  すぐに解放され、何万回学習してもメモリが増えません。
* 逆伝播の順序は世代 (generation) で決めます。DeZero は関数を追加するたびにリストを並べ替えますが、
  ここではヒープ (heapq) を使い、追加 1 回あたり O(log n) で済ませます。
* 勾配の要らない入力 (ミニバッチのような生の配列) には勾配を計算しません。
  ``Function`` に直接渡された生の配列は ``requires_grad=False`` の Variable になり、
  入力がすべて勾配不要なら出力も勾配不要になって、計算グラフを作りません。
* float32 のグラフは最後まで float32 のままです。Python や NumPy のスカラーは相手の Variable の
  dtype に合わせてから計算します (NumPy 2 の型昇格で float64 に化けないように)。
"""
import contextlib
import heapq
import os
import weakref

import numpy as np

from stucrs import cuda

_F = None  # stucrs.functions (循環 import を避けるため stucrs/__init__.py で登録する)


def _install_functions(functions_module):
    global _F
    _F = functions_module


# =============================================================================
# Config
# =============================================================================
def _fast_from_environment(environ=os.environ):
    raw = environ.get("STUCRS_FAST", "1")
    value = raw.strip().lower()
    if value in ("1", "on", "true", "yes", ""):
        return True
    if value in ("0", "off", "false", "no"):
        return False
    raise ValueError(f"STUCRS_FAST={raw!r} is not understood: use STUCRS_FAST=1 (fast paths, the "
                     f"default) or STUCRS_FAST=0 (only the book's code)")


class Config:
    """動作モードの設定。/ Global switches.

    enable_backprop: True なら計算グラフを作る (逆伝播できる)。
    train: True なら学習モード (Dropout や BatchNorm の振る舞いが変わる)。
    fast: True なら速い実装 (:mod:`stucrs.fast`) を使う。False なら本のとおりの計算だけ。
        既定は True で、環境変数 ``STUCRS_FAST=0`` なら False。
    """

    enable_backprop = True
    train = True
    fast = _fast_from_environment()


@contextlib.contextmanager
def using_config(name, value):
    """``with`` の間だけ Config の属性 ``name`` を ``value`` にする。/ Temporarily set a Config flag."""
    if not hasattr(Config, name):
        raise AttributeError(f"Config has no setting {name!r}; known settings: enable_backprop, train, fast")
    old_value = getattr(Config, name)
    setattr(Config, name, value)
    try:
        yield
    finally:
        setattr(Config, name, old_value)


def no_grad():
    """逆伝播用の計算グラフを作らないモード。/ Context manager that disables graph construction."""
    return using_config("enable_backprop", False)


def test_mode():
    """推論 (テスト) モード: ``Config.train = False``。/ Context manager for inference mode."""
    return using_config("train", False)


# =============================================================================
# Variable / Parameter
# =============================================================================
if cuda.gpu_enable:
    array_types = (np.ndarray, cuda.cp.ndarray)
else:
    array_types = (np.ndarray,)

_scalar_types = (int, float, bool, complex, np.generic)


def _type_error(obj, where="Variable"):
    return TypeError(
        f"{type(obj).__name__} is not supported by {where}: it needs a numpy.ndarray "
        f"(or cupy.ndarray). Wrap the value with np.array(...) first."
    )


class Variable:
    """変数: データ (ndarray) とその勾配を持つ箱。/ A box holding an array and its gradient.

    Parameters
    ----------
    data : numpy.ndarray or cupy.ndarray or None
        中身の配列。
    name : str, optional
        計算グラフの可視化で表示する名前。
    """

    __slots__ = ("data", "name", "grad", "creator", "generation", "requires_grad", "__weakref__")
    # ndarray が左辺にあっても Variable の演算子 (__radd__ など) を優先させる
    __array_priority__ = 200

    def __init__(self, data, name=None):
        if data is not None and not isinstance(data, array_types):
            raise _type_error(data)
        self.data = data
        self.name = name
        self.grad = None
        self.creator = None
        self.generation = 0
        self.requires_grad = True

    # --- 配列としての性質 -----------------------------------------------------
    @property
    def shape(self):
        """配列の形状。/ Shape of the data."""
        return self.data.shape

    @property
    def ndim(self):
        """次元数。/ Number of dimensions."""
        return self.data.ndim

    @property
    def size(self):
        """要素数。/ Number of elements."""
        return self.data.size

    @property
    def dtype(self):
        """データ型。/ Data type."""
        return self.data.dtype

    def __len__(self):
        return len(self.data)

    def __repr__(self):
        if self.data is None:
            return "variable(None)"
        p = str(self.data).replace("\n", "\n" + " " * 9)
        return "variable(" + p + ")"

    # --- 計算グラフ ------------------------------------------------------------
    def set_creator(self, func):
        """この変数を作った関数を記録する。/ Record the function that created this variable."""
        self.creator = func
        self.generation = func.generation + 1

    def unchain(self):
        """生みの親の関数とのつながりを切る。/ Cut the link to the creator function."""
        self.creator = None

    def unchain_backward(self):
        """この変数から遡れる計算グラフをすべて切り離す (RNN の Truncated BPTT 用)。"""
        if self.creator is None:
            return
        funcs = [self.creator]
        seen = {id(self.creator)}
        while funcs:
            f = funcs.pop()
            for x in f.inputs:
                if x.creator is not None:
                    if id(x.creator) not in seen:
                        seen.add(id(x.creator))
                        funcs.append(x.creator)
                    x.unchain()

    def cleargrad(self):
        """勾配をリセットする。/ Reset the gradient to None."""
        self.grad = None

    def backward(self, retain_grad=False, create_graph=False):
        """逆伝播で、この変数に至るまでの各変数の勾配 (``grad``) を求める。

        Backpropagate from this variable.

        Parameters
        ----------
        retain_grad : bool
            False なら途中の変数の勾配は使い終わり次第捨てる (末端の変数の勾配だけ残る)。
        create_graph : bool
            True なら逆伝播の計算についても計算グラフを作る (高階微分用)。

        スカラーでない変数から呼ぶと、DeZero と同じく 1 で埋めた勾配から始めます。
        2 回呼ぶと勾配は足し合わされます (``cleargrad`` でリセット)。
        """
        if self.grad is None:
            xp = cuda.get_array_module(self.data)
            self.grad = Variable(xp.ones_like(self.data))

        # (-世代, 追加順, 関数) のヒープ: 世代の大きい関数から取り出す
        heap = []
        seen = set()
        counter = 0

        def add_func(f):
            nonlocal counter
            if id(f) not in seen:
                seen.add(id(f))
                heapq.heappush(heap, (-f.generation, counter, f))
                counter += 1

        if self.creator is not None:
            add_func(self.creator)

        # 設定の切り替えはループの外で 1 回だけ (関数ごとに切り替えるのは無駄が大きい)
        with using_config("enable_backprop", create_graph):
            while heap:
                f = heapq.heappop(heap)[2]
                outputs = [o() for o in f.outputs]
                gxs = f.backward(*[o.grad if o is not None else None for o in outputs])
                if not isinstance(gxs, tuple):
                    gxs = (gxs,)

                for x, gx in zip(f.inputs, gxs):
                    if gx is None or not x.requires_grad:
                        continue
                    if not isinstance(gx, Variable):
                        gx = Variable(as_array(gx))
                    if x.grad is None:
                        x.grad = gx
                    elif create_graph:
                        x.grad = x.grad + gx
                    else:
                        # 新しい配列を作って足す (x.grad が他の変数の勾配と配列を共有していることがあるため)
                        x.grad = Variable(as_array(x.grad.data + gx.data))
                    if x.creator is not None:
                        add_func(x.creator)

                if not retain_grad:
                    for o in outputs:
                        if o is not None:
                            o.grad = None

        if not retain_grad and self.creator is None and not self.requires_grad:
            # 生の配列だけから作られた出力 (計算グラフを作らなかった関数の出力) も、DeZero と同じく
            # 関数の出力として勾配を消す。DeZero ではこの変数にも creator があり、上のループで消える。
            self.grad = None

    # --- 形状の操作 ------------------------------------------------------------
    def reshape(self, *shape):
        """形状を変える (``x.reshape(2, 3)`` と ``x.reshape((2, 3))`` のどちらも可)。"""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = shape[0]
        return _F.reshape(self, shape)

    def transpose(self, *axes):
        """軸を入れ替える (引数なしなら逆順)。/ Permute axes."""
        if len(axes) == 0:
            axes = None
        elif len(axes) == 1 and (isinstance(axes[0], (tuple, list)) or axes[0] is None):
            axes = axes[0]
        return _F.transpose(self, axes)

    @property
    def T(self):
        """転置。/ Transpose."""
        return _F.transpose(self)

    def sum(self, axis=None, keepdims=False):
        """総和。/ Sum of elements."""
        return _F.sum(self, axis, keepdims)

    def max(self, axis=None, keepdims=False):
        """最大値。/ Maximum."""
        return _F.max(self, axis, keepdims)

    def min(self, axis=None, keepdims=False):
        """最小値。/ Minimum."""
        return _F.min(self, axis, keepdims)

    # --- デバイス --------------------------------------------------------------
    def to_cpu(self):
        """データを CPU (NumPy) に移す。/ Move data to the CPU."""
        if self.data is not None:
            self.data = cuda.as_numpy(self.data)

    def to_gpu(self):
        """データを GPU (CuPy) に移す。/ Move data to the GPU."""
        if self.data is not None:
            self.data = cuda.as_cupy(self.data)

    # --- 演算子 ------------------------------------------------------------------
    def __neg__(self):
        return neg(self)

    def __add__(self, other):
        return add(self, other)

    def __radd__(self, other):
        return add(self, other)

    def __sub__(self, other):
        return sub(self, other)

    def __rsub__(self, other):
        return rsub(self, other)

    def __mul__(self, other):
        return mul(self, other)

    def __rmul__(self, other):
        return mul(self, other)

    def __truediv__(self, other):
        return div(self, other)

    def __rtruediv__(self, other):
        return rdiv(self, other)

    def __pow__(self, other):
        return pow(self, other)

    def __matmul__(self, other):
        return _F.matmul(self, other)

    def dot(self, other):
        """行列の積 ``self @ other`` (DeZero の ``Variable.dot``)。/ Matrix product."""
        return _F.matmul(self, other)

    # DeZero 0.0.13 の ``setup_variable`` が登録する名前 (綴りの誤りもそのまま) / DeZero's own spelling
    matmaul = dot

    def __rmatmul__(self, other):
        return _F.matmul(other, self)

    def __getitem__(self, slices):
        return _F.get_item(self, slices)


class Parameter(Variable):
    """学習で更新されるパラメータ。/ A trainable parameter (a Variable that layers collect)."""

    __slots__ = ()


def as_variable(obj):
    """obj が Variable でなければ Variable に包む。/ Wrap ``obj`` in a Variable if needed."""
    if isinstance(obj, Variable):
        return obj
    return Variable(obj)


def _as_input(obj):
    # Function に直接渡された生の配列は勾配不要の Variable にする (ミニバッチに勾配を計算しない)
    if isinstance(obj, Variable):
        return obj
    v = Variable(obj)
    v.requires_grad = False
    return v


def as_array(x, array_module=np):
    """スカラーを 0 次元配列に変換する。/ Turn a scalar into a 0-d array (dtype kept)."""
    if np.isscalar(x):
        return array_module.array(x)
    return x


def _as_operand(other, like):
    """演算子の相手 ``other`` を配列か Variable にする。

    Python / NumPy のスカラーと 0 次元配列は ``like`` (もう一方の入力: Variable か配列) の浮動小数点
    dtype に合わせる。これで float32 の計算が float64 に昇格しない。0 次元配列もスカラーと同じに扱うのは
    NumPy 1 (DeZero が書かれた版) の型昇格と同じ結果にするため (``x32 * np.array(2.0)`` は float32)。
    """
    if isinstance(other, Variable):
        if other.data is None:
            raise _empty_variable_error(other)
        return other
    if isinstance(like, Variable) and like.data is None:
        raise _empty_variable_error(like)
    like = like.data if isinstance(like, Variable) else like
    if not isinstance(like, array_types):
        like = None  # もう一方も Variable ではない (スカラーなど): dtype は合わせない
    if isinstance(other, array_types):
        if like is not None:
            dtype = like.dtype
            if (other.ndim == 0 and dtype.kind == "f" and other.dtype != dtype
                    and other.dtype.kind in "biuf"):
                return other.astype(dtype)
        return other
    if isinstance(other, _scalar_types):
        if like is None:
            return np.asarray(other)
        xp = cuda.get_array_module(like)
        if like.dtype.kind == "f" and not isinstance(other, complex):
            return xp.asarray(other, dtype=like.dtype)
        return xp.asarray(other)
    raise TypeError(
        f"unsupported operand type {type(other).__name__} for a Variable: use a Variable, an "
        f"ndarray or a Python/NumPy number (wrap lists with np.array(...))."
    )


def _empty_variable_error(v):
    return TypeError(f"the Variable{' ' + repr(v.name) if v.name else ''} holds no data (Variable(None)): "
                     f"give it an array first, e.g. Variable(np.array(1.0))")


def _as_operands(x0, x1):
    """二項演算の 2 つの入力をそろえる (``x0`` が 0 次元の生の配列でも ``x1`` の dtype に合わせる)。"""
    x1 = _as_operand(x1, x0)
    if isinstance(x0, array_types) and x0.ndim == 0:
        x0 = _as_operand(x0, x1)
    return x0, x1


# =============================================================================
# Function
# =============================================================================
# 速い実装の登録簿 {本のクラス: その子クラス}。stucrs.fast が登録する
fast_variants = {}


class Function:
    """関数の基底クラス。/ Base class of differentiable functions.

    サブクラスは ``forward(*xs)`` (ndarray を受けて ndarray を返す) と
    ``backward(*gys)`` (Variable を受けて Variable を返す) を実装します。
    """

    generation = 0

    def __new__(cls, *args, **kwargs):
        # 速さのための差し替え口はここだけ: Config.fast なら stucrs/fast に登録された子クラスで作る
        return object.__new__(fast_variants.get(cls, cls) if Config.fast else cls)

    def __init__(self):
        # 引数を取らない関数に引数を渡したら (F.Exp(x) と書いて F.Exp()(x) のつもりなど) エラーにする
        pass

    def __call__(self, *inputs):
        inputs = [_as_input(x) for x in inputs]
        xs = [x.data for x in inputs]
        ys = self.forward(*xs)
        if not isinstance(ys, tuple):
            ys = (ys,)
        outputs = [Variable(as_array(y)) for y in ys]

        if not any(x.requires_grad for x in inputs):
            # 勾配の要る入力がない (ミニバッチだけなど): 出力も勾配不要で、計算グラフは作らない
            for output in outputs:
                output.requires_grad = False
        elif Config.enable_backprop:
            self.generation = max([x.generation for x in inputs])
            for output in outputs:
                output.set_creator(self)
            self.inputs = inputs
            self.outputs = [weakref.ref(output) for output in outputs]
        return outputs if len(outputs) > 1 else outputs[0]

    def forward(self, *xs):
        """順伝播 (ndarray → ndarray)。サブクラスで実装する。"""
        raise NotImplementedError(f"{type(self).__name__}.forward is not implemented")

    def backward(self, *gys):
        """逆伝播 (Variable → Variable)。サブクラスで実装する。"""
        raise NotImplementedError(f"{type(self).__name__}.backward is not implemented")


def _broadcast_error(name, shape0, shape1, err):
    return ValueError(
        f"{name}: shapes {shape0} and {shape1} cannot be broadcast together ({err}). "
        f"Reshape one operand so that trailing dimensions match or are 1."
    )


# =============================================================================
# 四則演算 / arithmetic operators
# =============================================================================
class Add(Function):
    """足し算 x0 + x1 の関数クラス (ブロードキャスト対応)。/ Elementwise addition."""

    def forward(self, x0, x1):
        self.x0_shape, self.x1_shape = x0.shape, x1.shape
        try:
            return x0 + x1
        except ValueError as e:
            raise _broadcast_error("add", x0.shape, x1.shape, e) from None

    def backward(self, gy):
        gx0, gx1 = gy, gy
        if self.x0_shape != self.x1_shape:
            gx0 = _F.sum_to(gx0, self.x0_shape)
            gx1 = _F.sum_to(gx1, self.x1_shape)
        return gx0, gx1


def add(x0, x1):
    """x0 + x1 (ブロードキャスト対応)。"""
    x0, x1 = _as_operands(x0, x1)
    return Add()(x0, x1)


class Mul(Function):
    """掛け算 x0 * x1 の関数クラス。/ Elementwise multiplication."""

    def forward(self, x0, x1):
        try:
            return x0 * x1
        except ValueError as e:
            raise _broadcast_error("mul", x0.shape, x1.shape, e) from None

    def backward(self, gy):
        x0, x1 = self.inputs
        gx0 = gy * x1 if x0.requires_grad else None
        gx1 = gy * x0 if x1.requires_grad else None
        if x0.shape != x1.shape:
            if gx0 is not None:
                gx0 = _F.sum_to(gx0, x0.shape)
            if gx1 is not None:
                gx1 = _F.sum_to(gx1, x1.shape)
        return gx0, gx1


def mul(x0, x1):
    """x0 * x1 (要素ごとの積)。"""
    x0, x1 = _as_operands(x0, x1)
    return Mul()(x0, x1)


class Neg(Function):
    """符号反転 -x の関数クラス。/ Negation."""

    def forward(self, x):
        return -x

    def backward(self, gy):
        return -gy


def neg(x):
    """符号反転 -x。/ Negation."""
    return Neg()(x)


class Sub(Function):
    """引き算 x0 - x1 の関数クラス。/ Elementwise subtraction."""

    def forward(self, x0, x1):
        self.x0_shape, self.x1_shape = x0.shape, x1.shape
        try:
            return x0 - x1
        except ValueError as e:
            raise _broadcast_error("sub", x0.shape, x1.shape, e) from None

    def backward(self, gy):
        gx0 = gy
        gx1 = -gy
        if self.x0_shape != self.x1_shape:
            gx0 = _F.sum_to(gx0, self.x0_shape)
            gx1 = _F.sum_to(gx1, self.x1_shape)
        return gx0, gx1


def sub(x0, x1):
    """引き算 x0 - x1。/ Subtraction."""
    x0, x1 = _as_operands(x0, x1)
    return Sub()(x0, x1)


def rsub(x0, x1):
    """x1 - x0 (右辺が Variable のとき)。"""
    x0, x1 = _as_operands(x0, x1)
    return Sub()(x1, x0)


class Div(Function):
    """割り算 x0 / x1 の関数クラス。/ Elementwise division."""

    def forward(self, x0, x1):
        try:
            return x0 / x1
        except ValueError as e:
            raise _broadcast_error("div", x0.shape, x1.shape, e) from None

    def backward(self, gy):
        x0, x1 = self.inputs
        gx0 = gy / x1 if x0.requires_grad else None
        gx1 = gy * (-x0 / x1 ** 2) if x1.requires_grad else None
        if x0.shape != x1.shape:
            if gx0 is not None:
                gx0 = _F.sum_to(gx0, x0.shape)
            if gx1 is not None:
                gx1 = _F.sum_to(gx1, x1.shape)
        return gx0, gx1


def div(x0, x1):
    """割り算 x0 / x1。/ Division."""
    x0, x1 = _as_operands(x0, x1)
    return Div()(x0, x1)


def rdiv(x0, x1):
    """x1 / x0 (右辺が Variable のとき)。"""
    x0, x1 = _as_operands(x0, x1)
    return Div()(x1, x0)


class Pow(Function):
    """x ** c (c は定数)。"""

    def __init__(self, c):
        self.c = c

    def forward(self, x):
        return x ** self.c

    def backward(self, gy):
        (x,) = self.inputs
        c = self.c
        return c * x ** (c - 1) * gy


def pow(x, c):
    """x ** c (c は定数のスカラー)。/ Power with a constant exponent."""
    if isinstance(c, Variable):
        raise TypeError("pow: the exponent must be a constant number, not a Variable "
                        "(use F.exp(c * F.log(x)) for a variable exponent)")
    return Pow(c)(x)
