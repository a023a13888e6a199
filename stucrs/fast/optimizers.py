"""SGD の速い実装: 更新 ``W -= lr * grad`` を、NumPy の BLAS の axpy か gemm 1 回で (第 16 章)。

* 全結合の重みの勾配が後回し (:class:`~stucrs.fast.deferred.DeferredGrad`) なら、勾配の配列を
  作らずに ``W -= lr * (x.T @ gy)`` を gemm 1 回で。
* それ以外の大きな配列は axpy 1 回で (積和命令、BLAS のスレッドで手分け)。
* どちらも使えないときは、キャッシュに収まる区切りごとに NumPy で (一時配列がキャッシュに収まる)。
"""
import numpy as np

from stucrs import cuda
import stucrs.optimizers as O
from stucrs.core import Config
from stucrs.fast import blas, register
from stucrs.fast.deferred import DeferredGrad, compute_deferred

# 一度に処理する要素数 (float32 で 512 KiB): 一時配列 ``scale * grad`` がキャッシュに収まる
_CHUNK = 1 << 17


def sub_scaled(data, grad, scale):
    """``data -= scale * grad`` をその場で (``grad`` は勾配の Variable)。値は NumPy の式と同じか、丸め 1 回分だけ違う。"""
    factors = grad.factors() if type(grad) is DeferredGrad else None
    if factors is not None and blas.gemm_update(-scale, factors[0], factors[1], data):
        return
    g = grad.data
    if blas.axpy(-scale, g, data):
        return
    scale = g.dtype.type(scale) if g.dtype.kind == "f" else scale
    n = data.size
    if (n <= _CHUNK or cuda.get_array_module(data) is not np or not data.flags.c_contiguous
            or not g.flags.c_contiguous or data.dtype != g.dtype):
        data -= g * scale
        return
    flat_data, flat_grad = data.reshape(-1), g.reshape(-1)
    buf = np.empty(_CHUNK, dtype=data.dtype)
    for start in range(0, n, _CHUNK):
        stop = min(start + _CHUNK, n)
        tmp = buf[:stop - start]
        np.multiply(flat_grad[start:stop], scale, out=tmp)
        np.subtract(flat_data[start:stop], tmp, out=flat_data[start:stop])


class _ComputesDeferredBeforeHooks:
    def update(self, *args, **kwargs):
        # フックは勾配を読み書きする (DeZero 流に param.grad.data += ... とも書く)。後回しの勾配が持つ
        # gy は別の変数の勾配と配列を共有していることがあるので、フックの前にすべて計算しておく
        if self.hooks and self.target is not None:
            compute_deferred([p for p in O.param_list(self.target) if p.grad is not None])
        return super().update(*args, **kwargs)


@register(O.SGD)
class SGD(_ComputesDeferredBeforeHooks, O.SGD):
    """SGD の速い実装: 更新を BLAS の gemm (後回しの全結合の勾配) か axpy で 1 回に (第 16 章 4 節)。"""

    def update_one(self, param):
        if not Config.fast:
            return super().update_one(param)
        sub_scaled(param.data, param.grad, self.lr)


@register(O.MomentumSGD)
class MomentumSGD(_ComputesDeferredBeforeHooks, O.MomentumSGD):
    """MomentumSGD の速い実装: v -= lr * grad を SGD と同じ道 (gemm か axpy) で。"""

    def update_one(self, param):
        if not Config.fast:
            return super().update_one(param)
        xp = cuda.get_array_module(param.data)
        v = O._state(self.vs, param, xp)
        v *= v.dtype.type(self.momentum) if v.dtype.kind == "f" else self.momentum
        sub_scaled(v, param.grad, self.lr)  # v -= lr * grad
        param.data += v


# ほかのオプティマイザも、フックの前に後回しの勾配を計算するところだけ同じにする
# (each is also a name of this module, so that pickle finds it)
for _base in (O.AdaGrad, O.AdaDelta, O.Adam, O.AdamW):
    globals()[_base.__name__] = register(_base)(type(_base.__name__, (_ComputesDeferredBeforeHooks, _base),
                                                     {"__module__": __name__, "__doc__": _base.__doc__}))
del _base
