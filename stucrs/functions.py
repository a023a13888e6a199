"""微分可能な関数の集まり (``import stucrs.functions as F``)。

Differentiable functions. Each one is a ``Function`` subclass (CamelCase) and a lowercase helper.
``forward`` works on raw arrays; ``backward`` is written with these same functions on Variables, so
``backward(create_graph=True)`` gives exact higher-order derivatives.
"""
import numpy as np

from stucrs import cuda, utils
from stucrs.core import Config, Function, Variable, array_types, as_array, as_variable  # noqa: F401 - as_array: dezero.functions has it


# =============================================================================
# 要素ごとの関数 / elementwise functions: sin, cos, tanh, exp, log, square
# =============================================================================
class Sin(Function):
    """sin(x) の関数クラス。/ Sine."""

    def forward(self, x):
        xp = cuda.get_array_module(x)
        return xp.sin(x)

    def backward(self, gy):
        (x,) = self.inputs
        return gy * cos(x)


def sin(x):
    """正弦関数 sin(x)。"""
    return Sin()(x)


class Cos(Function):
    """cos(x) の関数クラス。/ Cosine."""

    def forward(self, x):
        xp = cuda.get_array_module(x)
        return xp.cos(x)

    def backward(self, gy):
        (x,) = self.inputs
        return gy * -sin(x)


def cos(x):
    """余弦関数 cos(x)。"""
    return Cos()(x)


class Tanh(Function):
    """tanh(x) の関数クラス。/ Hyperbolic tangent."""

    def forward(self, x):
        xp = cuda.get_array_module(x)
        return xp.tanh(x)

    def backward(self, gy):
        y = self.outputs[0]()
        return gy * (1 - y * y)


def tanh(x):
    """双曲線正接 tanh(x)。"""
    return Tanh()(x)


class Exp(Function):
    """exp(x) の関数クラス。/ Exponential."""

    def forward(self, x):
        xp = cuda.get_array_module(x)
        return xp.exp(x)

    def backward(self, gy):
        y = self.outputs[0]()
        return gy * y


def exp(x):
    """指数関数 exp(x)。"""
    return Exp()(x)


class Log(Function):
    """log(x) の関数クラス。/ Natural logarithm."""

    def forward(self, x):
        xp = cuda.get_array_module(x)
        return xp.log(x)

    def backward(self, gy):
        (x,) = self.inputs
        return gy / x


def log(x):
    """自然対数 log(x)。"""
    return Log()(x)


class Square(Function):
    """x² の関数クラス。/ Square."""

    def forward(self, x):
        return x * x

    def backward(self, gy):
        (x,) = self.inputs
        return 2 * x * gy


def square(x):
    """2 乗 x²。"""
    return Square()(x)


def pow(x, c):
    """べき乗 x ** c (c は定数)。"""
    from stucrs.core import pow as _pow

    return _pow(as_variable(x) if not isinstance(x, Variable) else x, c)


# =============================================================================
# 形状を変える関数 / shape functions
# =============================================================================
class Reshape(Function):
    """形状を変える関数クラス。/ Reshape."""

    def __init__(self, shape):
        self.shape = shape

    def forward(self, x):
        self.x_shape = x.shape
        try:
            return x.reshape(self.shape)
        except ValueError as e:
            raise ValueError(f"reshape: cannot reshape an array of shape {x.shape} "
                             f"(size {x.size}) into {self.shape}: {e}") from None

    def backward(self, gy):
        return reshape(gy, self.x_shape)


def reshape(x, shape):
    """形状を ``shape`` に変える (要素は変えない)。"""
    if not isinstance(shape, int) and x.shape == tuple(shape):
        return as_variable(x)
    return Reshape(shape)(x)


class Transpose(Function):
    """軸を入れ替える関数クラス。/ Transpose."""

    def __init__(self, axes=None):
        self.axes = axes

    def forward(self, x):
        return x.transpose(self.axes)

    def backward(self, gy):
        if self.axes is None:
            return transpose(gy)
        axes_len = len(self.axes)
        inv_axes = tuple(np.argsort([ax % axes_len for ax in self.axes]))
        return transpose(gy, inv_axes)


