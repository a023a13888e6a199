"""Every public function of ``stucrs.functions`` (and every operator) with raw arrays as inputs.

DeZero accepts a plain ``ndarray`` wherever a Variable may stand (``F.add(a, b)`` with two arrays,
``F.linear(x, W)`` with an array ``W``, ...). For each function below the test calls it once with
Variables everywhere (the reference), then once per input position with a raw array in that position
(and once with raw arrays everywhere): the output must be the same, and the Variables that are left
must get the same gradients. Scalars go where DeZero takes them (second operand of arithmetic).

:data:`CASES` must list every lowercase public function of ``stucrs.functions``; a new public function
without a case fails :func:`test_every_public_function_has_a_case`.
"""
import itertools
import operator

import numpy as np
import pytest

import stucrs
import stucrs.functions as F
from stucrs import Variable


def _rng():
    return np.random.default_rng(0)


def _x(*shape, positive=False, seed=0):
    a = np.random.default_rng(seed).standard_normal(shape)
    return np.abs(a) + 0.5 if positive else a


# name -> (function, list of input arrays, extra positional args after the inputs, kwargs)
# Inputs are the arguments a Variable may stand for; the rest are constants.
CASES = {
    "sin": (F.sin, [_x(2, 3)], (), {}),
    "cos": (F.cos, [_x(2, 3)], (), {}),
    "tanh": (F.tanh, [_x(2, 3)], (), {}),
    "exp": (F.exp, [_x(2, 3)], (), {}),
    "log": (F.log, [_x(2, 3, positive=True)], (), {}),
    "square": (F.square, [_x(2, 3)], (), {}),
    "pow": (F.pow, [_x(2, 3)], (3,), {}),
    "reshape": (F.reshape, [_x(2, 3)], ((3, 2),), {}),
    "transpose": (F.transpose, [_x(2, 3)], (), {}),
    "get_item": (F.get_item, [_x(3, 4)], ((slice(0, 2), 1),), {}),
    "expand_dims": (F.expand_dims, [_x(2, 3)], (1,), {}),
    "flatten": (F.flatten, [_x(2, 3, 4)], (), {}),
    "sum": (F.sum, [_x(2, 3)], (1,), {}),
    "sum_to": (F.sum_to, [_x(2, 3)], ((1, 3),), {}),
    "broadcast_to": (F.broadcast_to, [_x(1, 3)], ((2, 3),), {}),
    "average": (F.average, [_x(2, 3)], (0,), {}),
    "mean": (F.mean, [_x(2, 3)], (), {}),
    "matmul": (F.matmul, [_x(2, 3), _x(3, 4, seed=1)], (), {}),
    "linear": (F.linear, [_x(2, 3), _x(3, 4, seed=1), _x(4, seed=2)], (), {}),
    "linear_simple": (F.linear_simple, [_x(2, 3), _x(3, 4, seed=1), _x(4, seed=2)], (), {}),
    "sigmoid": (F.sigmoid, [_x(2, 3)], (), {}),
    "sigmoid_simple": (F.sigmoid_simple, [_x(2, 3)], (), {}),
    "relu": (F.relu, [_x(2, 3)], (), {}),
    "leaky_relu": (F.leaky_relu, [_x(2, 3)], (0.1,), {}),
    "softmax": (F.softmax, [_x(2, 3)], (), {}),
    "softmax_simple": (F.softmax_simple, [_x(2, 3)], (), {}),
    "log_softmax": (F.log_softmax, [_x(2, 3)], (), {}),
    "mean_squared_error": (F.mean_squared_error, [_x(2, 3), _x(2, 3, seed=1)], (), {}),
    "mean_squared_error_simple": (F.mean_squared_error_simple, [_x(2, 3), _x(2, 3, seed=1)], (), {}),
    # labels are constants in DeZero too (an int array in the second position)
    "softmax_cross_entropy": (F.softmax_cross_entropy, [_x(3, 4)], (np.array([0, 3, 1]),), {}),
    "softmax_cross_entropy_simple": (F.softmax_cross_entropy_simple, [_x(3, 4)], (np.array([0, 3, 1]),), {}),
    "sigmoid_cross_entropy": (F.sigmoid_cross_entropy, [_x(3, 1)], (np.array([[0], [1], [1]]),), {}),
    "binary_cross_entropy": (F.binary_cross_entropy, [np.array([0.2, 0.7, 0.9])], (np.array([0, 1, 1]),), {}),
    "accuracy": (F.accuracy, [_x(3, 4)], (np.array([0, 3, 1]),), {}),
    "dropout": (F.dropout, [_x(4, 5)], (0.5,), {}),
    "max": (F.max, [_x(2, 3)], (1,), {}),
    "min": (F.min, [_x(2, 3)], (1,), {}),
    "clip": (F.clip, [_x(2, 3)], (-0.5, 0.5), {}),
    "im2col": (F.im2col, [_x(1, 2, 4, 4)], (3,), {}),
    "col2im": (F.col2im, [_x(4, 18)], ((1, 2, 4, 4), 3), {}),
    "conv2d": (F.conv2d, [_x(1, 2, 4, 4), _x(3, 2, 3, 3, seed=1), _x(3, seed=2)], (), {"pad": 1}),
    "conv2d_simple": (F.conv2d_simple, [_x(1, 2, 4, 4), _x(3, 2, 3, 3, seed=1), _x(3, seed=2)], (), {"pad": 1}),
    "deconv2d": (F.deconv2d, [_x(1, 2, 3, 3), _x(2, 3, 3, 3, seed=1), _x(3, seed=2)], (), {}),
    "pooling": (F.pooling, [_x(1, 2, 4, 4)], (2,), {"stride": 2}),
    "pooling_simple": (F.pooling_simple, [_x(1, 2, 4, 4)], (2,), {"stride": 2}),
    "average_pooling": (F.average_pooling, [_x(1, 2, 4, 4)], (2,), {"stride": 2}),
    "batch_norm": (F.batch_norm, [_x(4, 3), _x(3, positive=True, seed=1), _x(3, seed=2)],
                   (np.zeros(3), np.ones(3)), {}),
    "batch_nrom": (F.batch_nrom, [_x(4, 3), _x(3, positive=True, seed=1), _x(3, seed=2)],
                   (np.zeros(3), np.ones(3)), {}),
    "embed_id": (F.embed_id, [], None, {}),  # the index comes first, the weight second: see below
    "add": (F.add, [_x(3, 3), _x(3, 1, seed=1)], (), {}),
    "sub": (F.sub, [_x(3, 3), _x(3, 1, seed=1)], (), {}),
    "rsub": (F.rsub, [_x(3, 3), _x(3, 1, seed=1)], (), {}),
    "mul": (F.mul, [_x(3, 3), _x(3, 1, seed=1)], (), {}),
    "div": (F.div, [_x(3, 3), _x(3, 1, positive=True, seed=1)], (), {}),
    "rdiv": (F.rdiv, [_x(3, 3, positive=True), _x(3, 1, seed=1)], (), {}),
    "neg": (F.neg, [_x(3, 3)], (), {}),
}
CASES["embed_id"] = (lambda W, idx: F.embed_id(idx, W), [_x(5, 3)], (np.array([[0, 4], [2, 2]]),), {})

