"""畳み込みとプーリング (CNN 用の関数)。/ Convolution and pooling for CNNs (the book's way).

本 (ステップ 55〜57) と同じく、どれも **im2col** で書きます。入力の窓を列に並べれば、畳み込みは
行列の積 (``tensordot``) 1 回、最大値プーリングは列ごとの ``max`` 1 回になります。逆伝播もまた
微分可能な関数で書かれているので、``backward(create_graph=True)`` で 2 階微分も求まります。
GPU でも同じコードです (``cuda.get_array_module`` で NumPy / CuPy を選びます)。

速い実装 (メモリの並びの工夫、im2col の使い回し) は :mod:`stucrs.fast.conv` にあり、
``Config.fast`` が True のとき使われます。値は同じです。
"""
import numpy as np

from stucrs import cuda
from stucrs.core import Function, as_variable
from stucrs.utils import get_conv_outsize, get_deconv_outsize, pair
import stucrs.functions as F
from stucrs.functions import broadcast_to, linear  # noqa: F401  (DeZero の functions_conv と同じ名前)

__all__ = [
    "im2col_array", "col2im_array", "Im2col", "Col2im", "im2col", "col2im",
    "Conv2d", "Deconv2d", "Conv2DGradW", "conv2d", "deconv2d", "conv2d_simple",
    "Pooling", "Pooling2DGrad", "Pooling2DWithIndexes", "pooling", "pooling_simple",
    "AveragePooling", "AveragePoolingGrad", "average_pooling",
]


def _check_4d(x, name):
    if x.ndim != 4:
        raise ValueError(f"{name}: input must be 4-D (N, C, H, W), got shape {x.shape}")


def _check_conv(x, W, name, w_axes, w_in):
    """x は (N, C, H, W)、W は 4 次元で、W の軸 ``w_in`` が入力のチャンネル数 C と同じか。"""
    _check_4d(x, name)
    if W.ndim != 4:
        raise ValueError(f"{name}: weight W must be 4-D {w_axes}, got shape {W.shape}")
    if x.shape[1] != W.shape[w_in]:
        raise ValueError(f"{name}: input has {x.shape[1]} channels (shape {x.shape}) but the "
                         f"weight W of shape {W.shape} expects {W.shape[w_in]}")


def _out_size(name, h, w, kh, kw, sy, sx, ph, pw):
    oh = get_conv_outsize(h, kh, sy, ph)
    ow = get_conv_outsize(w, kw, sx, pw)
    if oh <= 0 or ow <= 0:
        raise ValueError(f"{name}: kernel ({kh}, {kw}) is larger than the padded input ({h}, {w}) "
                         f"with pad ({ph}, {pw})")
    return oh, ow


def _pad(x, ph, pw, value=0):
    """(N, C, H, W) の上下に ph 行、左右に pw 列、値 ``value`` を足す。"""
    if ph == 0 and pw == 0:
        return x
    xp = cuda.get_array_module(x)
    return xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), mode="constant", constant_values=value)


# =============================================================================
# im2col / col2im
# =============================================================================
def im2col_array(img, kernel_size, stride=1, pad=0, to_matrix=True):
    """画像 (N, C, H, W) の窓を列に並べる (配列版)。/ im2col on raw arrays.

    ``to_matrix=True`` なら (N*OH*OW, C*KH*KW) の行列、False なら (N, C, KH, KW, OH, OW) を返します。
    窓の中の位置 (i, j) ごとに、その位置に来る画素をまとめて 1 回で写します (ループは KH*KW 回)。
    """
    _check_4d(img, "im2col")
    xp = cuda.get_array_module(img)
    n, c, h, w = img.shape
    kh, kw = pair(kernel_size)
    sy, sx = pair(stride)
    ph, pw = pair(pad)
    oh, ow = _out_size("im2col", h, w, kh, kw, sy, sx, ph, pw)

    img = _pad(img, ph, pw)
    col = xp.empty((n, c, kh, kw, oh, ow), dtype=img.dtype)
    for i in range(kh):
        for j in range(kw):
            col[:, :, i, j, :, :] = img[:, :, i:i + sy * oh:sy, j:j + sx * ow:sx]

    if to_matrix:
        col = col.transpose((0, 4, 5, 1, 2, 3)).reshape((n * oh * ow, -1))
    return col


