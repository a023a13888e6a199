"""データセット (Spiral, SinCurve, MNIST) と、検証付きの MNIST 取得。 / Datasets and verified MNIST download.

DeZero と同じ名前・同じ振る舞いのデータセットを提供します。

* :class:`Dataset` — 基底クラス。``data`` と ``label`` にデータ全体を配列で持ち、
  ``dataset[i]`` で変換済みの 1 サンプル ``(x, t)`` を返します。
* :class:`Spiral` / :func:`get_spiral` — 本の 3 本腕のスパイラル (2 次元, 3 クラス × 100 点)。
* :class:`SinCurve` — 時系列の例 (学習用はノイズ入りの sin、テスト用はノイズなしの cos。DeZero と同じ)。
* :class:`MNIST` — 手書き数字。IDX ファイル (gzip でも非圧縮でも可) を読みます。

MNIST のファイルは、展開後の中身 (IDX ペイロード) の SHA-256 を :data:`MNIST_SHA256` と照合してから
使います。手元にない場合は :func:`fetch_mnist` がミラーから順にダウンロードします。
ネットワークのない環境では、4 つのファイルを置いたフォルダを ``local_dir=`` 引数か
環境変数 ``STUCRS_MNIST_DIR`` で指定してください (パイプラインでは ``--config mnist_dir=PATH``)。
"""

import gzip
import hashlib
import operator
import os
import shutil
import struct
import sys
import tempfile
import time
import warnings
import zlib

import numpy as np

from .transforms import Compose, Flatten, Normalize, ToFloat, _Identity

__all__ = [
    "Dataset",
    "Spiral",
    "get_spiral",
    "SinCurve",
    "MNIST",
    "MNISTError",
    "IDXFormatError",
    "MNIST_FILES",
    "MNIST_SHA256",
    "DEFAULT_MIRRORS",
    "MNIST_ENV_VAR",
    "default_mnist_dir",
    "env_mnist_dir",
    "fetch_mnist",
    "load_idx",
    "load_mnist_arrays",
    "Shakespear",
    "load_cache_npz",
    "save_cache_npz",
    "cache_dir",
    "get_file",
]


# =============================================================================
# Dataset base class
# =============================================================================


class Dataset:
    """データセットの基底クラス。 / Base class of datasets.

    サブクラスは :meth:`prepare` で ``self.data`` (と、あれば ``self.label``) に分割全体の配列を
    入れます。先頭の軸がサンプルの軸です。``DataLoader`` はこの配列からバッチをまとめて
    取り出します (``data[idx]``)。配列を持たず ``__getitem__`` を上書きするデータセットも使えます
    (その場合は 1 サンプルずつ取り出されます)。

    Args:
        train (bool): 学習用 (``True``) かテスト用 (``False``) か。
        transform: 入力 ``x`` に適用する変換 (1 サンプル用の関数、または
            :class:`stucrs.transforms.Transform`)。``None`` なら何もしません。
        target_transform: ラベル ``t`` に適用する変換。``None`` なら何もしません。

    Attributes:
        data: 入力の配列 (サンプル数が先頭の軸)。変換は適用されていません。
        label: ラベルの配列。ラベルがなければ ``None``。
    """

    def __init__(self, train=True, transform=None, target_transform=None):
        self.train = train
        self.transform = _Identity() if transform is None else transform
        self.target_transform = _Identity() if target_transform is None else target_transform
        self.data = None
        self.label = None
        self.prepare()

    def __getitem__(self, index):
        """``index`` 番目のサンプル ``(x, t)`` を変換して返します (ラベルがなければ ``t`` は ``None``)。"""
        try:
            index = operator.index(index)
        except TypeError:
            raise TypeError(
                f"{type(self).__name__} index must be an integer, got {type(index).__name__}; "
                "use DataLoader (or dataset.data[idx]) for batches"
            ) from None
        x = self.transform(self.data[index])
        if self.label is None:
            return x, None
        return x, self.target_transform(self.label[index])

    def __len__(self):
        if self.data is None:
            raise TypeError(
                f"{type(self).__name__} has no data array (data is None); "
                "a dataset without arrays must define __len__ and __getitem__"
            )
        return len(self.data)

    def prepare(self):
        """``self.data`` と ``self.label`` を用意します (サブクラスで上書き)。 / Fill data and label."""


