"""Variable / Function semantics (DeZero-compatible), higher-order derivatives from the book,
errors for bad input, graph freeing, and the lean paths (no graph under no_grad, no gradient work
for raw data)."""
import gc
import shutil
import tracemalloc
import weakref

import numpy as np
import pytest

import stucrs
import stucrs.functions as F
from stucrs import Config, Function, Parameter, Variable, as_array, as_variable, no_grad, using_config
from stucrs import utils


# --- Variable basics ---------------------------------------------------------------------------
def test_variable_attributes_and_repr():
    x = Variable(np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=np.float32), name="x")
    assert x.shape == (2, 3) and x.ndim == 2 and x.size == 6 and x.dtype == np.float32
    assert len(x) == 2 and x.name == "x"
    assert repr(x) == "variable([[1. 2. 3.]\n          [4. 5. 6.]])"
    assert repr(Variable(None)) == "variable(None)"
    assert x.T.shape == (3, 2)
    assert x.reshape(3, 2).shape == (3, 2) and x.reshape((6,)).shape == (6,)
    assert x.transpose().shape == (3, 2) and x.transpose(1, 0).shape == (3, 2)
    assert x.sum().data == pytest.approx(21.0)
    assert x.max().data == 6.0 and x.min().data == 1.0
    assert isinstance(Parameter(np.array(1.0)), Variable)


@pytest.mark.parametrize("bad", [[1, 2, 3], "abc", 1.0, None.__class__])
def test_variable_rejects_unsupported_types(bad):
    with pytest.raises(TypeError, match=type(bad).__name__ + " is not supported.*np.array"):
        Variable(bad)


@pytest.mark.parametrize("bad", [[1, 2], "a", None])
def test_operators_reject_unsupported_types(bad):
    x = Variable(np.array([1.0, 2.0]))
    with pytest.raises(TypeError, match=type(bad).__name__):
        x + bad
    with pytest.raises(TypeError, match=type(bad).__name__):
        F.sin(bad)


def test_shape_mismatch_errors_name_both_shapes():
    a = Variable(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"\(2, 3\) and \(4,\)"):
        a + np.ones(4)
    with pytest.raises(ValueError, match=r"\(2, 3\) and \(2, 3\)"):
        F.matmul(a, Variable(np.ones((2, 3))))
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 5\)"):
        F.linear(a, Variable(np.ones((4, 5))))


def test_as_array_and_as_variable():
    assert isinstance(as_array(1.0), np.ndarray)
    a = np.array(1.0)
    assert as_array(a) is a
    v = as_variable(a)
    assert isinstance(v, Variable) and v.data is a
    assert as_variable(v) is v


# --- backward semantics --------------------------------------------------------------------------
def test_backward_from_non_scalar_seeds_ones():
    x = Variable(np.array([1.0, 2.0, 3.0]))
    y = x * 2
    y.backward()
    np.testing.assert_allclose(x.grad.data, [2.0, 2.0, 2.0])


def test_backward_twice_accumulates_and_cleargrad_resets():
    x = Variable(np.array(3.0))
    y = x + x
    y.backward()
    assert x.grad.data == 2.0
    y = x + x
    y.backward()
    assert x.grad.data == 4.0
    x.cleargrad()
    y = x + x
    y.backward()
    assert x.grad.data == 2.0


def test_generation_order_on_diamond_graph():
    # y = (x^2)^2 + (x^2)^2 : the book's step 16 example, dy/dx = 64 at x = 2
    x = Variable(np.array(2.0))
    a = F.square(x)
    y = F.add(F.square(a), F.square(a)) if hasattr(F, "add") else F.square(a) + F.square(a)
    y.backward()
    assert y.data == 32.0
    assert x.grad.data == 64.0


def test_retain_grad():
    x = Variable(np.array(1.0))
    a = x * 3
    y = a * 2
    y.backward()
    assert a.grad is None and y.grad is None
    a2 = x * 3
    y2 = a2 * 2
    y2.backward(retain_grad=True)
    assert a2.grad.data == 2.0 and y2.grad.data == 1.0