def transpose(x, axes=None):
    """軸を入れ替える (``axes=None`` なら逆順)。"""
    return Transpose(axes)(x)


class GetItem(Function):
    """スライス x[slices] の関数クラス。/ Indexing."""

    def __init__(self, slices):
        self.slices = slices

    def forward(self, x):
        return x[self.slices]

    def backward(self, gy):
        (x,) = self.inputs
        return GetItemGrad(self.slices, x.shape)(gy)


class GetItemGrad(Function):
    """GetItem の逆伝播: 勾配を元の形状の位置に足し込む関数クラス。/ Scatter-add for GetItem."""

    def __init__(self, slices, in_shape):
        self.slices = slices
        self.in_shape = in_shape

    def forward(self, gy):
        xp = cuda.get_array_module(gy)
        gx = xp.zeros(self.in_shape, dtype=gy.dtype)
        if xp is np:
            np.add.at(gx, self.slices, gy)
        else:
            xp.add.at(gx, self.slices, gy)
        return gx

    def backward(self, ggx):
        return get_item(ggx, self.slices)


def get_item(x, slices):
    """``x[slices]`` (スライス・インデックス参照)。"""
    return GetItem(slices)(x)


def expand_dims(x, axis):
    """位置 ``axis`` に長さ 1 の軸を挿入する。"""
    x = as_variable(x)
    shape = list(x.shape)
    if axis < 0:
        axis += len(shape) + 1
    shape.insert(axis, 1)
    return reshape(x, tuple(shape))


def flatten(x):
    """(N, ...) を (N, -1) に平らにする。"""
    return reshape(x, (x.shape[0], -1))


# =============================================================================
# 和とブロードキャスト / sum and broadcast
# =============================================================================
class Sum(Function):
    """総和の関数クラス。/ Sum."""

    def __init__(self, axis, keepdims):
        self.axis = axis
        self.keepdims = keepdims

    def forward(self, x):
        self.x_shape = x.shape
        return x.sum(axis=self.axis, keepdims=self.keepdims)

    def backward(self, gy):
        gy = utils.reshape_sum_backward(gy, self.x_shape, self.axis, self.keepdims)
        return broadcast_to(gy, self.x_shape)


def sum(x, axis=None, keepdims=False):
    """総和 (``axis`` は int かタプル)。"""
    if isinstance(axis, list):
        axis = tuple(axis)
    return Sum(axis, keepdims)(x)


class SumTo(Function):
    """形状 shape になるまで和をとる関数クラス。/ Sum to a shape."""

    def __init__(self, shape):
        self.shape = tuple(shape)

    def forward(self, x):
        self.x_shape = x.shape
        return utils.sum_to(x, self.shape)

    def backward(self, gy):
        return broadcast_to(gy, self.x_shape)


def sum_to(x, shape):
    """形状が ``shape`` になるように和をとる (broadcast_to の逆)。"""
    if x.shape == tuple(shape):
        return as_variable(x)
    return SumTo(shape)(x)


class BroadcastTo(Function):
    """形状 shape に広げる関数クラス。/ Broadcast to a shape."""

    def __init__(self, shape):
        self.shape = tuple(shape)

    def forward(self, x):
        self.x_shape = x.shape
        xp = cuda.get_array_module(x)
        try:
            # 読み取り専用のビューではなく実体を作る (後段でのインプレース演算を安全にするため)
            y = xp.empty(self.shape, dtype=x.dtype)
            y[...] = x
        except ValueError as e:
            raise ValueError(f"broadcast_to: cannot broadcast shape {x.shape} to {self.shape}: {e}") from None
        return y

    def backward(self, gy):
        return sum_to(gy, self.x_shape)


def broadcast_to(x, shape):
    """形状 ``shape`` に要素を複製して広げる。"""
    if x.shape == tuple(shape):
        return as_variable(x)
    return BroadcastTo(shape)(x)