def col2im_array(col, img_shape, kernel_size, stride=1, pad=0, to_matrix=True):
    """im2col_array の逆向き: 列の値を元の画像の位置に足し戻す (配列版)。/ col2im on raw arrays.

    ``col`` は ``to_matrix=True`` なら (N*OH*OW, C*KH*KW)、False なら (N, C, KH, KW, OH, OW)。
    重なった窓の値は足し合わされます。戻り値は (N, C, H, W)。
    """
    xp = cuda.get_array_module(col)
    n, c, h, w = img_shape
    kh, kw = pair(kernel_size)
    sy, sx = pair(stride)
    ph, pw = pair(pad)
    oh, ow = _out_size("col2im", h, w, kh, kw, sy, sx, ph, pw)
    if to_matrix:
        col = col.reshape(n, oh, ow, c, kh, kw).transpose(0, 3, 4, 5, 1, 2)
    elif col.shape != (n, c, kh, kw, oh, ow):
        raise ValueError(f"col2im: col of shape {col.shape} does not fit an image of shape {tuple(img_shape)} "
                         f"with kernel ({kh}, {kw}): expected {(n, c, kh, kw, oh, ow)}")

    img = xp.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=col.dtype)
    for i in range(kh):
        for j in range(kw):
            img[:, :, i:i + sy * oh:sy, j:j + sx * ow:sx] += col[:, :, i, j, :, :]
    return img[:, :, ph:h + ph, pw:w + pw]


class Im2col(Function):
    """im2col の関数クラス (逆伝播は col2im)。/ Differentiable im2col."""

    def __init__(self, kernel_size, stride, pad, to_matrix):
        self.kernel_size = kernel_size
        self.stride = stride
        self.pad = pad
        self.to_matrix = to_matrix

    def forward(self, x):
        self.input_shape = x.shape
        return im2col_array(x, self.kernel_size, self.stride, self.pad, self.to_matrix)

    def backward(self, gy):
        return col2im(gy, self.input_shape, self.kernel_size, self.stride, self.pad, self.to_matrix)


def im2col(x, kernel_size, stride=1, pad=0, to_matrix=True):
    """画像の窓を列に並べる (微分可能)。/ Differentiable im2col.

    Parameters
    ----------
    x : Variable or ndarray
        形 (N, C, H, W) の入力。
    kernel_size, stride, pad : int or (int, int)
    to_matrix : bool
        True なら (N*OH*OW, C*KH*KW) の行列、False なら (N, C, KH, KW, OH, OW)。
    """
    return Im2col(kernel_size, stride, pad, to_matrix)(x)


class Col2im(Function):
    """col2im の関数クラス (逆伝播は im2col)。/ Differentiable col2im."""

    def __init__(self, input_shape, kernel_size, stride, pad, to_matrix):
        self.input_shape = tuple(input_shape)
        self.kernel_size = kernel_size
        self.stride = stride
        self.pad = pad
        self.to_matrix = to_matrix

    def forward(self, x):
        return col2im_array(x, self.input_shape, self.kernel_size, self.stride, self.pad, self.to_matrix)

    def backward(self, gy):
        return im2col(gy, self.kernel_size, self.stride, self.pad, self.to_matrix)


def col2im(x, input_shape, kernel_size, stride=1, pad=0, to_matrix=True):
    """im2col の逆向き (微分可能)。``input_shape`` は元の画像の形 (N, C, H, W)。"""
    return Col2im(input_shape, kernel_size, stride, pad, to_matrix)(x)


# =============================================================================
# conv2d / deconv2d
# =============================================================================
class Conv2d(Function):
    """2 次元畳み込み。x (N, C, H, W), W (OC, C, KH, KW), b (OC,) → (N, OC, OH, OW)。"""

    def __init__(self, stride=1, pad=0):
        self.stride = pair(stride)
        self.pad = pair(pad)

    def forward(self, x, W, b=None):
        _check_conv(x, W, "conv2d", "(OC, C, KH, KW)", w_in=1)
        xp = cuda.get_array_module(x)
        kh, kw = W.shape[2:]
        col = im2col_array(x, (kh, kw), self.stride, self.pad, to_matrix=False)  # (N, C, KH, KW, OH, OW)
        # 窓ごとに C*KH*KW 個の積和: (N, OH, OW, OC)
        y = xp.tensordot(col, W, ((1, 2, 3), (1, 2, 3)))
        if b is not None:
            y += b
        return y.transpose(0, 3, 1, 2)  # (N, OC, OH, OW)

    def backward(self, gy):
        x, W = self.inputs[0], self.inputs[1]
        b = self.inputs[2] if len(self.inputs) == 3 else None
        gx = gW = gb = None
        if x.requires_grad:
            gx = deconv2d(gy, W, None, self.stride, self.pad, outsize=(x.shape[2], x.shape[3]))
        if W.requires_grad:
            gW = Conv2DGradW(self)(x, gy)
        if b is not None and b.requires_grad:
            gb = F.sum(gy, axis=(0, 2, 3))
        if b is None:
            return gx, gW
        return gx, gW, gb


