"""ニューラルネットワーク用の関数: バッチ正規化と埋め込み。/ Batch normalisation and embedding.

``batch_norm`` は学習モード (``Config.train``) ではミニバッチの平均・分散で正規化し、
移動平均 (``mean``, ``var``) をその場で更新します。テストモードでは移動平均を使います。
2 次元 (N, C) と 4 次元 (N, C, H, W) の入力に対応します (4 次元ではチャンネルごと)。
"""
from stucrs import cuda
from stucrs.core import Config, Function, Variable
import stucrs.functions as F

__all__ = ["BatchNorm", "batch_norm", "embed_id"]


def _axes(ndim):
    if ndim == 2:
        return (0,)
    if ndim == 4:
        return (0, 2, 3)
    raise ValueError(f"batch_norm: input must be 2-D (N, C) or 4-D (N, C, H, W), got {ndim}-D")


def _bshape(x_shape):
    return (1, x_shape[1]) + (1,) * (len(x_shape) - 2)


class BatchNorm(Function):
    """バッチ正規化。入力は (x, gamma, beta)。移動平均 mean / var は配列として持つ。"""

    def __init__(self, mean, var, decay, eps):
        self.avg_mean = mean
        self.avg_var = var
        self.decay = decay
        self.eps = eps

    def forward(self, x, gamma, beta):
        xp = cuda.get_array_module(x)
        axes = _axes(x.ndim)
        bshape = _bshape(x.shape)
        c = x.shape[1]
        if gamma.shape != (c,) or beta.shape != (c,):
            raise ValueError(f"batch_norm: gamma {gamma.shape} and beta {beta.shape} must both be "
                             f"({c},) for an input of shape {x.shape}")
        self.train = bool(Config.train)
        self.axes = axes
        self.bshape = bshape
        eps = x.dtype.type(self.eps)
        if self.train:
            m = x.size // c
            mean = x.mean(axis=axes)
            xc = x - mean.reshape(bshape)
            var = (xc * xc).mean(axis=axes)
            inv_std = 1 / xp.sqrt(var + eps)
            xc *= inv_std.reshape(bshape)
            # 移動平均をその場で更新する (分散は不偏推定量で。PyTorch と同じ)
            decay = self.decay
            adjust = m / max(m - 1, 1)
            self.avg_mean *= decay
            self.avg_mean += (1 - decay) * mean
            self.avg_var *= decay
            self.avg_var += (1 - decay) * adjust * var
        else:
            inv_std = 1 / xp.sqrt(self.avg_var.astype(x.dtype) + eps)
            xc = (x - self.avg_mean.astype(x.dtype).reshape(bshape)) * inv_std.reshape(bshape)
        self.inv_std = inv_std.astype(x.dtype, copy=False)
        self.x_hat = xc
        y = xc * gamma.reshape(bshape)
        y += beta.reshape(bshape)
        return y

    def backward(self, gy):
        # 微分可能な関数だけで書く (2 階微分もできる)
        x, gamma, beta = self.inputs
        axes, bshape = self.axes, self.bshape
        c = x.shape[1]
        g = F.reshape(gamma, bshape)
        if self.train:
            m = x.size // c
            mu = F.sum(x, axis=axes, keepdims=True) * (1.0 / m)
            xc = x - mu
            var = F.sum(xc * xc, axis=axes, keepdims=True) * (1.0 / m)
            inv_std = (var + self.eps) ** -0.5
            x_hat = xc * inv_std
            gbeta = F.sum(gy, axis=axes, keepdims=True)
            ggamma = F.sum(x_hat * gy, axis=axes, keepdims=True)
            gx = (g * inv_std) * (gy - gbeta * (1.0 / m) - x_hat * ggamma * (1.0 / m))
        else:
            xp = cuda.get_array_module(x.data)
            inv_std = Variable(self.inv_std.reshape(bshape))
            mean = Variable(xp.asarray(self.avg_mean, dtype=x.dtype).reshape(bshape))
            x_hat = (x - mean) * inv_std
            gbeta = F.sum(gy, axis=axes, keepdims=True)
            ggamma = F.sum(x_hat * gy, axis=axes, keepdims=True)
            gx = gy * (g * inv_std)
        return (gx if x.requires_grad else None,
                F.reshape(ggamma, (c,)) if gamma.requires_grad else None,
                F.reshape(gbeta, (c,)) if beta.requires_grad else None)


def batch_norm(x, gamma, beta, mean, var, decay=0.9, eps=2e-5):
    """バッチ正規化。/ Batch normalisation.

    Parameters
    ----------
    x : Variable or ndarray
        (N, C) または (N, C, H, W)。
    gamma, beta : Variable or ndarray
        スケールとシフト (C,)。
    mean, var : ndarray (または Variable)
        移動平均と移動分散 (C,)。学習モードでは ``decay`` でその場で更新されます
        (``mean = decay * mean + (1 - decay) * batch_mean``。分散は不偏推定量)。
    decay : float
        移動平均の減衰率 (PyTorch の momentum = 1 - decay)。
    eps : float
        0 除算を防ぐ小さな値。
    """
    if isinstance(mean, Variable):
        mean = mean.data
    if isinstance(var, Variable):
        var = var.data
    return BatchNorm(mean, var, decay, eps)(x, gamma, beta)


def embed_id(x, W):
    """単語 ID の列 ``x`` (整数配列) に対応する ``W`` の行を取り出す。/ Embedding lookup ``W[x]``.

    勾配は ``W`` の使われた行に足し込まれます (同じ ID が何度出ても正しく合計)。
    """
    if isinstance(x, Variable):
        x = x.data
    if x.dtype.kind not in "iu":
        raise TypeError(f"embed_id: ids must be an integer array, got dtype {x.dtype}")
    return F.get_item(W, x)