def test_unchain_backward_cuts_graph():
    x = Variable(np.array(1.0))
    y = F.exp(x)
    z = y * 2
    z.unchain_backward()
    assert y.creator is None
    z.backward()
    assert x.grad is None and y.grad.data == 2.0


def test_no_grad_builds_no_graph():
    x = Variable(np.array(2.0))
    with no_grad():
        y = x * x
    assert y.creator is None
    assert Config.enable_backprop is True
    with using_config("train", False):
        assert Config.train is False
    assert Config.train is True
    with pytest.raises(AttributeError, match="known settings"):
        with using_config("no_such_flag", 1):
            pass


def test_raw_array_inputs_get_no_gradient_and_no_graph():
    raw = np.array([1.0, 2.0])
    y = F.sin(raw)  # nothing here needs a gradient: no graph is kept
    assert y.creator is None and y.requires_grad is False
    W = Variable(np.array([3.0, 4.0]))
    z = F.sum(raw * W)
    z.backward()
    np.testing.assert_allclose(W.grad.data, raw)


def test_user_defined_function_book_style():
    class Square(Function):
        def forward(self, x):
            return x ** 2

        def backward(self, gy):
            x = self.inputs[0].data
            return 2 * x * gy

    x = Variable(np.array(3.0))
    y = Square()(x)
    y.backward()
    assert y.data == 9.0 and x.grad.data == 6.0


# --- higher-order derivatives (the book's third stage) -----------------------------------------
def test_newton_method_book_values():
    # y = x^4 - 2x^2 from x = 2: the book's step 33 iterates
    expected = [2.0, 1.4545454545454546, 1.1510467893775467, 1.0253259289766978,
                1.0009084519430513, 1.0000012353089454, 1.000000000002289, 1.0, 1.0, 1.0]
    x = Variable(np.array(2.0))
    got = []
    for _ in range(10):
        got.append(float(x.data))
        y = x ** 4 - 2 * x ** 2
        x.cleargrad()
        y.backward(create_graph=True)
        gx = x.grad
        x.cleargrad()
        gx.backward()
        gx2 = x.grad
        x.data = x.data - gx.data / gx2.data
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def _tanh_derivative_polys(order):
    """Coefficients of d^n tanh / dx^n as polynomials in t = tanh(x)."""
    poly = np.polynomial.Polynomial([0.0, 1.0])  # tanh itself
    one_minus_t2 = np.polynomial.Polynomial([1.0, 0.0, -1.0])
    out = []
    for _ in range(order):
        poly = poly.deriv() * one_minus_t2
        out.append(poly)
    return out


def test_tanh_higher_derivatives_to_order_6():
    x = Variable(np.array(1.0))
    y = F.tanh(x)
    y.backward(create_graph=True)
    t = np.tanh(1.0)
    polys = _tanh_derivative_polys(6)
    for n in range(6):
        np.testing.assert_allclose(float(x.grad.data), polys[n](t), rtol=1e-10,
                                   err_msg=f"order {n + 1}")
        gx = x.grad
        x.cleargrad()
        gx.backward(create_graph=True)


def test_sin_higher_derivatives_cycle():
    x = Variable(np.linspace(-7, 7, 20))
    y = F.sin(x)
    y.backward(create_graph=True)
    expected = [np.cos, lambda v: -np.sin(v), lambda v: -np.cos(v), np.sin]
    for n in range(4):
        np.testing.assert_allclose(x.grad.data, expected[n](x.data), atol=1e-12)
        gx = x.grad
        x.cleargrad()
        gx.backward(create_graph=True)


def test_double_backprop_book_step_36():
    # y = x^2, z = (dy/dx)^3 + y ; dz/dx at x = 2 is 100
    x = Variable(np.array(2.0))
    y = x ** 2
    y.backward(create_graph=True)
    gx = x.grad
    x.cleargrad()
    z = gx ** 3 + y
    z.backward()
    assert x.grad.data == 100.0


# --- float32 stays float32 -----------------------------------------------------------------------
def test_float32_graph_stays_float32_with_numpy_scalars():
    x = Variable(np.array([0.5, 1.5], dtype=np.float32))
    y = F.sum(F.exp(x) * np.float64(3.0) + 2.0 - np.float32(1.0) / x) / 2 + x.max() ** 2
    assert y.dtype == np.float32
    y.backward(create_graph=True)
    assert x.grad.dtype == np.float32
    gx = x.grad
    x.cleargrad()
    F.sum(gx).backward()
    assert x.grad.dtype == np.float32


