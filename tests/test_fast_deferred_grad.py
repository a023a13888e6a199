"""A dense layer's weight gradient ``x.T @ gy`` kept as its factors (``DeferredGrad``) until read,
and SGD's update ``W -= lr * x.T @ gy`` as one BLAS gemm (``stucrs.fast.blas.gemm_update``).

What a user can see must not change: ``W.grad.data`` is the same array, bit for bit, as the eager
product, whenever it is read (before or after the update, after the input was overwritten), hooks
and other optimizers see an ordinary gradient, and the update is the textbook formula up to the
rounding of one fused multiply-add per element.
"""

import copy
import json
import os
import pickle
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import stucrs
import stucrs.functions as F
import stucrs.layers as L
import stucrs.optimizers as O
from stucrs.fast import blas
from stucrs.core import Variable
from stucrs.fast.deferred import DeferredGrad

REPO = Path(__file__).resolve().parents[1]
LINUX = platform.system() == "Linux"
needs_blas = pytest.mark.skipif(not LINUX, reason="NumPy's BLAS is found through /proc/self/maps on Linux")


@pytest.fixture(autouse=True)
def fresh_lookup():
    blas._reset()
    yield
    blas._reset()


def _rand(rng, *shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


def _layer_and_grad(n=64, n_in=300, n_out=200, dtype=np.float32, seed=0):
    """A Linear layer after one backward of sum(y * c): W.grad is x.T @ c."""
    rng = np.random.default_rng(seed)
    x = _rand(rng, n, n_in, dtype=dtype)
    c = _rand(rng, n, n_out, dtype=dtype)
    np.random.seed(seed)  # the layer's initial weights
    layer = L.Linear(n_out, dtype=dtype, in_size=n_in)
    y = layer(x)
    F.sum(y * c).backward()
    return layer, x, c


def _ulps(a, b):
    """Largest distance in units in the last place between two float32 arrays."""
    ia, ib = a.view(np.int32).astype(np.int64), b.view(np.int32).astype(np.int64)
    ia = np.where(ia < 0, -(ia & 0x7FFFFFFF), ia)
    ib = np.where(ib < 0, -(ib & 0x7FFFFFFF), ib)
    return int(np.abs(ia - ib).max())


# --- DeferredGrad ---------------------------------------------------------------------------
def test_deferred_grad_reads_as_the_product_and_forgets_its_factors():
    rng = np.random.default_rng(1)
    a, b = _rand(rng, 7, 5), _rand(rng, 7, 3)
    g = DeferredGrad(a, b)
    assert isinstance(g, Variable) and g.factors()[0] is a and g.factors()[1] is b
    np.testing.assert_array_equal(g.data, a.T @ b)
    assert g.factors() is None and g.data is g.data  # computed once, then an ordinary array
    assert g.shape == (5, 3) and g.dtype == np.float32


def test_deferred_grad_data_can_be_replaced():
    rng = np.random.default_rng(2)
    g = DeferredGrad(_rand(rng, 4, 2), _rand(rng, 4, 2))
    g.data = np.zeros((2, 2), np.float32)
    assert g.factors() is None
    np.testing.assert_array_equal(g.data, np.zeros((2, 2)))


# --- Linear's backward ----------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_large_weights_get_a_deferred_gradient_equal_to_the_eager_product(dtype):
    layer, x, c = _layer_and_grad(dtype=dtype)
    assert type(layer.W.grad) is DeferredGrad
    np.testing.assert_array_equal(layer.W.grad.data, x.T @ c)  # the same product, bit for bit
    assert layer.W.grad.data.dtype == dtype
    assert type(layer.b.grad) is Variable


@pytest.mark.parametrize("n, n_in, n_out, why", [
    (8, 30, 20, "small weight: nothing to gain"),
    (2000, 300, 200, "batch larger than the weight: keeping x and gy would take more memory"),
])
def test_other_weights_get_an_ordinary_gradient(n, n_in, n_out, why):
    layer, x, c = _layer_and_grad(n=n, n_in=n_in, n_out=n_out)
    assert type(layer.W.grad) is Variable, why
    np.testing.assert_allclose(layer.W.grad.data, x.T @ c, rtol=1e-5, atol=1e-4)


def test_double_backward_graphs_stay_eager():
    rng = np.random.default_rng(3)
    x = Variable(_rand(rng, 64, 300))
    W = stucrs.Parameter(_rand(rng, 300, 200))
    y = F.linear(x, W)
    F.sum(y * y).backward(create_graph=True)  # the gradient is a graph of its own
    assert type(W.grad) is Variable and W.grad.creator is not None


def test_overwriting_the_input_after_backward_does_not_change_the_gradient():
    layer, x, c = _layer_and_grad()
    expected = x.T @ c
    x[...] = 0  # e.g. the next batch loaded into the same buffer
    np.testing.assert_array_equal(layer.W.grad.data, expected)


def test_fortran_ordered_inputs_give_the_same_product_as_before():
    rng = np.random.default_rng(8)
    x, c = np.asfortranarray(_rand(rng, 64, 300)), np.asfortranarray(_rand(rng, 64, 200))
    np.random.seed(8)
    layer = L.Linear(200, in_size=300)
    F.sum(layer(x) * c).backward()
    assert type(layer.W.grad) is DeferredGrad
    np.testing.assert_array_equal(layer.W.grad.data, x.T @ c)  # the copies keep the layout


def test_shared_gradient_arrays_edited_in_place_do_not_change_the_weight_gradient():
    # h + P with P of h's shape: Add's backward hands the same gy array to h (the Linear's output)
    # and to P; a DeZero-style hook then edits P.grad in place before W is updated
    rng = np.random.default_rng(9)
    x, c = _rand(rng, 64, 300), _rand(rng, 64, 200)
    np.random.seed(9)
    model = stucrs.Model()
    model.l = L.Linear(200, in_size=300, nobias=True)
    model.P = stucrs.Parameter(np.zeros((64, 200), np.float32))
    F.sum((model.l(x) + model.P) * c).backward()
    W0 = model.l.W.data.copy()

    def in_place_hook(params):
        for p in params:
            if p is model.P:
                p.grad.data += 100.0  # the array Add handed to both

    O.SGD(lr=0.1).setup(model).add_hook(in_place_hook).update()
    np.testing.assert_allclose(model.l.W.data, W0 - np.float32(0.1) * (x.T @ c), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(model.l.W.grad.data, x.T @ c)


def test_intermediate_weights_get_an_ordinary_gradient():
    # the gradient of a weight computed from a parameter is read by the next backward step at once
    rng = np.random.default_rng(10)
    x = Variable(_rand(rng, 64, 300))
    P = stucrs.Parameter(_rand(rng, 300, 200))
    W = P * 1.0
    F.sum(F.matmul(x, W)).backward(retain_grad=True)
    assert type(W.grad) is Variable
    assert type(P.grad) is Variable
    np.testing.assert_allclose(P.grad.data, x.data.T @ np.ones((64, 200), np.float32), rtol=1e-5)


def test_matmul_with_a_parameter_defers_like_linear():
    rng = np.random.default_rng(11)
    x, c = _rand(rng, 64, 300), _rand(rng, 64, 200)
    W = stucrs.Parameter(_rand(rng, 300, 200))
    F.sum(F.matmul(x, W) * c).backward()
    assert type(W.grad) is DeferredGrad
    np.testing.assert_array_equal(W.grad.data, x.T @ c)


def test_deferred_gradients_survive_pickle_and_deepcopy():
    layer, x, c = _layer_and_grad()
    expected = x.T @ c
    clone = copy.deepcopy(layer)
    np.testing.assert_array_equal(clone.W.grad.data, expected)
    restored = pickle.loads(pickle.dumps(layer.W.grad))
    np.testing.assert_array_equal(restored.data, expected)
    np.testing.assert_array_equal(layer.W.grad.data, expected)


def test_gradients_accumulate_across_two_backward_passes():
    rng = np.random.default_rng(4)
    layer = L.Linear(200, in_size=300)
    x1, x2 = _rand(rng, 64, 300), _rand(rng, 64, 300)
    c1, c2 = _rand(rng, 64, 200), _rand(rng, 64, 200)
    first = x1.T @ c1
    F.sum(layer(x1) * c1).backward()
    x1[...] = x2  # the first batch's buffer is reused for the second batch
    F.sum(layer(x1) * c2).backward()
    np.testing.assert_array_equal(layer.W.grad.data, first + x2.T @ c2)


# --- the fused update -----------------------------------------------------------------------
def _assert_within_rounding(W_new, W0, lr, x, c):
    """W_new is W0 - lr * x.T @ c up to float rounding: the result's own (one epsilon of it) plus
    the product's (its sum of K terms in any order: K epsilons of sum |x| |c|, the textbook bound)."""
    x64, c64 = x.astype(np.float64), c.astype(np.float64)
    exact = W0.astype(np.float64) - lr * (x64.T @ c64)
    eps = np.finfo(W0.dtype).eps
    bound = eps * np.abs(exact) + lr * len(x) * eps * (np.abs(x64).T @ np.abs(c64))
    assert np.all(np.abs(W_new.astype(np.float64) - exact) <= bound)


@needs_blas
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sgd_updates_a_deferred_weight_in_one_gemm_and_keeps_the_gradient(dtype):
    layer, x, c = _layer_and_grad(dtype=dtype)
    W0 = layer.W.data.copy()
    O.SGD(lr=0.1).setup(layer).update()
    assert "gemm" in blas.blas_status(), blas.blas_status()
    assert layer.W.grad.factors() is not None  # updated without computing the gradient
    _assert_within_rounding(layer.W.data, W0, 0.1, x, c)
    # the textbook formula, for float32 within a couple of ulps
    textbook = W0 - (x.T @ c) * dtype(0.1)
    np.testing.assert_allclose(layer.W.data, textbook, rtol=1e-5, atol=1e-6)
    # read afterwards, the gradient is still x.T @ c, bit for bit
    np.testing.assert_array_equal(layer.W.grad.data, x.T @ c)


@needs_blas
def test_momentum_sgd_adds_the_deferred_gradient_to_its_velocity():
    layer, x, c = _layer_and_grad()
    W0 = layer.W.data.copy()
    opt = O.MomentumSGD(lr=0.1, momentum=0.9).setup(layer)
    opt.update()
    g = x.T @ c
    np.testing.assert_allclose(layer.W.data, W0 - np.float32(0.1) * g, rtol=1e-5, atol=1e-6)
    assert layer.W.grad.factors() is not None
    F.sum(layer(x) * c).backward()  # accumulates: the gradient is now 2 g
    opt.update()
    v = np.float32(0.9) * (-np.float32(0.1) * g) - np.float32(0.1) * (2 * g)
    np.testing.assert_allclose(layer.W.data, W0 - np.float32(0.1) * g + v, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("hook", [O.WeightDecay(1e-2), O.ClipGrad(1.0)])
def test_hooks_see_an_ordinary_gradient(hook):
    deferred, x, c = _layer_and_grad()
    eager, _, _ = _layer_and_grad()
    eager.W.grad = Variable(eager.W.grad.data)  # the same gradient, computed
    for layer in (deferred, eager):
        O.SGD(lr=0.1).setup(layer).add_hook(hook).update()
    np.testing.assert_allclose(deferred.W.data, eager.W.data, rtol=1e-6, atol=1e-7)


def test_optimizers_that_read_the_gradient_read_the_product():
    deferred, x, c = _layer_and_grad()
    eager, _, _ = _layer_and_grad()
    eager.W.grad = Variable(eager.W.grad.data)
    for layer in (deferred, eager):
        O.Adam().setup(layer).update()
    np.testing.assert_array_equal(deferred.W.data, eager.W.data)


_SWITCHED_OFF = r"""
import json, numpy as np, stucrs
import stucrs.functions as F, stucrs.layers as L, stucrs.optimizers as O
from stucrs.fast import blas
rng = np.random.default_rng(5)
x = rng.standard_normal((64, 300)).astype(np.float32)
c = rng.standard_normal((64, 200)).astype(np.float32)
layer = L.Linear(200, in_size=300)
W0 = layer.W.data.copy()
F.sum(layer(x) * c).backward()
O.SGD(lr=0.1).setup(layer).update()
plain = W0 - (x.T @ c) * np.float32(0.1)
print(json.dumps({"status": blas.blas_status(), "equal_plain": bool(np.array_equal(layer.W.data, plain))}))
"""


def test_switched_off_the_update_is_numpys_formula_bit_for_bit():
    env = dict(os.environ, STUCRS_FAST="0")
    out = subprocess.run([sys.executable, "-c", _SWITCHED_OFF], capture_output=True, text=True,
                         timeout=120, cwd=str(REPO), env=env)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["status"].startswith("not looked up") and r["equal_plain"], r


def test_training_an_mlp_matches_the_eager_gradients():
    """Ten SGD steps of a 784-256-10 MLP: deferred + fused against an eager copy of every gradient."""
    rng = np.random.default_rng(6)
    X = rng.random((640, 784), dtype=np.float32)
    T = rng.integers(0, 10, 640)
    models = []
    for _ in range(2):
        np.random.seed(7)
        model = stucrs.models.MLP((256, 10))
        model(X[:1])  # creates the weights now, from the same seed for both models
        models.append((model, O.SGD(lr=0.1).setup(model)))
    for i in range(10):
        x, t = X[i * 64:(i + 1) * 64], T[i * 64:(i + 1) * 64]
        for k, (model, opt) in enumerate(models):
            loss = F.softmax_cross_entropy(model(x), t)
            model.cleargrads()
            loss.backward()
            if k == 0:
                assert type(model.l0.W.grad) is DeferredGrad  # the 784x256 weight
            if k == 1:  # the reference: every gradient an ordinary, computed array
                for p in model.params():
                    p.grad = Variable(p.grad.data)
            opt.update()
            if k == 0 and LINUX:  # updated by the gemm, the gradient never computed
                assert models[0][0].l0.W.grad.factors() is not None
    for p_fused, p_eager in zip(models[0][0].params(), models[1][0].params()):
        np.testing.assert_allclose(p_fused.data, p_eager.data, rtol=1e-4, atol=1e-5)
