"""stucrs.datasets: Dataset, Spiral, SinCurve, the IDX parser and MNIST from the offline copy."""

import gzip
import hashlib
import os
import struct
from pathlib import Path

import numpy as np
import pytest
from mnist_setup import SKIP_REASON, find_mnist

from stucrs.datasets import (
    MNIST,
    MNIST_FILES,
    MNIST_SHA256,
    Dataset,
    IDXFormatError,
    MNISTError,
    SinCurve,
    Spiral,
    get_spiral,
    load_idx,
    load_mnist_arrays,
)
from stucrs.transforms import Compose, Flatten, Normalize, ToFloat

SHARED_MNIST = find_mnist() or Path("no-mnist-copy")
needs_mnist = pytest.mark.skipif(
    not all((SHARED_MNIST / n).is_file() for n in MNIST_FILES),
    reason=SKIP_REASON,
)


@pytest.fixture(autouse=True)
def no_internet(monkeypatch):
    """Any attempt to open a URL in these tests is a bug."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"test tried to download: {args[0]!r}")

    monkeypatch.setattr("urllib.request.urlopen", refuse)


def idx_bytes(arr, code=0x08, dtype=">u1"):
    arr = np.asarray(arr)
    header = bytes([0, 0, code, arr.ndim]) + struct.pack(">" + "I" * arr.ndim, *arr.shape)
    return header + arr.astype(dtype).tobytes()


# ----------------------------------------------------------------------------- Dataset


class Arrays(Dataset):
    def prepare(self):
        self.data = np.arange(10).reshape(5, 2)
        self.label = np.arange(5)


def test_dataset_getitem_and_len():
    ds = Arrays(transform=lambda x: x * 10, target_transform=lambda t: -t)
    assert len(ds) == 5
    x, t = ds[np.int64(2)]
    np.testing.assert_array_equal(x, [40, 50])
    assert t == -2
    x, t = ds[-1]
    np.testing.assert_array_equal(x, [80, 90])


def test_dataset_without_label_and_errors():
    class NoLabel(Dataset):
        def prepare(self):
            self.data = np.zeros((3, 2))

    x, t = NoLabel()[0]
    assert t is None
    with pytest.raises(TypeError, match="integer"):
        Arrays()[1.5]
    with pytest.raises(TypeError, match="no data"):
        len(Dataset())


# ----------------------------------------------------------------------------- Spiral / SinCurve


def reference_spiral(seed):
    """The book's algorithm, written as a plain double loop (independent of the vectorised code)."""
    rs = np.random.RandomState(seed)
    x = np.zeros((300, 2), dtype=np.float32)
    t = np.zeros(300, dtype=np.int64)
    for j in range(3):
        for i in range(100):
            rate = i / 100
            theta = j * 4.0 + 4.0 * rate + rs.randn() * 0.2
            x[100 * j + i] = [rate * np.sin(theta), rate * np.cos(theta)]
            t[100 * j + i] = j
    order = rs.permutation(300)
    return x[order], t[order]


def test_spiral_shape_labels_and_determinism():
    for train, seed in ((True, 1984), (False, 2020)):
        ds = Spiral(train=train)
        assert ds.data.shape == (300, 2) and ds.data.dtype == np.float32
        assert ds.label.shape == (300,) and ds.label.dtype == np.int64
        assert np.bincount(ds.label).tolist() == [100, 100, 100]
        assert np.all(np.linalg.norm(ds.data, axis=1) < 1.0)
        x, t = get_spiral(train)
        np.testing.assert_array_equal(x, ds.data)
        np.testing.assert_array_equal(t, ds.label)
        rx, rt = reference_spiral(seed)
        np.testing.assert_array_equal(x, rx)
        np.testing.assert_array_equal(t, rt)
    assert not np.array_equal(Spiral(train=True).data, Spiral(train=False).data)


def test_spiral_seeds_global_rng_like_dezero():
    get_spiral(True)
    a = np.random.rand(3)
    get_spiral(True)
    b = np.random.rand(3)
    np.testing.assert_array_equal(a, b)


def test_sincurve():
    np.random.seed(0)
    train = SinCurve(train=True)
    np.random.seed(0)
    again = SinCurve(train=True)
    test = SinCurve(train=False)
    for ds in (train, test):
        assert ds.data.shape == (999, 1) and ds.label.shape == (999, 1)
        assert ds.data.dtype == np.float64
        np.testing.assert_array_equal(ds.data[1:], ds.label[:-1])  # label = next value
    np.testing.assert_array_equal(train.data, again.data)
    grid = np.linspace(0, 2 * np.pi, 1000)
    np.testing.assert_array_equal(test.data[:, 0], np.cos(grid)[:-1])
    noise = train.data[:, 0] - np.sin(grid)[:-1]
    assert np.all(np.abs(noise) <= 0.05) and noise.std() > 0.01


# ----------------------------------------------------------------------------- IDX parser


@pytest.mark.parametrize("compress", [False, True])
def test_load_idx_raw_and_gzip(tmp_path, compress):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    payload = idx_bytes(arr)
    path = tmp_path / ("a.idx.gz" if compress else "a.idx")
    path.write_bytes(gzip.compress(payload) if compress else payload)
    out = load_idx(path)
    np.testing.assert_array_equal(out, arr)
    assert out.dtype == np.uint8 and out.flags.writeable
    np.testing.assert_array_equal(load_idx(path, sha256=hashlib.sha256(payload).hexdigest()), arr)
    with pytest.raises(MNISTError, match="does not match"):
        load_idx(path, sha256="0" * 64)


