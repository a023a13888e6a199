"""レイヤ: パラメータを持つ部品 (``import stucrs.layers as L``)。/ Layers holding parameters.

``Layer`` の属性に ``Parameter`` や別の ``Layer`` を代入すると、自動的にパラメータとして登録されます。
``params()`` で入れ子のレイヤも含めたすべてのパラメータを順に取り出せます。

重みの保存 (``save_weights``) は ``allow_pickle=False`` の npz 形式で、一時ファイルに書いてから
``os.replace`` で置き換えるので、途中で失敗しても元のファイルは壊れません。
読み込み (``load_weights``) はパラメータの名前と形をすべて照合し、合わなければどこが違うかを
エラーメッセージで示します。
"""
import os
import tempfile
import weakref

import numpy as np

from stucrs import cuda
from stucrs.core import Parameter
from stucrs.utils import pair
import stucrs.functions as F

__all__ = ["Layer", "Linear", "Conv2d", "Deconv2d", "BatchNorm", "EmbedID", "RNN", "LSTM"]


# =============================================================================
# Layer
# =============================================================================
class Layer:
    """レイヤの基底クラス。/ Base class of layers.

    サブクラスは ``forward(*inputs)`` を実装します。``Parameter`` か ``Layer`` を属性に
    代入すると、その名前が登録され ``params()`` の対象になります (登録順に並びます)。
    """

    def __init__(self):
        object.__setattr__(self, "_params", {})  # 名前 → None (順序付きの集合として使う)

    def __setattr__(self, name, value):
        params = self.__dict__.get("_params")
        if params is None:
            raise RuntimeError(f"{type(self).__name__}.__init__ must call super().__init__() "
                               f"before assigning attributes (assigning {name!r})")
        if isinstance(value, (Parameter, Layer)):
            params[name] = None
        else:
            params.pop(name, None)
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        self.__dict__.get("_params", {}).pop(name, None)
        object.__delattr__(self, name)

    def __call__(self, *inputs):
        outputs = self.forward(*inputs)
        if not isinstance(outputs, tuple):
            outputs = (outputs,)
        self.inputs = _weak_refs(inputs)
        self.outputs = _weak_refs(outputs)
        return outputs if len(outputs) > 1 else outputs[0]

    def forward(self, *inputs):
        """順伝播 (サブクラスで実装する)。"""
        raise NotImplementedError(f"{type(self).__name__}.forward is not implemented")

    def params(self):
        """このレイヤ (と入れ子のレイヤ) のパラメータを順に返すジェネレータ。/ Yield all parameters."""
        yield from self._param_list()

    def _param_list(self, found=None):
        """``params()`` と同じ順のパラメータのリスト (入れ子のレイヤごとにジェネレータを作らない)。"""
        if found is None:
            found = []
        for name in self._params:
            obj = self.__dict__[name]
            if not isinstance(obj, Layer):
                found.append(obj)
            elif type(obj).params is Layer.params:
                obj._param_list(found)
            else:  # params() を上書きしたレイヤはそれに従う
                found.extend(obj.params())
        return found

    def cleargrads(self):
        """すべてのパラメータの勾配をリセットする。/ Reset every parameter's gradient."""
        for param in param_list(self):
            param.cleargrad()

    def to_cpu(self):
        """パラメータを CPU (NumPy) に移す。"""
        for param in self.params():
            param.to_cpu()
        return self

    def to_gpu(self):
        """パラメータを GPU (CuPy) に移す。"""
        for param in self.params():
            param.to_gpu()
        return self

    def _flatten_params(self, params_dict, parent_key="", owners=None):
        """``{"l0/W": Parameter, ...}`` の形で ``params_dict`` にパラメータを集める。

        ``owners`` を渡すと ``{"l0/W": そのパラメータを持つ Layer}`` も集める (load_weights 用)。
        """
        for name in self._params:
            obj = self.__dict__[name]
            key = parent_key + "/" + name if parent_key else name
            if isinstance(obj, Layer):
                obj._flatten_params(params_dict, key, owners)
            else:
                params_dict[key] = obj
                if owners is not None:
                    owners[key] = self

    # --- 重みの保存と読み込み -----------------------------------------------------
    def save_weights(self, path):
        """パラメータを npz ファイルに保存する (拡張子 .npz が無ければ付ける)。/ Save weights.

        一時ファイルに書いてから置き換えるので、失敗しても既存のファイルはそのまま残ります。
        GPU 上のパラメータもそのまま保存できます (保存のために CPU へコピーするだけ)。
        """
        path = os.fspath(path)
        if not path.endswith(".npz"):
            path += ".npz"  # np.savez と同じ規則
        params_dict = {}
        self._flatten_params(params_dict)
        arrays = {}
        for key, param in params_dict.items():
            if param.data is None:
                raise ValueError(f"save_weights: parameter {key!r} is not initialised yet "
                                 f"(its shape is decided by the first forward pass); run the model "
                                 f"once on an input before saving")
            arrays[key] = cuda.as_numpy(param.data)
        directory = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.remove(tmp)
            except OSError:
                pass
            raise
        return path

    def load_weights(self, path):
        """``save_weights`` で保存した npz ファイルからパラメータを読み込む。/ Load weights.

        ファイル全体 (名前・形・dtype) を先に確かめてから書き換えます。足りない名前・余分な名前・
        形の違い・数値に変換できない配列・壊れたファイルのどれでも、ファイル名と直し方を示す
        ``ValueError`` を出し、モデルは何も変わりません。まだ形の決まっていないパラメータ
        (最初の順伝播の前の ``Linear`` など) は、ファイルの形で初期化します (浮動小数点の配列で、
        次元の数が合うときだけ。dtype はレイヤの dtype に変換)。pickle を含むファイルは拒否します。
        """
        import zipfile
        import zlib

        path = os.fspath(path)
        if not os.path.exists(path) and os.path.exists(path + ".npz"):
            path += ".npz"
        params_dict, owners = {}, {}
        self._flatten_params(params_dict, owners=owners)
        fix = "save the weights again with Layer.save_weights, or load another file"
        try:
            npz = np.load(path, allow_pickle=False)
            if not hasattr(npz, "files"):
                raise ValueError(f"load_weights: {path} is not an .npz archive of named arrays "
                                 f"(written by Layer.save_weights)")
            with npz:
                arrays = {key: npz[key] for key in npz.files}
        except ValueError as e:
            if "pickle" in str(e).lower():
                raise ValueError(f"load_weights: {path} contains pickled (object) data, which is refused "
                                 f"for safety; save weights with Layer.save_weights (plain arrays only)") from None
            if str(e).startswith("load_weights:"):
                raise
            raise ValueError(f"load_weights: cannot read {path} ({e}); {fix}") from None
        except (zipfile.BadZipFile, zlib.error, EOFError) as e:
            raise ValueError(f"load_weights: {path} is truncated or corrupted ({type(e).__name__}: {e}); "
                             f"{fix}") from None
        except OSError as e:
            raise ValueError(f"load_weights: cannot read {path} ({e.strerror or e})") from None
        missing = [k for k in params_dict if k not in arrays]
        extra = [k for k in arrays if k not in params_dict]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing in the file: {', '.join(missing)}")
            if extra:
                parts.append(f"not in the model: {', '.join(extra)}")
            raise ValueError(f"load_weights: {path} does not match the model's parameters ("
                             + "; ".join(parts) + ")")
        # 1. すべて確かめて、書き込む配列を用意する (ここで失敗してもモデルは元のまま)
        new = {}
        for key, param in params_dict.items():
            arr = arrays[key]
            if arr.dtype.kind not in "biuf":
                raise ValueError(f"load_weights: parameter {key!r} in {path} holds {arr.dtype} data, which "
                                 f"cannot be converted to numbers; {fix}")
            if param.data is not None:
                if param.data.shape != arr.shape:
                    raise ValueError(f"load_weights: parameter {key!r} has shape {arr.shape} in "
                                     f"{path} but shape {param.data.shape} in the model")
                new[key] = cuda.get_array_module(param.data).asarray(arr.astype(param.data.dtype, copy=True))
                continue
            owner = owners[key]
            name = key.rsplit("/", 1)[-1]
            ndim = _PARAM_NDIM.get((type(owner).__name__, name))
            if arr.dtype.kind != "f":
                raise ValueError(f"load_weights: parameter {key!r} in {path} is {arr.dtype}, but a parameter "
                                 f"that is not initialised yet is only filled from floating-point arrays; {fix}")
            if ndim is not None and arr.ndim != ndim:
                raise ValueError(f"load_weights: parameter {key!r} in {path} has {arr.ndim} dimensions "
                                 f"{arr.shape}, but {type(owner).__name__}.{name} has {ndim}; {fix}")
            new[key] = arr.astype(getattr(owner, "dtype", arr.dtype), copy=True)
        # 2. 書き込む (新しい配列に差し替えるので、data を他と共有していても影響しない)
        for key, param in params_dict.items():
            param.data = new[key]


