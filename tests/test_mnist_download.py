"""fetch_mnist against a local HTTP server on 127.0.0.1 (never the internet).

Most tests serve small synthetic IDX files and monkeypatch the SHA-256 pins; one test serves the real
offline copy with the real pins.
"""

import gzip
import hashlib
import os
import socket
import struct
import threading
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from mnist_setup import SKIP_REASON, find_mnist

from stucrs import datasets
from stucrs.datasets import MNIST, MNIST_FILES, MNISTError, fetch_mnist, load_mnist_arrays

SHARED_MNIST = find_mnist() or Path("no-mnist-copy")
LABELS = "t10k-labels-idx1-ubyte.gz"
IMAGES = "t10k-images-idx3-ubyte.gz"
HINTS = ("local_dir=", "STUCRS_MNIST_DIR", "mnist_dir=")


def idx_bytes(arr):
    arr = np.asarray(arr, dtype=np.uint8)
    return bytes([0, 0, 8, arr.ndim]) + struct.pack(">" + "I" * arr.ndim, *arr.shape) + arr.tobytes()


def sha(data):
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(autouse=True)
def only_localhost(monkeypatch):
    """Refuse any URL that is not on 127.0.0.1, and keep proxies out of the way."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.delenv("STUCRS_MNIST_DIR", raising=False)
    real = urllib.request.urlopen

    def guarded(req, *args, **kwargs):
        url = req.full_url if isinstance(req, urllib.request.Request) else req
        host = urllib.parse.urlsplit(url).hostname
        assert host == "127.0.0.1", f"test tried to reach {url}"
        return real(req, *args, **kwargs)

    monkeypatch.setattr("urllib.request.urlopen", guarded)


@pytest.fixture
def synthetic(monkeypatch):
    """Small IDX payloads for the test split, with the pins patched to match them."""
    rng = np.random.default_rng(0)
    labels = idx_bytes(rng.integers(0, 10, size=300))
    images = idx_bytes(rng.integers(0, 256, size=(300, 28, 28)))
    monkeypatch.setitem(datasets.MNIST_SHA256, LABELS, sha(labels))
    monkeypatch.setitem(datasets.MNIST_SHA256, IMAGES, sha(images))
    return {LABELS: labels, IMAGES: images}


class Server:
    """A tiny HTTP server: routes map a path to (mode, body)."""

    def __init__(self):
        self.routes = {}
        self.requests = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                owner.requests.append(self.path)
                mode, body = owner.routes.get(self.path, ("404", b""))
                if mode == "drop_once":
                    owner.routes[self.path] = ("ok", body)
                    mode = "drop"
                if mode == "404":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if mode == "ok":
                    self.wfile.write(body)
                    return
                # "drop": promise the whole body, send half, hang up
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def serve(self, prefix, name, body, mode="ok"):
        self.routes[f"/{prefix}/{name}"] = (mode, body)
        return self.url + prefix + "/"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def closed_port_url():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}/mnist/"


def fetch(dest, **kw):
    kw.setdefault("names", [LABELS])
    kw.setdefault("backoff", 0)
    kw.setdefault("quiet", True)
    kw.setdefault("timeout", 5)
    return fetch_mnist(dest, **kw)


def assert_error_message(msg, name, expected, actual=None):
    assert name in msg
    assert expected in msg
    if actual is not None:
        assert actual in msg
    for hint in HINTS:
        assert hint in msg


# ----------------------------------------------------------------------------- downloads


def test_good_file(server, synthetic, tmp_path):
    body = gzip.compress(synthetic[LABELS])
    mirror = server.serve("good", LABELS, body)
    dest = tmp_path / "dest"
    out = fetch(dest, mirrors=[mirror])
    assert out == {LABELS: str(dest / LABELS)}
    assert (dest / LABELS).read_bytes() == body
    assert os.listdir(dest) == [LABELS]
    assert server.requests == [f"/good/{LABELS}"]


@pytest.mark.skipif(not all((SHARED_MNIST / n).is_file() for n in MNIST_FILES), reason=SKIP_REASON)
def test_real_files_with_real_pins(server, tmp_path, capsys):
    for name in MNIST_FILES:  # recompressed .gz bytes: only the decompressed payload matches the pins
        mirror = server.serve("mnist", name, (SHARED_MNIST / name).read_bytes())
    dest = tmp_path / "dest"
    out = fetch_mnist(dest, mirrors=[mirror], backoff=0, timeout=5)
    assert sorted(out) == sorted(MNIST_FILES)
    assert sorted(os.listdir(dest)) == sorted(MNIST_FILES)
    assert "downloading" in capsys.readouterr().err
    x_train, t_train, x_test, t_test = load_mnist_arrays(dest)
    assert t_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert x_test.shape == (10000, 28, 28)
    # a second call reuses the verified files without any request
    n = len(server.requests)
    fetch_mnist(dest, mirrors=[closed_port_url()], backoff=0)
    assert len(server.requests) == n


def test_wrong_hash(server, synthetic, tmp_path):
    bad = bytearray(synthetic[LABELS])
    bad[-1] ^= 0xFF
    mirror = server.serve("bad", LABELS, gzip.compress(bytes(bad)))
    dest = tmp_path / "dest"
    with pytest.raises(MNISTError) as err:
        fetch(dest, mirrors=[mirror], retries=3)
    assert_error_message(str(err.value), LABELS, sha(synthetic[LABELS]), sha(bytes(bad)))
    assert mirror in str(err.value)
    assert os.listdir(dest) == []
    assert len(server.requests) == 1  # wrong bytes: no retry on the same mirror


def test_connection_dropped_mid_file(server, synthetic, tmp_path):
    mirror = server.serve("drop", LABELS, gzip.compress(synthetic[LABELS]), mode="drop")
    waits = []
    dest = tmp_path / "dest"
    with pytest.raises(MNISTError) as err:
        fetch(dest, mirrors=[mirror], retries=2, backoff=lambda attempt: waits.append(attempt) or 0)
    msg = str(err.value)
    assert_error_message(msg, LABELS, sha(synthetic[LABELS]))
    assert "closed early" in msg and "none (no mirror delivered a complete file)" in msg
    assert len(server.requests) == 2 and waits == [1]
    assert os.listdir(dest) == []


def test_connection_dropped_once_then_retried(server, synthetic, tmp_path):
    body = gzip.compress(synthetic[LABELS])
    mirror = server.serve("flaky", LABELS, body, mode="drop_once")
    dest = tmp_path / "dest"
    fetch(dest, mirrors=[mirror], retries=3)
    assert (dest / LABELS).read_bytes() == body
    assert len(server.requests) == 2
    assert os.listdir(dest) == [LABELS]


def test_first_mirror_down_second_up(server, synthetic, tmp_path):
    down = closed_port_url()
    up = server.serve("up", LABELS, gzip.compress(synthetic[LABELS]))
    waits = []
    dest = tmp_path / "dest"
    out = fetch(dest, mirrors=[down, up], retries=2, backoff=lambda a: waits.append(a) or 0)
    assert out[LABELS] == str(dest / LABELS)
    assert waits == [1]  # two attempts on the dead mirror, one wait between them
    assert server.requests == [f"/up/{LABELS}"]
    assert os.listdir(dest) == [LABELS]


def test_http_404_moves_to_next_mirror_without_retry(server, synthetic, tmp_path):
    missing = server.url + "missing/"
    up = server.serve("up", LABELS, gzip.compress(synthetic[LABELS]))
    fetch(tmp_path, mirrors=[missing, up], retries=3)
    assert server.requests == [f"/missing/{LABELS}", f"/up/{LABELS}"]


def test_all_mirrors_down(synthetic, tmp_path):
    mirrors = [closed_port_url(), closed_port_url()]
    dest = tmp_path / "dest"
    with pytest.raises(MNISTError) as err:
        fetch(dest, mirrors=mirrors, retries=2)
    msg = str(err.value)
    assert_error_message(msg, LABELS, sha(synthetic[LABELS]))
    for m in mirrors:
        assert m + LABELS in msg
    assert "none (no mirror delivered a complete file)" in msg
    assert msg.count("(attempt") == 4
    assert os.listdir(dest) == []


# ----------------------------------------------------------------------------- local copies and cache


@pytest.mark.parametrize("raw", [False, True])
def test_local_copy(synthetic, tmp_path, raw):
    local = tmp_path / "local"
    local.mkdir()
    fname = LABELS[:-3] if raw else LABELS
    content = synthetic[LABELS] if raw else gzip.compress(synthetic[LABELS])
    (local / fname).write_bytes(content)
    dest = tmp_path / "dest"
    out = fetch(dest, local_dir=local, mirrors=[closed_port_url()])
    assert out[LABELS] == str(dest / fname)
    assert (dest / fname).read_bytes() == content
    assert os.listdir(dest) == [fname]


def test_corrupt_local_file(synthetic, tmp_path):
    local = tmp_path / "local"
    local.mkdir()
    bad = synthetic[LABELS][:-1] + b"\x0b"
    (local / LABELS).write_bytes(gzip.compress(bad))
    dest = tmp_path / "dest"
    with pytest.raises(MNISTError) as err:
        fetch(dest, local_dir=local)
    msg = str(err.value)
    assert_error_message(msg, LABELS, sha(synthetic[LABELS]), sha(bad))
    assert str(local / LABELS) in msg
    assert os.listdir(dest) == []


def test_truncated_local_file(synthetic, tmp_path):
    local = tmp_path / "local"
    local.mkdir()
    gz = gzip.compress(synthetic[LABELS])
    (local / LABELS).write_bytes(gz[: len(gz) // 2])
    dest = tmp_path / "dest"
    with pytest.raises(MNISTError) as err:
        fetch(dest, local_dir=local)
    msg = str(err.value)
    assert_error_message(msg, LABELS, sha(synthetic[LABELS]))
    assert "truncated" in msg
    assert os.listdir(dest) == []


def test_missing_local_file(synthetic, tmp_path):
    with pytest.raises(MNISTError, match="not found in local_dir"):
        fetch(tmp_path / "dest", local_dir=tmp_path / "nowhere")
    assert os.listdir(tmp_path / "dest") == []


def test_valid_cached_file_is_reused(synthetic, tmp_path):
    (tmp_path / LABELS).write_bytes(gzip.compress(synthetic[LABELS]))
    before = os.stat(tmp_path / LABELS).st_mtime_ns
    out = fetch(tmp_path, mirrors=[closed_port_url()])  # would fail if it tried to download
    assert out[LABELS] == str(tmp_path / LABELS)
    assert os.stat(tmp_path / LABELS).st_mtime_ns == before


def test_corrupt_cached_file_is_replaced(server, synthetic, tmp_path):
    (tmp_path / LABELS).write_bytes(gzip.compress(b"\x00\x00\x08\x01garbage"))
    body = gzip.compress(synthetic[LABELS])
    mirror = server.serve("good", LABELS, body)
    with pytest.warns(RuntimeWarning, match="corrupt"):
        fetch(tmp_path, mirrors=[mirror])
    assert (tmp_path / LABELS).read_bytes() == body
    assert os.listdir(tmp_path) == [LABELS]


def test_argument_checks(tmp_path):
    with pytest.raises(ValueError, match="retries"):
        fetch_mnist(tmp_path, retries=0)
    with pytest.raises(ValueError, match="unknown MNIST file"):
        fetch_mnist(tmp_path, names=["nope.gz"])


# ----------------------------------------------------------------------------- the MNIST dataset


def test_mnist_dataset_downloads_into_root(server, synthetic, tmp_path):
    for name in (LABELS, IMAGES):
        mirror = server.serve("m", name, gzip.compress(synthetic[name]))
    root = tmp_path / "cache"
    ds = MNIST(train=False, root=root, mirrors=[mirror])
    assert ds.data.shape == (300, 1, 28, 28) and ds.data.dtype == np.uint8
    np.testing.assert_array_equal(ds.label, np.frombuffer(synthetic[LABELS], np.uint8, offset=8))
    x, t = ds[0]
    assert x.shape == (784,) and x.dtype == np.float32
    assert sorted(os.listdir(root)) == sorted([LABELS, IMAGES])
    n = len(server.requests)
    MNIST(train=False, root=root, mirrors=[closed_port_url()])  # served from the cache now
    assert len(server.requests) == n


def test_env_var_names_a_local_copy(synthetic, tmp_path, monkeypatch):
    env_dir = tmp_path / "env"
    env_dir.mkdir()
    for name in (LABELS, IMAGES):
        (env_dir / name).write_bytes(gzip.compress(synthetic[name]))
    monkeypatch.setenv("STUCRS_MNIST_DIR", str(env_dir))
    assert datasets.env_mnist_dir() == str(env_dir)
    # the dataset reads the folder in place: no copy, no download
    ds = MNIST(train=False, mirrors=[closed_port_url()])
    assert len(ds) == 300
    # fetch_mnist copies from it (verified) instead of downloading
    dest = tmp_path / "dest"
    fetch(dest, names=[LABELS, IMAGES], mirrors=[closed_port_url()])
    assert sorted(os.listdir(dest)) == sorted([LABELS, IMAGES])
    # a corrupt file there is an error naming the variable, not a silent download
    (env_dir / LABELS).write_bytes(gzip.compress(synthetic[LABELS][:-1] + b"\x07"))
    with pytest.raises(MNISTError) as err:
        MNIST(train=False, mirrors=[closed_port_url()])
    assert_error_message(str(err.value), LABELS, sha(synthetic[LABELS]))
