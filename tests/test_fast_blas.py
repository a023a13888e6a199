"""stucrs.blas: in-place ``y += a * x`` through the axpy of NumPy's own BLAS (used by SGD), and
``c += a * A.T @ B`` through its gemm (SGD's update of a dense layer's weight from the factors of
its gradient, ``tests/test_deferred_grad.py``).

The fused update rounds once, so for float32 it is within one unit in the last place of the exact
value (computed in float64, where the product of two float32 numbers is exact). Against NumPy's
two-rounding formula the difference is that formula's own rounding: at most one epsilon of the
operands' size (``|y| + |a x|``), which is many ulps of the result where the two cancel.
"""

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import stucrs
from stucrs.fast import blas, elementwise

REPO = Path(__file__).resolve().parents[1]
LINUX = platform.system() == "Linux"
BIG = 3 * elementwise.FLAT_BLOCK + 17  # large enough for the BLAS path, with a partial tail


@pytest.fixture(autouse=True)
def fresh_lookup():
    blas._reset()
    yield
    blas._reset()


def assert_within_rounding(y, ref, y0, ax):
    """|y - ref| <= eps * (|y0| + |a x|): the two differ by one rounding of the operands' size."""
    eps = np.finfo(y.dtype).eps
    bound = eps * (np.abs(y0) + np.abs(ax))
    excess = np.abs(y.astype(np.float64) - ref.astype(np.float64)) - bound
    assert excess.max() <= 0, "off by more than one rounding at %d element(s)" % (excess > 0).sum()


def _pair(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=shape).astype(dtype), rng.normal(size=shape).astype(dtype)


@pytest.mark.skipif(not LINUX, reason="the loaded BLAS is found through /proc/self/maps on Linux")
def test_numpys_blas_is_found():
    x, y = _pair(BIG, np.float32)
    assert blas.axpy(-0.5, x, y) is True
    status = blas.blas_status()
    assert "axpy" in status and os.path.exists(status.split(" of ", 1)[1]), status
    # NumPy's own copy (pip's wheels bundle OpenBLAS in numpy.libs), not another one loaded beside it
    assert "numpy" in status.split(" of ", 1)[1], status


@pytest.mark.skipif(not LINUX, reason="the loaded BLAS is found through /proc/self/maps on Linux")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(BIG,), (301, 331), (7, 61, 97)])
def test_axpy_matches_the_exact_value(dtype, shape):
    x, y = _pair(shape, dtype)
    y0, alpha = y.copy(), -0.0123
    ref_plain = y0 + x * dtype(alpha)  # NumPy's two roundings
    ptr = y.ctypes.data
    assert blas.axpy(alpha, x, y) is True
    assert y.ctypes.data == ptr  # in place
    if dtype == np.float32:  # one rounding (a fused multiply-add), or NumPy's two without FMA
        exact = (y0.astype(np.float64) + np.float64(np.float32(alpha)) * x.astype(np.float64))
        ulps = np.abs(y.view(np.int32).astype(np.int64)
                      - exact.astype(np.float32).view(np.int32).astype(np.int64))
        assert np.all((ulps <= 1) | (y == ref_plain))
    assert_within_rounding(y, ref_plain, y0, x * dtype(alpha))
    assert not np.array_equal(y, y0)


@pytest.mark.skipif(not LINUX, reason="the loaded BLAS is found through /proc/self/maps on Linux")
def test_fortran_ordered_pairs_use_the_blas_too():
    x, y = _pair((400, 300), np.float32)
    x, y = np.asfortranarray(x), np.asfortranarray(y)
    y0 = y.copy(order="F")
    assert blas.axpy(2.0, x, y) is True
    exact = y0.astype(np.float64) + 2.0 * x.astype(np.float64)
    np.testing.assert_array_max_ulp(y, exact.astype(np.float32), maxulp=1)


@pytest.mark.parametrize("case", ["small", "dtype", "layout", "slice", "same", "readonly", "int",
                                  "list"])
def test_cases_the_blas_does_not_take_leave_y_untouched(case):
    x, y = _pair((400, 300), np.float32)
    if case == "small":
        x, y = x.ravel()[:100].copy(), y.ravel()[:100].copy()
    elif case == "dtype":
        x = x.astype(np.float64)
    elif case == "layout":
        x = np.asfortranarray(x)
    elif case == "slice":
        x, y = _pair((800, 300), np.float32)
        x, y = x[::2], y[::2]
    elif case == "same":
        x = y
    elif case == "readonly":
        y.flags.writeable = False
    elif case == "int":
        x, y = x.astype(np.int32), y.astype(np.int32)
    elif case == "list":
        x = x.tolist()
    before = y.copy()
    assert blas.axpy(1.0, x, y) is False
    np.testing.assert_array_equal(y, before)


def _layouts(rng, k, m, dtype, how):
    """(K, M) operand in the layout ``how``: C order, Fortran order, rows of a wider array, or a
    transposed view of a (M, K) array."""
    if how == "C":
        return rng.normal(size=(k, m)).astype(dtype)
    if how == "F":
        return np.asfortranarray(rng.normal(size=(k, m)).astype(dtype))
    if how == "rows":  # every row a slice of a wider row: leading dimension > M
        return rng.normal(size=(k, m + 13)).astype(dtype)[:, 5:5 + m]
    return rng.normal(size=(m, k)).astype(dtype).T  # "T": column layout with a leading dimension K


