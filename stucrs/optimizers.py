"""最適化手法 (オプティマイザ) と、その前処理のフック。/ Optimizers and gradient hooks.

使い方 / usage::

    optimizer = optimizers.SGD(lr=0.01).setup(model)
    optimizer.add_hook(optimizers.WeightDecay(1e-4))
    ...
    model.cleargrads()
    loss.backward()
    optimizer.update()

* パラメータはその場で (``param.data`` の配列を書き換えて) 更新します。内部状態
  (モーメンタムなど) の配列もその場で更新するので、1 ステップごとに配列を作り直しません。
* 勾配が ``None`` のパラメータ (そのステップで使われなかったもの) は飛ばします。
* 勾配の配列は他の変数と共有されていることがあるので、フックは ``param.grad`` を書き換えず、
  新しい Variable に差し替えます。
"""
import math

from stucrs import cuda
from stucrs.core import Config, Parameter, Variable, fast_variants
from stucrs.layers import param_list

__all__ = ["Optimizer", "SGD", "MomentumSGD", "AdaGrad", "AdaDelta", "Adam", "AdamW",
           "WeightDecay", "ClipGrad", "FreezeParam"]


class Optimizer:
    """オプティマイザの基底クラス。/ Base class: ``setup(target)`` then ``update()`` each step."""

    def __new__(cls, *args, **kwargs):
        # 速さのための差し替え口: Config.fast なら stucrs/fast に登録された子クラスで作る
        return object.__new__(fast_variants.get(cls, cls) if Config.fast else cls)

    def __init__(self):
        self.target = None
        self.hooks = []

    def setup(self, target):
        """更新するモデル (Layer) を設定する。メソッドチェーンのため self を返す。"""
        self.target = target
        return self

    def update(self):
        """勾配を持つすべてのパラメータを 1 ステップ更新する。/ One update step."""
        if self.target is None:
            raise RuntimeError(f"{type(self).__name__}.update(): call setup(model) first")
        params = [p for p in param_list(self.target) if p.grad is not None]
        for f in self.hooks:
            f(params)
        for param in params:
            if param.grad is not None:  # フック (FreezeParam など) が外したものは飛ばす
                self.update_one(param)

    def update_one(self, param):
        """パラメータ 1 つを更新する (サブクラスで実装)。"""
        raise NotImplementedError(f"{type(self).__name__}.update_one is not implemented")

    def add_hook(self, f):
        """更新の前に ``f(params)`` を呼ぶフックを足す (WeightDecay, ClipGrad など)。"""
        self.hooks.append(f)
        return self


def _state(store, param, xp):
    """パラメータごとの状態配列 (0 で初期化) を返す。"""
    key = id(param)
    arr = store.get(key)
    if arr is None or arr.shape != param.data.shape or cuda.get_array_module(arr) is not xp:
        arr = xp.zeros_like(param.data)
        store[key] = arr
    return arr


def _scalar(value, like):
    """Python の数を配列の dtype のスカラーにする (float32 を float64 にしないため)。"""
    return like.dtype.type(value) if like.dtype.kind == "f" else value


# =============================================================================
# SGD 系 / SGD family
# =============================================================================
class SGD(Optimizer):
    """確率的勾配降下法: W ← W - lr * grad。/ Plain stochastic gradient descent."""

    def __init__(self, lr=0.01):
        super().__init__()
        self.lr = lr

    def update_one(self, param):
        param.data -= self.lr * param.grad.data


class MomentumSGD(Optimizer):
    """モーメンタム付き SGD: v ← momentum * v - lr * grad, W ← W + v。"""

    def __init__(self, lr=0.01, momentum=0.9):
        super().__init__()
        self.lr = lr
        self.momentum = momentum
        self.vs = {}

    def update_one(self, param):
        xp = cuda.get_array_module(param.data)
        v = _state(self.vs, param, xp)
        v *= self.momentum
        v -= self.lr * param.grad.data
        param.data += v


class AdaGrad(Optimizer):
    """AdaGrad: パラメータごとに学習率を調整する。h ← h + grad², W ← W - lr * grad / (√h + eps)。"""

    def __init__(self, lr=0.001, eps=1e-8):
        super().__init__()
        self.lr = lr
        self.eps = eps
        self.hs = {}

    def update_one(self, param):
        xp = cuda.get_array_module(param.data)
        g = param.grad.data
        h = _state(self.hs, param, xp)
        h += g * g
        denom = xp.sqrt(h)
        denom += _scalar(self.eps, denom)
        step = g / denom
        step *= _scalar(self.lr, step)
        param.data -= step


class AdaDelta(Optimizer):
    """AdaDelta (学習率なし; ``lr`` は最後に掛ける倍率で既定 1.0、PyTorch と同じ)。"""

    def __init__(self, rho=0.95, eps=1e-6, lr=1.0):
        super().__init__()
        self.rho = rho
        self.eps = eps
        self.lr = lr
        self.msg = {}
        self.msdx = {}

    def update_one(self, param):
        xp = cuda.get_array_module(param.data)
        g = param.grad.data
        msg = _state(self.msg, param, xp)
        msdx = _state(self.msdx, param, xp)
        rho, eps = _scalar(self.rho, g), _scalar(self.eps, g)
        one = _scalar(1.0, g)
        msg *= rho
        msg += (one - rho) * g * g
        dx = xp.sqrt((msdx + eps) / (msg + eps))
        dx *= g
        msdx *= rho
        msdx += (one - rho) * dx * dx
        if self.lr != 1.0:
            dx *= _scalar(self.lr, dx)
        param.data -= dx