@pytest.mark.parametrize(
    "code,dtype",
    [(0x09, ">i1"), (0x0B, ">i2"), (0x0C, ">i4"), (0x0D, ">f4"), (0x0E, ">f8")],
)
def test_load_idx_other_types_are_big_endian(tmp_path, code, dtype):
    arr = np.array([[1, -2, 3], [300 if code != 0x09 else 30, 5, -6]])
    (tmp_path / "x").write_bytes(idx_bytes(arr, code, dtype))
    out = load_idx(tmp_path / "x")
    assert out.dtype.isnative and out.dtype == np.dtype(dtype).newbyteorder("=")
    np.testing.assert_array_equal(out, arr)


def test_load_idx_bad_magic(tmp_path):
    (tmp_path / "x").write_bytes(b"\x01\x02\x08\x01" + struct.pack(">I", 1) + b"\x00")
    with pytest.raises(IDXFormatError, match="bad magic"):
        load_idx(tmp_path / "x")
    (tmp_path / "y").write_bytes(b"\x00\x00\x07\x01" + struct.pack(">I", 1) + b"\x00")
    with pytest.raises(IDXFormatError, match="type code 0x07"):
        load_idx(tmp_path / "y")


def test_load_idx_truncated_and_trailing(tmp_path):
    payload = idx_bytes(np.zeros((4, 5), np.uint8))
    (tmp_path / "short").write_bytes(payload[:-3])
    with pytest.raises(IDXFormatError, match=r"truncated IDX data \(shape \(4, 5\) needs 20 bytes, got 17\)"):
        load_idx(tmp_path / "short")
    (tmp_path / "head").write_bytes(payload[:6])
    with pytest.raises(IDXFormatError, match="truncated IDX header"):
        load_idx(tmp_path / "head")
    (tmp_path / "tiny").write_bytes(b"\x00")
    with pytest.raises(IDXFormatError, match="truncated IDX file"):
        load_idx(tmp_path / "tiny")
    (tmp_path / "long").write_bytes(payload + b"\x00")
    with pytest.raises(IDXFormatError, match="unexpected bytes"):
        load_idx(tmp_path / "long")
    gz = gzip.compress(payload)
    (tmp_path / "cut.gz").write_bytes(gz[: len(gz) // 2])
    with pytest.raises(IDXFormatError, match="gzip"):
        load_idx(tmp_path / "cut.gz")


# ----------------------------------------------------------------------------- MNIST (offline copy)


@pytest.fixture(scope="module")
def mnist_train():
    return MNIST(train=True, local_dir=SHARED_MNIST)


@needs_mnist
def test_mnist_train_sanity(mnist_train):
    ds = mnist_train
    assert len(ds) == 60000
    assert ds.data.shape == (60000, 1, 28, 28) and ds.data.dtype == np.uint8
    assert ds.label.shape == (60000,) and ds.label.dtype == np.int64
    assert ds.label[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    s1 = s2 = 0.0
    for chunk in np.array_split(ds.data.reshape(len(ds), -1), 10):  # bounded memory
        c = chunk.astype(np.float64) / 255.0
        s1 += c.sum()
        s2 += np.square(c).sum()
    n = ds.data.size
    mean = s1 / n
    std = np.sqrt(s2 / n - mean**2)
    assert mean == pytest.approx(0.1307, abs=5e-5)
    assert std == pytest.approx(0.3081, abs=5e-5)
    x, t = ds[0]
    assert x.shape == (784,) and x.dtype == np.float32 and t == 5
    assert 0.0 <= x.min() and x.max() == 1.0
    assert MNIST.labels() == {i: str(i) for i in range(10)}


@needs_mnist
def test_mnist_test_split_and_raw_transform(monkeypatch, tmp_path):
    monkeypatch.setenv("STUCRS_MNIST_DIR", str(SHARED_MNIST))  # used as root, read in place
    ds = MNIST(train=False, transform=None)
    assert ds.data.shape == (10000, 1, 28, 28)
    x, t = ds[0]
    assert x.shape == (1, 28, 28) and x.dtype == np.uint8
    assert np.bincount(ds.label).sum() == 10000
    assert isinstance(MNIST(train=False, local_dir=SHARED_MNIST).transform, Compose)


@needs_mnist
def test_load_mnist_arrays(tmp_path):
    x_train, t_train, x_test, t_test = load_mnist_arrays(SHARED_MNIST)
    assert x_train.shape == (60000, 28, 28) and x_train.dtype == np.uint8
    assert t_train.shape == (60000,) and t_train.dtype == np.int64
    assert x_test.shape == (10000, 28, 28) and t_test.shape == (10000,)
    assert t_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    with pytest.raises(MNISTError, match="not found"):
        load_mnist_arrays(tmp_path)


@needs_mnist
def test_mnist_corrupt_local_copy_is_refused(tmp_path):
    name = "t10k-labels-idx1-ubyte.gz"
    payload = bytearray(gzip.decompress((SHARED_MNIST / name).read_bytes()))
    payload[100] ^= 1
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes((SHARED_MNIST / "t10k-images-idx3-ubyte.gz").read_bytes())
    (tmp_path / name[:-3]).write_bytes(bytes(payload))  # raw IDX file is accepted too
    with pytest.raises(MNISTError) as err:
        MNIST(train=False, local_dir=tmp_path)
    msg = str(err.value)
    assert name in msg and MNIST_SHA256[name] in msg and hashlib.sha256(payload).hexdigest() in msg
    assert "STUCRS_MNIST_DIR" in msg and "local_dir=" in msg and "mnist_dir=" in msg
    assert sorted(os.listdir(tmp_path)) == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte"]


@needs_mnist
def test_mnist_default_transform_matches_dezero_recipe(mnist_train):
    recipe = Compose([Flatten(), ToFloat(), Normalize(0.0, 255.0)])
    x, _ = mnist_train[123]
    np.testing.assert_array_equal(x, recipe(mnist_train.data[123]))
