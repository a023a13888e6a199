"""glibc の malloc を、大きな配列を使い回すように調整する。

NumPy の大きな配列 (128 KiB 以上) は、glibc の既定では ``mmap`` で確保され、解放のたびに OS へ
返される。学習ループは同じ大きさの一時配列 (重みの勾配、im2col の行列など) を毎ステップ作っては
捨てるので、次の確保ではまっさらなページに触ることになり、4 KiB ごとにページフォールト
(カーネルによるゼロ埋め) が起きる。784-1000-1000-10 の MLP を手で書いた NumPy のループでは
1 エポックで 200 万回を超え、重みの勾配の行列積が、行列積だけを測ったときの 2 倍の時間になる。

``import stucrs`` のときに ``mallopt`` で次の 2 つを設定し、解放した領域をプロセス内に残して
次の確保で使い回す (PyTorch や CuPy のキャッシュ付きアロケータと同じ考え方):

* ``M_MMAP_THRESHOLD`` = 32 MiB: これより小さい配列はヒープから確保する。
* ``M_TRIM_THRESHOLD`` = 512 MiB: ヒープ末尾の空きがこれを超えるまで OS へ返さない。

ピークのメモリ使用量は増えない (使い回すだけ)。ピークの後に RSS が下がりにくくなるのが代償。
glibc 以外 (macOS, Windows, musl) では何もしない。環境変数 ``STUCRS_MALLOC_TUNING=0`` で無効に
できる。``MALLOC_MMAP_THRESHOLD_`` などの glibc の環境変数や ``GLIBC_TUNABLES`` で malloc を
設定済みのときは、その設定を尊重して何もしない。

Tunes glibc malloc at import so that freed large arrays are reused instead of returned to the
OS and page-faulted in again on the next step.
"""

import ctypes
import os
import warnings

from stucrs import utils

__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "ENV_VAR", "tune_malloc", "malloc_status"]

MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc の上限 (64 ビットでは HEAP_MAX_SIZE / 2 = 32 MiB)
TRIM_THRESHOLD = 512 * 1024 * 1024
ENV_VAR = "STUCRS_MALLOC_TUNING"

# mallopt のパラメータ番号 (glibc の malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

# glibc が起動時に読む、malloc を設定する環境変数
_GLIBC_MALLOC_ENV = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_",
                     "MALLOC_MMAP_MAX_")

_status = "not tuned: stucrs.memory.tune_malloc() has not run"


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
        _status = "not tuned: " + version
        return False
    # c_int で渡すので 2 GiB 未満に丸める (それ以上の trim_threshold は実質「返さない」と同じ)
    trim = min(trim_threshold, 2 ** 31 - 1)
    if not (libc.mallopt(_M_MMAP_THRESHOLD, mmap_threshold) and libc.mallopt(_M_TRIM_THRESHOLD, trim)):
        _status = "not tuned: glibc %s refused mallopt(mmap_threshold=%d, trim_threshold=%d)" % (
            version, mmap_threshold, trim)
        return False
    _status = "tuned by stucrs: glibc %s, mmap_threshold=%d, trim_threshold=%d" % (
        version, mmap_threshold, trim)
    return True


def malloc_status():
    """malloc の設定の状態を 1 行の文字列で返す (実行記録に残すため)。"""
    return _status


def _tune_at_import(environ=os.environ):
    """``import stucrs`` から呼ばれる: 環境変数を見て :func:`tune_malloc` を呼ぶ。"""
    global _status
    raw = environ.get(ENV_VAR, "1")
    value = raw.strip().lower()
    if value in utils.OFF_VALUES:  # 上で読んだ値をそのまま (読み直さない)
        _status = "not tuned: %s=%s" % (ENV_VAR, raw)
        return False
    if value not in ("1", "on", "true", "yes", ""):
        warnings.warn("%s=%r is not understood; use 1 (tune glibc malloc, the default) or 0 "
                      "(leave it alone). malloc is left alone." % (ENV_VAR, raw),
                      RuntimeWarning, stacklevel=3)
        _status = "not tuned: %s=%r is not understood" % (ENV_VAR, raw)
        return False
    preset = [name for name in _GLIBC_MALLOC_ENV if name in environ]
    if "glibc.malloc." in environ.get("GLIBC_TUNABLES", ""):
        preset.append("GLIBC_TUNABLES")
    if preset:
        _status = "not tuned: malloc already configured by %s" % ", ".join(preset)
        return False
    return tune_malloc()