def conv2d(x, W, b=None, stride=1, pad=0):
    """2 次元畳み込み。/ 2-D convolution (cross-correlation, as in every DL framework).

    Parameters
    ----------
    x : Variable or ndarray
        入力 (N, C, H, W)。
    W : Variable or ndarray
        フィルタ (OC, C, KH, KW)。
    b : Variable or ndarray, optional
        バイアス (OC,)。
    stride, pad : int or (int, int)

    Returns
    -------
    Variable
        出力 (N, OC, OH, OW)、OH = (H + 2*pad - KH) // stride + 1。
    """
    if b is None:
        return Conv2d(stride, pad)(x, W)
    return Conv2d(stride, pad)(x, W, b)


class Deconv2d(Function):
    """転置畳み込み。x (N, C, H, W), W (C, OC, KH, KW), b (OC,) → (N, OC, OH, OW)。"""

    def __init__(self, stride=1, pad=0, outsize=None):
        self.stride = pair(stride)
        self.pad = pair(pad)
        self.outsize = outsize

    def forward(self, x, W, b=None):
        _check_conv(x, W, "deconv2d", "(C, OC, KH, KW)", w_in=0)
        xp = cuda.get_array_module(x)
        n, c, h, w = x.shape
        _, oc, kh, kw = W.shape
        out_h, out_w = self.out_size(h, w, kh, kw)
        # 入力の 1 画素がどの窓にどれだけ寄与するか: (OC, KH, KW, N, H, W) → col の並び (N, OC, KH, KW, H, W)
        gcol = xp.tensordot(W, x, (0, 1)).transpose(3, 0, 1, 2, 4, 5)
        y = col2im_array(gcol, (n, oc, out_h, out_w), (kh, kw), self.stride, self.pad, to_matrix=False)
        if b is not None:
            y += b.reshape(1, oc, 1, 1)
        return y

    def out_size(self, h, w, kh, kw):
        """出力の高さと幅 (``outsize`` がなければ stride*(H-1) + KH - 2*pad)。入力の大きさと合うかも確かめる。"""
        (sy, sx), (ph, pw) = self.stride, self.pad
        if self.outsize is None:
            out_h = get_deconv_outsize(h, kh, sy, ph)
            out_w = get_deconv_outsize(w, kw, sx, pw)
        else:
            out_h, out_w = pair(self.outsize)
        if get_conv_outsize(out_h, kh, sy, ph) != h or get_conv_outsize(out_w, kw, sx, pw) != w:
            raise ValueError(f"deconv2d: outsize ({out_h}, {out_w}) is not consistent with input size "
                             f"({h}, {w}), kernel ({kh}, {kw}), stride ({sy}, {sx}) and pad ({ph}, {pw})")
        return out_h, out_w

    def backward(self, gy):
        x, W = self.inputs[0], self.inputs[1]
        b = self.inputs[2] if len(self.inputs) == 3 else None
        gx = gW = gb = None
        if x.requires_grad:
            gx = conv2d(gy, W, None, self.stride, self.pad)
        if W.requires_grad:
            gW = Conv2DGradW(None, W.shape[2:], self.stride, self.pad)(gy, x)
        if b is not None and b.requires_grad:
            gb = F.sum(gy, axis=(0, 2, 3))
        if b is None:
            return gx, gW
        return gx, gW, gb


def deconv2d(x, W, b=None, stride=1, pad=0, outsize=None):
    """転置畳み込み (conv2d の入力に関する勾配と同じ計算)。/ Transposed 2-D convolution.

    Parameters
    ----------
    x : Variable or ndarray
        入力 (N, C, H, W)。
    W : Variable or ndarray
        フィルタ (C, OC, KH, KW)。
    b : Variable or ndarray, optional
        バイアス (OC,)。
    outsize : (int, int), optional
        出力の空間サイズ。省略時は stride*(H-1) + KH - 2*pad。
    """
    if b is None:
        return Deconv2d(stride, pad, outsize)(x, W)
    return Deconv2d(stride, pad, outsize)(x, W, b)


