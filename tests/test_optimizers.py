"""Optimizers and hooks: 10 steps against torch.optim on the same parameters and gradients."""
import numpy as np
import pytest

import stucrs
import stucrs.functions as F
from stucrs import Parameter, Variable, optimizers

from tests.needs_torch import import_torch  # noqa: E402

torch = import_torch()
pytestmark = pytest.mark.torch

rng = np.random.default_rng(5)


class Params(stucrs.Layer):
    def __init__(self, arrays):
        super().__init__()
        for i, a in enumerate(arrays):
            setattr(self, f"p{i}", Parameter(a.copy(), name=f"p{i}"))


def _loss_stucrs(model, consts):
    total = None
    for p, c in zip(model.params(), consts):
        term = F.sum(F.sin(p) * c + p * p * 0.3)
        total = term if total is None else total + term
    return total


def _loss_torch(params, consts):
    return sum((torch.sin(p) * torch.tensor(c) + p * p * 0.3).sum() for p, c in zip(params, consts))


CASES = {
    "SGD": (lambda: optimizers.SGD(lr=0.1), lambda ps: torch.optim.SGD(ps, lr=0.1)),
    "MomentumSGD": (lambda: optimizers.MomentumSGD(lr=0.05, momentum=0.9),
                    lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9)),
    "AdaGrad": (lambda: optimizers.AdaGrad(lr=0.1, eps=1e-8),
                lambda ps: torch.optim.Adagrad(ps, lr=0.1, eps=1e-8)),
    "AdaDelta": (lambda: optimizers.AdaDelta(rho=0.95, eps=1e-6),
                 lambda ps: torch.optim.Adadelta(ps, lr=1.0, rho=0.95, eps=1e-6)),
    "Adam": (lambda: optimizers.Adam(alpha=0.01, beta1=0.9, beta2=0.999, eps=1e-8),
             lambda ps: torch.optim.Adam(ps, lr=0.01, betas=(0.9, 0.999), eps=1e-8)),
    "AdamW": (lambda: optimizers.AdamW(alpha=0.01, weight_decay=0.1),
              lambda ps: torch.optim.AdamW(ps, lr=0.01, weight_decay=0.1)),
}


def _compare(make_ours, make_torch, hooks=(), torch_pre=None, steps=10, rtol=1e-7, atol=1e-9):
    arrays = [rng.normal(size=(3, 4)), rng.normal(size=(5,))]
    consts = [rng.normal(size=a.shape) for a in arrays]
    model = Params(arrays)
    opt = make_ours().setup(model)
    for h in hooks:
        opt.add_hook(h)
    tparams = [torch.tensor(a.copy(), requires_grad=True) for a in arrays]
    topt = make_torch(tparams)
    for step in range(steps):
        model.cleargrads()
        _loss_stucrs(model, consts).backward()
        opt.update()
        topt.zero_grad()
        _loss_torch(tparams, consts).backward()
        if torch_pre is not None:
            torch_pre(tparams)
        topt.step()
        for p, tp in zip(model.params(), tparams):
            np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=rtol, atol=atol,
                                       err_msg=f"step {step}, parameter {p.name}")


@pytest.mark.parametrize("name", sorted(CASES))
def test_optimizer_matches_torch_for_10_steps(name):
    ours, theirs = CASES[name]
    _compare(ours, theirs)


def test_weight_decay_hook_matches_torch_weight_decay():
    _compare(lambda: optimizers.SGD(lr=0.1), lambda ps: torch.optim.SGD(ps, lr=0.1, weight_decay=0.05),
             hooks=[optimizers.WeightDecay(0.05)])


def test_clip_grad_hook_matches_torch_clip_grad_norm():
    _compare(lambda: optimizers.MomentumSGD(lr=0.1), lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9),
             hooks=[optimizers.ClipGrad(0.5)],
             torch_pre=lambda ps: torch.nn.utils.clip_grad_norm_(ps, 0.5))


def test_adam_lr_property_is_bias_corrected():
    opt = optimizers.Adam(alpha=0.1, beta1=0.9, beta2=0.999)
    opt.t = 1
    assert opt.lr == pytest.approx(0.1 * np.sqrt(1 - 0.999) / (1 - 0.9))


