"""データ前処理の変換 (transforms)。 / Data transforms that work on one sample or on a whole batch.

DeZero と同じ名前・同じ振る舞いの変換を提供します: :class:`Compose`, :class:`Normalize`,
:class:`Flatten`, :class:`AsType`, :class:`ToFloat`, :class:`ToInt`。

規約 (convention)
-----------------
各変換は 2 通りに呼び出せます。

* ``t(x)`` — **1 サンプル** を変換します (DeZero と同じ)。``x`` にはバッチ軸がありません。
* ``t.apply_batch(xs)`` — **バッチ** を変換します。``xs`` の先頭の軸 (axis 0) がバッチ軸で、
  結果は「各サンプルに ``t`` を適用して積み重ねたもの」と等しくなります
  (例: :class:`Flatten` はサンプルごとに平坦化し、軸 0 は残します)。

``DataLoader`` はデータセットの配列からバッチを 1 回でまとめて取り出し、
:func:`apply_batch` で 1 回だけ変換します。``apply_batch`` を持たない任意の関数
(lambda など) を変換として使った場合は、バッチの各行に適用して積み重ねる遅い経路になります。

浮動小数点の型は勝手に float64 へ広げません。:class:`Normalize` は float32 の入力に対して
float32 を返します。
"""

import numpy as np

from stucrs.utils import pair  # noqa: F401  (DeZero の transforms からも使える名前)

__all__ = [
    "Transform",
    "Compose",
    "Normalize",
    "Flatten",
    "AsType",
    "ToFloat",
    "ToInt",
    "apply_batch",
]


def _xp(x):
    """配列 ``x`` に対応する配列モジュール (numpy か cupy)。 / numpy or cupy for ``x``."""
    if isinstance(x, np.ndarray) or np.isscalar(x):
        return np
    try:
        from . import cuda
    except ImportError:  # core not available yet
        return np
    return cuda.get_array_module(x)


class Transform:
    """変換の基底クラス。 / Base class of transforms.

    サブクラスは 1 サンプル用の :meth:`__call__` を実装します。:meth:`apply_batch` の既定の実装は
    バッチの各行に :meth:`__call__` を適用して積み重ねます (正しいが遅い)。ベクトル化できる
    変換は :meth:`apply_batch` を上書きしてください。
    """

    def __call__(self, x):
        raise NotImplementedError

    def apply_batch(self, xs):
        """バッチ (先頭軸がバッチ軸) を変換します。 / Transform a batch (axis 0 = samples)."""
        return _stack_each(self, xs)

    def __repr__(self):
        return f"{type(self).__name__}()"


def _stack_each(fn, xs):
    """``fn`` を ``xs`` の各行に適用して積み重ねます。 / Apply ``fn`` row by row and stack."""
    xp = _xp(xs)
    outs = [fn(x) for x in xs]
    if not outs:
        return xs
    return xp.stack([xp.asarray(o) for o in outs])


def apply_batch(transform, xs):
    """任意の変換をバッチに適用します。 / Apply any transform to a batch.

    ``transform`` が ``None`` なら ``xs`` をそのまま返し、``apply_batch`` メソッドを持てば
    それを使い (ベクトル化された経路)、ただの関数なら各行に適用して積み重ねます。

    Args:
        transform: ``None``、:class:`Transform`、または 1 サンプルを受け取る関数。
        xs: 先頭の軸がバッチ軸の配列。

    Returns:
        変換後のバッチ。
    """
    if transform is None or isinstance(transform, _Identity):
        return xs
    method = getattr(transform, "apply_batch", None)
    if method is not None:
        return method(xs)
    return _stack_each(transform, xs)


class _Identity(Transform):
    """何もしない変換 (データセットの既定値)。 / No-op transform (datasets' default)."""

    def __call__(self, x):
        return x

    def apply_batch(self, xs):
        return xs


