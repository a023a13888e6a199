"""Prepared MNIST: ``prepare`` (raw IDX .gz -> npz + JSON sidecar) and ``load`` (NumPy only).

``load`` must work in every benchmark environment, DeZero's NumPy 1.23 included, so it uses
nothing but NumPy.  ``prepare`` reads the four IDX files with a tiny reader of its own and
verifies the SHA-256 of each decompressed payload against the standard pins.
"""

import gzip
import hashlib
import zipfile
import json
import os
from pathlib import Path

import numpy as np

from . import contract
from .record import atomic_write, atomic_write_json

MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
MNIST_SHA256 = contract.MNIST_SHA256  # the standard pins (workflow/bench/contract.py)
N_TRAIN, N_TEST = 60000, 10000
_IDX_DTYPES = {0x08: np.uint8}


class DataError(Exception):
    """The data could not be read, or is not what it should be; the message says why."""


def sidecar_path(npz_path):
    """``resources/mnist_prepared.npz`` -> ``resources/mnist_prepared.json``."""
    return Path(npz_path).with_suffix(".json")


def read_idx(payload):
    """Parse one decompressed IDX payload (bytes) into a NumPy array."""
    if len(payload) < 4 or payload[0] != 0 or payload[1] != 0:
        raise DataError("not an IDX file (bad magic number)")
    dtype = _IDX_DTYPES.get(payload[2])
    if dtype is None:
        raise DataError("unsupported IDX element type 0x%02x" % payload[2])
    ndim = payload[3]
    header = 4 + 4 * ndim
    dims = tuple(int.from_bytes(payload[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    count = int(np.prod(dims)) if dims else 0
    if len(payload) - header != count * np.dtype(dtype).itemsize:
        raise DataError("IDX size mismatch: header says %s, payload has %d bytes"
                        % (dims, len(payload) - header))
    return np.frombuffer(payload, dtype=dtype, offset=header).reshape(dims)


def read_raw(mnist_dir, verify=True):
    """Read the four ``.gz`` files of ``mnist_dir``.

    Returns ``(arrays, sha256)``: arrays ``x_train`` uint8 (60000, 28, 28), ``t_train``,
    ``x_test``, ``t_test``, and ``{file name: sha256 of the decompressed payload}``.
    """
    mnist_dir = Path(mnist_dir)
    pins = dict(MNIST_SHA256) if verify else {}
    arrays, digests = {}, {}
    for key, name in MNIST_FILES.items():
        path = mnist_dir / name
        if not path.is_file():
            raise DataError("missing MNIST file %s (point --mnist-dir at the folder holding %s)"
                            % (path, ", ".join(MNIST_FILES.values())))
        try:
            with gzip.open(path, "rb") as f:
                payload = f.read()
        except PermissionError:
            raise DataError("cannot read the MNIST file %s: permission denied (make it readable: "
                            "chmod u+r %s)" % (path, path)) from None
        except (OSError, EOFError) as exc:
            raise DataError("cannot decompress %s: %s" % (path, exc)) from exc
        digest = hashlib.sha256(payload).hexdigest()
        if verify and pins.get(name) and digest != pins[name]:
            raise DataError("SHA-256 mismatch for %s: expected %s, got %s (corrupt or not the "
                            "original MNIST; the pins are for the decompressed payload)"
                            % (path, pins[name], digest))
        arrays[key] = read_idx(payload)
        digests[name] = digest
    out = {"x_train": arrays["train_images"], "t_train": arrays["train_labels"],
           "x_test": arrays["test_images"], "t_test": arrays["test_labels"]}
    return out, digests


def prepare(mnist_dir, out, verify=True):
    """Write ``out`` (npz, no pickle) and its sidecar ``.json``; returns the sidecar dict.

    npz: ``x_train`` float32 (60000, 784) in [0, 1], ``t_train`` int64 (60000,), ``x_test`` float32
    (10000, 784), ``t_test`` int64.  Both files are written atomically (temporary file + rename);
    the sidecar is written last, so its presence means the npz is complete.
    """
    raw, digests = read_raw(mnist_dir, verify=verify)
    arrays = {
        "x_train": (raw["x_train"].reshape(len(raw["x_train"]), -1).astype(np.float32) / 255.0),
        "t_train": raw["t_train"].astype(np.int64),
        "x_test": (raw["x_test"].reshape(len(raw["x_test"]), -1).astype(np.float32) / 255.0),
        "t_test": raw["t_test"].astype(np.int64),
    }
    out = Path(out)
    sidecar = sidecar_path(out)
    if sidecar.exists():
        sidecar.unlink()  # an old sidecar must never vouch for a new npz

    def write_npz(f):
        np.savez(f, **arrays)

    atomic_write(out, write_npz, binary=True)
    meta = {
        "format": 1,
        "source_dir": os.path.abspath(str(mnist_dir)),
        "sha256": digests,  # file name -> SHA-256 of the decompressed IDX payload
        "npz_sha256": file_sha256(out),
        "shapes": {k: list(v.shape) for k, v in arrays.items()},
        "dtypes": {k: str(v.dtype) for k, v in arrays.items()},
    }
    atomic_write_json(sidecar, meta)
    return meta


def read_sidecar(npz_path):
    """The sidecar dict, or ``{}`` when there is none."""
    path = sidecar_path(npz_path)
    if not path.is_file():
        return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_prepared(path):
    """The prepared npz is the one its sidecar vouches for (same SHA-256); else a DataError that
    names the file and how to get a good one."""
    path = Path(path)
    expected = read_sidecar(path).get("npz_sha256")
    remedy = ("delete it (rm %s %s) and run the pipeline again, which prepares it anew (rule prepare), "
              "or run `python -m workflow.bench prepare --mnist-dir DIR --out %s`"
              % (path, sidecar_path(path), path))
    if expected is None:
        raise DataError("prepared data %s has no sidecar %s vouching for it (an interrupted prepare?); %s"
                        % (path, sidecar_path(path), remedy))
    actual = file_sha256(path)
    if actual != expected:
        raise DataError("prepared data %s is truncated or changed: SHA-256 %s, its sidecar says %s; %s"
                        % (path, actual[:16], expected[:16], remedy))


def load(path, train_size=None, test_size=None, verify=True):
    """The prepared arrays, the first ``train_size`` / ``test_size`` examples of each split.

    Returns ``{"x_train", "t_train", "x_test", "t_test"}``: float32 (N, 784) and int64 (N,),
    C-contiguous.  NumPy only.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("prepared data %s not found; create it with `python -m workflow.bench "
                        "prepare --mnist-dir DIR --out %s`" % (path, path))
    if verify:
        check_prepared(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in ("x_train", "t_train", "x_test", "t_test") if k not in z.files]
            if missing:
                raise DataError("%s lacks %s" % (path, ", ".join(missing)))
            arrays = {k: z[k] for k in ("x_train", "t_train", "x_test", "t_test")}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError("cannot read %s (%s: %s): delete it and prepare it again (rule prepare, or "
                        "`python -m workflow.bench prepare`)" % (path, type(exc).__name__, exc)) from exc
    sizes = {"train": train_size, "test": test_size}
    for split, size in sizes.items():
        n_have = len(arrays["x_" + split])
        if size is None:
            continue
        if not 1 <= int(size) <= n_have:
            raise DataError("--%s-size %s out of range 1..%d" % (split, size, n_have))
        for k in ("x_", "t_"):
            arrays[k + split] = arrays[k + split][: int(size)]
    return {
        "x_train": np.ascontiguousarray(arrays["x_train"], dtype=np.float32),
        "t_train": np.ascontiguousarray(arrays["t_train"], dtype=np.int64),
        "x_test": np.ascontiguousarray(arrays["x_test"], dtype=np.float32),
        "t_test": np.ascontiguousarray(arrays["t_test"], dtype=np.int64),
    }