def average(x, axis=None, keepdims=False):
    """平均。/ Mean over ``axis``."""
    x = as_variable(x)
    y = sum(x, axis, keepdims)
    return y * (y.data.size / x.data.size)


mean = average


# =============================================================================
# 行列の積と全結合 / matmul and linear
# =============================================================================
def _matmul_error(name, a_shape, b_shape):
    return ValueError(
        f"{name}: shapes {a_shape} and {b_shape} are not aligned: the last axis of the first "
        f"({a_shape[-1] if len(a_shape) else '-'}) must equal the first axis of the second "
        f"({b_shape[0] if len(b_shape) else '-'})."
    )


def _swap_last(x):
    axes = list(range(x.ndim))
    axes[-1], axes[-2] = axes[-2], axes[-1]
    return transpose(x, tuple(axes))


class MatMul(Function):
    """行列の積の関数クラス。/ Matrix product."""

    def forward(self, x, W):
        if x.ndim == 0 or W.ndim == 0 or x.shape[-1] != W.shape[-2 if W.ndim >= 2 else 0]:
            raise _matmul_error("matmul", x.shape, W.shape)
        return x @ W

    def backward(self, gy):
        x, W = self.inputs
        if x.ndim == 2 and W.ndim == 2:
            gx = matmul(gy, W.T) if x.requires_grad else None
            gW = matmul(x.T, gy) if W.requires_grad else None
            return gx, gW
        # バッチ付き行列積: 最後の 2 軸を転置し、ブロードキャストした軸は和で戻す
        gx = gW = None
        if x.requires_grad:
            gx = sum_to(matmul(gy, _swap_last(W)), x.shape)
        if W.requires_grad:
            gW = sum_to(matmul(_swap_last(x), gy), W.shape)
        return gx, gW


def matmul(x, W):
    """行列の積 x @ W。"""
    return MatMul()(x, W)


class Linear(Function):
    """全結合 x @ W + b の関数クラス (一時配列を作らない)。/ Fused affine transform."""

    def forward(self, x, W, b=None):
        if x.ndim != 2 or W.ndim != 2 or x.shape[1] != W.shape[0]:
            raise ValueError(
                f"linear: input x of shape {x.shape} does not fit weight W of shape {W.shape}: "
                f"x must be (N, {W.shape[0] if W.ndim == 2 else 'in'}) for W of shape (in, out)."
            )
        y = x @ W
        if b is not None:
            if b.shape not in ((W.shape[1],), (1, W.shape[1])):
                raise ValueError(f"linear: bias b of shape {b.shape} does not fit weight W of shape {W.shape}: "
                                 f"b must have shape ({W.shape[1]},), one value per output")
            y += b  # y は新しい配列なのでその場で足す (一時配列を作らない)
        return y

    def backward(self, gy):
        if len(self.inputs) == 3:
            x, W, b = self.inputs
        else:
            (x, W), b = self.inputs, None
        gb = sum_to(gy, b.shape) if b is not None and b.requires_grad else None
        gx = matmul(gy, W.T) if x.requires_grad else None
        gW = matmul(x.T, gy) if W.requires_grad else None
        if b is None:
            return gx, gW
        return gx, gW, gb


def linear(x, W, b=None):
    """全結合 x @ W + b。/ Affine transform."""
    if b is None:
        return Linear()(x, W)
    return Linear()(x, W, b)


def linear_simple(x, W, b=None):
    """全結合の素朴な実装 (本のステップ 43)。中間結果のメモリを早めに解放する。"""
    t = matmul(x, W)
    if b is None:
        return t
    y = t + b
    t.data = None  # 逆伝播で使わないので解放
    return y


# =============================================================================
# 活性化関数 / activation functions
# =============================================================================
class Sigmoid(Function):
    """シグモイド関数の関数クラス。/ Sigmoid."""

    def forward(self, x):
        xp = cuda.get_array_module(x)
        # tanh を使うと大きな |x| でも exp が溢れない
        y = xp.tanh(x * 0.5)
        y *= 0.5
        y += 0.5
        return y

    def backward(self, gy):
        y = self.outputs[0]()
        return gy * y * (1 - y)


