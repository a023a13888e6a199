"""NumPy が使っている BLAS の axpy (``y += a * x``) を、その場の更新に使う。

SGD の更新 ``W -= lr * grad`` を NumPy で書くと、``lr * grad`` の一時配列を作る掛け算と引き算の
2 回に分かれ、どちらも 1 つのコアでしか動かない。BLAS の axpy は同じ計算を 1 回で (積和命令で)
行い、大きな配列では BLAS のスレッドが手分けする。行列積のあとの BLAS のスレッドは空いているので、
784-1000-1000-10 の MLP では学習の 1 ステップが 8 % ほど短くなる (第 16 章 5 節)。

NumPy は axpy を公開していないので、NumPy が読み込んだ BLAS のライブラリ (pip の NumPy では
同梱の OpenBLAS) を ctypes で開き、その ``cblas_?axpy`` を呼ぶ。同じライブラリなので、スレッド数の
設定 (``OPENBLAS_NUM_THREADS``、threadpoolctl) もそのまま効く。

* 使うのは、同じ形・同じメモリの並び・同じ dtype (float32 / float64) の、隙間のない大きな
  NumPy 配列だけ。それ以外 (CuPy の配列、小さな配列、スライス、dtype の違い) は呼び出し側が
  NumPy で計算する。
* 積和命令では丸めが 1 回になるので、``W - lr * grad`` (丸め 2 回) と最後の 1 ビットが違うことが
  ある (誤差は小さくなる方向)。
* 見つからないとき (BLAS が ctypes で開けない、関数がない) は何もしない。環境変数
  ``STUCRS_BLAS_AXPY=0`` で使わないようにできる。何が起きたかは :func:`blas_status` で分かる。

In-place ``y += a * x`` through the axpy of the BLAS that NumPy loaded (one fused pass on the
BLAS's threads instead of two single-threaded NumPy passes); large, contiguous, same-layout
float32/float64 NumPy arrays only, ``False`` otherwise so that the caller computes it with NumPy.
"""

import ctypes
import os
import sys

import numpy as np

from stucrs import utils

__all__ = ["ENV_VAR", "axpy", "blas_status"]

ENV_VAR = "STUCRS_BLAS_AXPY"

# cblas の関数名の付け方: (接頭辞, 接尾辞, 整数の型)。pip の NumPy 2 は scipy_ 付きの 64 ビット整数版、
# NumPy 1.2x は 64_ 付き、システムの OpenBLAS や MKL は付かない 32 ビット整数版。
_NAMINGS = (("scipy_cblas_", "64_", ctypes.c_int64), ("cblas_", "64_", ctypes.c_int64),
            ("cblas_", "", ctypes.c_int))

_NOT_LOOKED_UP = "not looked up yet: the first large update looks for NumPy's BLAS"
_routines = None  # {dtype: (関数, 整数の型の上限)}、探す前は None
_status = _NOT_LOOKED_UP


def _loaded_blas_libraries():
    """このプロセスに読み込まれている BLAS らしい共有ライブラリのパス。NumPy の同梱のものが先。"""
    paths = []
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as f:
            for line in f:  # "番地 権限 オフセット デバイス inode パス"
                fields = line.split(None, 5)
                path = fields[5].strip() if len(fields) == 6 else ""
                name = os.path.basename(path).lower()
                if ("blas" in name or "mkl_rt" in name) and path not in paths:
                    paths.append(path)
    except OSError:  # /proc のない OS: NumPy の同梱ライブラリの置き場所を見る
        base = os.path.dirname(os.path.dirname(np.__file__))
        for folder in (os.path.join(base, "numpy.libs"), os.path.join(base, "numpy", ".dylibs")):
            if os.path.isdir(folder):
                paths += [os.path.join(folder, n) for n in sorted(os.listdir(folder))
                          if "blas" in n.lower()]
    # SciPy や CuPy の BLAS も読み込まれていることがある: NumPy のもの (同じスレッド) を優先する
    numpy_home = os.path.dirname(os.path.dirname(os.path.abspath(np.__file__)))
    return sorted(paths, key=lambda p: not (p.startswith(numpy_home) and "numpy" in p))


def _works(s, d):
    """小さな配列で ``y += 2 x`` を計算させ、引数の渡し方 (型) が合っていることを確かめる。"""
    for fn, dtype in ((s, np.float32), (d, np.float64)):
        x = np.array([1.0, 2.0, 3.0], dtype=dtype)
        y = np.ones(3, dtype=dtype)
        fn(3, 2.0, x.ctypes.data, 1, y.ctypes.data, 1)
        if not np.array_equal(y, np.array([3.0, 5.0, 7.0], dtype=dtype)):
            return False
    return True


def _look_up():
    global _routines, _status
    _routines = {}
    raw = os.environ.get(ENV_VAR, "1").strip().lower()
    if raw in ("0", "off", "false", "no"):
        _status = "off: %s=%s" % (ENV_VAR, os.environ[ENV_VAR])
        return
    if sys.platform == "win32":  # DLL を開き直すと別のコピーになることがあるので使わない
        _status = "off: not used on Windows (NumPy computes it)"
        return
    for path in _loaded_blas_libraries():
        try:
            lib = ctypes.CDLL(path)  # 読み込み済みなら同じものが返る (スレッドも同じ)
        except OSError:
            continue
        for prefix, suffix, int_t in _NAMINGS:
            try:
                s, d = (getattr(lib, prefix + c + "axpy" + suffix) for c in "sd")
            except AttributeError:
                continue
            for fn, real in ((s, ctypes.c_float), (d, ctypes.c_double)):
                fn.argtypes = [int_t, real, ctypes.c_void_p, int_t, ctypes.c_void_p, int_t]
                fn.restype = None
            if not _works(s, d):
                continue
            limit = 2 ** (8 * ctypes.sizeof(int_t) - 1) - 1
            _routines = {np.dtype(np.float32): (s, limit), np.dtype(np.float64): (d, limit)}
            _status = "%s?axpy%s of %s" % (prefix, suffix, path)
            return
    _status = "not found: no BLAS library with cblas_?axpy is loaded (NumPy computes it)"


def axpy(alpha, x, y):
    """``y += alpha * x`` をその場で BLAS に計算させる。計算したら True、使えないときは False。

    Args:
        alpha: 係数 (Python の数)。
        x: 足す配列 (読むだけ)。
        y: 書き換える配列。``x`` と同じ形・同じ並び・同じ dtype で、メモリが重ならないこと。

    False のときは ``y`` に触れていないので、呼び出し側が NumPy で計算する。
    """
    if type(y) is not np.ndarray or type(x) is not np.ndarray or x.dtype != y.dtype:
        return False
    if _routines is None:
        _look_up()
    routine = _routines.get(y.dtype)
    if routine is None or not y.flags.writeable:
        return False
    flats = utils.flat_views(x, y)  # 大きくて隙間がなく、形と並びが同じときだけビューが返る
    if flats is None or flats[0].size > routine[1] or np.may_share_memory(x, y):
        return False
    fx, fy = flats
    routine[0](fy.size, float(alpha), fx.ctypes.data, 1, fy.ctypes.data, 1)
    return True


def blas_status():
    """axpy に使う BLAS の関数 (または使わない理由) を 1 行の文字列で返す (実行記録に残すため)。"""
    return _status


def _reset():
    """テスト用: 次の呼び出しで BLAS を探し直す。"""
    global _routines, _status
    _routines = None
    _status = _NOT_LOOKED_UP