class Conv2DGradW(Function):
    """conv2d のフィルタに関する勾配 gW。入力は (x, gy)。``conv`` か ``kernel_size`` で形を決める。"""

    def __init__(self, conv=None, kernel_size=None, stride=1, pad=0):
        if conv is not None:
            W = conv.inputs[1]
            self.kernel_size = tuple(W.shape[2:])
            self.stride, self.pad = conv.stride, conv.pad
        else:
            self.kernel_size = pair(kernel_size) if not isinstance(kernel_size, tuple) else kernel_size
            self.stride, self.pad = pair(stride), pair(pad)

    def forward(self, x, gy):
        xp = cuda.get_array_module(x)
        col = im2col_array(x, self.kernel_size, self.stride, self.pad, to_matrix=False)
        # (N, OC, OH, OW) と (N, C, KH, KW, OH, OW) を N, OH, OW で積和: (OC, C, KH, KW)
        return xp.tensordot(gy, col, ((0, 2, 3), (0, 4, 5)))

    def backward(self, ggW):
        x, gy = self.inputs
        gx = ggy = None
        if x.requires_grad:
            gx = deconv2d(gy, ggW, None, self.stride, self.pad, outsize=(x.shape[2], x.shape[3]))
        if gy.requires_grad:
            ggy = conv2d(x, ggW, None, self.stride, self.pad)
        return gx, ggy


def conv2d_simple(x, W, b=None, stride=1, pad=0):
    """im2col と全結合で書いた素朴な畳み込み (本のステップ 57)。/ Conv2d via im2col + linear."""
    x, W = as_variable(x), as_variable(W)
    n, c, h, w = x.shape
    oc, c, kh, kw = W.shape
    sy, sx = pair(stride)
    ph, pw = pair(pad)
    oh = get_conv_outsize(h, kh, sy, ph)
    ow = get_conv_outsize(w, kw, sx, pw)
    col = im2col(x, (kh, kw), stride, pad, to_matrix=True)
    Wm = W.reshape(oc, -1).transpose()
    t = F.linear(col, Wm, b)
    return t.reshape(n, oh, ow, oc).transpose(0, 3, 1, 2)


# =============================================================================
# max pooling
# =============================================================================
class Pooling(Function):
    """最大値プーリング。窓ごとの最大値の位置 (argmax) を覚えておき、逆伝播に使う。"""

    def __init__(self, kernel_size, stride=1, pad=0):
        self.kernel_size = pair(kernel_size)
        self.stride = pair(stride)
        self.pad = pair(pad)

    def forward(self, x):
        _check_4d(x, "pooling")
        n, c, h, w = x.shape
        kh, kw = self.kernel_size
        (ph, pw) = self.pad
        if ph >= kh or pw >= kw:
            raise ValueError(f"pooling: pad ({ph}, {pw}) must be smaller than the kernel ({kh}, {kw})")
        self.x_shape = x.shape
        # 埋め草は -inf (PyTorch と同じ。負の値ばかりの窓でも正しい最大値になる)
        fill = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
        x = _pad(x, ph, pw, value=fill)
        col = im2col_array(x, self.kernel_size, self.stride, 0, to_matrix=False)
        n, c, kh, kw, oh, ow = col.shape
        col = col.reshape(n, c, kh * kw, oh, ow)
        self.indexes = col.argmax(axis=2)  # 窓の中の位置 (0..KH*KW-1)、等しければ先の位置
        return col.max(axis=2)

    def backward(self, gy):
        return Pooling2DGrad(self)(gy)


class Pooling2DGrad(Function):
    """最大値プーリングの逆伝播: 勾配を各窓の最大値の位置に戻す。"""

    def __init__(self, pool):
        self.pool = pool
        self.kernel_size = pool.kernel_size
        self.stride = pool.stride
        self.pad = pool.pad
        self.indexes = pool.indexes
        self.x_shape = pool.x_shape

    def forward(self, gy):
        xp = cuda.get_array_module(gy)
        n, c, h, w = self.x_shape
        kh, kw = self.kernel_size
        ph, pw = self.pad
        oh, ow = gy.shape[2], gy.shape[3]
        # 窓ごとに KH*KW 個の入れ物を用意し、最大値の位置にだけ勾配を置く
        gcol = xp.zeros((n, c, oh, ow, kh * kw), dtype=gy.dtype)
        onehot = self.indexes[..., None] == xp.arange(kh * kw)
        gcol[onehot] = gy.ravel()
        gcol = gcol.reshape(n, c, oh, ow, kh, kw).transpose(0, 1, 4, 5, 2, 3)
        gx = col2im_array(gcol, (n, c, h + 2 * ph, w + 2 * pw), self.kernel_size, self.stride, 0,
                          to_matrix=False)
        return gx[:, :, ph:ph + h, pw:pw + w]

    def backward(self, ggx):
        return Pooling2DWithIndexes(self.pool)(ggx)


