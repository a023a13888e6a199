"""本の関数クラスの速い実装: 高階微分をしない逆伝播を、配列のまま計算する (第 16 章)。

本の ``backward`` は Variable で書かれているので、逆伝播そのものも計算グラフになり、2 階微分が
できます。ふつうの学習 (``loss.backward()``、``create_graph=False``) ではそのグラフは要らないので、
ここの子クラスは ``Config.enable_backprop`` が False のとき (= ``create_graph=False`` の逆伝播の中)
だけ、配列で直接計算します。``create_graph=True`` なら本の ``backward`` (``super().backward``) です。
"""
import numpy as np

from stucrs import cuda, utils
import stucrs.functions as F
import stucrs.functions_nn as FNN
from stucrs.core import Config, Variable, as_array
from stucrs.fast import register
from stucrs.fast.conv import PooledGrad
from stucrs.fast.deferred import DeferredGrad
from stucrs.fast import elementwise
from stucrs.fast.matmul_plan import matmul_nt

_BLAS_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def linear_grads(x, W, b, gy):
    """全結合 ``x @ W + b`` の勾配 (gx, gW, gb) を配列で求めて Variable にする。要らない勾配は None。"""
    gx = Variable(matmul_nt(gy, W.data)) if x.requires_grad else None  # 速い方の BLAS の呼び方で
    gW = None
    if W.requires_grad:
        # 末端の重み (Parameter) の勾配は更新まで読まれないので後回しにする。途中の変数の勾配は
        # 次の逆伝播ですぐ読まれるので、そのまま計算する
        gW = weight_grad(x.data, gy) if W.creator is None else Variable(x.data.T @ gy)
    gb = None
    if b is not None and b.requires_grad:
        gb_array = utils.sum_to(gy, b.shape)
        # 後回しの重みの勾配は gy を持っているので、バイアスの勾配と配列を共有させない (batch 1 のとき)
        gb = Variable(gb_array.copy() if gb_array is gy else gb_array)
    return gx, gW, gb


def weight_grad(x, gy):
    """末端の重みの勾配 ``x.T @ gy``。大きな NumPy の float の重みでは :class:`DeferredGrad` にする。

    持っておく 2 つの配列が勾配の配列より大きくならないとき (バッチが重みに比べて小さいとき) だけ。
    """
    n, m = x.shape
    k = gy.shape[1]
    if (type(x) is np.ndarray and type(gy) is np.ndarray and x.dtype == gy.dtype
            and x.dtype in _BLAS_DTYPES and m * k > elementwise.FLAT_BLOCK and n * (m + k) <= m * k):
        # x はコピーする (使う側が次のミニバッチを同じ配列に読み込むことがある)。gy は逆伝播が
        # 作った配列で、StuCrs はその場で書き換えない
        return DeferredGrad(x.copy(order="K"), gy)
    return Variable(x.T @ gy)


@register(F.Linear)
class Linear(F.Linear):
    """全結合の速い逆伝播: 勾配を配列で求め、末端の重みの勾配は後回しにする (第 16 章 4 節、英語の Performance notes)。"""

    def backward(self, gy):
        if Config.enable_backprop:
            return super().backward(gy)
        x, W = self.inputs[0], self.inputs[1]
        b = self.inputs[2] if len(self.inputs) == 3 else None
        gx, gW, gb = linear_grads(x, W, b, gy.data)
        return (gx, gW) if b is None else (gx, gW, gb)


@register(F.MatMul)
class MatMul(F.MatMul):
    """2 次元の行列の積の速い逆伝播 (全結合と同じ道: 後回しの重みの勾配、速い方の BLAS の呼び方)。"""

    def backward(self, gy):
        x, W = self.inputs
        if Config.enable_backprop or x.ndim != 2 or W.ndim != 2:
            return super().backward(gy)
        gx, gW, _ = linear_grads(x, W, None, gy.data)
        return gx, gW