# batch_norm's running mean/var are updated in place: each call gets fresh copies (see _call)
_STATEFUL = {"batch_norm", "batch_nrom"}


def _call(name, inputs):
    fn, _, extra, kwargs = CASES[name]
    extra = tuple(e.copy() if isinstance(e, np.ndarray) and name in _STATEFUL else e for e in extra)
    np.random.seed(0)  # dropout draws its mask from NumPy's global generator
    return fn(*inputs, *extra, **kwargs)


def _value(y):
    return y.data if isinstance(y, Variable) else np.asarray(y)


def _reference(name):
    arrays = CASES[name][1]
    xs = [Variable(a.copy()) for a in arrays]
    y = _call(name, xs)
    if isinstance(y, Variable) and y.creator is not None:
        y.backward()
    return _value(y), [x.grad.data if x.grad is not None else None for x in xs]


def _positions(n):
    """Every way to make some inputs raw: each single position, and all of them."""
    ways = [{i} for i in range(n)]
    if n > 1:
        ways.append(set(range(n)))
    return ways


PARAMS = [(name, tuple(sorted(raw))) for name in CASES for raw in _positions(len(CASES[name][1]))]


def test_every_public_function_has_a_case():
    public = {n for n in F.__all__ if n[:1].islower() and callable(getattr(F, n))}
    missing = sorted(public - set(CASES))
    assert not missing, f"public functions without a raw-array case: {missing}"