def test_hooks_do_not_modify_shared_gradient_arrays():
    model = Params([np.ones((2, 2)), np.ones(3)])
    opt = optimizers.SGD(0.1).setup(model)
    opt.add_hook(optimizers.WeightDecay(0.5))
    opt.add_hook(optimizers.ClipGrad(1e-3))
    shared = np.full((2, 2), 2.0)
    grads = [shared, np.full(3, 2.0)]
    for p, g in zip(model.params(), grads):
        p.grad = Variable(g)
    keep = shared.copy()
    opt.update()
    np.testing.assert_array_equal(shared, keep)


def test_freeze_param_and_none_grads_are_skipped():
    model = Params([np.ones((2, 2)), np.ones(3), np.ones(1)])
    opt = optimizers.Adam().setup(model)
    opt.add_hook(optimizers.FreezeParam(model.p0))
    model.p0.grad = Variable(np.ones((2, 2)))
    model.p1.grad = Variable(np.ones(3))
    # p2 has no gradient
    opt.update()
    np.testing.assert_array_equal(model.p0.data, 1.0)
    assert np.all(model.p1.data < 1.0)
    np.testing.assert_array_equal(model.p2.data, 1.0)


@pytest.mark.parametrize("name", sorted(CASES))
def test_float32_parameters_stay_float32_and_update_in_place(name):
    model = Params([rng.normal(size=(3, 3)).astype(np.float32)])
    opt = CASES[name][0]().setup(model)
    buf = model.p0.data
    for _ in range(3):
        model.cleargrads()
        F.sum(model.p0 * model.p0).backward()
        opt.update()
    assert model.p0.data is buf and buf.dtype == np.float32


def test_setup_returns_self_and_update_needs_setup():
    opt = optimizers.SGD()
    with pytest.raises(RuntimeError, match="setup"):
        opt.update()
    model = Params([np.ones(2)])
    assert opt.setup(model) is opt


@pytest.mark.parametrize("shape", [(7,), (5, 13), (3, 4, 9)])
def test_sgd_chunked_update_equals_the_plain_formula(monkeypatch, shape):
    # SGD updates large arrays chunk by chunk (the scaled gradient stays in cache); the values must
    # be exactly W - lr * g, also where the last chunk is partial
    monkeypatch.setattr(stucrs.fast.optimizers, "_CHUNK", 4)
    rng = np.random.default_rng(5)
    W0 = rng.normal(size=shape).astype(np.float32)
    g = rng.normal(size=shape).astype(np.float32)
    p = stucrs.Parameter(W0.copy())
    p.grad = stucrs.Variable(g.copy())
    data_before = p.data
    stucrs.optimizers.SGD(lr=0.1).update_one(p)
    assert p.data is data_before  # in place
    np.testing.assert_array_equal(p.data, W0 - g * np.float32(0.1))
    np.testing.assert_array_equal(p.grad.data, g)  # the gradient is not touched


def test_sgd_update_of_non_contiguous_or_mixed_dtype_arrays(monkeypatch):
    monkeypatch.setattr(stucrs.fast.optimizers, "_CHUNK", 4)
    rng = np.random.default_rng(6)
    W0 = rng.normal(size=(6, 5)).astype(np.float32)
    g = rng.normal(size=(5, 6)).astype(np.float32).T  # a transposed (Fortran-ordered) gradient
    p = stucrs.Parameter(W0.copy())
    p.grad = stucrs.Variable(g)
    stucrs.optimizers.SGD(lr=0.5).update_one(p)
    np.testing.assert_array_equal(p.data, W0 - g * np.float32(0.5))
    W64 = rng.normal(size=(4, 4))
    p = stucrs.Parameter(W64.copy())
    p.grad = stucrs.Variable(np.ones((4, 4), dtype=np.float32))
    stucrs.optimizers.SGD(lr=0.25).update_one(p)
    np.testing.assert_allclose(p.data, W64 - 0.25)
    assert p.data.dtype == np.float64