def param_list(target):
    """``list(target.params())`` と同じリスト (Layer なら入れ子のジェネレータを作らずに集める)。"""
    if isinstance(target, Layer) and type(target).params is Layer.params:
        return target._param_list()
    return list(target.params())


def _weak_refs(objs):
    """弱参照のリスト (弱参照を作れないもの、たとえば数や None は飛ばす)。"""
    refs = []
    for x in objs:
        try:
            refs.append(weakref.ref(x))
        except TypeError:
            pass
    return refs


# =============================================================================
# Linear
# =============================================================================
def _normal_init(xp, shape, fan_in, dtype):
    # 標準正規分布 × sqrt(1 / fan_in)。倍率も dtype にそろえるので float32 のまま (float64 にならない)
    dtype = np.dtype(dtype)
    return xp.random.randn(*shape).astype(dtype) * dtype.type(np.sqrt(1.0 / fan_in))


# 形の決まっていないパラメータを load_weights で初期化するときの次元の数 (レイヤ名, 名前) -> ndim
_PARAM_NDIM = {("Linear", "W"): 2, ("Linear", "b"): 1, ("Conv2d", "W"): 4, ("Conv2d", "b"): 1,
               ("Deconv2d", "W"): 4, ("Deconv2d", "b"): 1}


class Linear(Layer):
    """全結合層 y = x W + b。/ Fully connected layer.

    Parameters
    ----------
    out_size : int
        出力の次元。
    nobias : bool
        True ならバイアスなし。
    dtype : numpy dtype
        パラメータの型 (既定 float32)。
    in_size : int, optional
        入力の次元。省略すると最初の入力から決めます (W はそのとき初期化)。
    """

    def __init__(self, out_size, nobias=False, dtype=np.float32, in_size=None):
        super().__init__()
        self.in_size = in_size
        self.out_size = out_size
        self.dtype = dtype
        self.W = Parameter(None, name="W")
        if self.in_size is not None:
            self._init_W()
        if nobias:
            self.b = None
        else:
            self.b = Parameter(np.zeros(out_size, dtype=dtype), name="b")

    def _init_W(self, xp=np):
        self.W.data = _normal_init(xp, (self.in_size, self.out_size), self.in_size, self.dtype)

    def forward(self, x):
        if self.W.data is None:
            if x.ndim != 2:
                raise ValueError(f"Linear expects a 2-D input (N, in_size), got shape {x.shape}; "
                                 f"flatten it first (F.flatten or x.reshape(N, -1))")
            self.in_size = x.shape[1]
            self._init_W(cuda.get_array_module(x))
            if self.b is not None and cuda.get_array_module(x) is not cuda.get_array_module(self.b.data):
                self.b.to_gpu()
        return F.linear(x, self.W, self.b)


