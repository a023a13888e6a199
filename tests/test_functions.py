"""Every function of stucrs.functions: forward against NumPy, backward against numerical gradients
(float64, several shapes including broadcast shapes), double-backward for elementwise functions, and
dtype preservation (float32 in -> float32 out, gradients included).

One table drives one set of checks (Chainer's idea of a single test base for every op).
"""
import numpy as np
import pytest

import stucrs.functions as F
from stucrs import Config, Variable
from stucrs import utils
from stucrs.utils import numerical_grad

from opcheck import BACKENDS, backward_check, double_backward_check, forward_dtype_check

rng = np.random.default_rng(0)


def _softmax(x, axis=1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


# name: (function of Variables, NumPy reference, input generator, differentiable wrt each input)
UNARY = {
    "sin": (F.sin, np.sin, lambda s: rng.normal(size=s)),
    "cos": (F.cos, np.cos, lambda s: rng.normal(size=s)),
    "tanh": (F.tanh, np.tanh, lambda s: rng.normal(size=s)),
    "exp": (F.exp, np.exp, lambda s: rng.normal(size=s)),
    "log": (F.log, np.log, lambda s: rng.uniform(0.5, 2.0, size=s)),
    "square": (F.square, np.square, lambda s: rng.normal(size=s)),
    "pow3": (lambda x: F.pow(x, 3), lambda x: x ** 3, lambda s: rng.normal(size=s)),
    "neg": (lambda x: -x, np.negative, lambda s: rng.normal(size=s)),
    "sigmoid": (F.sigmoid, lambda x: 1 / (1 + np.exp(-x)), lambda s: rng.normal(size=s)),
    "sigmoid_simple": (F.sigmoid_simple, lambda x: 1 / (1 + np.exp(-x)), lambda s: rng.normal(size=s)),
    # keep values away from the kink at 0 so the numerical gradient is exact
    "relu": (F.relu, lambda x: np.maximum(x, 0), lambda s: _away_from_zero(s)),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.2), lambda x: np.where(x > 0, x, 0.2 * x),
                   lambda s: _away_from_zero(s)),
    "clip": (lambda x: F.clip(x, -0.5, 0.5), lambda x: np.clip(x, -0.5, 0.5),
             lambda s: _away_from(s, (-0.5, 0.5))),
}
SHAPES = [(), (3,), (2, 3), (2, 3, 4)]
SECOND_ORDER = ["sin", "cos", "tanh", "exp", "log", "square", "pow3", "neg", "sigmoid",
                "sigmoid_simple"]


def _away_from_zero(shape):
    return _away_from(shape, (0.0,))