def sigmoid(x):
    """シグモイド関数 1 / (1 + exp(-x))。"""
    return Sigmoid()(x)


def sigmoid_simple(x):
    """シグモイド関数の素朴な実装。"""
    x = as_variable(x)
    return 1 / (1 + exp(-x))


class ReLU(Function):
    """ReLU の関数クラス。/ Rectified linear unit."""

    def forward(self, x):
        xp = cuda.get_array_module(x)
        return xp.maximum(x, 0)  # Python の 0 は x の dtype に合わせられる (float32 のまま)

    def backward(self, gy):
        (x,) = self.inputs
        mask = x.data > 0
        return gy * mask


def relu(x):
    """ReLU 関数: max(x, 0)。/ Rectified linear unit."""
    return ReLU()(x)


class LeakyReLU(Function):
    """Leaky ReLU の関数クラス。/ Leaky ReLU."""

    def __init__(self, slope):
        self.slope = slope

    def forward(self, x):
        xp = cuda.get_array_module(x)
        return xp.where(x > 0, x, x * self.slope)

    def backward(self, gy):
        (x,) = self.inputs
        xp = cuda.get_array_module(x.data)
        mask = xp.where(x.data > 0, 1.0, self.slope).astype(gy.dtype)
        return gy * mask


def leaky_relu(x, slope=0.2):
    """Leaky ReLU: 負の側に傾き ``slope`` を持つ ReLU。"""
    return LeakyReLU(slope)(x)


class Softmax(Function):
    """ソフトマックス関数の関数クラス。/ Softmax."""

    def __init__(self, axis=1):
        self.axis = axis

    def forward(self, x):
        xp = cuda.get_array_module(x)
        y = x - utils.max_keepdims(x, self.axis)
        xp.exp(y, out=y)
        y /= y.sum(axis=self.axis, keepdims=True)
        return y

    def backward(self, gy):
        y = self.outputs[0]()
        gx = y * gy
        sumdx = gx.sum(axis=self.axis, keepdims=True)
        gx = gx - y * sumdx
        return gx


def softmax(x, axis=1):
    """ソフトマックス関数 (``axis`` 方向の和が 1)。"""
    return Softmax(axis)(x)


def softmax_simple(x, axis=1):
    """ソフトマックス関数の素朴な実装。"""
    x = as_variable(x)
    y = exp(x)
    sum_y = sum(y, axis=axis, keepdims=True)
    return y / sum_y


class LogSoftmax(Function):
    """log(softmax(x)) の関数クラス。/ Log-softmax."""

    def __init__(self, axis=1):
        self.axis = axis

    def forward(self, x):
        log_z = utils.logsumexp(x, self.axis)
        return x - log_z

    def backward(self, gy):
        y = self.outputs[0]()
        return gy - exp(y) * gy.sum(axis=self.axis, keepdims=True)


def log_softmax(x, axis=1):
    """log(softmax(x)) を数値的に安定に計算する。"""
    return LogSoftmax(axis)(x)


# =============================================================================
# 損失関数 / loss functions
# =============================================================================
class MeanSquaredError(Function):
    """平均二乗誤差の関数クラス。/ Mean squared error."""

    def forward(self, x0, x1):
        if x0.shape != x1.shape and x0.size != x1.size:
            raise ValueError(f"mean_squared_error: shapes {x0.shape} and {x1.shape} differ")
        diff = x0 - x1
        y = (diff * diff).sum() / diff.dtype.type(len(diff))
        return y

    def backward(self, gy):
        x0, x1 = self.inputs
        diff = x0 - x1
        gy = broadcast_to(gy, diff.shape)
        gx0 = gy * diff * (2.0 / len(diff))
        gx1 = -gx0
        return gx0, gx1


def mean_squared_error(x0, x1):
    """平均二乗誤差 sum((x0 - x1)²) / N。"""
    return MeanSquaredError()(x0, x1)