class Compose(Transform):
    """複数の変換を順に適用します。 / Apply several transforms in order.

    Args:
        transforms: 変換のリスト。空なら入力をそのまま返します。

    Example:
        >>> f = Compose([Flatten(), ToFloat(), Normalize(0., 255.)])
    """

    def __init__(self, transforms=None):
        self.transforms = list(transforms) if transforms is not None else []

    def __call__(self, x):
        for t in self.transforms:
            x = t(x)
        return x

    def apply_batch(self, xs):
        for t in self.transforms:
            xs = apply_batch(t, xs)
        return xs

    def __repr__(self):
        inner = ", ".join(repr(t) for t in self.transforms)
        return f"Compose([{inner}])"


def _per_channel(value, dtype, ndim, channel_axis, xp):
    """平均・標準偏差を配列にブロードキャストできる形にします。 / Shape mean/std for broadcasting."""
    if np.isscalar(value):
        return xp.asarray(value, dtype=dtype)
    arr = np.asarray(value)
    if arr.size == 1:
        return xp.asarray(arr.reshape(()), dtype=dtype)
    if arr.ndim != 1:
        raise ValueError(f"Normalize: mean/std must be a scalar or 1-D sequence, got shape {arr.shape}")
    if ndim <= channel_axis:
        raise ValueError(
            f"Normalize: per-channel mean/std needs an input with a channel axis {channel_axis}, got ndim={ndim}"
        )
    shape = [1] * ndim
    shape[channel_axis] = arr.size
    return xp.asarray(arr.reshape(shape), dtype=dtype)


class Normalize(Transform):
    """``(x - mean) / std`` で正規化します。 / Normalize as ``(x - mean) / std``.

    ``mean`` と ``std`` はスカラー、またはチャネルごとの 1 次元の列です。列の場合、1 サンプルでは
    軸 0 (C×H×W の C)、バッチでは軸 1 をチャネル軸とみなします (DeZero と同じ)。

    入力が浮動小数点ならその型 (float32 なら float32) を保ち、整数型なら float32 にします。
    float64 へは広げません。

    Args:
        mean: 引く値。既定は 0。
        std: 割る値。既定は 1。
    """

    def __init__(self, mean=0, std=1):
        self.mean = mean
        self.std = std

    def _normalize(self, x, channel_axis):
        xp = _xp(x)
        x = xp.asarray(x)
        dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float32)
        mean = _per_channel(self.mean, dtype, x.ndim, channel_axis, xp)
        std = _per_channel(self.std, dtype, x.ndim, channel_axis, xp)
        if x.dtype == dtype:
            out = x - mean  # a new array of the same dtype
        else:
            out = x.astype(dtype)
            out -= mean
        out /= std
        return out

    def __call__(self, x):
        return self._normalize(x, 0)

    def apply_batch(self, xs):
        return self._normalize(xs, 1)

    def __repr__(self):
        return f"Normalize(mean={self.mean!r}, std={self.std!r})"


class Flatten(Transform):
    """1 サンプルを 1 次元に平坦化します。 / Flatten one sample to 1-D.

    バッチに対しては (:meth:`apply_batch`) サンプルごとに平坦化し、形は ``(N, -1)`` になります。
    """

    def __call__(self, x):
        return x.flatten()

    def apply_batch(self, xs):
        return xs.reshape(len(xs), -1)


class AsType(Transform):
    """配列の型を変えます。 / Cast to a dtype.

    Args:
        dtype: 変換先の型。既定は ``numpy.float32``。
    """

    def __init__(self, dtype=np.float32):
        self.dtype = np.dtype(dtype)

    def __call__(self, x):
        return x.astype(self.dtype)

    def apply_batch(self, xs):
        return xs.astype(self.dtype)

    def __repr__(self):
        return f"{type(self).__name__}(dtype={self.dtype.name})"


class ToFloat(AsType):
    """浮動小数点 (既定 float32) に変換します。 / Cast to float (float32 by default)."""

    def __init__(self, dtype=np.float32):
        super().__init__(dtype)


class ToInt(AsType):
    """整数 (既定 int64) に変換します。 / Cast to int (int64 by default)."""

    def __init__(self, dtype=np.int64):
        super().__init__(dtype)