def _away_from(shape, points):
    x = rng.normal(size=shape)
    for p in points:
        near = np.abs(x - p) < 0.05
        x = np.where(near, x + 0.2, x)
    return x


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_forward_backward(name, shape, backend):
    f, ref, gen = UNARY[name]
    x = gen(shape).astype(np.float64)
    y = f(Variable(backend.asarray(x)))
    np.testing.assert_allclose(backend.asnumpy(y.data), ref(x), rtol=1e-6, atol=1e-8)
    backward_check(f, [x], backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", SECOND_ORDER)
def test_unary_double_backward(name, backend):
    f, _, gen = UNARY[name]
    double_backward_check(f, [gen((2, 3)).astype(np.float64)], backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_dtype_float32(name, backend):
    f, _, gen = UNARY[name]
    forward_dtype_check(f, [gen((2, 3))], np.float32, backend)


# --- binary operators with broadcasting, scalars on either side -------------------------------
BINARY_SHAPES = [((2, 3), (2, 3)), ((2, 3), (3,)), ((2, 3), (1, 3)), ((2, 1), (1, 3)), ((3,), (2, 3)),
                 ((2, 3), ())]
BINARY = {
    "add": (lambda a, b: a + b, np.add),
    "sub": (lambda a, b: a - b, np.subtract),
    "mul": (lambda a, b: a * b, np.multiply),
    "div": (lambda a, b: a / b, np.divide),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shapes", BINARY_SHAPES)
@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_broadcast(name, shapes, backend):
    f, ref = BINARY[name]
    a = rng.uniform(0.5, 2.0, size=shapes[0])
    b = rng.uniform(0.5, 2.0, size=shapes[1])
    y = f(Variable(backend.asarray(a)), Variable(backend.asarray(b)))
    np.testing.assert_allclose(backend.asnumpy(y.data), ref(a, b))
    backward_check(f, [a, b], backend)
    double_backward_check(f, [a, b], backend)
    forward_dtype_check(f, [a, b], np.float32, backend)


@pytest.mark.parametrize("name", sorted(BINARY))
def test_scalar_and_array_operands_keep_float32(name):
    f, ref = BINARY[name]
    x = Variable(np.array([1.0, 2.0, 4.0], dtype=np.float32))
    others = [2, 2.5, np.float64(2.5), np.float32(2.5), np.int64(3)]
    for other in others:
        for y in (f(x, other), f(other, x)):
            assert isinstance(y, Variable)
            assert y.dtype == np.float32, (name, type(other), y.dtype)
        np.testing.assert_allclose(f(other, x).data, ref(float(other), x.data), rtol=1e-6)
    # an ndarray on the left must not take over (array priority)
    arr = np.array([1.0, 1.0, 1.0], dtype=np.float32)
    y = f(arr, x)
    assert isinstance(y, Variable)
    np.testing.assert_allclose(y.data, ref(arr, x.data), rtol=1e-6)


def test_pow_operator_and_rpow_error():
    x = Variable(np.array([1.5, 2.0]))
    y = x ** 2
    y.grad = Variable(np.ones(2))
    y.backward()
    np.testing.assert_allclose(x.grad.data, [3.0, 4.0])
    with pytest.raises(TypeError, match="exponent"):
        F.pow(x, Variable(np.array(2.0)))


# --- shape functions ---------------------------------------------------------------------------
SHAPE_CASES = {
    "reshape": (lambda x: F.reshape(x, (6, 4)), lambda x: x.reshape(6, 4), (2, 3, 4)),
    "reshape_method": (lambda x: x.reshape(4, 6), lambda x: x.reshape(4, 6), (2, 3, 4)),
    "transpose": (lambda x: F.transpose(x), lambda x: x.T, (2, 3, 4)),
    "transpose_axes": (lambda x: F.transpose(x, (1, 2, 0)), lambda x: x.transpose(1, 2, 0), (2, 3, 4)),
    "transpose_neg_axes": (lambda x: x.transpose(-1, 0, 1), lambda x: x.transpose(2, 0, 1), (2, 3, 4)),
    "T": (lambda x: x.T, lambda x: x.T, (2, 3)),
    "get_item_int": (lambda x: x[1], lambda x: x[1], (3, 4)),
    "get_item_slice": (lambda x: x[:, 1:3], lambda x: x[:, 1:3], (3, 4)),
    "get_item_fancy": (lambda x: F.get_item(x, np.array([0, 0, 2])), lambda x: x[[0, 0, 2]], (3, 4)),
    "expand_dims": (lambda x: F.expand_dims(x, 1), lambda x: np.expand_dims(x, 1), (3, 4)),
    "flatten": (F.flatten, lambda x: x.reshape(2, -1), (2, 3, 4)),
    "sum_all": (F.sum, np.sum, (2, 3, 4)),
    "sum_axis": (lambda x: F.sum(x, axis=1), lambda x: x.sum(axis=1), (2, 3, 4)),
    "sum_axis_tuple_keepdims": (lambda x: F.sum(x, axis=(0, 2), keepdims=True),
                                lambda x: x.sum(axis=(0, 2), keepdims=True), (2, 3, 4)),
    "sum_neg_axis": (lambda x: x.sum(axis=-1), lambda x: x.sum(axis=-1), (2, 3, 4)),
    "sum_to": (lambda x: F.sum_to(x, (1, 3, 1)), lambda x: x.sum(axis=(0, 2), keepdims=True), (2, 3, 4)),
    "sum_to_lead": (lambda x: F.sum_to(x, (4,)), lambda x: x.sum(axis=(0, 1)), (2, 3, 4)),
    "broadcast_to": (lambda x: F.broadcast_to(x, (2, 3, 4)), lambda x: np.broadcast_to(x, (2, 3, 4)), (3, 1)),
    "average": (F.average, np.mean, (2, 3)),
    "mean_axis": (lambda x: F.mean(x, axis=0), lambda x: x.mean(axis=0), (2, 3)),
    "max_all": (F.max, np.max, (2, 3, 4)),
    "max_axis": (lambda x: F.max(x, axis=1), lambda x: x.max(axis=1), (2, 3, 4)),
    "max_method_keepdims": (lambda x: x.max(axis=(0, 2), keepdims=True),
                            lambda x: x.max(axis=(0, 2), keepdims=True), (2, 3, 4)),
    "min_axis": (lambda x: F.min(x, axis=0), lambda x: x.min(axis=0), (2, 3, 4)),
    "min_method": (lambda x: x.min(), np.min, (2, 3)),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", sorted(SHAPE_CASES))
def test_shape_functions(name, backend):
    f, ref, shape = SHAPE_CASES[name]
    x = rng.permutation(np.prod(shape)).reshape(shape).astype(np.float64) * 0.1  # distinct values for max
    y = f(Variable(backend.asarray(x)))
    np.testing.assert_allclose(backend.asnumpy(y.data), ref(x))
    backward_check(f, [x], backend)
    forward_dtype_check(f, [x], np.float32, backend)


# --- matrix products ---------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shapes", [((2, 3), (3, 4)), ((1, 5), (5, 1)), ((2, 2, 3), (3, 4)),
                                    ((2, 2, 3), (2, 3, 4))])
def test_matmul(shapes, backend):
    a = rng.normal(size=shapes[0])
    b = rng.normal(size=shapes[1])
    y = F.matmul(Variable(backend.asarray(a)), Variable(backend.asarray(b)))
    np.testing.assert_allclose(backend.asnumpy(y.data), a @ b)
    backward_check(F.matmul, [a, b], backend)
    backward_check(lambda x, w: x @ w, [a, b], backend)
    double_backward_check(lambda x, w: F.sum(F.matmul(x, w) ** 2), [a, b], backend)
    forward_dtype_check(F.matmul, [a, b], np.float32, backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("fn", [F.linear, F.linear_simple])
def test_linear(fn, with_bias, backend):
    x, W, b = rng.normal(size=(4, 3)), rng.normal(size=(3, 5)), rng.normal(size=(5,))
    args = [x, W, b] if with_bias else [x, W]
    y = fn(*[Variable(backend.asarray(a)) for a in args])
    expected = x @ W + (b if with_bias else 0)
    np.testing.assert_allclose(backend.asnumpy(y.data), expected)
    backward_check(fn, args, backend)
    forward_dtype_check(fn, args, np.float32, backend)


def test_linear_raw_input_gets_no_gradient_work():
    """A raw data batch needs no gradient: linear's input-gradient GEMM is skipped."""
    x = rng.normal(size=(4, 3)).astype(np.float32)
    W = Variable(rng.normal(size=(3, 5)).astype(np.float32))
    b = Variable(np.zeros(5, dtype=np.float32))
    y = F.linear(x, W, b)
    gx, gW, gb = y.creator.backward(Variable(np.ones((4, 5), dtype=np.float32)))
    assert gx is None
    np.testing.assert_allclose(gW.data, x.T @ np.ones((4, 5)), rtol=1e-6)
    np.testing.assert_allclose(gb.data, np.full(5, 4.0))


# --- softmax family and losses -------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("fn", [F.softmax, F.softmax_simple])
@pytest.mark.parametrize("axis", [1, 0, -1])
def test_softmax(fn, axis, backend):
    x = rng.normal(size=(3, 4))
    y = fn(Variable(backend.asarray(x)), axis=axis)
    np.testing.assert_allclose(backend.asnumpy(y.data), _softmax(x, axis))
    w = rng.normal(size=(3, 4))  # weight the outputs: the plain sum of a softmax has zero gradient
    backward_check(lambda v: F.sum(fn(v, axis=axis) * w), [x], backend)
    double_backward_check(lambda v: F.sum(fn(v, axis=axis) * w), [x], backend)
    forward_dtype_check(lambda v: fn(v, axis=axis), [x], np.float32, backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_log_softmax(backend):
    x = rng.normal(size=(3, 4)) * 10
    y = F.log_softmax(Variable(backend.asarray(x)))
    np.testing.assert_allclose(backend.asnumpy(y.data), np.log(_softmax(x)), rtol=1e-6)
    w = rng.normal(size=(3, 4))
    backward_check(lambda v: F.sum(F.log_softmax(v) * w), [x], backend)
    double_backward_check(lambda v: F.sum(F.log_softmax(v) * w), [x], backend)
    forward_dtype_check(F.log_softmax, [x], np.float32, backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("fn", [F.softmax_cross_entropy, F.softmax_cross_entropy_simple])
def test_softmax_cross_entropy(fn, backend):
    x = rng.normal(size=(5, 4))
    t = np.array([0, 3, 1, 2, 3])
    y = fn(Variable(backend.asarray(x)), backend.asarray(t))
    expected = -np.mean(np.log(_softmax(x))[np.arange(5), t])
    np.testing.assert_allclose(float(backend.asnumpy(y.data)), expected, rtol=1e-6)
    backward_check(lambda v: fn(v, backend.asarray(t)), [x], backend)
    double_backward_check(lambda v: fn(v, backend.asarray(t)), [x], backend)
    forward_dtype_check(lambda v: fn(v, backend.asarray(t)), [x], np.float32, backend)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(100, 10), (7, 1), (1, 5), (0, 4), (64, 1000)])
def test_row_max_by_argmax_equals_max(shape, dtype):
    # softmax / logsumexp の行ごとの最大 (argmax で探して取り出す) は max と同じ値 (NaN、inf、同点も)
    x = rng.normal(size=shape).astype(dtype)
    if x.size:
        x[0, -1] = np.inf
        x[-1, 0] = np.nan
        x[len(x) // 2, :] = x[len(x) // 2, 0]  # 同点だけの行
    m = utils.max_keepdims(x, 1)
    np.testing.assert_array_equal(m, x.max(axis=1, keepdims=True))
    assert m.dtype == x.dtype and m.shape == (shape[0], 1)
    m += 1  # 新しい書き込める配列 (logsumexp はその場で足す)
    assert not np.shares_memory(m, x)
    np.testing.assert_array_equal(utils.max_keepdims(x, -1), x.max(axis=-1, keepdims=True))
    if x.size:  # 空の列の max は NumPy でもエラー
        np.testing.assert_array_equal(utils.max_keepdims(x, 0), x.max(axis=0, keepdims=True))
    with pytest.raises(ValueError):  # 列のない配列は max と同じエラー
        utils.max_keepdims(np.zeros((3, 0), dtype), 1)


def test_softmax_cross_entropy_is_bitwise_the_plain_formula():
    # 行の最大を argmax で求めても、損失と勾配は max で書いた式とビット単位で同じ
    x = rng.normal(size=(100, 10)).astype(np.float32) * 5
    t = rng.integers(0, 10, 100)
    m = x.max(axis=1, keepdims=True)
    e = np.exp(x - m)
    log_p = x - (m + np.log(e.sum(axis=1, keepdims=True)))
    v = Variable(x)
    loss = F.softmax_cross_entropy(v, t)
    loss.backward()
    assert loss.data == -log_p[np.arange(100), t].sum() / np.float32(100)
    g = np.exp(log_p)  # (softmax - one-hot) / N
    g[np.arange(100), t] -= 1
    g *= np.float32(1.0) * np.float32(1.0 / 100)
    if Config.fast:  # the array backward of stucrs.fast: exactly this formula
        np.testing.assert_array_equal(v.grad.data, g)
    else:  # the book's backward, (softmax(x) - onehot) * gy / N through the graph
        np.testing.assert_allclose(v.grad.data, g, rtol=1e-5, atol=1e-9)
    np.testing.assert_array_equal(F.log_softmax(Variable(x)).data, log_p)
    y = x - m
    np.testing.assert_array_equal(F.softmax(Variable(x)).data, np.exp(y) / np.exp(y).sum(axis=1, keepdims=True))


def test_softmax_cross_entropy_rejects_bad_labels():
    x = Variable(np.zeros((3, 4), dtype=np.float32))
    with pytest.raises(ValueError, match=r"label 4 is out of range for 4 classes"):
        F.softmax_cross_entropy(x, np.array([0, 1, 4]))
    with pytest.raises(ValueError, match=r"label -1 is out of range"):
        F.softmax_cross_entropy(x, np.array([0, -1, 2]))
    with pytest.raises(TypeError, match="integer class indices"):
        F.softmax_cross_entropy(x, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="2 labels for a batch of 3"):
        F.softmax_cross_entropy(x, np.array([0, 1]))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("fn", [F.mean_squared_error, F.mean_squared_error_simple])
def test_mean_squared_error(fn, backend):
    a, b = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    y = fn(Variable(backend.asarray(a)), Variable(backend.asarray(b)))
    np.testing.assert_allclose(float(backend.asnumpy(y.data)), ((a - b) ** 2).sum() / 4)
    backward_check(fn, [a, b], backend)
    double_backward_check(fn, [a, b], backend)
    forward_dtype_check(fn, [a, b], np.float32, backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_sigmoid_and_binary_cross_entropy(backend):
    x = rng.normal(size=(6, 1))
    t = np.array([[0], [1], [1], [0], [1], [0]])
    p = 1 / (1 + np.exp(-x))
    expected = -np.mean(t * np.log(p) + (1 - t) * np.log(1 - p))
    y = F.sigmoid_cross_entropy(Variable(backend.asarray(x)), backend.asarray(t))
    np.testing.assert_allclose(float(backend.asnumpy(y.data)), expected, rtol=1e-6)
    y = F.binary_cross_entropy(Variable(backend.asarray(p)), backend.asarray(t))
    np.testing.assert_allclose(float(backend.asnumpy(y.data)), expected, rtol=1e-5)
    backward_check(lambda v: F.sigmoid_cross_entropy(v, backend.asarray(t)), [x], backend)
    backward_check(lambda v: F.binary_cross_entropy(v, backend.asarray(t)),
                   [np.clip(p, 0.1, 0.9)], backend)
    # integer labels do not turn a float32 graph into float64
    forward_dtype_check(lambda v: F.sigmoid_cross_entropy(v, backend.asarray(t)), [x], np.float32, backend)


def test_accuracy():
    y = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]], dtype=np.float32)
    t = np.array([1, 0, 0, 0])
    acc = F.accuracy(y, t)
    assert isinstance(acc, Variable)
    assert float(acc.data) == pytest.approx(0.75)
    assert acc.data.dtype == np.float32 and acc.data.shape == () and type(acc.data) is np.ndarray
    # Variables as well as arrays; labels as a column; float64 and integer scores
    assert float(F.accuracy(Variable(y), Variable(t.reshape(4, 1))).data) == pytest.approx(0.75)
    assert F.accuracy(y.astype(np.float64), t).data.dtype == np.float64
    assert F.accuracy(np.array([[0, 3], [5, 1]]), np.array([1, 1])).data.dtype == np.float64
    # the same value as the mean of the matches, in float64 before the cast (1 / 3 here)
    y3 = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 0.0]], dtype=np.float32)
    assert F.accuracy(y3, np.array([1, 1, 1])).data == np.float32(np.mean([True, False, False]))
    with pytest.raises(TypeError, match="np.array"):  # a list: the clear error of as_variable
        F.accuracy(y, [1, 0, 0, 0])
    with pytest.warns(RuntimeWarning):  # an empty batch: NaN, as NumPy's mean of nothing
        assert np.isnan(F.accuracy(np.zeros((0, 2), dtype=np.float32), np.zeros(0, dtype=np.int64)).data)


