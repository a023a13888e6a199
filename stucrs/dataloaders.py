"""データセットからミニバッチを取り出すローダー。 / Mini-batch loaders.

:class:`DataLoader` と :class:`SeqDataLoader` は DeZero と同じ名前・同じ使い方です。

バッチの作り方 (how a batch is built)
-------------------------------------
データセットが配列を持つとき (``stucrs.datasets.Dataset`` のサブクラスで ``data`` が配列、
``__getitem__`` を上書きしていない) は、

1. ``dataset.data[idx]`` (と ``dataset.label[idx]``) の **1 回の** ベクトル化された取り出し、
2. ``dataset.transform`` の **1 回の** バッチ変換 (:func:`stucrs.transforms.apply_batch`)、

でバッチを作ります。データセット全体はコピーしません。配列を持たないデータセット
(``data is None``、``__getitem__`` を上書きしたもの、リストなど) では DeZero と同じく
``[dataset[i] for i in idx]`` で 1 サンプルずつ取り出して積み重ねます。

シャッフルの乱数 (shuffling)
----------------------------
``rng=None`` (既定) では DeZero と同じく **グローバルな** ``numpy.random`` の
``permutation`` を使います。``np.random.seed(...)`` で再現できます。``rng`` に整数 (seed)、
``numpy.random.Generator`` または ``numpy.random.RandomState`` を渡すと、その乱数だけを使います。
"""

import math
import numbers

import numpy as np

from .transforms import apply_batch

__all__ = ["DataLoader", "SeqDataLoader"]


def _check_batch_size(batch_size):
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral):
        raise TypeError(f"batch_size must be a positive integer, got {batch_size!r} ({type(batch_size).__name__})")
    batch_size = int(batch_size)
    if batch_size <= 0:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
    return batch_size


def _make_rng(rng):
    if rng is None:
        return None
    if isinstance(rng, (np.random.Generator, np.random.RandomState)):
        return rng
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError(f"rng must be None, an int seed, numpy.random.Generator or RandomState, got {rng!r}")


def _array_form(dataset):
    """ベクトル化して取り出せるなら ``True``。 / Whether batches can be gathered from arrays."""
    try:
        from .datasets import Dataset
    except ImportError:  # pragma: no cover
        return False
    if not isinstance(dataset, Dataset):
        return False
    if type(dataset).__getitem__ is not Dataset.__getitem__:
        return False  # custom per-sample logic must be honoured
    data = dataset.data
    if data is None or not hasattr(data, "shape") or not hasattr(data, "__getitem__"):
        return False
    if len(data) != len(dataset):
        return False
    label = dataset.label
    if label is not None and (not hasattr(label, "shape") or len(label) != len(data)):
        return False
    return True


