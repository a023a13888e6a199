"""NumPy が読み込んだ BLAS の axpy と gemm を ctypes で呼び、パラメータをその場で更新する (第 16 章)。

* axpy (``y += a * x``): SGD の ``W -= lr * grad`` を 1 回で (積和命令、BLAS のスレッドで手分け)。
* gemm (``c += a * A.T @ B``): 全結合の重みを、勾配の配列を作らずに ``W -= lr * (x.T @ gy)`` で更新。

NumPy はどちらも公開していないので、NumPy が読み込んだ BLAS (pip の NumPy では同梱の OpenBLAS) を
最初の大きな更新のときに探します (``import stucrs`` では探しません)。使えないとき (CuPy の配列、
小さな配列、dtype の違い、BLAS が見つからない) は False を返し、呼び出し側が NumPy で計算します。
積和命令では丸めが 1 回なので、NumPy の式と最後の 1〜2 ビットが違うことがあります。
"""

import ctypes
import os
import sys

import numpy as np

from stucrs.fast.elementwise import flat_views

__all__ = ["axpy", "gemm_update", "blas_status"]

# cblas の関数名の付け方: (接頭辞, 接尾辞, 整数の型)。pip の NumPy 2 は scipy_ 付きの 64 ビット整数版、
# NumPy 1.2x は 64_ 付き、システムの OpenBLAS や MKL は付かない 32 ビット整数版。
_NAMINGS = (("scipy_cblas_", "64_", ctypes.c_int64), ("cblas_", "64_", ctypes.c_int64),
            ("cblas_", "", ctypes.c_int))

# cblas の列挙値 (CBLAS_ORDER, CBLAS_TRANSPOSE)
_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112

_NOT_LOOKED_UP = "not looked up yet: the first large update looks for NumPy's BLAS"
_routines = None  # {dtype: (axpy, gemm, 整数の型の上限)}、探す前は None
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


def _axpy_works(axpys):
    """小さな配列で ``y += 2 x`` を計算させ、引数の渡し方 (型) が合っていることを確かめる。"""
    for fn, dtype in zip(axpys, (np.float32, np.float64)):
        x = np.array([1.0, 2.0, 3.0], dtype=dtype)
        y = np.ones(3, dtype=dtype)
        fn(3, 2.0, x.ctypes.data, 1, y.ctypes.data, 1)
        if not np.array_equal(y, np.array([3.0, 5.0, 7.0], dtype=dtype)):
            return False
    return True


def _gemms(lib, prefix, suffix, int_t):
    """axpy と同じ名前の付け方の ``cblas_?gemm`` (float32, float64)。ないか、小さな行列で
    ``C += 2 A.T @ B`` が正しく計算できなければ (None, None)。"""
    try:
        gemms = [getattr(lib, prefix + c + "gemm" + suffix) for c in "sd"]
    except AttributeError:
        return None, None
    for fn, real, dtype in zip(gemms, (ctypes.c_float, ctypes.c_double), (np.float32, np.float64)):
        # (並び, A の転置, B の転置, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)
        fn.argtypes = ([ctypes.c_int] * 3 + [int_t] * 3
                       + [real, ctypes.c_void_p, int_t, ctypes.c_void_p, int_t,
                          real, ctypes.c_void_p, int_t])
        fn.restype = None
        a = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], dtype=dtype)  # (K, M) = (3, 2)
        b = np.array([[1.0, 0.0, 2.0], [0.0, 1.0, 0.0], [1.0, 1.0, 1.0]], dtype=dtype)  # (3, 3)
        c = np.ones((2, 3), dtype=dtype)
        fn(_ROW_MAJOR, _TRANS, _NO_TRANS, 2, 3, 3, 2.0, a.ctypes.data, 2, b.ctypes.data, 3,
           1.0, c.ctypes.data, 3)
        if not np.array_equal(c, 1 + 2 * (a.T @ b)):
            return None, None
    return tuple(gemms)