def test_dropout_train_and_test_mode():
    import stucrs

    np.random.seed(0)
    x = Variable(np.ones((1000,), dtype=np.float32))
    y = F.dropout(x, 0.2)
    assert y.dtype == np.float32
    kept = y.data != 0
    assert 0.75 < kept.mean() < 0.85
    np.testing.assert_allclose(y.data[kept], 1 / 0.8, rtol=1e-6)
    y.backward()
    np.testing.assert_array_equal(x.grad.data != 0, kept)
    with stucrs.test_mode():
        z = F.dropout(x, 0.2)
    np.testing.assert_array_equal(z.data, x.data)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_draws_dezeros_mask_and_backprops_through_it(dtype):
    # the mask is DeZero's: np.random.rand(*shape) > ratio from NumPy's global generator, so the
    # same seed drops the same units; values are x * mask / (1 - ratio) in x's dtype
    x_data = np.random.default_rng(1).normal(size=(4, 3, 5)).astype(dtype)
    np.random.seed(7)
    expected_mask = np.random.rand(*x_data.shape) > 0.3
    scale = dtype(1 / (1 - 0.3))
    np.random.seed(7)
    x = Variable(x_data.copy())
    y = F.dropout(x, 0.3)
    assert y.dtype == dtype
    np.testing.assert_array_equal(y.data, x_data * (expected_mask.astype(dtype) * scale))
    gy = np.random.default_rng(2).normal(size=x_data.shape).astype(dtype)
    y.grad = Variable(gy)
    y.backward()
    np.testing.assert_array_equal(x.grad.data, gy * (expected_mask.astype(dtype) * scale))
    # with create_graph=True the backward pass is a graph itself: same gradient, and a second derivative
    x.cleargrad()
    np.random.seed(7)
    z = (F.dropout(x, 0.3) * x).sum()
    z.backward(create_graph=True)
    np.testing.assert_allclose(x.grad.data, 2 * x_data * expected_mask * scale, rtol=1e-6)
    gx = x.grad
    x.cleargrad()
    gx.sum().backward()
    np.testing.assert_allclose(x.grad.data, 2 * expected_mask * scale, rtol=1e-6)