# =============================================================================
# Toy datasets
# =============================================================================


def get_spiral(train=True):
    """本の 3 本腕スパイラルのデータを返します。 / The book's three-arm spiral data.

    3 クラス × 100 点、2 次元。点の並びはシャッフル済みです。学習用は seed 1984、テスト用は
    seed 2020 で作るので、何度呼んでも同じで、学習用とテスト用は異なります。
    DeZero と同じ値になるよう、DeZero と同じく **グローバルな** ``numpy.random`` をその seed で
    初期化してから乱数を引きます (この関数の後の ``np.random`` の乱数列も DeZero と一致します)。

    Args:
        train (bool): 学習用なら ``True``。

    Returns:
        tuple: ``(x, t)``。``x`` は float32 の (300, 2)、``t`` は int64 の (300,) (値は 0, 1, 2)。
    """
    seed = 1984 if train else 2020
    np.random.seed(seed)
    n_per_class, n_class = 100, 3
    rate = np.arange(n_per_class) / n_per_class  # 0.00, 0.01, ..., 0.99
    # one normal draw per point, class by class (the same order as the book's double loop)
    noise = np.random.randn(n_class, n_per_class)
    cls = np.arange(n_class)[:, None]
    theta = cls * 4.0 + 4.0 * rate + noise * 0.2
    radius = 1.0 * rate
    x = np.empty((n_class * n_per_class, 2), dtype=np.float32)
    x[:, 0] = (radius * np.sin(theta)).ravel()
    x[:, 1] = (radius * np.cos(theta)).ravel()
    t = np.repeat(np.arange(n_class, dtype=np.int64), n_per_class)
    order = np.random.permutation(n_class * n_per_class)
    return x[order], t[order]


class Spiral(Dataset):
    """スパイラルのデータセット (:func:`get_spiral`)。 / The spiral dataset.

    ``data`` は float32 の (300, 2)、``label`` は int64 の (300,)。
    """

    def prepare(self):
        self.data, self.label = get_spiral(self.train)


class SinCurve(Dataset):
    """sin 波の時系列データセット (RNN/LSTM 用)。 / Sine-wave time series for RNNs.

    0 から 2π を 1000 点に分けた波形で、``data[i]`` の次の値 ``label[i] = 波形[i+1]`` を予測する
    問題です。学習用は ``sin`` に一様ノイズ (±0.05) を加えたもの、テスト用はノイズのない ``cos``
    です (DeZero と同じ)。ノイズはグローバルな ``numpy.random`` から引きます (DeZero と同じ;
    再現したいときは先に ``np.random.seed`` を呼んでください)。

    ``data`` と ``label`` は float64 の (999, 1) (DeZero と同じ型)。
    """

    def prepare(self):
        n = 1000
        grid = np.linspace(0, 2 * np.pi, n)
        noise = np.random.uniform(-0.05, 0.05, size=grid.shape)
        wave = np.sin(grid) + noise if self.train else np.cos(grid)
        wave = wave.astype(np.float64)
        self.data = wave[:-1, np.newaxis]
        self.label = wave[1:, np.newaxis]


# =============================================================================
# MNIST: file names, pins, mirrors
# =============================================================================

#: MNIST の 4 つのファイル名 (学習画像, 学習ラベル, テスト画像, テストラベル)。 / The four MNIST file names.
MNIST_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)

#: 各ファイルの **展開後** の IDX ペイロードの SHA-256。 / SHA-256 of each decompressed IDX payload.
MNIST_SHA256 = {
    "train-images-idx3-ubyte.gz": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte.gz": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte.gz": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte.gz": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

#: ダウンロード元のミラー (この順に試します)。 / Download mirrors, tried in order.
DEFAULT_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)

#: 手元の MNIST のフォルダを指定する環境変数。 / Environment variable naming a local MNIST copy.
MNIST_ENV_VAR = "STUCRS_MNIST_DIR"

_LOCAL_COPY_HINT = (
    "To use a local copy instead, put the four MNIST files (gzip or raw IDX) in a folder PATH and "
    "pass local_dir=PATH (MNIST(local_dir=PATH) or fetch_mnist(dest, local_dir=PATH)), "
    f"or set the environment variable {MNIST_ENV_VAR}=PATH, "
    "or run the pipeline with --config mnist_dir=PATH."
)