@pytest.mark.parametrize("name,raw", PARAMS, ids=[f"{n}-raw{''.join(map(str, r))}" for n, r in PARAMS])
def test_raw_array_in_each_input_position(name, raw):
    ref_y, ref_grads = _reference(name)
    arrays = CASES[name][1]
    xs = [a.copy() if i in raw else Variable(a.copy()) for i, a in enumerate(arrays)]
    y = _call(name, xs)
    np.testing.assert_allclose(_value(y), ref_y, rtol=1e-12, atol=1e-12, err_msg=f"{name}: forward")
    variables = [x for x in xs if isinstance(x, Variable)]
    if not variables:
        return
    if isinstance(y, Variable) and y.creator is not None:
        y.backward()
    for i, x in enumerate(xs):
        if isinstance(x, Variable):
            assert x.grad is not None, f"{name}: input {i} got no gradient"
            np.testing.assert_allclose(x.grad.data, ref_grads[i], rtol=1e-12, atol=1e-12,
                                       err_msg=f"{name}: gradient of input {i}")


def test_raw_arrays_only_build_no_graph():
    y = F.add(np.random.randn(3, 3), np.random.randn(3, 1))
    assert isinstance(y, Variable) and y.shape == (3, 3)
    assert y.creator is None  # nothing to differentiate: DeZero-compatible value, no graph kept


BINARY = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}


# at least one side is a Variable (two arrays or scalars are plain NumPy, not StuCrs)
OPERANDS = [(left, right) for left in ("variable", "array", "scalar") for right in ("variable", "array", "scalar")
            if "variable" in (left, right)]


@pytest.mark.parametrize("op", list(BINARY))
@pytest.mark.parametrize("left,right", OPERANDS)
def test_operators_with_arrays_and_scalars(op, left, right):
    a, b = _x(2, 3, positive=True), _x(2, 3, positive=True, seed=1)
    operands = {"variable": lambda v: Variable(v.copy()), "array": lambda v: v.copy(), "scalar": lambda v: 1.5}
    lhs, rhs = operands[left](a), operands[right](b)
    y = BINARY[op](lhs, rhs)
    assert isinstance(y, Variable)
    plain = BINARY[op](a if left != "scalar" else 1.5, b if right != "scalar" else 1.5)
    np.testing.assert_allclose(y.data, plain, rtol=1e-12)


@pytest.mark.parametrize("fn", [F.add, F.sub, F.mul, F.div, F.rsub, F.rdiv])
def test_float32_rules_kept_for_raw_arrays(fn):
    a = np.full((2, 2), 2.0, dtype=np.float32)
    # a Python scalar as the second operand takes the array's float dtype, as with a Variable
    assert fn(a, 3.0).dtype == np.float32
    assert fn(Variable(a), 3.0).dtype == np.float32
    assert fn(a, np.float64(3.0)).dtype == np.float32
    # a 0-d array on either side is a number too, as in DeZero (NumPy 1's value-based casting)
    assert fn(np.array(3.0), a).dtype == np.float32
    assert fn(np.array(3.0), Variable(a)).dtype == np.float32
    assert fn(a, np.array(3.0)).dtype == np.float32
    # two arrays follow NumPy's own promotion
    assert fn(a, np.ones((2, 2), dtype=np.float64)).dtype == np.float64
    assert fn(a, a).dtype == np.float32


def test_pairs_of_raw_and_variable_give_same_double_backward():
    # higher-order derivatives still work when the other operand is a raw array
    x = Variable(np.array(2.0))
    y = F.mul(np.array(3.0), x) * x  # 3 x^2, the raw array first
    y.backward(create_graph=True)
    gx = x.grad
    x.cleargrad()
    gx.backward()
    assert float(x.grad.data) == pytest.approx(6.0)


def test_every_case_uses_distinct_values():
    # guard against a case whose inputs are the same array (a swapped-argument bug would then pass)
    for name, (_, arrays, _, _) in CASES.items():
        for a, b in itertools.combinations(arrays, 2):
            if a.shape == b.shape:
                assert not np.array_equal(a, b), name


def test_stucrs_top_level_still_matches_functions():
    assert stucrs.functions is F
