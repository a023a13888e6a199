"""glibc の malloc を、大きな配列を使い回す設定にする (自分で呼んだときだけ)。

glibc の既定では 128 KiB 以上の配列は ``mmap`` で確保され、解放のたびに OS へ返されます。
学習ループは同じ大きさの一時配列を毎ステップ作っては捨てるので、次の確保では新しいページに触り、
4 KiB ごとにページフォールトが起きます。:func:`tune_malloc` は ``mallopt`` で次の 2 つを設定し、
解放した領域をプロセスの中で使い回させます (PyTorch のキャッシュ付きアロケータと同じ考え)。

* ``M_MMAP_THRESHOLD`` = 32 MiB: これより小さい配列はヒープから確保する。
* ``M_TRIM_THRESHOLD`` = 512 MiB: ヒープ末尾の空きがこれを超えるまで OS へ返さない。

プロセス全体の設定なので、``import stucrs`` では何もしません。ベンチマークは、プロセスを起動する前に
glibc の環境変数 ``MALLOC_MMAP_THRESHOLD_`` と ``MALLOC_TRIM_THRESHOLD_`` で同じ値を設定します。
"""
import ctypes

__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "tune_malloc", "malloc_status"]

MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc の上限 (64 ビットでは HEAP_MAX_SIZE / 2 = 32 MiB)
TRIM_THRESHOLD = 512 * 1024 * 1024

# mallopt のパラメータ番号 (glibc の malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

_status = "default: stucrs.fast.tune_malloc() has not run"


def _glibc():
    """(libc, version) for glibc, else (None, why)."""
    try:
        libc = ctypes.CDLL(None)
        get_version = libc.gnu_get_libc_version
    except Exception as exc:  # noqa: BLE001 - any failure means "not glibc": leave malloc alone
        return None, "the C library is not glibc (%s)" % exc
    get_version.restype = ctypes.c_char_p
    return libc, get_version().decode()


def tune_malloc(mmap_threshold=MMAP_THRESHOLD, trim_threshold=TRIM_THRESHOLD):
    """glibc の malloc を大きな配列の使い回し向けに設定する。設定できたら True を返す。

    Args:
        mmap_threshold: これ以上の大きさの確保だけを ``mmap`` にする (バイト、1 以上 32 MiB 以下)。
        trim_threshold: ヒープ末尾の空きがこれを超えたら OS へ返す (バイト、0 以上)。

    glibc でないとき、または glibc が値を受け付けなかったときは何もせず False を返す
    (理由は :func:`malloc_status` で分かる)。
    """
    global _status
    for name, value, low in (("mmap_threshold", mmap_threshold, 1),
                             ("trim_threshold", trim_threshold, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError("%s must be an integer number of bytes >= %d, got %r"
                             % (name, low, value))
    if mmap_threshold > MMAP_THRESHOLD:
        raise ValueError("mmap_threshold %d is above glibc's maximum %d (32 MiB); pass a "
                         "smaller value" % (mmap_threshold, MMAP_THRESHOLD))
    libc, version = _glibc()
    if libc is None:
        _status = "default: " + version
        return False
    trim = min(trim_threshold, 2 ** 31 - 1)  # c_int で渡す (2 GiB 以上は「返さない」と同じ)
    if not (libc.mallopt(_M_MMAP_THRESHOLD, mmap_threshold) and libc.mallopt(_M_TRIM_THRESHOLD, trim)):
        _status = "default: glibc %s refused mallopt(mmap_threshold=%d, trim_threshold=%d)" % (
            version, mmap_threshold, trim)
        return False
    _status = "tuned by stucrs.fast.tune_malloc: glibc %s, mmap_threshold=%d, trim_threshold=%d" % (
        version, mmap_threshold, trim)
    return True


def malloc_status():
    """:func:`tune_malloc` の結果を 1 行の文字列で返す (実行記録に残すため)。"""
    return _status