class Pooling2DWithIndexes(Function):
    """覚えておいた argmax の位置の値を取り出す (Pooling2DGrad の逆伝播)。"""

    def __init__(self, pool):
        self.pool = pool
        self.kernel_size = pool.kernel_size
        self.stride = pool.stride
        self.pad = pool.pad
        self.indexes = pool.indexes

    def forward(self, x):
        xp = cuda.get_array_module(x)
        ph, pw = self.pad
        col = im2col_array(_pad(x, ph, pw), self.kernel_size, self.stride, 0, to_matrix=False)
        n, c, kh, kw, oh, ow = col.shape
        col = col.reshape(n, c, kh * kw, oh, ow)
        return xp.take_along_axis(col, self.indexes[:, :, None], axis=2)[:, :, 0]

    def backward(self, gy):
        return Pooling2DGrad(self.pool)(gy)


def pooling(x, kernel_size, stride=1, pad=0):
    """最大値プーリング。/ 2-D max pooling.

    Parameters
    ----------
    x : Variable or ndarray
        入力 (N, C, H, W)。
    kernel_size, stride, pad : int or (int, int)
        パディングは -inf で埋めます (PyTorch の ``max_pool2d`` と同じ)。

    Returns
    -------
    Variable
        (N, C, OH, OW)。
    """
    return Pooling(kernel_size, stride, pad)(x)


def pooling_simple(x, kernel_size, stride=1, pad=0):
    """im2col と max で書いた素朴なプーリング (本のステップ 57、パディングは 0 埋め)。"""
    x = as_variable(x)
    n, c, h, w = x.shape
    kh, kw = pair(kernel_size)
    sy, sx = pair(stride)
    ph, pw = pair(pad)
    oh = get_conv_outsize(h, kh, sy, ph)
    ow = get_conv_outsize(w, kw, sx, pw)
    col = im2col(x, kernel_size, stride, pad, to_matrix=True)
    col = col.reshape(-1, kh * kw)
    y = col.max(axis=1)
    return y.reshape(n, oh, ow, c).transpose(0, 3, 1, 2)


# =============================================================================
# average pooling
# =============================================================================
class AveragePooling(Function):
    """平均値プーリング (パディングの 0 も数に入れる。PyTorch の count_include_pad=True と同じ)。"""

    def __init__(self, kernel_size, stride=1, pad=0):
        self.kernel_size = pair(kernel_size)
        self.stride = pair(stride)
        self.pad = pair(pad)

    def forward(self, x):
        _check_4d(x, "average_pooling")
        self.x_shape = x.shape
        col = im2col_array(x, self.kernel_size, self.stride, self.pad, to_matrix=False)
        return col.mean(axis=(2, 3))

    def backward(self, gy):
        return AveragePoolingGrad(self)(gy)


class AveragePoolingGrad(Function):
    """平均値プーリングの逆伝播: 勾配を窓の全要素に 1/(KH*KW) ずつ配る。"""

    def __init__(self, pool):
        self.pool = pool
        self.kernel_size = pool.kernel_size
        self.stride = pool.stride
        self.pad = pool.pad
        self.x_shape = pool.x_shape

    def forward(self, gy):
        xp = cuda.get_array_module(gy)
        n, c, oh, ow = gy.shape
        kh, kw = self.kernel_size
        g = gy * gy.dtype.type(1.0 / (kh * kw))
        gcol = xp.broadcast_to(g[:, :, None, None], (n, c, kh, kw, oh, ow))
        return col2im_array(gcol, self.x_shape, self.kernel_size, self.stride, self.pad, to_matrix=False)

    def backward(self, ggx):
        p = self.pool
        return average_pooling(ggx, p.kernel_size, p.stride, p.pad)


def average_pooling(x, kernel_size, stride=1, pad=0):
    """平均値プーリング。/ 2-D average pooling (zero padding counted, like PyTorch's default)."""
    return AveragePooling(kernel_size, stride, pad)(x)
