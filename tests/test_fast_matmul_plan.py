"""stucrs.fast.matmul_plan: gy @ W.T in the faster of two BLAS calls, always the same values."""

import numpy as np
import pytest

import stucrs
import stucrs.functions as F
import stucrs.layers as L
from stucrs.fast import matmul_plan as mp


@pytest.fixture(autouse=True)
def fresh_plans(monkeypatch):
    monkeypatch.setattr(mp, "_plans", {})
    yield


def _big(rng, dtype=np.float32, n=64, k=512, m=600):
    assert n * k * m >= mp.MIN_WORK
    return (rng.standard_normal((n, k)).astype(dtype), rng.standard_normal((m, k)).astype(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_call_equals_the_direct_product_bit_for_bit(dtype):
    """With this machine's BLAS, whichever way it takes: every call returns a @ b.T exactly,
    C-ordered (the first call checks whether the two ways agree; where they do not, as with
    OpenBLAS's Haswell kernel, the plan stays on the direct product)."""
    rng = np.random.default_rng(0)
    a, b = _big(rng, dtype)
    agree = np.array_equal(a @ b.T, np.ascontiguousarray((b @ a.T).T))
    for _ in range(1 + 2 * mp.ROUNDS + 3):
        out = mp.matmul_nt(a, b)
        assert out.dtype == dtype and out.shape == (a.shape[0], b.shape[0])
        assert out.flags.c_contiguous
        np.testing.assert_array_equal(out, a @ b.T)
    (plan,) = mp._plans.values()
    if agree:
        assert plan.choice in (True, False)
        assert len(plan.direct_s) == len(plan.transposed_s) == mp.ROUNDS
    else:
        assert plan.choice is False and plan.direct_s == plan.transposed_s == []
    assert list(mp.plans().values()) == ["transposed" if plan.choice else "direct"]


def test_transposed_is_the_same_product_in_c_order():
    rng = np.random.default_rng(9)
    a, b = _big(rng, np.float64)
    out = mp._transposed(a, b)
    assert out.flags.c_contiguous and out.shape == (a.shape[0], b.shape[0])
    np.testing.assert_allclose(out, a @ b.T, rtol=1e-12, atol=1e-10)


def _agreeing(monkeypatch):
    """A _transposed that agrees with the direct product by construction, counting its calls."""
    calls = []
    monkeypatch.setattr(mp, "_transposed", lambda x, y: calls.append(1) or np.ascontiguousarray(x @ y.T))
    return calls


def test_the_plan_measures_alternately_then_keeps_its_choice(monkeypatch):
    calls = _agreeing(monkeypatch)
    rng = np.random.default_rng(0)
    a, b = _big(rng)
    mp.matmul_nt(a, b)
    assert len(calls) == 1  # the equality check
    plan = next(iter(mp._plans.values()))
    for i in range(2 * mp.ROUNDS):
        assert plan.choice is None
        np.testing.assert_array_equal(mp.matmul_nt(a, b), a @ b.T)
        assert len(plan.direct_s) + len(plan.transposed_s) == i + 1
        assert abs(len(plan.direct_s) - len(plan.transposed_s)) <= 1  # alternating
    assert plan.choice in (True, False)
    assert len(calls) == 1 + mp.ROUNDS


@pytest.mark.parametrize("choice", [True, False])
def test_the_decided_way_is_used(monkeypatch, choice):
    calls = _agreeing(monkeypatch)
    rng = np.random.default_rng(1)
    a, b = _big(rng)
    mp.matmul_nt(a, b)
    plan = next(iter(mp._plans.values()))
    plan.choice = choice
    calls.clear()
    np.testing.assert_array_equal(mp.matmul_nt(a, b), a @ b.T)
    assert len(calls) == (1 if choice else 0)


def test_the_faster_way_is_chosen():
    """Decided on the medians of the alternating calls: a much slower transposed call loses, a much
    faster one wins, about the same keeps the plain product."""
    plan = mp._Plan(None)
    for _ in range(mp.ROUNDS):
        plan.measured(True, 2.0)
    assert plan.choice is None  # not both measured yet
    for _ in range(mp.ROUNDS):
        plan.measured(False, 1.0)
    assert plan.choice is False
    plan = mp._Plan(None)
    for _ in range(mp.ROUNDS):
        plan.measured(False, 1.0)
        plan.measured(True, 0.5)
    assert plan.choice is True
    plan = mp._Plan(None)
    for _ in range(mp.ROUNDS):
        plan.measured(False, 1.0)
        plan.measured(True, 0.99)
    assert plan.choice is False


def test_a_blas_whose_two_ways_differ_keeps_the_direct_product(monkeypatch):
    rng = np.random.default_rng(3)
    a, b = _big(rng)
    real = mp._transposed
    monkeypatch.setattr(mp, "_transposed", lambda x, y: np.nextafter(real(x, y), np.inf))
    for _ in range(1 + 2 * mp.ROUNDS):
        np.testing.assert_array_equal(mp.matmul_nt(a, b), a @ b.T)
    (plan,) = mp._plans.values()
    assert plan.choice is False and plan.direct_s == [] and plan.transposed_s == []


def test_nan_in_the_same_places_counts_as_the_same(monkeypatch):
    _agreeing(monkeypatch)
    rng = np.random.default_rng(4)
    a, b = _big(rng)
    a[3, 7] = np.nan
    out = mp.matmul_nt(a, b)
    assert np.isnan(out[3]).all()
    (plan,) = mp._plans.values()
    assert plan.choice is None  # equal (NaN where the direct product has NaN): measuring


@pytest.mark.parametrize("case", ["small", "f_order", "dtype_mix", "integer", "view"])
def test_other_inputs_are_the_plain_product(monkeypatch, case):
    rng = np.random.default_rng(5)
    a, b = _big(rng)
    if case == "small":
        a, b = a[:4, :16].copy(), b[:8, :16].copy()
    elif case == "f_order":
        a = np.asfortranarray(a)
    elif case == "dtype_mix":
        b = b.astype(np.float64)
    elif case == "integer":
        a, b = (a * 10).astype(np.int64), (b * 10).astype(np.int64)
    elif case == "view":
        a = a[:, ::2]
        b = b[:, ::2]
    out = mp.matmul_nt(a, b)
    np.testing.assert_array_equal(out, a @ b.T)
    assert mp._plans == {}


def test_linear_backward_uses_it_and_its_input_gradient_is_unchanged():
    """F.linear's input gradient (an intermediate variable, e.g. after another layer) goes through the
    plan for a large product and is gy @ W.T bit for bit."""
    rng = np.random.default_rng(6)
    x = stucrs.Variable(rng.standard_normal((64, 600)).astype(np.float32))
    layer = L.Linear(512, in_size=600)
    layer.W.data = rng.standard_normal((600, 512)).astype(np.float32)
    y = layer(x)
    gy = rng.standard_normal(y.shape).astype(np.float32)
    for _ in range(1 + 2 * mp.ROUNDS + 2):
        x.cleargrad()
        layer.cleargrads()
        y = layer(x)
        y.grad = stucrs.Variable(gy)
        y.backward()
        np.testing.assert_array_equal(x.grad.data, gy @ layer.W.data.T)
    assert list(mp._plans) == [(64, 512, 600, "f")]
    assert mp._plans[(64, 512, 600, "f")].choice is not None


def test_double_backward_is_unchanged():
    """With create_graph=True the input gradient stays a graph of functions (not the plan)."""
    x = stucrs.Variable(np.random.default_rng(7).standard_normal((3, 4)))
    W = stucrs.Variable(np.random.default_rng(8).standard_normal((4, 2)))
    y = F.sum(F.linear(x, W) ** 2)
    y.backward(create_graph=True)
    gx = x.grad
    x.cleargrad()
    F.sum(gx).backward()
    assert x.grad is not None and mp._plans == {}


def test_the_book_path_does_not_use_it():
    """With Config.fast off, F.linear's backward is the book's matmul(gy, W.T): no plan is made."""
    rng = np.random.default_rng(9)
    x = stucrs.Variable(rng.standard_normal((64, 600)).astype(np.float32))
    with stucrs.using_config("fast", False):
        layer = L.Linear(512, in_size=600)
        for _ in range(3):
            x.cleargrad()
            F.sum(layer(x)).backward()
    assert mp._plans == {}
    np.testing.assert_array_equal(x.grad.data, np.ones((64, 512), np.float32) @ layer.W.data.T)