# =============================================================================
# Conv2d / Deconv2d
# =============================================================================
def _check_image_input(layer, x):
    if x.ndim != 4:
        raise ValueError(f"{type(layer).__name__} expects a 4-D input (N, C, H, W), got shape {x.shape}"
                         + ("; reshape flat images first, e.g. x.reshape(-1, 1, 28, 28)" if x.ndim == 2 else ""))


class Conv2d(Layer):
    """2 次元畳み込み層。/ 2-D convolution layer.

    Parameters
    ----------
    out_channels : int
        出力チャンネル数。
    kernel_size, stride, pad : int or (int, int)
    nobias : bool
    dtype : numpy dtype
    in_channels : int, optional
        入力チャンネル数。省略すると最初の入力から決めます。

    W の形は (out_channels, in_channels, KH, KW)、入力は (N, C, H, W)。
    """

    def __init__(self, out_channels, kernel_size, stride=1, pad=0, nobias=False, dtype=np.float32,
                 in_channels=None):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.pad = pad
        self.dtype = dtype
        self.W = Parameter(None, name="W")
        if in_channels is not None:
            self._init_W()
        if nobias:
            self.b = None
        else:
            self.b = Parameter(np.zeros(out_channels, dtype=dtype), name="b")

    def _init_W(self, xp=np):
        kh, kw = pair(self.kernel_size)
        c, oc = self.in_channels, self.out_channels
        self.W.data = _normal_init(xp, (oc, c, kh, kw), c * kh * kw, self.dtype)

    def forward(self, x):
        _check_image_input(self, x)
        if self.W.data is None:
            self.in_channels = x.shape[1]
            xp = cuda.get_array_module(x)
            self._init_W(xp)
            if self.b is not None and xp is not cuda.get_array_module(self.b.data):
                self.b.to_gpu()
        return F.conv2d(x, self.W, self.b, self.stride, self.pad)