class DataLoader:
    """データセットからミニバッチを順に取り出すイテレータ。 / Iterate over mini-batches of a dataset.

    1 エポックで全サンプルをちょうど 1 回ずつ返します (最後のバッチは小さいことがあります)。
    エポックが終わると (``StopIteration`` の時点で) 自動的に :meth:`reset` され、シャッフル
    し直します。

    Args:
        dataset: データセット (``len()`` と ``dataset[i] -> (x, t)`` を持つもの)。
        batch_size (int): バッチの大きさ (正の整数)。
        shuffle (bool): エポックごとに順番をシャッフルするか。
        gpu (bool): ``True`` ならバッチを CuPy 配列にして返します。
        rng: シャッフルの乱数。``None`` ならグローバルな ``numpy.random`` (DeZero と同じ)、
            整数なら ``numpy.random.default_rng(rng)``、または Generator / RandomState。

    Attributes:
        max_iter (int): 1 エポックのバッチ数 (``ceil(len(dataset) / batch_size)``)。
        iteration (int): 今のエポックで返したバッチ数。
        index: 今のエポックのサンプルの順番。

    Example:
        >>> loader = DataLoader(train_set, batch_size=100)
        >>> for x, t in loader:
        ...     ...
    """

    def __init__(self, dataset, batch_size, shuffle=True, gpu=False, rng=None):
        self.batch_size = _check_batch_size(batch_size)
        self.dataset = dataset
        self.shuffle = shuffle
        self.data_size = len(dataset)
        if self.data_size == 0:
            raise ValueError(f"DataLoader: the dataset {type(dataset).__name__} is empty")
        self.max_iter = math.ceil(self.data_size / self.batch_size)
        self.gpu = False
        if gpu:
            self.to_gpu()
        self.rng = _make_rng(rng)
        self._vectorised = _array_form(dataset)
        self.reset()

    def reset(self):
        """エポックの最初に戻し、``shuffle`` なら順番を作り直します。 / Start a new epoch."""
        self.iteration = 0
        if self.shuffle:
            perm = (np.random.permutation if self.rng is None else self.rng.permutation)
            self.index = perm(self.data_size)
        else:
            self.index = np.arange(self.data_size)

    def __iter__(self):
        return self

    def __len__(self):
        return self.max_iter

    def _batch_indices(self):
        i, b = self.iteration, self.batch_size
        return self.index[i * b:(i + 1) * b]

    def __next__(self):
        if self.iteration >= self.max_iter:
            self.reset()
            raise StopIteration
        batch_index = self._batch_indices()
        x, t = self._gather(batch_index)
        self.iteration += 1
        return x, t

    def next(self):
        """次のバッチ ``(x, t)`` を返します (``__next__`` と同じ)。 / Same as ``__next__``."""
        return self.__next__()

    def _gather(self, batch_index):
        ds = self.dataset
        if self._vectorised:
            x = apply_batch(ds.transform, ds.data[batch_index])
            if ds.label is None:
                t = None
            else:
                t = apply_batch(ds.target_transform, ds.label[batch_index])
        else:
            batch = [ds[int(i)] for i in batch_index]
            x = np.array([example[0] for example in batch])
            labels = [example[1] for example in batch]
            t = None if all(lab is None for lab in labels) else np.array(labels)
        if self.gpu:
            from . import cuda

            x = cuda.as_cupy(x)
            t = None if t is None else cuda.as_cupy(t)
        return x, t

    def to_cpu(self):
        """以後のバッチを NumPy 配列で返します。 / Return NumPy batches from now on."""
        self.gpu = False

    def to_gpu(self):
        """以後のバッチを CuPy 配列で返します (CuPy が必要)。 / Return CuPy batches from now on."""
        from . import cuda

        if not getattr(cuda, "gpu_enable", False):
            raise RuntimeError("DataLoader.to_gpu(): CuPy is not available (stucrs.cuda.gpu_enable is False)")
        self.gpu = True


class SeqDataLoader(DataLoader):
    """時系列用のローダー (シャッフルなし)。 / Sequential loader for time series (RNN/LSTM).

    データ長を ``batch_size`` 本に等分し、各本の先頭から同じ歩幅で 1 つずつ進めます。
    ``k`` 回目のバッチの ``j`` 行目は ``(j * (len // batch_size) + k) % len`` 番目のサンプルです
    (DeZero と同じ)。1 エポックは ``ceil(len / batch_size)`` バッチです。

    Args:
        dataset: 時系列データセット (例: :class:`stucrs.datasets.SinCurve`)。
        batch_size (int): 並行して進める系列の数 (``len(dataset)`` 以下)。
        gpu (bool): ``True`` ならバッチを CuPy 配列で返します。
    """

    def __init__(self, dataset, batch_size, gpu=False):
        super().__init__(dataset=dataset, batch_size=batch_size, shuffle=False, gpu=gpu)
        if self.batch_size > self.data_size:
            raise ValueError(
                f"SeqDataLoader: batch_size ({self.batch_size}) must not exceed the dataset length ({self.data_size})"
            )

    def _batch_indices(self):
        jump = self.data_size // self.batch_size
        return (np.arange(self.batch_size) * jump + self.iteration) % self.data_size