@pytest.mark.skipif(not LINUX, reason="the loaded BLAS is found through /proc/self/maps on Linux")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("a_how", ["C", "F", "rows", "T"])
@pytest.mark.parametrize("b_how", ["C", "F", "rows", "T"])
def test_gemm_update_adds_the_product_for_every_layout(dtype, a_how, b_how):
    rng = np.random.default_rng(3)
    k, m, n = 37, 53, 41
    a, b = _layouts(rng, k, m, dtype, a_how), _layouts(rng, k, n, dtype, b_how)
    c = rng.normal(size=(m, n)).astype(dtype)
    c0, ptr = c.copy(), c.ctypes.data
    assert blas.gemm_update(-0.25, a, b, c) is True
    assert c.ctypes.data == ptr  # in place
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    exact = c0 - 0.25 * (a64.T @ b64)
    eps = np.finfo(dtype).eps
    bound = eps * np.abs(exact) + 0.25 * k * eps * (np.abs(a64).T @ np.abs(b64))
    assert np.all(np.abs(c - exact) <= bound)
    # and not the product of the wrong operands (e.g. a read as its transpose)
    assert np.abs(c - exact).max() < 1e-3 * np.abs(c - c0).max()


@pytest.mark.skipif(not LINUX, reason="the loaded BLAS is found through /proc/self/maps on Linux")
@pytest.mark.parametrize("k, m, n", [(1, 40, 30), (40, 1, 30), (40, 30, 1), (0, 40, 30)])
def test_gemm_update_edges(k, m, n):
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(k, m)).astype(np.float32), rng.normal(size=(k, n)).astype(np.float32)
    c = rng.normal(size=(m, n)).astype(np.float32)
    expected = c + np.float32(2) * (a.T @ b)
    assert blas.gemm_update(2.0, a, b, c) is True
    np.testing.assert_allclose(c, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", ["c_fortran", "c_slice", "readonly", "dtype", "shape", "overlap",
                                  "int", "list", "ndim", "strided"])
def test_gemm_cases_the_blas_does_not_take_leave_c_untouched(case):
    rng = np.random.default_rng(5)
    a = rng.normal(size=(20, 30)).astype(np.float32)
    b = rng.normal(size=(20, 40)).astype(np.float32)
    c = rng.normal(size=(30, 40)).astype(np.float32)
    if case == "c_fortran":
        c = np.asfortranarray(c)
    elif case == "c_slice":
        c = rng.normal(size=(30, 80)).astype(np.float32)[:, ::2]
    elif case == "readonly":
        c.flags.writeable = False
    elif case == "dtype":
        b = b.astype(np.float64)
    elif case == "shape":
        b = rng.normal(size=(21, 40)).astype(np.float32)
    elif case == "overlap":
        c = rng.normal(size=(30, 40)).astype(np.float32)
        a = c[:20, :30]
    elif case == "int":
        a, b, c = a.astype(np.int32), b.astype(np.int32), c.astype(np.int32)
    elif case == "list":
        a = a.tolist()
    elif case == "ndim":
        a = a.reshape(20, 30, 1)
    elif case == "strided":  # neither rows nor columns next to each other
        a = rng.normal(size=(40, 60)).astype(np.float32)[::2, ::2]
    before = np.array(c, copy=True)
    assert blas.gemm_update(1.0, a, b, c) is False
    np.testing.assert_array_equal(c, before)


@pytest.mark.skipif(not LINUX, reason="the loaded BLAS is found through /proc/self/maps on Linux")
def test_a_blas_without_gemm_still_gives_its_axpy(monkeypatch):
    monkeypatch.setattr(blas, "_gemms", lambda *args: (None, None))
    x, y = _pair(BIG, np.float32)
    assert blas.axpy(1.0, x, y) is True
    assert "axpy" in blas.blas_status() and "gemm" not in blas.blas_status(), blas.blas_status()
    a, b, c = _pair((64, 300), np.float32)[0], _pair((64, 200), np.float32)[0], np.zeros((300, 200), np.float32)
    assert blas.gemm_update(1.0, a, b, c) is False and not c.any()


def _in_fresh_interpreter(code, **env):
    full = dict(os.environ, **env)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, cwd=str(REPO), env=full)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


_SGD_STEP = r"""
import json, numpy as np, stucrs
from stucrs.fast import blas
rng = np.random.default_rng(1)
W0 = rng.normal(size=(784, 1000)).astype(np.float32)
g = rng.normal(size=(784, 1000)).astype(np.float32)
p = stucrs.Parameter(W0.copy()); p.grad = stucrs.Variable(g.copy())
stucrs.optimizers.SGD(lr=0.01).update_one(p)
plain = W0 - g * np.float32(0.01)
bound = np.finfo(np.float32).eps * (np.abs(W0) + np.abs(np.float32(0.01) * g))
exact = (W0.astype(np.float64) - np.float64(np.float32(0.01)) * g).astype(np.float32)
print(json.dumps({"status": blas.blas_status(), "equal_plain": bool(np.array_equal(p.data, plain)),
                  "within_rounding": bool(np.all(np.abs(p.data - plain) <= bound)),
                  "max_ulp_exact": int(np.max(np.abs(p.data.view(np.int32) - exact.view(np.int32)))),
                  "grad_kept": bool(np.array_equal(p.grad.data, g))}))
"""


def test_switched_off_sgd_is_numpys_formula_bit_for_bit():
    r = _in_fresh_interpreter(_SGD_STEP, STUCRS_FAST="0")
    assert r["status"].startswith("not looked up"), r["status"]  # the book's SGD: no ctypes at all
    assert r["equal_plain"] and r["grad_kept"]


@pytest.mark.skipif(not LINUX, reason="the loaded BLAS is found through /proc/self/maps on Linux")
def test_sgd_goes_through_the_blas():
    r = _in_fresh_interpreter(_SGD_STEP, STUCRS_FAST="1")
    assert "axpy" in r["status"], r["status"]
    assert (r["max_ulp_exact"] <= 1 or r["equal_plain"]) and r["within_rounding"] and r["grad_kept"]
