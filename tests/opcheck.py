"""Shared checks for differentiable functions, run for every op on every backend.

* ``backward_check``: backprop gradients (float64) against central differences, with a random
  upstream gradient so that errors a plain sum would hide (softmax, for one) are caught.
* ``double_backward_check``: gradients of gradients (``create_graph=True``) against central
  differences of the first-order gradient.
* ``forward_dtype_check``: float32 in -> float32 out, and float32 gradients.
"""
import numpy as np
import pytest

from stucrs import Variable, cuda


class _Backend:
    def __init__(self, name, xp):
        self.name = name
        self.xp = xp

    def asarray(self, a):
        return self.xp.asarray(a)

    def asnumpy(self, a):
        return cuda.as_numpy(a)

    def __repr__(self):
        return self.name


NUMPY = _Backend("numpy", np)
BACKENDS = [pytest.param(NUMPY, id="numpy")]
if cuda.gpu_enable:
    BACKENDS.append(pytest.param(_Backend("cupy", cuda.cp), id="cupy", marks=pytest.mark.gpu))
else:
    BACKENDS.append(pytest.param(None, id="cupy", marks=pytest.mark.skip(
        reason="no CUDA GPU / CuPy on this machine: the CuPy backend is checked on a GPU host")))

_rng = np.random.default_rng(1234)


def _numerical(fun, xs, i, eps=1e-6):
    """d fun(xs) / d xs[i] by central differences; fun returns a float."""
    x = xs[i]
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    while not it.finished:
        idx = it.multi_index
        orig = x[idx]
        x[idx] = orig + eps
        plus = fun(xs)
        x[idx] = orig - eps
        minus = fun(xs)
        x[idx] = orig
        grad[idx] = (plus - minus) / (2 * eps)
        it.iternext()
    return grad


def _to_vars(backend, xs):
    return [Variable(backend.asarray(x)) for x in xs]


def backward_check(f, xs, backend, rtol=1e-5, atol=1e-6):
    xs = [np.array(x, dtype=np.float64) for x in xs]
    vs = _to_vars(backend, xs)
    y = f(*vs)
    gy = _rng.normal(size=y.shape)

    y.grad = Variable(backend.asarray(gy))
    y.backward()

    def weighted(arrs):
        out = f(*_to_vars(backend, arrs))
        return float(np.sum(backend.asnumpy(out.data) * gy))

    for i, v in enumerate(vs):
        num = _numerical(weighted, xs, i)
        assert v.grad is not None, f"input {i} got no gradient"
        got = backend.asnumpy(v.grad.data)
        assert got.shape == xs[i].shape, (got.shape, xs[i].shape)
        np.testing.assert_allclose(got, num, rtol=rtol, atol=atol,
                                   err_msg=f"gradient of input {i} differs from the numerical one")


def double_backward_check(f, xs, backend, rtol=1e-4, atol=1e-5):
    xs = [np.array(x, dtype=np.float64) for x in xs]

    def first_grads(arrs, create_graph):
        vs = _to_vars(backend, arrs)
        y = f(*vs)
        if y.size != 1:
            y = y.sum()
        y.backward(create_graph=create_graph)
        return vs, [v.grad for v in vs]

    directions = [_rng.normal(size=x.shape) for x in xs]

    vs, gxs = first_grads(xs, True)
    total = None
    for g, d in zip(gxs, directions):
        term = (g * Variable(backend.asarray(d))).sum()
        total = term if total is None else total + term
    for v in vs:
        v.cleargrad()
    total.backward()

    def directional(arrs):
        _, grads = first_grads(arrs, False)
        return float(sum(np.sum(backend.asnumpy(g.data) * d) for g, d in zip(grads, directions)))

    for i, v in enumerate(vs):
        num = _numerical(directional, xs, i, eps=1e-5)
        got = np.zeros_like(xs[i]) if v.grad is None else backend.asnumpy(v.grad.data)
        np.testing.assert_allclose(got, num, rtol=rtol, atol=atol,
                                   err_msg=f"second derivative wrt input {i} differs")


def forward_dtype_check(f, xs, dtype, backend):
    vs = [Variable(backend.asarray(np.asarray(x).astype(dtype))) for x in xs]
    y = f(*vs)
    assert y.dtype == dtype, f"output dtype {y.dtype}, expected {dtype}"
    y.backward()
    for i, v in enumerate(vs):
        if v.grad is not None:
            assert v.grad.dtype == dtype, f"gradient of input {i} has dtype {v.grad.dtype}"
