"""畳み込みとプーリング (CNN 用の関数)。/ Convolution and pooling for CNNs.

``conv2d``, ``deconv2d``, ``pooling`` (max), ``average_pooling`` と、それらを組み立てる
``im2col`` / ``col2im`` を提供します。どれも微分可能で、逆伝播もまた微分可能な関数で書かれているので、
``backward(create_graph=True)`` で 2 階微分も求まります。

実装の方針 (なぜ速いか):

* **im2col はコピー 1 回だけ。** 入力配列に「窓を並べた」ストライド付きのビュー
  (``as_strided``) をかぶせ、それを連続な配列に写します。Python のループは使いません。
* **行列積は 1 回だけ。** 内部で使う col の並びは ``(C, KH, KW, N, OH, OW)`` です。
  こうすると ``W.reshape(OC, C*KH*KW) @ col.reshape(C*KH*KW, N*OH*OW)`` という、
  連続した大きな行列どうしの積 (GEMM) 1 回で畳み込み全体が計算できます。
  出力は ``(OC, N, OH, OW)`` の並びのメモリを ``(N, OC, OH, OW)`` と見るビューになります
  (NumPy の要素ごとの演算はこの並びを保つので、後続の ReLU やプーリングでもコピーは増えません)。
* **col2im はカーネルの位置 (KH*KW 通り) についてだけループします。** 画素やサンプルについての
  ループはありません。
* **最初の層ではデータの勾配を計算しません。** 生の配列 (ミニバッチ) は ``requires_grad=False``
  なので、``conv2d`` の逆伝播はその入力への勾配 (転置畳み込み) を省きます。
* GPU でも同じコードです (``cuda.get_array_module`` で NumPy / CuPy を選びます)。
"""
import numpy as np

from stucrs import cuda
from stucrs.core import Config, Function, as_variable
from stucrs.utils import get_conv_outsize, get_deconv_outsize, pair
import stucrs.functions as F
from stucrs.functions import broadcast_to, linear  # noqa: F401  (DeZero の functions_conv と同じ名前)

__all__ = [
    "im2col_array", "col2im_array", "Im2col", "Col2im", "im2col", "col2im",
    "Conv2d", "Deconv2d", "Conv2DGradW", "conv2d", "deconv2d", "conv2d_simple",
    "Pooling", "Pooling2DGrad", "Pooling2DWithIndexes", "pooling", "pooling_simple",
    "AveragePooling", "AveragePoolingGrad", "average_pooling",
]


# =============================================================================
# 内部の道具 / internal helpers
# =============================================================================
def _as_strided(xp, x, shape, strides):
    return xp.lib.stride_tricks.as_strided(x, shape=shape, strides=strides)


def _pad(x, ph, pw, value=0):
    """(N, C, H, W) の空間方向を値 ``value`` で埋めて広げる (メモリの並びは x に合わせる)。"""
    if ph == 0 and pw == 0:
        return x
    xp = cuda.get_array_module(x)
    n, c, h, w = x.shape
    out = _alloc((n, c, h + 2 * ph, w + 2 * pw), x.dtype, xp, _is_cn(x), fill=value)
    out[:, :, ph:ph + h, pw:pw + w] = x
    return out


def _is_cn(x):
    """x のメモリが (C, N, H, W) の並び (conv2d の出力の並び) かどうか。"""
    return x.ndim == 4 and x.shape[0] > 1 and x.shape[1] > 1 and x.transpose(1, 0, 2, 3).flags.c_contiguous


def _alloc(shape, dtype, xp, cn=False, fill=None):
    """形 ``shape`` (N, C, H, W) の配列を作る。``cn`` なら (C, N, H, W) の並びのメモリにする。"""
    if cn:
        n, c, h, w = shape
        real = (c, n, h, w)
    else:
        real = shape
    if fill is None:
        a = xp.empty(real, dtype=dtype)
    elif fill == 0:
        a = xp.zeros(real, dtype=dtype)
    else:
        a = xp.full(real, fill, dtype=dtype)
    return a.transpose(1, 0, 2, 3) if cn else a


