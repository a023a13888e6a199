"""load_weights is all-or-nothing: any bad file leaves the model untouched and names the file."""
import zipfile

import numpy as np
import pytest

import stucrs.layers as L
from stucrs.models import MLP


def _model(seed=0):
    np.random.seed(seed)
    m = MLP((4, 3))
    m(np.zeros((2, 5), np.float32))
    return m


def _snapshot(m):
    params = {}
    m._flatten_params(params)
    return {k: None if p.data is None else p.data.copy() for k, p in params.items()}


def _assert_untouched(m, before):
    assert {k: v for k, v in _snapshot(m).items()}.keys() == before.keys()
    for k, v in _snapshot(m).items():
        if before[k] is None:
            assert v is None, k
        else:
            np.testing.assert_array_equal(v, before[k], err_msg=k)


def _saved(tmp_path, m):
    return m.save_weights(tmp_path / "w")


def test_roundtrip_and_fresh_model_like_step53(tmp_path):
    m = _model()
    path = _saved(tmp_path, m)
    fresh = MLP((4, 3))  # parameters not initialised yet: shapes come from the file
    fresh.load_weights(path)
    for (k, a), (_, b) in zip(sorted(_snapshot(m).items()), sorted(_snapshot(fresh).items())):
        np.testing.assert_array_equal(a, b, err_msg=k)
    assert fresh.l0.W.dtype == np.float32


def test_string_array_last_changes_nothing(tmp_path):
    m = _model()
    arrays = {k: v for k, v in _snapshot(_model(seed=1)).items()}
    last = sorted(arrays)[-1]
    arrays[last] = np.array(["a"] * arrays[last].size).reshape(arrays[last].shape)
    np.savez(tmp_path / "bad.npz", **arrays)
    before = _snapshot(m)
    with pytest.raises(ValueError, match=r"bad\.npz.*cannot be converted|cannot be converted.*bad\.npz") as e:
        m.load_weights(tmp_path / "bad.npz")
    assert repr(last) in str(e.value)
    _assert_untouched(m, before)


def test_uninitialised_parameters_take_only_floats_of_the_right_rank(tmp_path):
    good = _snapshot(_model())
    bad_int = dict(good, **{"l0/W": np.zeros((7, 4), np.int64)})
    np.savez(tmp_path / "int.npz", **bad_int)
    fresh = MLP((4, 3))
    with pytest.raises(ValueError, match="floating-point"):
        fresh.load_weights(tmp_path / "int.npz")
    assert fresh.l0.W.data is None and fresh.l0.b.data is not None
    bad_rank = dict(good, **{"l0/W": np.zeros((5, 4, 1), np.float32)})
    np.savez(tmp_path / "rank.npz", **bad_rank)
    with pytest.raises(ValueError, match=r"3 dimensions .* Linear\.W has 2"):
        fresh.load_weights(tmp_path / "rank.npz")
    assert fresh.l0.W.data is None
    # float64 in the file, float32 layer: cast to the layer's dtype
    np.savez(tmp_path / "f64.npz", **{k: v.astype(np.float64) for k, v in good.items()})
    fresh.load_weights(tmp_path / "f64.npz")
    assert fresh.l0.W.dtype == np.float32


@pytest.mark.parametrize("damage", ["truncated", "empty", "crc", "not_zip"])
def test_broken_files_name_the_file_and_change_nothing(tmp_path, damage):
    m = _model()
    path = _saved(tmp_path, _model(seed=3))
    data = open(path, "rb").read()
    if damage == "truncated":
        open(path, "wb").write(data[: len(data) // 2])
    elif damage == "empty":
        open(path, "wb").write(b"")
    elif damage == "crc":
        with zipfile.ZipFile(path) as z:
            info = z.infolist()[0]
        start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra) + 80
        open(path, "wb").write(data[:start] + bytes([data[start] ^ 0xFF]) + data[start + 1:])
    else:
        open(path, "wb").write(b"this is not an npz archive at all" * 10)
    before = _snapshot(m)
    with pytest.raises(ValueError) as e:
        m.load_weights(path)
    assert str(path) in str(e.value) and "load_weights" in str(e.value)
    assert "Traceback" not in str(e.value)
    _assert_untouched(m, before)


def test_shape_mismatch_still_named(tmp_path):
    m = _model()
    other = MLP((6, 3))
    other(np.zeros((1, 5), np.float32))
    path = _saved(tmp_path, other)
    before = _snapshot(m)
    with pytest.raises(ValueError, match="shape"):
        m.load_weights(path)
    _assert_untouched(m, before)


def test_conv_layer_rank_from_file(tmp_path):
    conv = L.Conv2d(2, 3, in_channels=1)
    conv(np.zeros((1, 1, 5, 5), np.float32))
    path = conv.save_weights(tmp_path / "c")
    fresh = L.Conv2d(2, 3)
    fresh.load_weights(path)
    assert fresh.W.shape == (2, 1, 3, 3)
