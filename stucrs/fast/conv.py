"""畳み込みとプーリングの速い実装 (本の :mod:`stucrs.functions_conv` と同じ値を返す)。

* **im2col はコピー 1 回だけ。** 入力に「窓を並べた」ストライド付きのビュー (``as_strided``) を
  かぶせ、連続な配列に写します。
* **行列積は 1 回だけ。** col の並びを ``(C, KH, KW, N, OH, OW)`` にすると、畳み込み全体が連続な
  大きな行列どうしの積 (GEMM) 1 回になります。出力は ``(OC, N, OH, OW)`` の並びのメモリを
  ``(N, OC, OH, OW)`` と見るビューで、後続の ReLU やプーリングもこの並びのまま進みます。
* **col は逆伝播で使い回す** (重みの勾配の計算で im2col をやり直さない)。
* **プーリングは窓の位置についてだけループ** し、キャッシュに収まる大きさに区切って回します。
  計算グラフを作らないとき (``no_grad``) は最大値の位置を求めません。
* **プーリングの入力の勾配は読まれるまで作らない** (:class:`PooledGrad`)。すぐ前の ReLU の逆伝播は、
  大きな勾配の代わりに 4 分の 1 の大きさの勾配にマスクを掛けるだけになります。
* GPU でも同じコードです (``cuda.get_array_module`` で NumPy / CuPy を選びます)。

ここで登録するのは、使う人が作るクラス (Conv2d, Deconv2d, Pooling, AveragePooling) だけです。
逆伝播で使う補助のクラスは、このモジュールの中の同じ名前のクラスを直接使います (並びの約束が本の
クラスと違うため)。
"""
import weakref

import numpy as np

from stucrs import cuda
import stucrs.functions as F
import stucrs.functions_conv as FC
from stucrs.core import Config
from stucrs.fast import register
from stucrs.fast.deferred import LazyGrad
from stucrs.functions_conv import _check_4d, _check_conv
from stucrs.utils import get_conv_outsize

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



@register(FC.Conv2d)
class Conv2d(FC.Conv2d):
    """2 次元畳み込み。x (N, C, H, W), W (OC, C, KH, KW), b (OC,) → (N, OC, OH, OW)。"""

    def __init__(self, stride=1, pad=0):
        super().__init__(stride, pad)
        self._col = None  # im2col の結果 (重みの勾配で使い回す)

    def forward(self, x, W, b=None):
        _check_conv(x, W, "conv2d", "(OC, C, KH, KW)", w_in=1)
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
            gx = FC.deconv2d(gy, W, None, self.stride, self.pad, outsize=(x.shape[2], x.shape[3]))
        if W.requires_grad:
            gW = Conv2DGradW(self)(x, gy)
        self._col = None
        if b is not None and b.requires_grad:
            gb = F.sum(gy, axis=(0, 2, 3))
        if b is None:
            return gx, gW
        return gx, gW, gb


@register(FC.Deconv2d)
class Deconv2d(FC.Deconv2d):
    """転置畳み込み。x (N, C, H, W), W (C, OC, KH, KW), b (OC,) → (N, OC, OH, OW)。"""

    def forward(self, x, W, b=None):
        _check_conv(x, W, "deconv2d", "(C, OC, KH, KW)", w_in=0)
        xp = cuda.get_array_module(x)
        n, c, h, w = x.shape
        _, oc, kh, kw = W.shape
        (sy, sx), (ph, pw) = self.stride, self.pad
        out_h, out_w = self.out_size(h, w, kh, kw)
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
            gx = FC.conv2d(gy, W, None, self.stride, self.pad)
        if W.requires_grad:
            gW = Conv2DGradW(None, W.shape[2:], self.stride, self.pad)(gy, x)
        if b is not None and b.requires_grad:
            gb = F.sum(gy, axis=(0, 2, 3))
        if b is None:
            return gx, gW
        return gx, gW, gb


class Conv2DGradW(FC.Conv2DGradW):
    """conv2d のフィルタに関する勾配 gW = gy ⋆ x。入力は (x, gy)。"""

    def __init__(self, conv=None, kernel_size=None, stride=1, pad=0):
        super().__init__(conv, kernel_size, stride, pad)
        self.conv = conv  # 順伝播の im2col (conv._col) を使い回すため

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
            gx = FC.deconv2d(gy, ggW, None, self.stride, self.pad, outsize=(x.shape[2], x.shape[3]))
        if gy.requires_grad:
            ggy = FC.conv2d(x, ggW, None, self.stride, self.pad)
        return gx, ggy