def _same_layout(a, like):
    """``a`` を ``like`` と同じメモリの並びにする (並びが違う配列どうしの演算は遅いため)。"""
    if a.strides == like.strides or a.ndim != 4 or like.ndim != 4:
        return a
    xp = cuda.get_array_module(a)
    if _is_cn(like) and not _is_cn(a):
        return xp.ascontiguousarray(a.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    if like.flags.c_contiguous and not a.flags.c_contiguous:
        return xp.ascontiguousarray(a)
    return a


# 1 ブロックのおおよその大きさ (バイト)。プーリングはブロックごとに窓の位置を回るので、
# ブロックが CPU のキャッシュ (L2) に収まっていれば、同じデータを何度読んでもメモリまで行かない。
_BLOCK_BYTES = 1 << 18


def _cache_blocks(x, cn):
    """(N, C, H, W) の配列 ``x`` を、メモリの外側の軸 (cn なら C、そうでなければ N) で区切る
    スライスの列を返す。GPU (CuPy) では区切らない (キャッシュの工夫は CPU のためのもの)。"""
    axis = 1 if cn else 0
    length = x.shape[axis]
    per_item = max(1, x.nbytes // max(length, 1))
    step = length if cuda.get_array_module(x) is not np else max(1, _BLOCK_BYTES // per_item)
    full = slice(None)
    return [(full, slice(i, i + step)) if cn else (slice(i, i + step),)
            for i in range(0, length, step)]


def _check_4d(x, name):
    if x.ndim != 4:
        raise ValueError(f"{name}: input must be 4-D (N, C, H, W), got shape {x.shape}")


def _window_view(x, kh, kw, sy, sx, oh, ow):
    """(N, C, Hp, Wp) の配列に窓を並べたビュー (C, KH, KW, N, OH, OW) をかぶせる (コピーなし)。"""
    xp = cuda.get_array_module(x)
    s_n, s_c, s_h, s_w = x.strides
    return _as_strided(xp, x, (x.shape[1], kh, kw, x.shape[0], oh, ow),
                       (s_c, s_h, s_w, s_n, s_h * sy, s_w * sx))


def _im2col_cf(x, kh, kw, sy, sx, ph, pw):
    """内部用 im2col: (N, C, H, W) → 連続な (C, KH, KW, N, OH, OW)。"""
    xp = cuda.get_array_module(x)
    n, c, h, w = x.shape
    oh = get_conv_outsize(h, kh, sy, ph)
    ow = get_conv_outsize(w, kw, sx, pw)
    if oh <= 0 or ow <= 0:
        raise ValueError(f"kernel ({kh}, {kw}) with pad ({ph}, {pw}) is larger than the input "
                         f"of spatial size ({h}, {w})")
    xp_ = _pad(x, ph, pw)
    return xp.ascontiguousarray(_window_view(xp_, kh, kw, sy, sx, oh, ow))


def _col2im_cf(col, n, c, h, w, kh, kw, sy, sx, ph, pw, cn=True):
    """内部用 col2im: (C, KH, KW, N, OH, OW) の各窓の値を足し合わせて (N, C, H, W) に戻す。

    ループはカーネルの位置 (KH*KW 回) だけ。``cn`` なら結果のメモリは (C, N, H, W) の並び。
    """
    xp = cuda.get_array_module(col)
    oh, ow = col.shape[4], col.shape[5]
    hp, wp = h + 2 * ph, w + 2 * pw
    if (hp - kh) // sy + 1 != oh or (wp - kw) // sx + 1 != ow:
        raise ValueError(f"col2im: a column of {oh}x{ow} windows does not fit an image of size "
                         f"({h}, {w}) with kernel ({kh}, {kw}), stride ({sy}, {sx}), pad ({ph}, {pw})")
    img = _alloc((n, c, hp, wp), col.dtype, xp, cn, fill=0)
    for i in range(kh):
        for j in range(kw):
            img[:, :, i:i + sy * oh:sy, j:j + sx * ow:sx] += col[:, i, j].transpose(1, 0, 2, 3)
    if ph or pw:
        img = img[:, :, ph:ph + h, pw:pw + w]
    return img


# =============================================================================
# im2col / col2im (本と同じ形の公開 API) / the book's im2col / col2im
# =============================================================================
def im2col_array(img, kernel_size, stride=1, pad=0, to_matrix=True):
    """画像 (N, C, H, W) の窓を列に並べる (配列版)。/ im2col on raw arrays.

    ``to_matrix=True`` なら (N*OH*OW, C*KH*KW) の行列、False なら (N, C, KH, KW, OH, OW)
    を返します (DeZero と同じ形)。
    """
    _check_4d(img, "im2col")
    xp = cuda.get_array_module(img)
    n, c, h, w = img.shape
    kh, kw = pair(kernel_size)
    sy, sx = pair(stride)
    ph, pw = pair(pad)
    oh = get_conv_outsize(h, kh, sy, ph)
    ow = get_conv_outsize(w, kw, sx, pw)
    if oh <= 0 or ow <= 0:
        raise ValueError(f"im2col: kernel ({kh}, {kw}) is larger than the padded input ({h}, {w})")
    x = _pad(img, ph, pw)
    view = _window_view(x, kh, kw, sy, sx, oh, ow)  # (C, KH, KW, N, OH, OW)
    if to_matrix:
        return xp.ascontiguousarray(view.transpose(3, 4, 5, 0, 1, 2)).reshape(n * oh * ow, -1)
    return xp.ascontiguousarray(view.transpose(3, 0, 1, 2, 4, 5))


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
    oh = get_conv_outsize(h, kh, sy, ph)
    ow = get_conv_outsize(w, kw, sx, pw)
    if to_matrix:
        col = col.reshape(n, oh, ow, c, kh, kw).transpose(3, 4, 5, 0, 1, 2)
    else:
        col = col.reshape(n, c, kh, kw, oh, ow).transpose(1, 2, 3, 0, 4, 5)
    img = _col2im_cf(col, n, c, h, w, kh, kw, sy, sx, ph, pw, cn=False)
    return xp.ascontiguousarray(img)


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
        self._col = None

    def forward(self, x, W, b=None):
        _check_4d(x, "conv2d")
        if W.ndim != 4:
            raise ValueError(f"conv2d: weight W must be 4-D (OC, C, KH, KW), got shape {W.shape}")
        if x.shape[1] != W.shape[1]:
            raise ValueError(f"conv2d: input has {x.shape[1]} channels (shape {x.shape}) but the "
                             f"weight W of shape {W.shape} expects {W.shape[1]}")
        n = x.shape[0]
        oc, c, kh, kw = W.shape
        (sy, sx), (ph, pw) = self.stride, self.pad
        col = _im2col_cf(x, kh, kw, sy, sx, ph, pw)  # (C, KH, KW, N, OH, OW)
        oh, ow = col.shape[4], col.shape[5]
        y = W.reshape(oc, -1) @ col.reshape(c * kh * kw, -1)  # 1 回の GEMM: (OC, N*OH*OW)
        if b is not None:
            y += b.reshape(oc, 1)
        # 勾配 gW の計算で col を使い回す (再計算を省く)。使ったら手放す。
        self._col = col
        return y.reshape(oc, n, oh, ow).transpose(1, 0, 2, 3)

    def backward(self, gy):
        x, W = self.inputs[0], self.inputs[1]
        b = self.inputs[2] if len(self.inputs) == 3 else None
        gx = gW = gb = None
        if x.requires_grad:
            gx = deconv2d(gy, W, None, self.stride, self.pad, outsize=(x.shape[2], x.shape[3]))
        if W.requires_grad:
            gW = Conv2DGradW(self)(x, gy)
        self._col = None
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
        _check_4d(x, "deconv2d")
        if W.ndim != 4:
            raise ValueError(f"deconv2d: weight W must be 4-D (C, OC, KH, KW), got shape {W.shape}")
        if x.shape[1] != W.shape[0]:
            raise ValueError(f"deconv2d: input has {x.shape[1]} channels (shape {x.shape}) but the "
                             f"weight W of shape {W.shape} expects {W.shape[0]}")
        xp = cuda.get_array_module(x)
        n, c, h, w = x.shape
        _, oc, kh, kw = W.shape
        (sy, sx), (ph, pw) = self.stride, self.pad
        if self.outsize is None:
            out_h = get_deconv_outsize(h, kh, sy, ph)
            out_w = get_deconv_outsize(w, kw, sx, pw)
        else:
            out_h, out_w = pair(self.outsize)
        if get_conv_outsize(out_h, kh, sy, ph) != h or get_conv_outsize(out_w, kw, sx, pw) != w:
            raise ValueError(f"deconv2d: outsize ({out_h}, {out_w}) is not consistent with input size "
                             f"({h}, {w}), kernel ({kh}, {kw}), stride ({sy}, {sx}) and pad ({ph}, {pw})")
        # (C, N*H*W) の並びにして GEMM 1 回: gcol = W^T @ x → (OC*KH*KW, N*H*W)
        xm = xp.ascontiguousarray(x.transpose(1, 0, 2, 3)).reshape(c, -1)
        gcol = W.reshape(c, -1).T @ xm
        y = _col2im_cf(gcol.reshape(oc, kh, kw, n, h, w), n, oc, out_h, out_w, kh, kw, sy, sx, ph, pw)
        if b is not None:
            y += b.reshape(1, oc, 1, 1)
        return y

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
    """conv2d のフィルタに関する勾配 gW = gy ⋆ x。入力は (x, gy)。"""

    def __init__(self, conv=None, kernel_size=None, stride=1, pad=0):
        if conv is not None:
            self.conv = conv
            W = conv.inputs[1]
            self.kernel_size = tuple(W.shape[2:])
            self.stride, self.pad = conv.stride, conv.pad
        else:
            self.conv = None
            self.kernel_size = pair(kernel_size) if not isinstance(kernel_size, tuple) else kernel_size
            self.stride, self.pad = pair(stride), pair(pad)

    def forward(self, x, gy):
        xp = cuda.get_array_module(x)
        kh, kw = self.kernel_size
        (sy, sx), (ph, pw) = self.stride, self.pad
        col = self.conv._col if self.conv is not None else None
        if col is None:
            col = _im2col_cf(x, kh, kw, sy, sx, ph, pw)
        self.conv = None  # col を使い終えたので Conv2d とのつながりを切る
        c = x.shape[1]
        oc = gy.shape[1]
        gym = gy.transpose(1, 0, 2, 3)
        if not gym.flags.c_contiguous:
            gym = xp.ascontiguousarray(gym)
        gW = gym.reshape(oc, -1) @ col.reshape(c * kh * kw, -1).T  # 1 回の GEMM
        return gW.reshape(oc, c, kh, kw)

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
        xp = cuda.get_array_module(x)
        n, c, h, w = x.shape
        kh, kw = self.kernel_size
        (sy, sx), (ph, pw) = self.stride, self.pad
        oh = get_conv_outsize(h, kh, sy, ph)
        ow = get_conv_outsize(w, kw, sx, pw)
        if oh <= 0 or ow <= 0:
            raise ValueError(f"pooling: kernel ({kh}, {kw}) is larger than the padded input ({h}, {w})")
        if ph >= kh or pw >= kw:
            raise ValueError(f"pooling: pad ({ph}, {pw}) must be smaller than the kernel ({kh}, {kw})")
        self.x_shape = x.shape
        self.x_cn = _is_cn(x)
        # 埋め草は -inf (PyTorch と同じ。負の値ばかりの窓でも正しい最大値になる)
        fill = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
        xpad = _pad(x, ph, pw, value=fill)
        kk = kh * kw
        idx_dtype = np.uint8 if kk <= 255 else np.int32
        y = _alloc((n, c, oh, ow), x.dtype, xp, self.x_cn)  # x と同じメモリの並び
        # 計算グラフを作らないとき (no_grad のテストなど) は逆伝播が無いので、最大値の位置を求めない
        need_indexes = Config.enable_backprop
        indexes = _alloc((n, c, oh, ow), idx_dtype, xp, self.x_cn) if need_indexes else None
        for block in _cache_blocks(xpad, self.x_cn):
            xb, yb = xpad[block], y[block]
            if need_indexes:
                ib = indexes[block]
                ib.fill(0)
            for i in range(kh):
                for j in range(kw):
                    s = xb[:, :, i:i + sy * oh:sy, j:j + sx * ow:sx]
                    if i == 0 and j == 0:
                        yb[...] = s
                        continue
                    if not need_indexes:
                        xp.maximum(yb, s, out=yb)
                        continue
                    # 等しいときは先の位置を残す (PyTorch と同じ)。位置 k は走査順に増えるので、
                    # 「より大きいときだけ k にする」は max(ib, mask * k) と書ける (分岐なしで速い)
                    mask = s > yb
                    xp.maximum(yb, s, out=yb)
                    # bool の 0/1 はそのまま uint8 として読める (型変換の配列を作らない)
                    k = mask.view(np.uint8) if idx_dtype is np.uint8 else mask.astype(idx_dtype)
                    xp.multiply(k, idx_dtype(i * kw + j), out=k)
                    xp.maximum(ib, k, out=ib)
        self.indexes = indexes  # 窓の中の位置 (0..KH*KW-1)。グラフを作らないときは None
        return y

    def backward(self, gy):
        if self.indexes is None:
            raise RuntimeError("pooling: this call ran without a graph (no_grad / enable_backprop=False), "
                               "so the positions of the maxima were not kept; call it with backprop enabled")
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
        self.x_cn = pool.x_cn

    def forward(self, gy):
        xp = cuda.get_array_module(gy)
        n, c, h, w = self.x_shape
        kh, kw = self.kernel_size
        (sy, sx), (ph, pw) = self.stride, self.pad
        oh, ow = gy.shape[2], gy.shape[3]
        hp, wp = h + 2 * ph, w + 2 * pw
        overlap = sy < kh or sx < kw
        # 窓がちょうど敷き詰められる (重なりも隙間もない) ときは 0 で埋める必要がない
        tiled = sy == kh and sx == kw and hp == oh * kh and wp == ow * kw
        gx = _alloc((n, c, hp, wp), gy.dtype, xp, self.x_cn, fill=None if tiled else 0)
        gy = _same_layout(gy, self.indexes)
        for block in _cache_blocks(gx, self.x_cn):
            gxb, gyb, ib = gx[block], gy[block], self.indexes[block]
            for i in range(kh):
                for j in range(kw):
                    mask = ib == (i * kw + j)
                    view = gxb[:, :, i:i + sy * oh:sy, j:j + sx * ow:sx]
                    if overlap:
                        view += gyb * mask
                    else:
                        xp.multiply(gyb, mask, out=view)
        if ph or pw:
            gx = gx[:, :, ph:ph + h, pw:pw + w]
        return gx

    def backward(self, ggx):
        return Pooling2DWithIndexes(self)(ggx)


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
        kh, kw = self.kernel_size
        (sy, sx), (ph, pw) = self.stride, self.pad
        oh, ow = self.indexes.shape[2], self.indexes.shape[3]
        xpad = _pad(x, ph, pw)
        y = xp.zeros(self.indexes.shape, dtype=x.dtype)
        for i in range(kh):
            for j in range(kw):
                s = xpad[:, :, i:i + sy * oh:sy, j:j + sx * ow:sx]
                xp.copyto(y, s, where=self.indexes == (i * kw + j))
        return y

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
        n, c, h, w = x.shape
        kh, kw = self.kernel_size
        (sy, sx), (ph, pw) = self.stride, self.pad
        oh = get_conv_outsize(h, kh, sy, ph)
        ow = get_conv_outsize(w, kw, sx, pw)
        if oh <= 0 or ow <= 0:
            raise ValueError(f"average_pooling: kernel ({kh}, {kw}) is larger than the padded input ({h}, {w})")
        self.x_shape = x.shape
        self.x_cn = _is_cn(x)
        xpad = _pad(x, ph, pw)
        y = None
        for i in range(kh):
            for j in range(kw):
                s = xpad[:, :, i:i + sy * oh:sy, j:j + sx * ow:sx]
                if y is None:
                    y = s.copy()
                else:
                    y += s
        y *= y.dtype.type(1.0 / (kh * kw))
        return y

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
        self.x_cn = pool.x_cn

    def forward(self, gy):
        xp = cuda.get_array_module(gy)
        n, c, h, w = self.x_shape
        kh, kw = self.kernel_size
        (sy, sx), (ph, pw) = self.stride, self.pad
        oh, ow = gy.shape[2], gy.shape[3]
        g = gy * gy.dtype.type(1.0 / (kh * kw))
        gx = _alloc((n, c, h + 2 * ph, w + 2 * pw), gy.dtype, xp, self.x_cn, fill=0)
        for i in range(kh):
            for j in range(kw):
                gx[:, :, i:i + sy * oh:sy, j:j + sx * ow:sx] += g
        if ph or pw:
            gx = gx[:, :, ph:ph + h, pw:pw + w]
        return gx

    def backward(self, ggx):
        p = self.pool
        return average_pooling(ggx, p.kernel_size, p.stride, p.pad)


def average_pooling(x, kernel_size, stride=1, pad=0):
    """平均値プーリング。/ 2-D average pooling (zero padding counted, like PyTorch's default)."""
    return AveragePooling(kernel_size, stride, pad)(x)