def test_dropout_bad_ratio_is_a_clear_error():
    with pytest.raises(ValueError, match="dropout_ratio"):
        F.dropout(Variable(np.ones(3, dtype=np.float32)), 1.0)


def test_get_item_gradient_accumulates_repeated_indices():
    x = Variable(np.arange(6.0).reshape(2, 3))
    y = x[np.array([0, 0, 1])]
    y.backward()
    np.testing.assert_allclose(x.grad.data, [[2, 2, 2], [1, 1, 1]])


def test_numerical_grad_matches_analytic():
    x = np.array([0.3, -1.2, 2.0])
    g = numerical_grad(lambda v: F.sum(F.sin(v)), x)
    np.testing.assert_allclose(g, np.cos(x), rtol=1e-6)


@pytest.mark.parametrize("case", ["linear", "linear_nobias", "linear_data_input", "matmul", "relu"])
def test_array_backward_equals_graph_backward(case):
    # backward() without create_graph computes linear / matmul / relu gradients on raw arrays (no
    # Function objects); create_graph=True builds them from differentiable functions. Both must agree.
    rng = np.random.default_rng(11)
    x0 = rng.normal(size=(5, 4))
    W0 = rng.normal(size=(4, 3))
    b0 = rng.normal(size=(3,))

    def grads(create_graph):
        x, W, b = Variable(x0.copy()), Variable(W0.copy()), Variable(b0.copy())
        if case == "linear":
            y, params = F.linear(x, W, b), [x, W, b]
        elif case == "linear_nobias":
            y, params = F.linear(x, W), [x, W]
        elif case == "linear_data_input":
            y, params = F.linear(x0, W, b), [W, b]
        elif case == "matmul":
            y, params = F.matmul(x, W), [x, W]
        else:
            y, params = F.relu(x - 0.2), [x]
        (F.tanh(y) ** 2).sum().backward(create_graph=create_graph)
        return [p.grad.data for p in params]

    for fast, graph in zip(grads(False), grads(True)):
        np.testing.assert_allclose(fast, graph, rtol=1e-12, atol=1e-12)