class Deconv2d(Layer):
    """転置畳み込み層。/ Transposed 2-D convolution layer. W の形は (in_channels, out_channels, KH, KW)。"""

    def __init__(self, out_channels, kernel_size, stride=1, pad=0, nobias=False, dtype=np.float32,
                 in_channels=None):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.pad = pad
        self.dtype = dtype
        self.W = Parameter(None, name="W")
        if in_channels is not None:
            self._init_W()
        if nobias:
            self.b = None
        else:
            self.b = Parameter(np.zeros(out_channels, dtype=dtype), name="b")

    def _init_W(self, xp=np):
        kh, kw = pair(self.kernel_size)
        c, oc = self.in_channels, self.out_channels
        self.W.data = _normal_init(xp, (c, oc, kh, kw), c * kh * kw, self.dtype)

    def forward(self, x):
        _check_image_input(self, x)
        if self.W.data is None:
            self.in_channels = x.shape[1]
            xp = cuda.get_array_module(x)
            self._init_W(xp)
            if self.b is not None and xp is not cuda.get_array_module(self.b.data):
                self.b.to_gpu()
        return F.deconv2d(x, self.W, self.b, self.stride, self.pad)


# =============================================================================
# BatchNorm / EmbedID
# =============================================================================
class BatchNorm(Layer):
    """バッチ正規化層。/ Batch normalisation layer.

    ``gamma``, ``beta`` (学習するパラメータ) と移動平均 ``avg_mean``, ``avg_var`` は
    最初の入力でチャンネル数 (x.shape[1]) に合わせて作られます。移動平均は勾配を持たないので
    オプティマイザは更新しませんが、``save_weights`` では一緒に保存されます。
    """

    def __init__(self, decay=0.9, eps=2e-5):
        super().__init__()
        self.decay = decay
        self.eps = eps
        self.avg_mean = Parameter(None, name="avg_mean")
        self.avg_var = Parameter(None, name="avg_var")
        self.gamma = Parameter(None, name="gamma")
        self.beta = Parameter(None, name="beta")

    def _init_params(self, x):
        xp = cuda.get_array_module(x)
        d = x.shape[1]
        dtype = x.dtype
        if self.avg_mean.data is None:
            self.avg_mean.data = xp.zeros(d, dtype=dtype)
        if self.avg_var.data is None:
            self.avg_var.data = xp.ones(d, dtype=dtype)
        if self.gamma.data is None:
            self.gamma.data = xp.ones(d, dtype=dtype)
        if self.beta.data is None:
            self.beta.data = xp.zeros(d, dtype=dtype)

    def forward(self, x):
        if self.avg_mean.data is None or self.gamma.data is None:
            self._init_params(x)
        return F.batch_norm(x, self.gamma, self.beta, self.avg_mean.data, self.avg_var.data,
                            decay=self.decay, eps=self.eps)