class MNISTError(RuntimeError):
    """MNIST のファイルを用意・検証できなかったときの例外。 / MNIST files could not be obtained or verified."""


class IDXFormatError(MNISTError, ValueError):
    """IDX ファイルの形式が正しくないときの例外。 / A malformed (or truncated) IDX file."""


def default_mnist_dir():
    """ダウンロードしたファイルを置く既定のキャッシュフォルダ ``~/.stucrs/mnist``。 / The default cache folder."""
    return os.path.join(os.path.expanduser("~"), ".stucrs", "mnist")


def env_mnist_dir():
    """環境変数 ``STUCRS_MNIST_DIR`` のフォルダ (なければ ``None``)。 / The folder named by ``STUCRS_MNIST_DIR``.

    設定されていれば、そのフォルダを手元のコピー (``local_dir``) として使います。
    """
    env = os.environ.get(MNIST_ENV_VAR)
    return os.path.expanduser(env) if env else None


# =============================================================================
# IDX reading
# =============================================================================

_GZIP_MAGIC = b"\x1f\x8b"
_IDX_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile)
_CHUNK = 1 << 20


def _open_payload(path):
    """gzip なら展開しながら、非圧縮ならそのまま読むファイルを開きます。"""
    try:
        f = open(path, "rb")
    except PermissionError:
        raise MNISTError(f"cannot read the MNIST file {path}: permission denied. Make it readable "
                         f"(chmod u+r {path}) or point STUCRS_MNIST_DIR at another copy") from None
    try:
        head = f.read(2)
        f.seek(0)
    except BaseException:
        f.close()
        raise
    if head == _GZIP_MAGIC:
        return gzip.GzipFile(fileobj=f, mode="rb"), f
    return f, f


def _read_exact(f, n):
    """ちょうど ``n`` バイト読みます (足りなければ読めた分だけ)。"""
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = f.readinto(view[got:])
        if not k:
            break
        got += k
    return buf, got


def _parse_idx(f, source, hasher=None):
    """開いたストリームから IDX 配列を読みます。 / Parse one IDX stream."""
    try:
        magic, got = _read_exact(f, 4)
        if got < 4:
            raise IDXFormatError(f"{source}: truncated IDX file (only {got} bytes, the header needs 4)")
        if magic[0] != 0 or magic[1] != 0:
            raise IDXFormatError(
                f"{source}: not an IDX file (bad magic number 0x{bytes(magic).hex()}; "
                "an IDX file starts with two zero bytes, a type code and the number of dimensions)"
            )
        code, ndim = magic[2], magic[3]
        if code not in _IDX_TYPES:
            raise IDXFormatError(f"{source}: unknown IDX data type code 0x{code:02x} in the magic number")
        if ndim == 0:
            raise IDXFormatError(f"{source}: IDX header declares 0 dimensions")
        dims_raw, got = _read_exact(f, 4 * ndim)
        if got < 4 * ndim:
            raise IDXFormatError(f"{source}: truncated IDX header (expected {ndim} dimension sizes)")
        dims = struct.unpack(">" + "I" * ndim, bytes(dims_raw))
        dtype = _IDX_TYPES[code]
        nbytes = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
        data = np.empty(nbytes, dtype=np.uint8)
        view = memoryview(data)
        got = 0
        while got < nbytes:  # bounded reads: GzipFile.readinto(huge) would build a second full copy
            k = f.readinto(view[got:got + _CHUNK])
            if not k:
                break
            got += k
        if got < nbytes:
            raise IDXFormatError(
                f"{source}: truncated IDX data (shape {dims} needs {nbytes} bytes, got {got})"
            )
        extra = f.read(1)
        if extra:
            raise IDXFormatError(f"{source}: unexpected bytes after the IDX data of shape {dims}")
    except _GZIP_ERRORS as e:
        raise IDXFormatError(f"{source}: corrupt or truncated gzip stream ({e})") from None
    if hasher is not None:
        hasher.update(bytes(magic))
        hasher.update(bytes(dims_raw))
        hasher.update(view)
    arr = data.view(dtype).reshape(dims)
    if not dtype.isnative:
        arr = arr.astype(dtype.newbyteorder("="))
    return arr


