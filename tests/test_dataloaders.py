"""stucrs.dataloaders: epoch coverage, seeded shuffling, vectorised gathering, errors."""

import numpy as np
import pytest

from stucrs.dataloaders import DataLoader, SeqDataLoader
from stucrs.datasets import Dataset, SinCurve, Spiral
from stucrs.transforms import Compose, Flatten, Normalize, ToFloat, Transform


class Images(Dataset):
    """A small MNIST-like dataset: uint8 N×1×4×4 images with the MNIST default transform."""

    def __init__(self, n=23, **kw):
        self.n = n
        kw.setdefault("transform", Compose([Flatten(), ToFloat(), Normalize(0.0, 255.0)]))
        super().__init__(**kw)

    def prepare(self):
        rng = np.random.default_rng(0)
        self.data = rng.integers(0, 256, size=(self.n, 1, 4, 4), dtype=np.uint8)
        self.label = np.arange(self.n, dtype=np.int64)


def epoch_labels(loader):
    return [t for _, t in loader]


@pytest.mark.parametrize("batch_size", [1, 5, 23, 100])
@pytest.mark.parametrize("shuffle", [True, False])
def test_each_epoch_covers_the_dataset_once(batch_size, shuffle):
    ds = Images(23)
    loader = DataLoader(ds, batch_size, shuffle=shuffle, rng=0)
    assert loader.max_iter == len(loader) == -(-23 // batch_size)
    for _ in range(2):  # the loader resets itself after StopIteration
        ts = epoch_labels(loader)
        assert len(ts) == loader.max_iter
        assert all(len(t) == batch_size for t in ts[:-1]) and 1 <= len(ts[-1]) <= batch_size
        seen = np.concatenate(ts)
        assert sorted(seen.tolist()) == list(range(23))
        if not shuffle:
            assert seen.tolist() == list(range(23))
        assert loader.iteration == 0


def test_batch_contents_match_per_sample_path():
    ds = Images(10)
    loader = DataLoader(ds, 4, rng=1)
    for x, t in loader:
        assert x.dtype == np.float32 and x.shape[1:] == (16,)
        assert t.dtype == np.int64
        expected_x = np.array([ds[int(i)][0] for i in t])  # label == index
        np.testing.assert_array_equal(x, expected_x)


def test_shuffling_is_seeded():
    orders = []
    for rng in (0, 0, np.random.default_rng(0), 1):
        loader = DataLoader(Images(50), 50, rng=rng)
        orders.append(loader.next()[1].tolist())
    assert orders[0] == orders[1] == orders[2]
    assert orders[0] != orders[3]
    assert orders[0] != list(range(50))
    # rng=None: the global numpy.random stream, like DeZero
    np.random.seed(5)
    a = DataLoader(Images(50), 50).next()[1]
    np.random.seed(5)
    b = DataLoader(Images(50), 50).next()[1]
    np.testing.assert_array_equal(a, b)
    # a new permutation each epoch
    loader = DataLoader(Images(50), 50, rng=3)
    first = loader.next()[1].tolist()
    with pytest.raises(StopIteration):
        loader.next()
    assert loader.next()[1].tolist() != first


def test_array_datasets_gather_once_without_per_sample_access(monkeypatch):
    calls = {"getitem": 0, "batch": 0}

    def spy_getitem(self, index):
        calls["getitem"] += 1
        raise AssertionError("per-sample __getitem__ used for an array dataset")

    monkeypatch.setattr(Dataset, "__getitem__", spy_getitem)

    class CountingFlatten(Transform):
        def __call__(self, x):
            raise AssertionError("per-sample transform used")

        def apply_batch(self, xs):
            calls["batch"] += 1
            return xs.reshape(len(xs), -1)

    ds = Images(20, transform=CountingFlatten())
    data_before = ds.data
    snapshot = ds.data.copy()
    loader = DataLoader(ds, 6, rng=0)
    batches = list(loader)
    assert calls == {"getitem": 0, "batch": 4}
    assert ds.data is data_before
    np.testing.assert_array_equal(ds.data, snapshot)
    for x, _ in batches:
        assert not np.shares_memory(x, ds.data)  # a gathered copy of the batch only
    assert sum(len(x) for x, _ in batches) == 20


def test_spiral_batches_like_dezero_formula():
    ds = Spiral()
    np.random.seed(0)
    loader = DataLoader(ds, 30)
    np.random.seed(0)
    index = np.random.permutation(300)
    x, t = loader.next()
    np.testing.assert_array_equal(x, ds.data[index[:30]])
    np.testing.assert_array_equal(t, ds.label[index[:30]])


def test_per_sample_path_for_datasets_without_arrays():
    class Squares(Dataset):
        def __len__(self):
            return 7

        def __getitem__(self, i):
            return np.array([i, i * i]), i % 2

    loader = DataLoader(Squares(), 3, shuffle=False)
    x, t = loader.next()
    np.testing.assert_array_equal(x, [[0, 0], [1, 1], [2, 4]])
    np.testing.assert_array_equal(t, [0, 1, 0])
    assert sum(len(x) for x, _ in loader) == 4  # the rest of the epoch

    pairs = [(np.full(2, i), i) for i in range(5)]  # a plain list works too
    xs = np.concatenate([x for x, _ in DataLoader(pairs, 2, shuffle=False)])
    assert xs[:, 0].tolist() == [0, 1, 2, 3, 4]


def test_dataset_without_labels_gives_none():
    class NoLabel(Dataset):
        def prepare(self):
            self.data = np.arange(6, dtype=np.float32).reshape(3, 2)

    x, t = DataLoader(NoLabel(), 2, shuffle=False).next()
    assert t is None
    np.testing.assert_array_equal(x, [[0, 1], [2, 3]])


@pytest.mark.parametrize("bad", [0, -1])
def test_batch_size_must_be_positive(bad):
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(Images(5), bad)


@pytest.mark.parametrize("bad", [2.5, "3", None, True])
def test_batch_size_must_be_int(bad):
    with pytest.raises(TypeError, match="batch_size"):
        DataLoader(Images(5), bad)


def test_numpy_int_batch_size_ok_and_empty_dataset_refused():
    assert DataLoader(Images(5), np.int64(2)).max_iter == 3
    with pytest.raises(ValueError, match="empty"):
        DataLoader(Images(0), 2)
    with pytest.raises(ValueError, match="empty"):
        DataLoader([], 2)
    with pytest.raises(TypeError, match="rng"):
        DataLoader(Images(5), 2, rng="seed")


def test_seq_dataloader_offsets():
    ds = SinCurve(train=False)
    n, b = len(ds), 30
    loader = SeqDataLoader(ds, b)
    assert loader.max_iter == -(-n // b)
    jump = n // b
    for k, (x, t) in enumerate(loader):
        idx = (np.arange(b) * jump + k) % n
        np.testing.assert_array_equal(x, ds.data[idx])
        np.testing.assert_array_equal(t, ds.label[idx])
    assert k == loader.max_iter - 1
    with pytest.raises(ValueError, match="exceed"):
        SeqDataLoader(ds, n + 1)


def test_to_cpu_and_to_gpu():
    cuda = pytest.importorskip("stucrs.cuda")
    loader = DataLoader(Images(4), 2)
    loader.to_cpu()
    assert isinstance(loader.next()[0], np.ndarray)
    if not getattr(cuda, "gpu_enable", False):
        with pytest.raises(RuntimeError, match="CuPy"):
            loader.to_gpu()
        assert loader.gpu is False
        return
    loader.to_gpu()  # pragma: no cover - only with a GPU
    x, t = loader.next()
    assert type(x).__module__.startswith("cupy")