def mean_squared_error_simple(x0, x1):
    """平均二乗誤差の素朴な実装。"""
    x0, x1 = as_variable(x0), as_variable(x1)
    diff = x0 - x1
    return sum(diff ** 2) / len(diff)


def _check_labels(x, t, name):
    xp = cuda.get_array_module(t)
    if t.dtype.kind not in "iu":
        raise TypeError(f"{name}: labels t must be integer class indices, got dtype {t.dtype} "
                        f"(convert with t.astype(np.int64))")
    n, c = x.shape[0], x.shape[1]
    if t.size != n:
        raise ValueError(f"{name}: {t.size} labels for a batch of {n} rows (x has shape {x.shape})")
    if n > 0:
        lo, hi = int(t.min()), int(t.max())
        if lo < 0 or hi >= c:
            bad = lo if lo < 0 else hi
            raise ValueError(f"{name}: label {bad} is out of range for {c} classes "
                             f"(labels must be in 0..{c - 1})")
    return t.ravel() if t.ndim != 1 else t


class SoftmaxCrossEntropy(Function):
    """ソフトマックス交差エントロピー誤差の関数クラス (逆伝播は softmax を作り直さない)。/ Fused softmax cross entropy."""

    def forward(self, x, t):
        if x.ndim != 2:
            raise ValueError(f"softmax_cross_entropy: x must be (N, classes), got shape {x.shape}")
        t = _check_labels(x, t, "softmax_cross_entropy")
        xp = cuda.get_array_module(x)
        n = x.shape[0]
        log_p = x - utils.logsumexp(x, axis=1)
        y = -log_p[xp.arange(n), t].sum() / x.dtype.type(n)
        return y

    def backward(self, gy):
        x, t = self.inputs
        n, c = x.shape
        xp = cuda.get_array_module(x.data)
        y = softmax(x)
        t_onehot = xp.eye(c, dtype=x.dtype)[t.data.ravel()]
        return (y - t_onehot) * (gy * (1.0 / n)), None


def softmax_cross_entropy(x, t):
    """ソフトマックス交差エントロピー誤差 (t は整数のクラス番号)。"""
    return SoftmaxCrossEntropy()(x, t)


def softmax_cross_entropy_simple(x, t):
    """ソフトマックス交差エントロピー誤差の素朴な実装。"""
    x, t = as_variable(x), as_variable(t)
    n = x.shape[0]
    p = softmax(x)
    p = clip(p, 1e-15, 1.0)
    log_p = log(p)
    xp = cuda.get_array_module(x.data)
    tlog_p = log_p[xp.arange(n), t.data]
    return -1 * sum(tlog_p) / n


def _as_target(t, like):
    # 整数のラベルを x と同じ浮動小数点型に (int64 * float32 が float64 になるのを防ぐ)
    t_data = t.data if isinstance(t, Variable) else t
    if t_data.dtype != like.dtype:
        t_data = t_data.astype(like.dtype)
    return t_data


def _check_binary(t, name):
    """2 値分類の正解は 0 か 1 だけ (それ以外は損失の値が意味を持たない)。"""
    t_data = t.data if isinstance(t, Variable) else t
    xp = cuda.get_array_module(t_data)
    bad = t_data[(t_data != 0) & (t_data != 1)] if t_data.size else t_data[:0]
    if bad.size:
        raise ValueError(f"{name}: labels t must be 0 or 1 (binary classification), got "
                         f"{sorted(set(xp.asnumpy(bad).tolist() if xp is not np else bad.tolist()))[:5]}; "
                         f"for more classes use softmax_cross_entropy")


def sigmoid_cross_entropy(x, t):
    """シグモイド交差エントロピー誤差 (2 値分類、t は 0/1)。"""
    _check_binary(t, "sigmoid_cross_entropy")
    x = as_variable(x)
    if x.ndim != (t.ndim if hasattr(t, "ndim") else np.ndim(t)):
        t = t.reshape(*x.shape)
    t = _as_target(t, x.data)
    n = len(x)
    p = sigmoid(x)
    p = clip(p, 1e-15, 1.0)
    tlog_p = t * log(p) + (1 - t) * log(1 - p)
    return -1 * sum(tlog_p) / n