def load_idx(path, sha256=None):
    """IDX ファイル (gzip か非圧縮) を NumPy 配列として読みます。 / Read an IDX file (gzip or raw).

    マジックナンバー、次元、データの長さを確かめ、形式がおかしければ :class:`IDXFormatError` を
    送出します。

    Args:
        path: ファイルのパス。先頭が gzip のマジック (``1f 8b``) なら展開して読みます。
        sha256 (str, optional): 展開後の中身の SHA-256。与えると照合し、違えば :class:`MNISTError`。

    Returns:
        numpy.ndarray: ヘッダの形と型の配列 (バイト順はネイティブ、書き込み可能)。
    """
    path = os.fspath(path)
    hasher = hashlib.sha256() if sha256 is not None else None
    stream, raw = _open_payload(path)
    try:
        arr = _parse_idx(stream, path, hasher)
    finally:
        stream.close()
        raw.close()
    if hasher is not None:
        actual = hasher.hexdigest()
        if actual != sha256.lower():
            raise MNISTError(
                f"{path}: SHA-256 of the decompressed content does not match\n"
                f"  expected: {sha256}\n  actual:   {actual}"
            )
    return arr


def _payload_sha256(path):
    """展開後の中身の SHA-256 を返します。 / SHA-256 of the decompressed content.

    Returns:
        tuple: ``(hexdigest, problem)``。gzip が壊れていれば ``problem`` に説明が入り、
        ``hexdigest`` は読めたところまでのハッシュです。
    """
    h = hashlib.sha256()
    n = 0
    problem = None
    try:
        stream, raw = _open_payload(path)
    except OSError as e:
        return None, f"cannot open ({e})"
    try:
        while True:
            chunk = stream.read(_CHUNK)
            if not chunk:
                break
            h.update(chunk)
            n += len(chunk)
    except _GZIP_ERRORS as e:
        problem = f"corrupt or truncated gzip stream after {n} decompressed bytes: {e}"
    except OSError as e:
        problem = f"read error after {n} bytes: {e}"
    finally:
        stream.close()
        raw.close()
    return h.hexdigest(), problem


def _check_file(path, name):
    """``path`` が ``name`` の正しい中身か確かめます。問題がなければ ``None``、あれば説明。"""
    expected = MNIST_SHA256[name]
    actual, problem = _payload_sha256(path)
    if problem is None and actual == expected:
        return None
    desc = f"expected SHA-256 (decompressed): {expected}\n  actual SHA-256:                  {actual}"
    if problem:
        desc += f" (of the readable part only: {problem})"
    return desc


def _candidates(folder, name):
    """フォルダ内で ``name`` として使えるファイル (gzip 版、次に非圧縮版)。"""
    names = [name]
    if name.endswith(".gz"):
        names.append(name[:-3])
    return [os.path.join(folder, n) for n in names]


def _find(folder, name):
    for p in _candidates(folder, name):
        if os.path.isfile(p):
            return p
    return None