# =============================================================================
# Adam 系 / Adam family
# =============================================================================
class Adam(Optimizer):
    """Adam。/ Adam (Kingma & Ba), written as in DeZero with a bias-corrected ``lr``.

    Parameters
    ----------
    alpha : float
        学習率。
    beta1, beta2 : float
        1 次・2 次モーメントの減衰率。
    eps : float
        0 除算を防ぐ小さな値。

    ``update()`` を呼ぶたびにステップ数 ``t`` が 1 増え、``lr`` (プロパティ) は
    ``alpha * sqrt(1 - beta2**t) / (1 - beta1**t)`` (偏りを補正した学習率) になります。
    更新は ``W ← W - lr * m / (√v + eps·√(1 - beta2**t))`` で、論文の
    ``m̂ / (√v̂ + eps)`` と (したがって PyTorch とも) 一致します。
    """

    def __init__(self, alpha=0.001, beta1=0.9, beta2=0.999, eps=1e-8):
        super().__init__()
        self.t = 0
        self.alpha = alpha
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.ms = {}
        self.vs = {}

    def update(self, *args, **kwargs):
        self.t += 1
        super().update(*args, **kwargs)

    @property
    def lr(self):
        """偏りを補正した学習率。/ Bias-corrected step size."""
        fix1 = 1.0 - math.pow(self.beta1, self.t)
        fix2 = 1.0 - math.pow(self.beta2, self.t)
        return self.alpha * math.sqrt(fix2) / fix1

    def _adam_step(self, param):
        xp = cuda.get_array_module(param.data)
        g = param.grad.data
        m = _state(self.ms, param, xp)
        v = _state(self.vs, param, xp)
        beta1, beta2 = _scalar(self.beta1, g), _scalar(self.beta2, g)
        one = _scalar(1.0, g)
        # m ← m + (1 - β1)(g - m),  v ← v + (1 - β2)(g² - v)  (どちらもその場で)
        m += (one - beta1) * (g - m)
        v += (one - beta2) * (g * g - v)
        # eps は偏り補正後の √v̂ に足す (論文・PyTorch と同じ): √v + eps·√(1 - β2^t)
        denom = xp.sqrt(v)
        denom += _scalar(self.eps * math.sqrt(1.0 - math.pow(self.beta2, self.t)), denom)
        step = m / denom
        step *= _scalar(self.lr, step)
        param.data -= step

    def update_one(self, param):
        self._adam_step(param)


class AdamW(Adam):
    """AdamW: 重み減衰を勾配から切り離した Adam (PyTorch の ``torch.optim.AdamW`` と同じ考え方)。

    各ステップで先に ``W ← W * (1 - alpha * weight_decay)`` とし、そのあと Adam の更新をします。
    """

    def __init__(self, alpha=0.001, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01):
        super().__init__(alpha, beta1, beta2, eps)
        self.weight_decay = weight_decay

    def update_one(self, param):
        if self.weight_decay:
            param.data *= _scalar(1.0 - self.alpha * self.weight_decay, param.data)
        self._adam_step(param)


# =============================================================================
# フック / hooks (called with the list of parameters before each update)
# =============================================================================
class WeightDecay:
    """L2 正則化: grad ← grad + rate * W。/ Add ``rate * W`` to every gradient."""

    def __init__(self, rate):
        self.rate = rate

    def __call__(self, params):
        for param in params:
            if param.grad is None:
                continue
            g = param.grad.data
            param.grad = Variable(g + param.data * _scalar(self.rate, param.data))


class ClipGrad:
    """勾配の L2 ノルム (全パラメータ合計) が ``max_norm`` を超えたら縮める。/ Clip the global norm."""

    def __init__(self, max_norm):
        self.max_norm = max_norm

    def __call__(self, params):
        total_norm = 0.0
        for param in params:
            if param.grad is not None:
                g = param.grad.data
                total_norm += float((g * g).sum())
        total_norm = math.sqrt(total_norm)
        rate = self.max_norm / (total_norm + 1e-6)
        if rate < 1:
            for param in params:
                if param.grad is not None:
                    g = param.grad.data
                    param.grad = Variable(g * _scalar(rate, g))


class FreezeParam:
    """指定したレイヤ (またはパラメータ) を更新しないようにする。/ Freeze layers or parameters."""

    def __init__(self, *layers):
        self.freeze_params = []
        for layer in layers:
            if isinstance(layer, Parameter):
                self.freeze_params.append(layer)
            else:
                self.freeze_params.extend(layer.params())

    def __call__(self, params):
        for p in self.freeze_params:
            p.grad = None