class EmbedID(Layer):
    """単語埋め込み層: ID → ベクトル。/ Embedding layer. W の形は (in_size, out_size)。"""

    def __init__(self, in_size, out_size, dtype=np.float32):
        super().__init__()
        self.W = Parameter(np.random.randn(in_size, out_size).astype(dtype), name="W")

    def forward(self, x):
        return F.embed_id(x, self.W)


# =============================================================================
# RNN / LSTM
# =============================================================================
class RNN(Layer):
    """単純な RNN: h = tanh(x W_x + h W_h + b)。/ Elman RNN layer (call ``reset_state`` between sequences)."""

    def __init__(self, hidden_size, in_size=None):
        super().__init__()
        self.x2h = Linear(hidden_size, in_size=in_size)
        # h2h の重みは最初に h を受け取ったときに作る (DeZero と同じ乱数の順番になる)
        self.h2h = Linear(hidden_size, nobias=True)
        self.h = None

    def reset_state(self):
        """隠れ状態を消す。/ Forget the hidden state."""
        self.h = None

    def forward(self, x):
        if self.h is None:
            h_new = F.tanh(self.x2h(x))
        else:
            h_new = F.tanh(self.x2h(x) + self.h2h(self.h))
        self.h = h_new
        return h_new


class LSTM(Layer):
    """LSTM 層。/ Long short-term memory layer (call ``reset_state`` between sequences).

    ゲート f (忘却), i (入力), o (出力) と候補 u を入力 x と前の隠れ状態 h から作り、
    c = f * c + i * u, h = o * tanh(c) とします。最初の時刻 (状態なし) は h = c = 0 と同じです。
    """

    def __init__(self, hidden_size, in_size=None):
        super().__init__()
        H, I = hidden_size, in_size
        self.x2f = Linear(H, in_size=I)
        self.x2i = Linear(H, in_size=I)
        self.x2o = Linear(H, in_size=I)
        self.x2u = Linear(H, in_size=I)
        self.h2f = Linear(H, in_size=H, nobias=True)
        self.h2i = Linear(H, in_size=H, nobias=True)
        self.h2o = Linear(H, in_size=H, nobias=True)
        self.h2u = Linear(H, in_size=H, nobias=True)
        self.reset_state()

    def reset_state(self):
        """隠れ状態とセルを消す。/ Forget the hidden state and the cell."""
        self.h = None
        self.c = None

    def forward(self, x):
        if self.h is None:
            f = F.sigmoid(self.x2f(x))
            i = F.sigmoid(self.x2i(x))
            o = F.sigmoid(self.x2o(x))
            u = F.tanh(self.x2u(x))
        else:
            f = F.sigmoid(self.x2f(x) + self.h2f(self.h))
            i = F.sigmoid(self.x2i(x) + self.h2i(self.h))
            o = F.sigmoid(self.x2o(x) + self.h2o(self.h))
            u = F.tanh(self.x2u(x) + self.h2u(self.h))
        if self.c is None:
            c_new = i * u
        else:
            c_new = (f * self.c) + (i * u)
        h_new = o * F.tanh(c_new)
        self.h, self.c = h_new, c_new
        return h_new