@register(FC.Pooling)
class Pooling(FC.Pooling):
    """最大値プーリング。窓ごとの最大値の位置 (argmax) を覚えておき、逆伝播に使う。"""

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
        # 高階微分のとき (本と同じく関数として: その逆伝播も作れる) と、グラフを作らなかった呼び出しの
        # backward を直接呼んだとき (入力と出力を覚えていない) は、すぐに計算する
        if Config.enable_backprop or not hasattr(self, "inputs"):
            return Pooling2DGrad(self)(gy)
        return PooledGrad.of(self, gy.data)


class PooledGrad(LazyGrad):
    """最大値プーリングの入力の勾配 (窓の最大値の位置にだけ gy を置いた配列) を、読まれるまで作らない。

    プーリングの入力がすぐ前の ReLU の出力なら (ネットワーク ③ の畳み込み → ReLU → プーリング)、
    ReLU の逆伝播は大きな勾配を作ってマスクを掛ける代わりに、4 分の 1 の大きさの gy にマスクを掛けた
    PooledGrad を返せます (:meth:`through_relu`)。最大値の位置の ReLU の入力が正かどうかは、
    プーリングの出力 (= その位置の ReLU の出力) が正かどうかと同じだからです。大きな配列を読み書きする
    1 回分 (ReLU の逆伝播) がなくなります。値は本の計算とビット単位で同じです (0 の符号を除く)。

    計算グラフへは弱参照しか持ちません (勾配 → プーリング → その入力 → その勾配、の循環参照を作らない)。
    """

    __slots__ = ("_scatter", "_gy", "_pool_input", "_pooled")

    def __init__(self, scatter, gy, pool_input, pooled):
        super().__init__(None)
        # 窓に戻す計算、プーリングの出力の勾配 (配列)、プーリングの入力と出力の弱参照
        self._scatter, self._gy, self._pool_input, self._pooled = scatter, gy, pool_input, pooled

    @classmethod
    def of(cls, pool, gy):
        """プーリングの関数 ``pool`` の逆伝播の結果を、出力の勾配 ``gy`` (配列) から作る。"""
        scatter = Pooling2DGrad(pool)
        scatter.pool = None  # 窓に戻す計算 (forward) だけに使う。プーリングの関数を持ち続けない
        return cls(scatter, gy, weakref.ref(pool.inputs[0]), pool.outputs[0])

    def pending(self):
        return self._gy is not None

    def compute(self):
        return self._scatter.forward(self._gy)

    def release(self):
        self._scatter = self._gy = self._pool_input = self._pooled = None

    def through_relu(self, relu_output):
        """この勾配が ReLU の出力 ``relu_output`` (Variable) のものなら、ReLU の入力の勾配を返す。

        プーリングの入力が ``relu_output`` でないとき、計算済みのとき、プーリングの出力がもう無いときは
        None (ReLU はふつうに計算する)。
        """
        if self._gy is None or relu_output is None or self._pool_input() is not relu_output:
            return None
        pooled = self._pooled()
        if pooled is None or pooled.data.dtype.kind != "f":
            return None
        xp = cuda.get_array_module(self._gy)
        gy = _same_layout(self._gy, self._scatter.indexes)  # プーリングの出力と同じ並びで掛ける
        return PooledGrad(self._scatter, gy * xp.greater(pooled.data, 0), self._pool_input, self._pooled)


class Pooling2DGrad(FC.Pooling2DGrad):
    """最大値プーリングの逆伝播: 勾配を各窓の最大値の位置に戻す。"""

    def __init__(self, pool):
        super().__init__(pool)
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


class Pooling2DWithIndexes(FC.Pooling2DWithIndexes):
    """覚えておいた argmax の位置の値を取り出す (Pooling2DGrad の逆伝播)。"""

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


@register(FC.AveragePooling)
class AveragePooling(FC.AveragePooling):
    """平均値プーリング (パディングの 0 も数に入れる。PyTorch の count_include_pad=True と同じ)。"""

    def forward(self, x):
        if x.dtype.kind != "f":  # 整数の平均は浮動小数: 本の実装 (mean) に任せる
            self.x_cn = False
            return super().forward(x)
        return self._forward_float(x)

    def _forward_float(self, x):
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


class AveragePoolingGrad(FC.AveragePoolingGrad):
    """平均値プーリングの逆伝播: 勾配を窓の全要素に 1/(KH*KW) ずつ配る。"""

    def __init__(self, pool):
        super().__init__(pool)
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
        return FC.average_pooling(ggx, p.kernel_size, p.stride, p.pad)
