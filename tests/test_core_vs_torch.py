"""Core functions against PyTorch autograd (float64): values, gradients and second derivatives."""
import numpy as np
import pytest

import stucrs.functions as F
from stucrs import Variable

from tests.needs_torch import import_torch  # noqa: E402

torch = import_torch()
pytestmark = pytest.mark.torch

rng = np.random.default_rng(7)

# (stucrs function, torch function) of one or two inputs of shape (4, 5) and (5,) / (4, 5)
CASES = {
    "tanh_exp_mix": (lambda a: F.sum(F.tanh(a) * F.exp(a * 0.3)),
                     lambda a: (torch.tanh(a) * torch.exp(a * 0.3)).sum()),
    "sin_cos_log": (lambda a: F.sum(F.sin(a) * F.cos(a) + F.log(a * a + 1.0)),
                    lambda a: (torch.sin(a) * torch.cos(a) + torch.log(a * a + 1.0)).sum()),
    "sigmoid_pow": (lambda a: F.sum(F.sigmoid(a) ** 3),
                    lambda a: (torch.sigmoid(a) ** 3).sum()),
    "softmax_weighted": (lambda a: F.sum(F.softmax(a) * np.arange(5.0)),
                         lambda a: (torch.softmax(a, 1) * torch.arange(5.0, dtype=torch.float64)).sum()),
    "log_softmax_sq": (lambda a: F.sum(F.log_softmax(a) ** 2),
                       lambda a: (torch.log_softmax(a, 1) ** 2).sum()),
    "broadcast_bias": (lambda a, b: F.sum(F.tanh(a + b) * a / (b * b + 1.0)),
                       lambda a, b: (torch.tanh(a + b) * a / (b * b + 1.0)).sum()),
    "max_min": (lambda a: F.sum(F.max(a, axis=1) ** 2) + F.sum(F.min(a, axis=0)),
                lambda a: (a.max(1).values ** 2).sum() + a.min(0).values.sum()),
    "transpose_matmul": (lambda a, b: F.sum(F.matmul(a.T, F.tanh(a)) * F.sum(b)),
                         lambda a, b: ((a.T @ torch.tanh(a)) * b.sum()).sum()),
    "mse": (lambda a, b: F.mean_squared_error(F.tanh(a), b * F.sum(a)),
            lambda a, b: ((torch.tanh(a) - b * a.sum()) ** 2).sum() / a.shape[0]),
}
TWO_INPUTS_FULL = {"mse"}


@pytest.mark.parametrize("name", sorted(CASES))
def test_value_gradient_and_hessian_vector_product(name):
    sf, tf = CASES[name]
    nargs = sf.__code__.co_argcount
    a = rng.normal(size=(4, 5))
    args = [a] if nargs == 1 else [a, rng.normal(size=(4, 5) if name in TWO_INPUTS_FULL else (5,))]

    vs = [Variable(x.copy()) for x in args]
    y = sf(*vs)
    y.backward(create_graph=True)
    grads = [v.grad for v in vs]

    ts = [torch.tensor(x, requires_grad=True) for x in args]
    ty = tf(*ts)
    tgrads = torch.autograd.grad(ty, ts, create_graph=True)

    np.testing.assert_allclose(float(y.data), ty.item(), rtol=1e-10)
    for g, tg in zip(grads, tgrads):
        np.testing.assert_allclose(g.data, tg.detach().numpy(), rtol=1e-9, atol=1e-12)

    # second order: gradient of <grad, direction>
    directions = [rng.normal(size=x.shape) for x in args]
    total = None
    for g, d in zip(grads, directions):
        term = F.sum(g * d)
        total = term if total is None else total + term
    for v in vs:
        v.cleargrad()
    total.backward()
    ttotal = sum((tg * torch.tensor(d)).sum() for tg, d in zip(tgrads, directions))
    thvp = torch.autograd.grad(ttotal, ts, allow_unused=True)
    for v, th in zip(vs, thvp):
        expected = np.zeros_like(v.data) if th is None else th.numpy()
        got = np.zeros_like(v.data) if v.grad is None else v.grad.data
        np.testing.assert_allclose(got, expected, rtol=1e-8, atol=1e-10)


def test_mlp_step_matches_torch():
    x = rng.normal(size=(16, 8))
    t = rng.integers(0, 3, size=16)
    W1, b1 = rng.normal(size=(8, 10)) * 0.3, rng.normal(size=10) * 0.1
    W2, b2 = rng.normal(size=(10, 3)) * 0.3, rng.normal(size=3) * 0.1

    params = [Variable(p.copy()) for p in (W1, b1, W2, b2)]
    h = F.relu(F.linear(x, params[0], params[1]))
    loss = F.softmax_cross_entropy(F.linear(h, params[2], params[3]), t)
    loss.backward()

    tp = [torch.tensor(p, requires_grad=True) for p in (W1, b1, W2, b2)]
    th = torch.relu(torch.tensor(x) @ tp[0] + tp[1])
    tloss = torch.nn.functional.cross_entropy(th @ tp[2] + tp[3], torch.tensor(t))
    tloss.backward()

    np.testing.assert_allclose(float(loss.data), tloss.item(), rtol=1e-10)
    for p, q in zip(params, tp):
        np.testing.assert_allclose(p.grad.data, q.grad.numpy(), rtol=1e-9, atol=1e-12)
