"""stucrs.fast.functions: the array backwards and the cache-blocked ReLU give the book's values.

Every case here runs with the fast paths on (the default); the same inputs through the book's
classes (``using_config("fast", False)``) must give the same arrays, bit for bit.
"""
import numpy as np
import pytest

import stucrs
import stucrs.functions as F
import stucrs.layers as L
import stucrs.optimizers as O
from stucrs import Variable


def _special_values(shape, dtype, seed):
    """Random values with NaN, ±0, ±inf and exact zeros sprinkled in."""
    a = np.random.default_rng(seed).normal(size=shape).astype(dtype)
    flat = a.reshape(-1)
    flat[:7] = [np.nan, -0.0, 0.0, np.inf, -np.inf, 1e-30, -1e-30]
    flat[::97] = 0
    return a


@pytest.mark.parametrize("layout", ["c", "f", "cn", "sliced", "small"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_in_cache_blocks_equals_the_whole_array(layout, dtype, monkeypatch):
    # big arrays go through ReLU forward in FLAT_BLOCK pieces (backward without a graph: the
    # comparison written as 0/1 floats, then the product, over the whole array);
    # a tiny block size exercises many blocks and a partial last one
    from stucrs.fast import elementwise as utils
    monkeypatch.setattr(utils, "FLAT_BLOCK", 1000)
    shape = (6, 5, 11, 13)
    x0, gy0 = _special_values(shape, dtype, 1), _special_values(shape, dtype, 2)
    if layout == "f":
        x0, gy0 = np.asfortranarray(x0), np.asfortranarray(gy0)
    elif layout == "cn":  # conv2d's output layout: (N, C, H, W) over (C, N, H, W) memory
        x0 = np.ascontiguousarray(x0.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
        gy0 = np.ascontiguousarray(gy0.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    elif layout == "sliced":  # not dense: the whole-array path
        x0, gy0 = x0[:, :, 1:], gy0[:, :, 1:]
    elif layout == "small":
        x0, gy0 = x0[:1, :1].copy(), gy0[:1, :1].copy()
    blocked = layout in ("c", "f", "cn")
    assert (utils.flat_views(x0, np.empty_like(x0)) is not None) == blocked
    x = Variable(x0)
    y = F.relu(x)
    np.testing.assert_array_equal(y.data, np.maximum(x0, 0))
    assert y.data.dtype == dtype
    if blocked:  # the output keeps the input's memory layout
        assert y.data.strides == x0.strides
    y.grad = Variable(gy0)
    y.backward()
    with np.errstate(invalid="ignore"):  # inf * 0 -> nan, in both
        expected = gy0 * (x0 > 0)
    np.testing.assert_array_equal(x.grad.data, expected)
    assert x.grad.data.dtype == dtype
    # signs of the zeros too (gy * 0.0 keeps -0.0 for negative gy, as the whole-array product)
    np.testing.assert_array_equal(np.signbit(x.grad.data), np.signbit(expected))


def test_flat_views_refuses_arrays_that_do_not_line_up(monkeypatch):
    from stucrs.fast import elementwise as utils
    monkeypatch.setattr(utils, "FLAT_BLOCK", 10)
    a = np.zeros((4, 8), np.float32)
    assert utils.flat_views(a, np.zeros((8, 4), np.float32)) is None  # other shape
    assert utils.flat_views(a, np.zeros((4, 8), np.float32, order="F")) is None  # other layout
    assert utils.flat_views(a, a.astype(np.float64)) is None  # other strides
    assert utils.flat_views(a[:, ::2]) is None  # gaps
    views = utils.flat_views(a, np.asfortranarray(a).T.T.copy())
    assert [v.shape for v in views] == [(32,), (32,)]
    assert utils.block_ranges(25) == [(0, 10), (10, 20), (20, 25)]
    z = utils.zero_block(np.float32)
    assert len(z) == 10 and not z.any() and not z.flags.writeable


# --- the switch: fast paths against the book's classes ------------------------------------------

def _book(fn, *args, **kwargs):
    with stucrs.using_config("fast", False):
        return fn(*args, **kwargs)


def test_the_switch_picks_the_book_class_or_its_fast_subclass():
    x = Variable(np.ones((2, 3), np.float32))
    fast_creator = F.relu(x).creator
    book_creator = _book(F.relu, x).creator
    assert type(book_creator) is F.ReLU
    assert type(fast_creator) is not F.ReLU and isinstance(fast_creator, F.ReLU)
    assert type(fast_creator).__name__ == "ReLU"  # graphs and profiles show the book's name
    assert type(fast_creator).__module__ == "stucrs.fast.functions"
    assert type(_book(O.SGD)) is O.SGD and type(O.SGD()).__module__ == "stucrs.fast.optimizers"


def test_learners_own_subclasses_are_untouched():
    class Square(stucrs.Function):
        def forward(self, x):
            return x ** 2

        def backward(self, gy):
            return 2 * self.inputs[0] * gy

    assert type(Square()) is Square


def _ops():
    """name -> (inputs, function): each op that has a fast implementation."""
    import stucrs.functions_conv as FC
    import stucrs.functions_nn as FNN
    rng = np.random.default_rng(0)
    r = lambda *s: rng.standard_normal(s)  # noqa: E731
    t = rng.integers(0, 5, 8)
    mean, var = np.zeros(3), np.ones(3)
    return {
        "linear": ([r(8, 6), r(6, 5), r(5)], lambda x, W, b: F.linear(x, W, b)),
        "matmul": ([r(8, 6), r(6, 5)], lambda x, W: F.matmul(x, W)),
        "relu": ([r(4, 3, 5, 5)], lambda x: F.relu(x)),
        "softmax_cross_entropy": ([r(8, 5)], lambda x: F.softmax_cross_entropy(x, t)),
        "batch_norm": ([r(8, 3, 4, 4), r(3), r(3)],
                       lambda x, g, b: FNN.batch_norm(x, g, b, mean.copy(), var.copy())),
        "conv2d": ([r(2, 3, 7, 7), r(4, 3, 3, 3), r(4)], lambda x, W, b: FC.conv2d(x, W, b, 2, 1)),
        "deconv2d": ([r(2, 3, 4, 4), r(3, 4, 3, 3), r(4)], lambda x, W, b: FC.deconv2d(x, W, b, 2, 1)),
        "pooling": ([r(2, 3, 7, 7)], lambda x: FC.pooling(x, 3, 2, 1)),
        # ReLU's backward through the pooling's lazy gradient (stucrs.fast.conv.PooledGrad)
        "conv2d_relu_pooling": ([r(2, 3, 8, 8), r(4, 3, 3, 3)],
                                lambda x, W: FC.pooling(F.relu(FC.conv2d(x, W)), 2, 2)),
        "average_pooling": ([r(2, 3, 6, 6)], lambda x: FC.average_pooling(x, 2, 2)),
    }


def _grads(fn, arrays, fast, create_graph):
    with stucrs.using_config("fast", fast):
        xs = [Variable(a.copy()) for a in arrays]
        y = fn(*xs)
        loss = F.sum(F.tanh(y) ** 2)
        loss.backward(create_graph=create_graph)
        out = [y.data] + [x.grad.data for x in xs]
        if create_graph:  # the gradient of the sum of the first gradient: double backward
            g = xs[0].grad
            for x in xs:
                x.cleargrad()
            F.sum(g * g).backward()
            out += [x.grad.data for x in xs if x.grad is not None]
        return out


@pytest.mark.parametrize("create_graph", [False, True])
@pytest.mark.parametrize("name", list(_ops()))
def test_fast_and_book_give_the_same_values_and_gradients(name, create_graph):
    arrays, fn = _ops()[name]
    fast = _grads(fn, arrays, True, create_graph)
    book = _grads(fn, arrays, False, create_graph)
    assert len(fast) == len(book)
    for a, b in zip(fast, book):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_dropout_draws_the_same_mask_in_both_modes():
    x = np.random.default_rng(1).standard_normal((16, 20)).astype(np.float32)
    outs = []
    for fast in (True, False):
        np.random.seed(3)
        with stucrs.using_config("fast", fast):
            v = Variable(x.copy())
            y = F.dropout(v, 0.3)
            F.sum(y * y).backward()
        outs.append((y.data, v.grad.data))
    np.testing.assert_array_equal(outs[0][0], outs[1][0])
    np.testing.assert_allclose(outs[0][1], outs[1][1], rtol=1e-6)


def _train(fast, model_fn, x, t, steps=5, optimizer=O.SGD, **opt_kwargs):
    with stucrs.using_config("fast", fast):
        np.random.seed(0)
        model = model_fn()
        opt = optimizer(**opt_kwargs).setup(model)
        losses = []
        for i in range(steps):
            loss = F.softmax_cross_entropy(model(x), t)
            model.cleargrads()
            loss.backward()
            opt.update()
            losses.append(float(loss.data))
        return losses, [p.data.copy() for p in model.params()]


def _cnn():
    import stucrs.functions_conv as FC

    class CNN(stucrs.Model):
        def __init__(self):
            super().__init__()
            self.conv = L.Conv2d(8, 3, nobias=True)
            self.l1 = L.Linear(32)
            self.l2 = L.Linear(10)

        def forward(self, x):
            x = F.relu(self.conv(x))
            x = F.dropout(FC.pooling(x, 2, 2), 0.2)
            x = F.relu(self.l1(F.flatten(x)))
            return self.l2(x)
    return CNN()


@pytest.mark.parametrize("network", ["mlp", "cnn"])
@pytest.mark.parametrize("optimizer, kwargs", [(O.SGD, {"lr": 0.1}), (O.MomentumSGD, {"lr": 0.05})])
def test_training_steps_agree_in_both_modes(network, optimizer, kwargs):
    """A few SGD steps (dense weights large enough for BLAS updates and deferred gradients): losses and
    weights of the fast path equal the book's to float32 rounding."""
    rng = np.random.default_rng(2)
    if network == "mlp":
        x = rng.random((64, 784), dtype=np.float32)
        model_fn = lambda: stucrs.models.MLP((300, 300, 10))  # noqa: E731
    else:
        x = rng.random((32, 1, 12, 12), dtype=np.float32)
        model_fn = _cnn
    t = rng.integers(0, 10, len(x))
    fast_losses, fast_params = _train(True, model_fn, x, t, optimizer=optimizer, **kwargs)
    book_losses, book_params = _train(False, model_fn, x, t, optimizer=optimizer, **kwargs)
    np.testing.assert_allclose(fast_losses, book_losses, rtol=1e-5)
    assert fast_losses[-1] < fast_losses[0]
    for a, b in zip(fast_params, book_params):
        assert a.dtype == b.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


_FRESH = r"""
import json, sys
import numpy as np
import stucrs, stucrs.functions as F, stucrs.optimizers as O, stucrs.models
from stucrs.fast import blas
model = stucrs.models.MLP((300, 10)); opt = O.SGD(lr=0.1).setup(model)
loss = F.softmax_cross_entropy(model(np.random.rand(64, 784).astype(np.float32)), np.zeros(64, int))
loss.backward(); opt.update()
print(json.dumps({"fast": stucrs.Config.fast, "blas": blas.blas_status(),
                  "malloc_module": "stucrs.fast.malloc" in sys.modules,
                  "sgd": type(opt).__module__}))
"""


def _fresh(code, **env):
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path
    full = {k: v for k, v in os.environ.items() if k != "STUCRS_FAST"}
    full.update(env)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env=full, cwd=str(Path(__file__).resolve().parents[1]))
    return r, (json.loads(r.stdout.strip().splitlines()[-1]) if r.returncode == 0 else None)


def test_import_stucrs_changes_nothing_in_the_process():
    """import + a training step in book mode: no BLAS symbol looked up, the malloc module not loaded."""
    r, out = _fresh(_FRESH, STUCRS_FAST="0")
    assert r.returncode == 0, r.stderr
    assert out == {"fast": False, "blas": "not looked up yet: the first large update looks for NumPy's BLAS",
                   "malloc_module": False, "sgd": "stucrs.optimizers"}
    r, out = _fresh("import sys, json, stucrs; print(json.dumps(sorted(m for m in sys.modules if m == 'ctypes' "
                    "or m.startswith('stucrs.fast.') and m.endswith(('blas', 'malloc')))))")
    assert r.returncode == 0, r.stderr
    assert "stucrs.fast.malloc" not in out


@pytest.mark.parametrize("value, fast", [("0", False), (" off ", False), ("false", False), ("1", True),
                                         ("", True), ("yes", True)])
def test_stucrs_fast_environment_variable(value, fast):
    r, out = _fresh(_FRESH, STUCRS_FAST=value)
    assert r.returncode == 0, r.stderr
    assert out["fast"] is fast
    assert out["sgd"] == ("stucrs.fast.optimizers" if fast else "stucrs.optimizers")


def test_a_value_not_understood_is_a_clear_error():
    r, _ = _fresh("import stucrs", STUCRS_FAST="maybe")
    assert r.returncode != 0
    assert "STUCRS_FAST='maybe' is not understood" in r.stderr and "STUCRS_FAST=0" in r.stderr


# --- found in review ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["SGD", "MomentumSGD", "AdaGrad", "AdaDelta", "Adam", "AdamW"])
def test_every_fast_optimizer_pickles_and_stays_fast(name):
    import pickle
    opt = getattr(O, name)()
    assert type(opt).__module__ == "stucrs.fast.optimizers" and type(opt).__name__ == name
    again = pickle.loads(pickle.dumps(opt))
    assert type(again) is type(opt)


def test_a_function_called_with_arguments_it_does_not_take_is_an_error():
    x = Variable(np.array(1.0))
    for fast in (True, False):
        with stucrs.using_config("fast", fast):
            with pytest.raises(TypeError):
                F.Exp(x)  # meant: F.Exp()(x)
            with pytest.raises(TypeError):
                F.ReLU(x)
            assert float(F.Exp()(x).data) == pytest.approx(np.e)


def test_a_batch_of_one_keeps_the_bias_gradient_apart_from_the_deferred_weight_gradient():
    """With batch 1 the bias gradient sum_to(gy) is gy itself; the deferred weight gradient holds gy,
    so an in-place change of b.grad (a DeZero-style hook) must not reach W.grad."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 400)).astype(np.float32)
    W = stucrs.Parameter(rng.standard_normal((400, 300)).astype(np.float32))
    b = stucrs.Parameter(np.zeros((1, 300), np.float32))
    y = F.linear(x, W, b)
    y.grad = Variable(rng.standard_normal((1, 300)).astype(np.float32))
    gy = y.grad.data.copy()
    y.backward()
    assert type(W.grad).__name__ == "DeferredGrad"
    b.grad.data += 1.0
    np.testing.assert_allclose(W.grad.data, x.T @ gy, rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.int64, np.uint8])
def test_average_pooling_of_integers_is_the_same_in_both_modes(dtype):
    x = (np.arange(32) * 7 % 200).astype(dtype).reshape(2, 1, 4, 4)
    import stucrs.functions_conv as FC
    fast = FC.average_pooling(x, 2, 2).data
    with stucrs.using_config("fast", False):
        book = FC.average_pooling(x, 2, 2).data
    np.testing.assert_allclose(fast, book)
    assert fast.dtype.kind == "f"


# --- ReLU's backward through max pooling (stucrs.fast.conv.PooledGrad) ------------------------
def _relu_pool_grads(x0, pool_args, monkeypatch=None, fused=True, fast=True, shared=False, retain=True):
    """x -> ReLU -> max pooling -> sum(y * c): the gradients of x and of the ReLU's output (kept
    when ``retain``, else None)."""
    from stucrs.fast.conv import PooledGrad
    import stucrs.functions_conv as FC
    if not fused:  # the ReLU then computes its own backward on the full-size gradient
        monkeypatch.setattr(PooledGrad, "through_relu", lambda self, relu_output: None)
    with stucrs.using_config("fast", fast):
        x = Variable(x0.copy())
        h = F.relu(x)
        y = FC.pooling(h, *pool_args)
        c = np.random.default_rng(7).standard_normal(y.shape).astype(x0.dtype)
        loss = F.sum(y * c)
        if shared:  # the ReLU's output is used twice: its gradient is a sum, not the pooling's
            loss = loss + F.sum(h)
        loss.backward(retain_grad=retain)
        return x.grad, (h.grad.data if retain else None)


@pytest.mark.parametrize("retain", [True, False])
@pytest.mark.parametrize("pool_args", [(2, 2, 0), (3, 2, 1), (2, 1, 0), (2, 3, 0)])
@pytest.mark.parametrize("layout", ["c", "cn"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_backward_through_max_pooling_masks_the_small_gradient(pool_args, layout, dtype, retain,
                                                                      monkeypatch):
    """The ReLU's gradient is the pooling's lazy gradient with the mask put on the pooled gradient:
    bit for bit what the ReLU's own backward gives, and the book's values."""
    from stucrs.fast.conv import PooledGrad
    x0 = _special_values((6, 5, 10, 10), dtype, 3)
    x0[np.isnan(x0)] = 0.5  # NaN aside (a NaN maximum is not a position's value)
    x0[:, :, :4, :4] = 0  # windows of ties (ReLU's zeros): the first position takes the gradient
    if layout == "cn":  # conv2d's output layout: (N, C, H, W) over (C, N, H, W) memory
        x0 = np.ascontiguousarray(x0.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    gx, gh = _relu_pool_grads(x0, pool_args, retain=retain)
    assert type(gx) is PooledGrad  # the ReLU did not compute a full-size gradient itself
    with monkeypatch.context() as m:
        gx_relu, gh_relu = _relu_pool_grads(x0, pool_args, m, fused=False, retain=retain)
    assert type(gx_relu) is Variable
    np.testing.assert_array_equal(gx.data, gx_relu.data)
    gx_book, gh_book = _relu_pool_grads(x0, pool_args, fast=False, retain=retain)
    np.testing.assert_array_equal(gx.data, gx_book.data)
    if retain:  # the ReLU's output keeps the pooling's gradient
        np.testing.assert_array_equal(gh, gh_relu)
        np.testing.assert_array_equal(gh, gh_book)


def test_relu_output_used_twice_gets_the_summed_gradient():
    """Two gradients reach the ReLU's output: they are added as arrays and the ReLU computes its own
    backward on the sum (the pooling's gradient alone would be wrong)."""
    from stucrs.fast.conv import PooledGrad
    x0 = np.random.default_rng(5).standard_normal((4, 3, 8, 8))
    gx, gh = _relu_pool_grads(x0, (2, 2, 0), shared=True)
    assert type(gx) is Variable
    gx_book, gh_book = _relu_pool_grads(x0, (2, 2, 0), fast=False, shared=True)
    np.testing.assert_array_equal(gx.data, gx_book.data)
    np.testing.assert_array_equal(gh, gh_book)


def test_two_backward_passes_add_the_pooled_gradients():
    import stucrs.functions_conv as FC
    x0 = np.random.default_rng(9).standard_normal((3, 2, 8, 8))
    grads = []
    for fast in (True, False):
        with stucrs.using_config("fast", fast):
            x = Variable(x0.copy())
            for scale in (1.0, -2.0):
                F.sum(FC.pooling(F.relu(x), 2, 2) * scale).backward()
            grads.append(x.grad)
    assert type(grads[0]) is Variable  # the sum of the two lazy gradients is an array
    np.testing.assert_array_equal(grads[0].data, grads[1].data)


def test_pooling_of_a_sum_with_the_relu_output_is_not_masked_by_that_relu():
    """pooling(relu(x) + z): the ReLU gets Add's gradient (the pooling's, passed on unchanged), but
    the pooling's input is the sum, not the ReLU's output: the ReLU computes its own backward."""
    import stucrs.functions_conv as FC
    from stucrs.fast.conv import PooledGrad
    rng = np.random.default_rng(10)
    x0, z0 = rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((2, 3, 6, 6))
    out = []
    for fast in (True, False):
        with stucrs.using_config("fast", fast):
            x, z = Variable(x0.copy()), Variable(z0.copy())
            F.sum(FC.pooling(F.relu(x) + z, 2, 2)).backward()
            out.append((x.grad, z.grad))
    (gx, gz), (gx_book, gz_book) = out
    assert type(gz) is PooledGrad and type(gx) is Variable
    np.testing.assert_array_equal(gx.data, gx_book.data)
    np.testing.assert_array_equal(gz.data, gz_book.data)


def test_optimizer_hooks_see_the_pooled_gradient_computed_before_any_hook_writes():
    """A hook that changes gradients in place (the book's WeightDecay style) must not leak into a
    lazy gradient that shares its array: Add hands the same gradient to both inputs."""
    import stucrs.functions_conv as FC
    rng = np.random.default_rng(11)
    v0, w0 = rng.standard_normal((1, 1, 2, 2)), rng.standard_normal((1, 1, 4, 4))

    def in_place_decay(params):
        for p in params:
            p.grad.data += 0.5 * p.data

    out = []
    for fast in (True, False):
        with stucrs.using_config("fast", fast):
            model = stucrs.Model()
            model.v = stucrs.Parameter(v0.copy())  # registered first: its hook writes first
            model.w = stucrs.Parameter(w0.copy())
            opt = O.SGD(lr=1.0).setup(model)
            opt.add_hook(in_place_decay)
            F.sum(FC.pooling(model.w, 2, 2) + model.v).backward()
            opt.update()
            out.append((model.v.data.copy(), model.w.data.copy()))
    np.testing.assert_array_equal(out[0][0], out[1][0])
    np.testing.assert_array_equal(out[0][1], out[1][1])


def test_pooled_gradient_of_another_variable_is_not_used_by_the_relu():
    """A ReLU whose output is not the pooling's input computes its backward itself."""
    import stucrs.functions_conv as FC
    from stucrs.fast.conv import PooledGrad
    x0 = np.random.default_rng(6).standard_normal((2, 3, 6, 6))
    x = Variable(x0)
    h = F.relu(x)
    y = FC.pooling(h * 2.0, 2, 2)
    F.sum(y).backward()
    assert type(x.grad) is Variable
    expected = np.zeros_like(x0)
    window = (x0 * 2).reshape(2, 3, 3, 2, 3, 2).transpose(0, 1, 2, 4, 3, 5).reshape(2, 3, 3, 3, 4)
    first = window.argmax(axis=-1)  # the first maximum of each window
    onehot = (np.arange(4) == first[..., None]).reshape(2, 3, 3, 3, 2, 2).transpose(0, 1, 2, 4, 3, 5)
    expected = 2.0 * onehot.reshape(2, 3, 6, 6) * (x0 > 0)
    np.testing.assert_array_equal(x.grad.data, expected)
    stale = PooledGrad.of(y.creator, np.ones(y.shape))
    assert stale.through_relu(h) is None  # the pooling's input is h * 2, not h
    stale.data  # noqa: B018 - computed now: nothing is left to mask
    assert not stale.pending() and stale.through_relu(y.creator.inputs[0]) is None


def test_pooled_gradient_holds_no_reference_cycle_and_pickles_as_its_array():
    """A leaf's lazy gradient keeps no strong reference to the graph (no cycle: freed by reference
    counting alone), and pickle / deepcopy give a plain Variable holding the computed array."""
    import copy
    import gc
    import pickle
    import weakref
    import stucrs.functions_conv as FC
    from stucrs.fast.conv import PooledGrad
    x0 = np.random.default_rng(8).standard_normal((2, 3, 6, 6))
    gc.disable()
    try:
        x = Variable(x0)
        y = FC.pooling(F.relu(x), 2, 2)
        pool = weakref.ref(y.creator)
        F.sum(y).backward()
        del y
        assert type(x.grad) is PooledGrad and x.grad.pending()
        assert pool() is None  # the graph went with its last reference, no collector needed
    finally:
        gc.enable()
    with stucrs.using_config("fast", False):
        xb = Variable(x0)
        F.sum(FC.pooling(F.relu(xb), 2, 2)).backward()
    restored = pickle.loads(pickle.dumps(x.grad))
    cloned = copy.deepcopy(x)
    assert type(restored) is Variable and type(cloned.grad) is Variable
    np.testing.assert_array_equal(restored.data, xb.grad.data)
    np.testing.assert_array_equal(cloned.grad.data, xb.grad.data)
    np.testing.assert_array_equal(x.grad.data, xb.grad.data)


def test_pooling_backward_called_by_hand_after_a_call_without_a_graph():
    """Input arrays that need no gradient: no graph is kept, and calling backward by hand still gives
    the scattered gradient (an ordinary Variable, as the book's class gives)."""
    import stucrs.functions_conv as FC
    rng = np.random.default_rng(12)
    x0, gy0 = rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((2, 3, 3, 3))
    grads = []
    for fast in (True, False):
        with stucrs.using_config("fast", fast):
            f = FC.Pooling(2, 2, 0)
            f(x0)  # a raw array: no graph (no inputs / outputs kept)
            with stucrs.using_config("enable_backprop", False):
                grads.append(f.backward(Variable(gy0)))
    assert type(grads[0]) is Variable
    np.testing.assert_array_equal(grads[0].data, grads[1].data)