# --- memory: graphs are freed ---------------------------------------------------------------------
def test_graph_is_freed_when_output_goes_out_of_scope():
    x = Variable(np.ones((3, 3)))
    y = F.tanh(F.exp(x) * 2)
    func_ref = weakref.ref(y.creator)
    del y
    gc.collect()
    assert func_ref() is None


def test_memory_stays_flat_over_10000_training_iterations():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 4)).astype(np.float32)
    t = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    W1 = Variable(rng.normal(size=(4, 16)).astype(np.float32) * 0.5)
    b1 = Variable(np.zeros(16, dtype=np.float32))
    W2 = Variable(rng.normal(size=(16, 3)).astype(np.float32) * 0.5)
    b2 = Variable(np.zeros(3, dtype=np.float32))
    params = [W1, b1, W2, b2]

    def step():
        h = F.relu(F.linear(x, W1, b1))
        loss = F.softmax_cross_entropy(F.linear(h, W2, b2), t)
        for p in params:
            p.cleargrad()
        loss.backward()
        for p in params:
            p.data -= 0.01 * p.grad.data
        return float(loss.data)

    for _ in range(200):  # warm-up (allocator pools, caches)
        step()
    gc.collect()
    tracemalloc.start()
    first = None
    for i in range(10000):
        step()
        if i == 999:
            gc.collect()
            first = tracemalloc.get_traced_memory()[0]
    gc.collect()
    last = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert last - first < 64 * 1024, f"memory grew by {last - first} bytes over 9000 iterations"


# --- graph drawing -------------------------------------------------------------------------------
def test_get_dot_graph_lists_variables_and_functions():
    x = Variable(np.array(1.0), name="x")
    y = Variable(np.array(2.0), name="y")
    z = F.sin(x) * y
    z.name = "z"
    dot = utils.get_dot_graph(z)
    assert dot.startswith("digraph g {") and dot.rstrip().endswith("}")
    for label in ('label="x', 'label="y', 'label="z', 'label="Sin"', 'label="Mul"'):
        assert label in dot


def test_plot_dot_graph_without_graphviz_names_the_program(monkeypatch, tmp_path):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    x = Variable(np.array(1.0))
    with pytest.raises(RuntimeError, match="Graphviz's 'dot'.*apt-get install graphviz"):
        utils.plot_dot_graph(F.sin(x), to_file=str(tmp_path / "g.png"))
    assert not (tmp_path / "g.png").exists()


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz 'dot' is not installed")
def test_plot_dot_graph_writes_png(tmp_path):
    x = Variable(np.array(1.0), name="x")
    out = tmp_path / "graph.png"
    utils.plot_dot_graph(F.sin(x), to_file=str(out))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- utils -------------------------------------------------------------------------------------
def test_sum_to_and_gradient_check():
    x = np.arange(24.0).reshape(2, 3, 4)
    np.testing.assert_allclose(utils.sum_to(x, (3, 1)), x.sum(axis=(0, 2))[:, None])
    np.testing.assert_allclose(utils.sum_to(x, (1, 1, 4)), x.sum(axis=(0, 1), keepdims=True))
    assert utils.gradient_check(F.tanh, np.array([0.1, -0.4]))
    assert utils.array_equal(Variable(np.array([1, 2])), np.array([1, 2]))
    assert utils.array_allclose(np.array([1.0]), np.array([1.0 + 1e-9]))


# --- devices --------------------------------------------------------------------------------------
@pytest.mark.skipif(stucrs.cuda.gpu_enable, reason="checks the no-GPU message")
def test_to_gpu_without_gpu_is_a_clear_error():
    x = Variable(np.array([1.0]))
    with pytest.raises(RuntimeError, match="GPU is not available.*to_cpu"):
        x.to_gpu()
    assert stucrs.cuda.get_array_module(x) is np
    x.to_cpu()
    assert isinstance(x.data, np.ndarray)