def _look_up():
    global _routines, _status
    _routines = {}
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
                axpys = [getattr(lib, prefix + c + "axpy" + suffix) for c in "sd"]
            except AttributeError:
                continue
            for axpy_fn, real in zip(axpys, (ctypes.c_float, ctypes.c_double)):
                axpy_fn.argtypes = [int_t, real, ctypes.c_void_p, int_t, ctypes.c_void_p, int_t]
                axpy_fn.restype = None
            if not _axpy_works(axpys):
                continue
            gemms = _gemms(lib, prefix, suffix, int_t)  # なければ (None, None): axpy だけ使う
            limit = 2 ** (8 * ctypes.sizeof(int_t) - 1) - 1
            _routines = {np.dtype(np.float32): (axpys[0], gemms[0], limit),
                         np.dtype(np.float64): (axpys[1], gemms[1], limit)}
            found = "%s?axpy%s" % (prefix, suffix)
            if gemms[0] is not None:
                found += " and %s?gemm%s" % (prefix, suffix)
            _status = "%s of %s" % (found, path)
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
    flats = flat_views(x, y)  # 大きくて隙間がなく、形と並びが同じときだけビューが返る
    if flats is None or flats[0].size > routine[2] or np.may_share_memory(x, y):
        return False
    fx, fy = flats
    routine[0](fy.size, float(alpha), fx.ctypes.data, 1, fy.ctypes.data, 1)
    return True


def _read_as(arr, item, limit):
    """2 次元配列 ``arr`` を BLAS に行優先で読ませる (転置フラグ, 先頭次元)。渡せない並びなら None。

    行が隙間なく並ぶ (列の歩幅が 1 要素) なら転置なし、列が隙間なく並ぶなら ``arr.T`` を行優先で
    読ませて転置あり。行または列が 1 つだけの次元の歩幅は意味を持たないので見ない。
    """
    rows, cols = arr.shape
    s0, s1 = arr.strides
    if (cols == 1 or s1 == item) and s0 % item == 0:
        ld = s0 // item if rows > 1 else cols
        if ld >= max(1, cols) and ld <= limit:
            return _NO_TRANS, ld
    if (rows == 1 or s0 == item) and s1 % item == 0:
        ld = s1 // item if cols > 1 else rows
        if ld >= max(1, rows) and ld <= limit:
            return _TRANS, ld
    return None


def gemm_update(alpha, a, b, c):
    """``c += alpha * a.T @ b`` をその場で BLAS の gemm 1 回で計算する。計算したら True、使えないときは False。

    全結合の重みの勾配 ``x.T @ gy`` を配列にせずに、重みに直接足し込むためのもの。

    Args:
        alpha: 係数 (Python の数)。
        a: 形 (K, M) の 2 次元配列 (読むだけ)。全結合なら入力 ``x``。
        b: 形 (K, N) の 2 次元配列 (読むだけ)。全結合なら出力の勾配 ``gy``。
        c: 形 (M, N) の書き換える配列。C の並び (行優先で隙間なし) で、``a`` や ``b`` とメモリが
            重ならないこと。

    False のときは ``c`` に触れていないので、呼び出し側が NumPy で計算する。
    """
    if type(c) is not np.ndarray or type(a) is not np.ndarray or type(b) is not np.ndarray:
        return False
    if a.dtype != c.dtype or b.dtype != c.dtype or a.ndim != 2 or b.ndim != 2 or c.ndim != 2:
        return False
    (k, m), (k_b, n) = a.shape, b.shape
    if k != k_b or c.shape != (m, n) or not c.flags.c_contiguous or not c.flags.writeable:
        return False
    if _routines is None:
        _look_up()
    routine = _routines.get(c.dtype)
    if routine is None or routine[1] is None:  # BLAS なし、または axpy だけの BLAS
        return False
    if k == 0 or c.size == 0:
        return True  # 足すものがない (空の配列の歩幅は 0 のことがあるので、並びを見る前に)
    gemm, limit = routine[1], routine[2]
    item = c.itemsize
    # C = op(A) @ op(B) を行優先で: op(A) = a.T (M, K)。a を行優先で読むなら転置、列優先なら転置なし
    read_a, read_b = _read_as(a, item, limit), _read_as(b, item, limit)
    if read_a is None or read_b is None or max(m, n, k) > limit:
        return False
    if np.may_share_memory(c, a) or np.may_share_memory(c, b):
        return False
    trans_a = _TRANS if read_a[0] == _NO_TRANS else _NO_TRANS
    gemm(_ROW_MAJOR, trans_a, read_b[0], m, n, k, float(alpha), a.ctypes.data, read_a[1],
         b.ctypes.data, read_b[1], 1.0, c.ctypes.data, n)
    return True


def blas_status():
    """axpy と gemm に使う BLAS の関数 (または使わない理由) を 1 行の文字列で返す (実行記録に残すため)。"""
    return _status


def _reset():
    """テスト用: 次の呼び出しで BLAS を探し直す。"""
    global _routines, _status
    _routines = None
    _status = _NOT_LOOKED_UP