def _remove_quietly(path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
    except OSError:  # pragma: no cover - best effort cleanup
        pass


# =============================================================================
# fetch_mnist
# =============================================================================


class _IncompleteDownload(OSError):
    pass


def _download_to(url, fileobj, timeout):
    """``url`` を ``fileobj`` へ書き出します。途中で切れたら例外。"""
    import http.client
    import urllib.request  # imported lazily: keeps ``import stucrs.datasets`` fast

    req = urllib.request.Request(url, headers={"User-Agent": "stucrs-datasets"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        length = resp.headers.get("Content-Length")
        received = 0
        while True:
            try:
                chunk = resp.read(1 << 16)
            except http.client.IncompleteRead as e:
                received += len(e.partial)
                raise _IncompleteDownload(
                    f"connection closed early: got {received} of {length} bytes"
                ) from None
            if not chunk:
                break
            fileobj.write(chunk)
            received += len(chunk)
        if length is not None and received != int(length):
            raise _IncompleteDownload(f"connection closed early: got {received} of {length} bytes")
    return received


def _backoff_seconds(backoff, attempt):
    if backoff is None:
        return 0.0
    if callable(backoff):
        return float(backoff(attempt))
    return float(backoff) * (2 ** (attempt - 1))


def _sleep(seconds):
    if seconds > 0:
        time.sleep(seconds)


def _mkstemp(dest_dir, name):
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=dest_dir)
    return os.fdopen(fd, "wb"), tmp


def _say(msg, quiet):
    if not quiet:
        print(f"stucrs.datasets: {msg}", file=sys.stderr, flush=True)


def _copy_local(name, local_dir, dest_dir):
    """``local_dir`` の ``name`` を検証して ``dest_dir`` へ原子的にコピーします。"""
    src = _find(local_dir, name)
    if src is None:
        looked = ", ".join(_candidates(local_dir, name))
        raise MNISTError(
            f"MNIST file '{name}' not found in local_dir {local_dir} (looked for {looked}).\n"
            f"Nothing was written to {dest_dir}.\n{_LOCAL_COPY_HINT}"
        )
    target = os.path.join(dest_dir, os.path.basename(src))
    if os.path.exists(target) and os.path.samefile(src, target):
        problem = _check_file(src, name)
        if problem:
            raise MNISTError(f"MNIST file '{name}' in {src} is corrupt.\n  {problem}\n{_LOCAL_COPY_HINT}")
        return target
    out, tmp = _mkstemp(dest_dir, name)
    try:
        with out, open(src, "rb") as f:
            shutil.copyfileobj(f, out, _CHUNK)
        problem = _check_file(tmp, name)
        if problem:
            raise MNISTError(
                f"MNIST file '{name}' in local_dir is corrupt or truncated: {src}\n  {problem}\n"
                f"Nothing was written to {dest_dir}.\n{_LOCAL_COPY_HINT}"
            )
        os.replace(tmp, target)
    finally:
        _remove_quietly(tmp)
    return target


def _download_one(name, dest_dir, mirrors, retries, timeout, backoff, quiet):
    """ミラーから ``name`` をダウンロードし、検証して ``dest_dir`` に置きます。"""
    import http.client
    import urllib.error

    expected = MNIST_SHA256[name]
    target = os.path.join(dest_dir, name)
    log = []
    actual_seen = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + name
        for attempt in range(1, retries + 1):
            out, tmp = _mkstemp(dest_dir, name)
            try:
                _say(f"downloading {url}", quiet)
                try:
                    with out:
                        _download_to(url, out, timeout)
                except urllib.error.HTTPError as e:
                    log.append(f"{url} (attempt {attempt}): HTTP {e.code} {e.reason}")
                    if 400 <= e.code < 500 and e.code not in (408, 429):
                        break  # not going to change: next mirror
                    if attempt < retries:
                        _sleep(_backoff_seconds(backoff, attempt))
                    continue
                except (OSError, http.client.HTTPException, ValueError) as e:
                    reason = getattr(e, "reason", None) or e
                    log.append(f"{url} (attempt {attempt}): {type(e).__name__}: {reason}")
                    if attempt < retries:
                        _sleep(_backoff_seconds(backoff, attempt))
                    continue
                actual, problem = _payload_sha256(tmp)
                if problem is None and actual == expected:
                    os.replace(tmp, target)
                    return target
                what = f"SHA-256 mismatch (got {actual})"
                if problem:
                    what = f"unusable file ({problem}; SHA-256 of the readable part {actual})"
                log.append(f"{url} (attempt {attempt}): {what}")
                actual_seen.append(actual)
                break  # a mirror serving wrong bytes will not heal on retry: next mirror
            finally:
                _remove_quietly(tmp)
    tried = "\n".join(f"    - {line}" for line in log) or "    (no mirrors given)"
    actual = ", ".join(dict.fromkeys(actual_seen)) if actual_seen else "none (no mirror delivered a complete file)"
    raise MNISTError(
        f"could not download MNIST file '{name}'.\n"
        f"  expected SHA-256 (decompressed): {expected}\n"
        f"  actual SHA-256:                  {actual}\n"
        f"  mirrors tried:\n{tried}\n"
        f"Nothing was written to {dest_dir}.\n{_LOCAL_COPY_HINT}"
    )


def _fetch_one(name, dest_dir, mirrors, local_dir, retries, timeout, backoff, quiet, check_existing=True):
    if check_existing:
        existing = _find(dest_dir, name)
        if existing is not None:
            problem = _check_file(existing, name)
            if problem is None:
                return existing
            warnings.warn(
                f"cached MNIST file {existing} is corrupt and will be replaced\n  {problem}",
                RuntimeWarning,
                stacklevel=4,
            )
    if local_dir is None:
        local_dir = env_mnist_dir()
    if local_dir is not None:
        path = _copy_local(name, os.fspath(local_dir), dest_dir)
    else:
        path = _download_one(name, dest_dir, mirrors, retries, timeout, backoff, quiet)
    # a corrupt file under the other name (raw vs .gz) must not shadow the good one
    for other in _candidates(dest_dir, name):
        if other != path and os.path.exists(other) and _check_file(other, name):
            _remove_quietly(other)
    return path


def fetch_mnist(dest_dir, mirrors=DEFAULT_MIRRORS, local_dir=None, retries=3, timeout=30,
                backoff=0.5, names=None, quiet=False):
    """MNIST の 4 ファイルを検証して ``dest_dir`` に揃えます。 / Put verified MNIST files into ``dest_dir``.

    各ファイルについて次の順に処理します。

    1. ``dest_dir`` にすでにあり (``.gz`` または非圧縮)、展開後の SHA-256 が :data:`MNIST_SHA256`
       と一致すればそれを使います。壊れていれば警告 (``RuntimeWarning``) を出して取り直します。
    2. ``local_dir`` (省略時は環境変数 ``STUCRS_MNIST_DIR``) が与えられていれば、そこから検証して
       コピーします。ネットワークは使いません (そこにないファイルや壊れたファイルはエラー)。
    3. そうでなければ ``mirrors`` を順に試してダウンロードします。各ミラーで最大 ``retries`` 回
       試し、試行の間は ``backoff`` 秒 (2 回目以降は倍々) 待ちます。ハッシュが違うミラーはすぐ次へ。

    書き込みは ``dest_dir`` の一時ファイルに行い、検証に通ったときだけ ``os.replace`` で本来の名前に
    します。失敗したときは何も残しません (一時ファイルも消します)。

    Args:
        dest_dir: 置き場所のフォルダ (なければ作ります)。
        mirrors: ミラーの URL の列 (末尾の ``/`` はあってもなくても可)。
        local_dir: 手元のコピーがあるフォルダ (省略時は ``STUCRS_MNIST_DIR``、それもなければダウンロード)。
        retries (int): 1 つのミラーで試す回数 (1 以上)。
        timeout (float): 接続・読み込みのタイムアウト (秒)。
        backoff (float or callable): 再試行前に待つ秒数の基準値、または ``attempt -> 秒`` の関数。
            テストでは 0 にできます。
        names: 取得するファイル名の列 (既定は :data:`MNIST_FILES` の 4 つ)。
        quiet (bool): ``True`` ならダウンロード中のメッセージ (標準エラー出力) を出しません。

    Returns:
        dict: ``{ファイル名: パス}``。

    Raises:
        MNISTError: 取得・検証できなかったとき。ファイル名、期待値と実際の SHA-256、試したミラーと
            そのエラー、手元のコピーを使う方法 (``local_dir=``, ``STUCRS_MNIST_DIR``,
            ``--config mnist_dir=PATH``) をメッセージに含みます。
    """
    names = MNIST_FILES if names is None else tuple(names)
    for name in names:
        if name not in MNIST_SHA256:
            raise ValueError(f"unknown MNIST file name {name!r}; expected one of {MNIST_FILES}")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 1:
        raise ValueError(f"retries must be an integer >= 1, got {retries!r}")
    if isinstance(mirrors, str):
        mirrors = (mirrors,)
    dest_dir = os.fspath(dest_dir)
    os.makedirs(dest_dir, exist_ok=True)
    return {
        name: _fetch_one(name, dest_dir, tuple(mirrors), local_dir, retries, timeout, backoff, quiet)
        for name in names
    }


def _load_verified(path, name, where_hint=""):
    try:
        return load_idx(path, sha256=MNIST_SHA256[name])
    except MNISTError as e:
        raise MNISTError(f"MNIST file '{name}' is unusable: {e}\n{where_hint}{_LOCAL_COPY_HINT}") from None


def _as_labels(arr):
    return arr.astype(np.int64)


def load_mnist_arrays(dir, verify=True):
    """フォルダの MNIST 4 ファイルを配列として読みます。 / Load the four MNIST files of a folder.

    各ファイルは ``.gz`` でも非圧縮でもかまいません。``verify=True`` なら展開後の SHA-256 を
    照合します (違えば :class:`MNISTError`)。ダウンロードはしません (:func:`fetch_mnist` を使います)。

    Returns:
        tuple: ``(x_train, t_train, x_test, t_test)``。``x_*`` は uint8 の (N, 28, 28)、
        ``t_*`` は int64 の (N,)。N は学習用 60000、テスト用 10000。
    """
    dir = os.fspath(dir)
    out = []
    for name in MNIST_FILES:
        path = _find(dir, name)
        if path is None:
            looked = ", ".join(_candidates(dir, name))
            raise MNISTError(f"MNIST file '{name}' not found (looked for {looked}).\n{_LOCAL_COPY_HINT}")
        if verify:
            arr = _load_verified(path, name)
        else:
            arr = load_idx(path)
        out.append(arr if arr.ndim == 3 else _as_labels(arr))
    return tuple(out)


# =============================================================================
# MNIST dataset
# =============================================================================

_DEFAULT = object()


class MNIST(Dataset):
    """MNIST 手書き数字のデータセット。 / The MNIST handwritten digits.

    ``data`` は uint8 の (N, 1, 28, 28) (DeZero と同じ形)、``label`` は int64 の (N,)。
    既定の ``transform`` は DeZero と同じ ``Compose([Flatten(), ToFloat(), Normalize(0., 255.)])``
    で、``dataset[i]`` の ``x`` は [0, 1] の float32 の (784,) になります。

    ファイルの場所:

    * ``local_dir`` を与えると (``local_dir`` も ``root`` も省略したときは環境変数 ``STUCRS_MNIST_DIR``
      があればそのフォルダ)、そこのファイルをその場で読みます (コピーもダウンロードもしません)。
    * そうでなければキャッシュのフォルダ ``root`` (省略時は ``~/.stucrs/mnist``) を使い、
      ないファイルだけ :func:`fetch_mnist` と同じ方法でダウンロードします。

    どちらの場合も展開後の SHA-256 を照合します。

    Args:
        train (bool): 学習用 (60000 枚) なら ``True``、テスト用 (10000 枚) なら ``False``。
        transform: 入力の変換。``None`` を渡すと変換なし (uint8 の (1, 28, 28))。
        target_transform: ラベルの変換。
        root: キャッシュのフォルダ (既定は ``~/.stucrs/mnist``)。
        local_dir: 手元のコピーのフォルダ (既定は環境変数 ``STUCRS_MNIST_DIR``)。
        mirrors: ダウンロードに使うミラー。
    """

    def __init__(self, train=True, transform=_DEFAULT, target_transform=None, root=None,
                 local_dir=None, mirrors=DEFAULT_MIRRORS):
        if transform is _DEFAULT:
            transform = Compose([Flatten(), ToFloat(), Normalize(0.0, 255.0)])
        self.root = root
        self.local_dir = local_dir
        self.mirrors = mirrors
        super().__init__(train, transform, target_transform)

    def _file(self, name):
        local_dir = self.local_dir
        if local_dir is None and self.root is None:
            local_dir = env_mnist_dir()
        if local_dir is not None:
            local_dir = os.fspath(local_dir)
            path = _find(local_dir, name)
            if path is None:
                looked = ", ".join(_candidates(local_dir, name))
                raise MNISTError(f"MNIST file '{name}' not found in local_dir (looked for {looked}).\n"
                                 f"{_LOCAL_COPY_HINT}")
            return _load_verified(path, name)
        root = os.fspath(self.root) if self.root is not None else default_mnist_dir()
        path = _find(root, name)
        if path is not None:
            try:
                return _load_verified(path, name)
            except MNISTError as e:
                warnings.warn(f"cached MNIST file {path} is corrupt and will be replaced: {e}",
                              RuntimeWarning, stacklevel=5)
        os.makedirs(root, exist_ok=True)
        path = _fetch_one(name, root, tuple(self.mirrors), None, 3, 30, 0.5, False, check_existing=False)
        return _load_verified(path, name)

    def prepare(self):
        prefix = "train" if self.train else "t10k"
        images = self._file(f"{prefix}-images-idx3-ubyte.gz")
        labels = self._file(f"{prefix}-labels-idx1-ubyte.gz")
        if images.ndim != 3 or images.shape[1:] != (28, 28) or labels.shape != images.shape[:1]:
            raise MNISTError(f"unexpected MNIST shapes: images {images.shape}, labels {labels.shape}")
        self.data = images.reshape(-1, 1, 28, 28)
        self.label = _as_labels(labels)

    def show(self, row=10, col=10):
        """ランダムに選んだ画像を ``row`` × ``col`` に並べて表示します (matplotlib が必要)。"""
        import matplotlib.pyplot as plt

        h, w = 28, 28
        idx = np.random.randint(0, len(self.data), size=row * col)
        tiles = self.data[idx].reshape(row, col, h, w).transpose(0, 2, 1, 3).reshape(row * h, col * w)
        plt.imshow(tiles, cmap="gray", interpolation="nearest")
        plt.axis("off")
        plt.show()

    @staticmethod
    def labels():
        """ラベル番号から名前への辞書 ``{0: '0', ..., 9: '9'}``。 / Label id to name."""
        return {i: str(i) for i in range(10)}


# =============================================================================
# 文字単位の言語モデル用データ / character-level text (the book's Shakespear)
# =============================================================================
SHAKESPEAR_URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"


class Shakespear(Dataset):
    """シェイクスピアの文章 (tiny shakespeare) を文字 ID の列にしたデータセット。

    Character-level Tiny Shakespeare: ``data[i]`` is a character id and ``label[i]`` the next one.
    ``path`` にテキストファイルを渡すとダウンロードせずにそれを使います (ネットワークの無い環境向け)。
    ``char_to_id`` / ``id_to_char`` は文字と ID の対応表です (文字の初出順に番号を振ります)。
    """

    def __init__(self, train=True, transform=None, target_transform=None, path=None):
        self.path = path
        super().__init__(train, transform, target_transform)

    def prepare(self):
        from stucrs.utils import get_file

        path = self.path if self.path is not None else get_file(SHAKESPEAR_URL, "shakespear.txt")
        with open(path, "r", encoding="utf-8") as f:
            text = f.read()
        if len(text) < 2:
            raise ValueError(f"Shakespear: {path} holds {len(text)} characters; at least 2 are needed")
        # 初出順の文字 → ID 表 (dict は挿入順を保つ)
        char_to_id = {}
        for c in text:
            if c not in char_to_id:
                char_to_id[c] = len(char_to_id)
        self.char_to_id = char_to_id
        self.id_to_char = {i: c for c, i in char_to_id.items()}
        ids = np.fromiter((char_to_id[c] for c in text), dtype=np.int64, count=len(text))
        self.data = ids[:-1]
        self.label = ids[1:]


# =============================================================================
# キャッシュ (DeZero 互換) / npz cache helpers, DeZero-compatible names
# =============================================================================
from stucrs.utils import cache_dir, get_file  # noqa: E402,F401  (DeZero の datasets からも使える名前)


def _cache_npz_path(filename, train):
    filename = filename[filename.rfind("/") + 1:]
    suffix = ".train.npz" if train else ".test.npz"
    return os.path.join(cache_dir, filename + suffix)


def load_cache_npz(filename, train=False):
    """キャッシュ (``~/.stucrs``) から (data, label) を読む。無ければ (None, None)。pickle は読まない。"""
    path = _cache_npz_path(filename, train)
    if not os.path.exists(path):
        return None, None
    with np.load(path, allow_pickle=False) as loaded:
        return loaded["data"], loaded["label"]


def save_cache_npz(data, label, filename, train=False):
    """(data, label) をキャッシュに npz で保存する (一時ファイルに書いてから置き換えるので、途中で止まっても壊れない)。"""
    path = _cache_npz_path(filename, train)
    if os.path.exists(path):
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".npz.part")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, data=data, label=label)
        os.replace(tmp, path)
    except BaseException:
        _remove_quietly(tmp)
        raise
