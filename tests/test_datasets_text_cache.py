"""Shakespear (character ids) from a local text file, and the atomic, pickle-free npz cache."""
import os

import numpy as np
import pytest

from stucrs import datasets


def test_shakespear_from_local_file(tmp_path):
    path = tmp_path / "tiny.txt"
    path.write_text("to be, or not to be", encoding="utf-8")
    ds = datasets.Shakespear(path=str(path))
    text = path.read_text(encoding="utf-8")
    assert len(ds) == len(text) - 1
    decoded = "".join(ds.id_to_char[int(i)] for i in ds.data) + ds.id_to_char[int(ds.label[-1])]
    assert decoded == text
    np.testing.assert_array_equal(ds.data[1:], ds.label[:-1])
    assert ds.char_to_id["t"] == 0 and ds.char_to_id["o"] == 1  # ids in order of first appearance


def test_shakespear_rejects_too_short_text(tmp_path):
    path = tmp_path / "one.txt"
    path.write_text("a", encoding="utf-8")
    with pytest.raises(ValueError, match="at least 2"):
        datasets.Shakespear(path=str(path))


def test_npz_cache_round_trip_is_atomic(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "cache_dir", str(tmp_path))
    assert datasets.load_cache_npz("http://x/y/data.bin", train=True) == (None, None)
    data, label = np.arange(12).reshape(3, 4), np.array([0, 1, 2])
    datasets.save_cache_npz(data, label, "http://x/y/data.bin", train=True)
    assert sorted(os.listdir(tmp_path)) == ["data.bin.train.npz"]
    d, t = datasets.load_cache_npz("data.bin", train=True)
    np.testing.assert_array_equal(d, data)
    np.testing.assert_array_equal(t, label)


def test_npz_cache_failed_save_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "cache_dir", str(tmp_path))

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez_compressed", boom)
    with pytest.raises(OSError, match="disk full"):
        datasets.save_cache_npz(np.zeros(2), np.zeros(2), "f.bin")
    assert os.listdir(tmp_path) == []