def binary_cross_entropy(p, t):
    """2 値交差エントロピー誤差 (p は確率、t は 0/1)。"""
    _check_binary(t, "binary_cross_entropy")
    p = as_variable(p)
    if p.ndim != (t.ndim if hasattr(t, "ndim") else np.ndim(t)):
        t = t.reshape(*p.shape)
    t = _as_target(t, p.data)
    n = len(t)
    p = clip(p, 1e-15, 0.999)  # DeZero と同じ上限 (0.999) / the same upper clip as DeZero
    tlog_p = t * log(p) + (1 - t) * log(1 - p)
    return -1 * sum(tlog_p) / n


def _data_of(v):
    """Variable なら中の配列、配列ならそのまま (それ以外は as_variable が何を渡せばよいかを示すエラー)。"""
    if isinstance(v, Variable):
        return v.data
    if isinstance(v, array_types):
        return v
    return as_variable(v).data


def accuracy(y, t):
    """正解率 (微分しない)。/ Classification accuracy (not differentiable)."""
    y_data, t_data = _data_of(y), _data_of(t)
    xp = cuda.get_array_module(y_data)
    if t_data.size and y_data.ndim == 2 and t_data.dtype.kind in "iu":
        lo, hi = int(t_data.min()), int(t_data.max())
        if lo < 0 or hi >= y_data.shape[1]:
            raise ValueError(f"accuracy: label {lo if lo < 0 else hi} is out of range for "
                             f"{y_data.shape[1]} classes (labels must be in 0..{y_data.shape[1] - 1})")
    pred = y_data.argmax(axis=1).reshape(t_data.shape)
    result = pred == t_data
    if result.size:
        # 正解の数 / 個数 (mean と同じ float64 の値。bool の配列の mean より手間が少ない)
        acc = xp.count_nonzero(result) / result.size
    else:
        acc = result.mean()  # 空のバッチは NaN (NumPy の警告つき)
    dtype = y_data.dtype if y_data.dtype.kind == "f" else np.float64
    return Variable(xp.asarray(acc, dtype=dtype))


# =============================================================================
# その他 / others: dropout, max, min, clip
# =============================================================================
def dropout(x, dropout_ratio=0.5):
    """ドロップアウト (学習時だけ、テスト時は恒等写像)。Inverted dropout."""
    x = as_variable(x)
    if Config.train:
        if not 0.0 <= dropout_ratio < 1.0:
            raise ValueError(f"dropout: dropout_ratio must be in [0, 1), got {dropout_ratio}")
        if x.dtype.kind == "f":
            return Dropout(dropout_ratio)(x)
        xp = cuda.get_array_module(x.data)
        mask = xp.random.rand(*x.shape) > dropout_ratio
        return x * (mask * (1.0 / (1.0 - dropout_ratio)))
    return x


class Dropout(Function):
    """ドロップアウト (学習時) の関数クラス。/ Inverted dropout on a float array.

    マスクは DeZero と同じく ``xp.random.rand(*x.shape) > dropout_ratio`` で引く (同じシードなら
    同じマスクになる)。マスクは bool のまま持ち、倍率 1 / (1 - dropout_ratio) は 1 回の掛け算にまとめる
    (float のマスクを作るより一時配列が少ない)。値は ``x * (mask * scale)`` と同じ。
    """

    def __init__(self, dropout_ratio):
        self.dropout_ratio = dropout_ratio

    def forward(self, x):
        xp = cuda.get_array_module(x)
        self.mask = xp.random.rand(*x.shape) > self.dropout_ratio
        self.scale = x.dtype.type(1.0 / (1.0 - self.dropout_ratio))
        y = x * self.mask
        y *= self.scale
        return y

    def backward(self, gy):
        return gy * (self.mask * self.scale)