@register(F.ReLU)
class ReLU(F.ReLU):
    """ReLU の速い実装: 順伝播はキャッシュに収まる区切りごと、逆伝播は比較を浮動小数で書く (英語の Performance notes, §13)。

    出力がすぐ最大値プーリングに入るときは、逆伝播はプーリングの小さな勾配にマスクを掛けるだけです
    (:class:`stucrs.fast.conv.PooledGrad`、§19)。
    """

    def forward(self, x):
        flats = None
        if type(x) is np.ndarray and x.size > elementwise.FLAT_BLOCK:
            y = np.empty_like(x)
            flats = elementwise.flat_views(x, y)
        if flats is None:
            return super().forward(x)
        # キャッシュに収まる区切りごとに、0 の配列との maximum (SIMD のループに乗る)
        (xf, yf), zeros = flats, elementwise.zero_block(x.dtype)
        for start, stop in elementwise.block_ranges(x.size):
            np.maximum(xf[start:stop], zeros[:stop - start], out=yf[start:stop])
        return y

    def backward(self, gy):
        if Config.enable_backprop:
            return super().backward(gy)
        if type(gy) is PooledGrad:  # すぐ後ろが最大値プーリング: 小さな勾配にマスクを掛けるだけ
            gx = gy.through_relu(self.outputs[0]())
            if gx is not None:
                return gx
        x, g = self.inputs[0].data, gy.data
        if type(g) is np.ndarray and g.dtype.kind == "f" and type(x) is np.ndarray and x.shape == g.shape:
            # 比較の結果を 1/0 の浮動小数で gx に直接書き、その場で gy を掛ける (bool の一時配列なし)。
            # 値は gy * (x > 0) とビット単位で同じ
            gx = np.empty_like(g)
            np.greater(x, x.dtype.type(0), out=gx)
            np.multiply(gx, g, out=gx)
            return Variable(gx)
        return Variable(as_array(g * (x > 0)))


@register(F.SoftmaxCrossEntropy)
class SoftmaxCrossEntropy(F.SoftmaxCrossEntropy):
    """ソフトマックス交差エントロピーの速い逆伝播: (softmax - onehot) * gy / N を配列で 1 回に。"""

    def backward(self, gy):
        if Config.enable_backprop:
            return super().backward(gy)
        x, t = self.inputs
        n = x.shape[0]
        xp = cuda.get_array_module(x.data)
        # (softmax(x) - onehot(t)) * gy / N を配列で
        gx = x.data - utils.logsumexp(x.data, axis=1)
        xp.exp(gx, out=gx)
        gx[xp.arange(n), t.data.ravel()] -= 1
        gx *= gy.data * x.dtype.type(1.0 / n)
        return Variable(gx), None


@register(F.Dropout)
class Dropout(F.Dropout):
    """ドロップアウトの速い実装。マスクは本 (DeZero) と同じ乱数の列から引く (同じシードなら同じマスク)。

    順伝播: ``np.random.rand`` をキャッシュに収まる長さずつ呼んで比べる (float64 の大きな一時配列を
    作らない。続けて引いた乱数の列は 1 回で引いたときと同じ)。出力は C の並びに書く (次の
    ``reshape`` がコピーにならない)。逆伝播: 同じマスクと倍率を配列で掛ける (一時配列 1 つ)。
    """

    def forward(self, x):
        if type(x) is not np.ndarray:
            return super().forward(x)
        self.mask = self.draw_mask(x.shape)
        self.scale = x.dtype.type(1.0 / (1.0 - self.dropout_ratio))
        y = np.empty(x.shape, dtype=x.dtype)
        np.multiply(x, self.mask, out=y)
        y *= self.scale
        return y

    def draw_mask(self, shape):
        """``np.random.rand(*shape) > dropout_ratio`` (本と同じマスク) を、区切りごとに引いて作る。"""
        mask = np.empty(shape, dtype=bool)
        flat = mask.reshape(-1)
        for start, stop in elementwise.block_ranges(flat.size):
            np.greater(np.random.rand(stop - start), self.dropout_ratio, out=flat[start:stop])
        return mask

    def backward(self, gy):
        if Config.enable_backprop:
            return super().backward(gy)
        gx = gy.data * self.mask
        gx *= self.scale
        return Variable(as_array(gx))


@register(FNN.BatchNorm)
class BatchNorm(FNN.BatchNorm):
    """バッチ正規化の速い逆伝播: 順伝播で求めた正規化済みの値を使い、配列だけで計算する。"""

    def backward(self, gy):
        if Config.enable_backprop:
            return super().backward(gy)
        x, gamma, beta = self.inputs
        g = gy.data
        axes, bshape = self.axes, self.bshape
        gbeta = g.sum(axis=axes)
        ggamma = (self.x_hat * g).sum(axis=axes)
        gx = None
        if x.requires_grad:
            scale = (gamma.data * self.inv_std).reshape(bshape)
            if self.train:
                m = x.size // x.shape[1]
                inv_m = g.dtype.type(1.0 / m)
                gx = g - (gbeta * inv_m).reshape(bshape)
                gx -= self.x_hat * (ggamma * inv_m).reshape(bshape)
                gx *= scale
            else:
                gx = g * scale
        return (Variable(gx) if gx is not None else None,
                Variable(ggamma) if gamma.requires_grad else None,
                Variable(gbeta) if beta.requires_grad else None)