class Max(Function):
    """最大値の関数クラス。/ Maximum."""

    def __init__(self, axis=None, keepdims=False):
        self.axis = axis
        self.keepdims = keepdims

    def forward(self, x):
        return x.max(axis=self.axis, keepdims=self.keepdims)

    def backward(self, gy):
        x = self.inputs[0]
        y = self.outputs[0]()
        shape = utils.max_backward_shape(x, self.axis)
        gy = reshape(gy, shape)
        y = reshape(y, shape)
        cond = x.data == y.data
        gy = broadcast_to(gy, cond.shape)
        return gy * cond


class Min(Max):
    """最小値の関数クラス。/ Minimum."""

    def forward(self, x):
        return x.min(axis=self.axis, keepdims=self.keepdims)


def max(x, axis=None, keepdims=False):
    """最大値 (同じ最大値が複数あればそれぞれに勾配が流れる)。"""
    return Max(axis, keepdims)(x)


def min(x, axis=None, keepdims=False):
    """最小値。"""
    return Min(axis, keepdims)(x)


class Clip(Function):
    """値を切り詰める関数クラス。/ Clip."""

    def __init__(self, x_min, x_max):
        self.x_min = x_min
        self.x_max = x_max

    def forward(self, x):
        xp = cuda.get_array_module(x)
        lo = x.dtype.type(self.x_min) if x.dtype.kind == "f" else self.x_min
        hi = x.dtype.type(self.x_max) if x.dtype.kind == "f" else self.x_max
        return xp.clip(x, lo, hi)

    def backward(self, gy):
        (x,) = self.inputs
        mask = (x.data >= self.x_min) * (x.data <= self.x_max)
        return gy * mask


def clip(x, x_min, x_max):
    """値を [x_min, x_max] に切り詰める。"""
    return Clip(x_min, x_max)(x)


__all__ = [
    "Sin", "sin", "Cos", "cos", "Tanh", "tanh", "Exp", "exp", "Log", "log", "Square", "square",
    "pow", "Reshape", "reshape", "Transpose", "transpose", "GetItem", "GetItemGrad", "get_item",
    "expand_dims", "flatten", "Sum", "sum", "SumTo", "sum_to", "BroadcastTo", "broadcast_to",
    "average", "mean", "MatMul", "matmul", "Linear", "linear", "linear_simple", "Sigmoid",
    "sigmoid", "sigmoid_simple", "ReLU", "relu", "LeakyReLU", "leaky_relu", "Softmax", "softmax",
    "softmax_simple", "LogSoftmax", "log_softmax", "MeanSquaredError", "mean_squared_error",
    "mean_squared_error_simple", "SoftmaxCrossEntropy", "softmax_cross_entropy",
    "softmax_cross_entropy_simple", "sigmoid_cross_entropy", "binary_cross_entropy", "accuracy",
    "dropout", "Dropout", "Max", "Min", "max", "min", "Clip", "clip",
]

# 畳み込み・プーリングと NN 用の関数 (stucrs/functions_conv.py, stucrs/functions_nn.py)
from stucrs.functions_conv import conv2d, deconv2d, conv2d_simple, im2col, col2im, pooling, pooling_simple, average_pooling  # noqa: E402,F401,E501
from stucrs.functions_nn import BatchNorm, batch_norm, embed_id  # noqa: E402,F401

# DeZero 0.0.13 の綴り (dezero.functions.batch_nrom; DeZero の BatchNorm レイヤもこの名前で呼ぶ)
batch_nrom = batch_norm

# 四則演算の関数 (dezero.functions も core から再公開している) / arithmetic, as dezero.functions re-exports
from stucrs.core import add, sub, rsub, mul, div, rdiv, neg  # noqa: E402,F401

__all__ += ["conv2d", "deconv2d", "conv2d_simple", "im2col", "col2im", "pooling", "pooling_simple",
            "average_pooling", "BatchNorm", "batch_norm", "batch_nrom", "embed_id",
            "add", "sub", "rsub", "mul", "div", "rdiv", "neg"]
