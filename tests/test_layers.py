"""Layers (registration, lazy init, dtypes, save/load) and NN functions against PyTorch."""
import os

import numpy as np
import pytest

import stucrs
import stucrs.functions as F
import stucrs.layers as L
from stucrs import Parameter, Variable
from stucrs import test_mode as inference_mode
from tests.opcheck import NUMPY, backward_check, double_backward_check

from tests.needs_torch import import_torch  # noqa: E402

torch = import_torch()
pytestmark = pytest.mark.torch
tF = torch.nn.functional

rng = np.random.default_rng(99)


# ---------------------------------------------------------------------------
# Layer basics
# ---------------------------------------------------------------------------
class Two(stucrs.Layer):
    def __init__(self):
        super().__init__()
        self.p = Parameter(np.ones(2, dtype=np.float32), name="p")
        self.inner = L.Linear(3, in_size=2)
        self.not_a_param = Variable(np.zeros(1))

    def forward(self, x):
        return self.inner(x * self.p)


def test_layer_registers_parameters_and_sublayers_in_order():
    m = Two()
    names = [p.name for p in m.params()]
    assert names == ["p", "W", "b"]
    d = {}
    m._flatten_params(d)
    assert list(d) == ["p", "inner/W", "inner/b"]
    # re-assigning a registered name with a plain value unregisters it
    m.p = None
    assert [p.name for p in m.params()] == ["W", "b"]


def test_cleargrads_and_layer_call():
    m = Two()
    y = m(np.ones((4, 2), dtype=np.float32))
    F.sum(y).backward()
    assert all(p.grad is not None for p in m.params())
    m.cleargrads()
    assert all(p.grad is None for p in m.params())


class WithFrozen(stucrs.Layer):
    """A layer that overrides params() to leave one parameter out (e.g. a frozen embedding)."""

    def __init__(self):
        super().__init__()
        self.trained = Parameter(np.ones(2, dtype=np.float32), name="trained")
        self.frozen = Parameter(np.ones(2, dtype=np.float32), name="frozen")

    def params(self):
        yield self.trained

    def forward(self, x):
        return x * self.trained * self.frozen


def test_nested_params_override_is_honoured_by_cleargrads_and_optimizers():
    """Model.params(), cleargrads() and Optimizer.update() collect nested parameters without a
    generator per layer (layers.param_list), and still ask a layer that overrides params()."""
    from stucrs import optimizers

    class Outer(stucrs.Model):
        def __init__(self):
            super().__init__()
            self.a = Two()
            self.f = WithFrozen()

        def forward(self, x):
            return self.f(self.a(x)[:, :2])

    m = Outer()
    assert [p.name for p in m.params()] == ["p", "W", "b", "trained"]
    assert L.param_list(m) == list(m.params())
    F.sum(m(np.ones((4, 2), dtype=np.float32))).backward()
    assert m.f.frozen.grad is not None
    frozen_before = m.f.frozen.data.copy()
    optimizers.SGD(lr=0.1).setup(m).update()
    np.testing.assert_array_equal(m.f.frozen.data, frozen_before)  # not updated: not in params()
    assert not np.array_equal(m.f.trained.data, np.ones(2, dtype=np.float32))
    m.cleargrads()
    assert all(p.grad is None for p in m.params())
    assert m.f.frozen.grad is not None  # cleargrads follows params() as well

    class Duck:  # an optimizer target that is not a Layer, only has params()
        def __init__(self):
            self.w = Parameter(np.ones(3, dtype=np.float32))

        def params(self):
            yield self.w

    duck = Duck()
    duck.w.grad = Variable(np.ones(3, dtype=np.float32))
    optimizers.SGD(lr=0.5).setup(duck).update()
    np.testing.assert_array_equal(duck.w.data, np.full(3, 0.5, dtype=np.float32))


def test_layer_call_records_weak_inputs_and_outputs():
    """Layer.__call__ keeps weak references to its Variables (not to plain numbers), as DeZero does;
    a parameter that happened to be named ``inputs`` is replaced and unregistered, as assigning
    any plain value to a registered name does."""
    import weakref

    m = Two()
    x = Variable(np.ones((4, 2), dtype=np.float32))
    y = m(x)
    assert [r() for r in m.inputs] == [x] and [r() for r in m.outputs] == [y]
    assert all(isinstance(r, weakref.ref) for r in m.inputs + m.outputs)

    class Scale(stucrs.Layer):
        def __init__(self):
            super().__init__()
            self.inputs = Parameter(np.ones(1, dtype=np.float32), name="inputs")

        def forward(self, x, k):
            return x * k

    s = Scale()
    assert [p.name for p in s.params()] == ["inputs"]
    s(x, 3.0)  # 3.0 cannot be weakly referenced: left out
    assert [r() for r in s.inputs] == [x]
    assert list(s.params()) == []


def test_linear_lazy_init_float32_and_scale():
    np.random.seed(0)
    layer = L.Linear(50)
    assert layer.W.data is None
    x = np.random.rand(7, 400).astype(np.float32)
    y = layer(x)
    assert layer.W.shape == (400, 50) and layer.in_size == 400
    assert layer.W.dtype == np.float32 and layer.b.dtype == np.float32 and y.dtype == np.float32
    assert abs(float(layer.W.data.std()) - np.sqrt(1 / 400)) < 0.005
    F.sum(y).backward()
    assert layer.W.grad.dtype == np.float32 and layer.b.grad.dtype == np.float32
    assert L.Linear(3, nobias=True, in_size=2).b is None
    assert L.Linear(3, dtype=np.float64, in_size=2).W.dtype == np.float64


def test_conv2d_layer_lazy_init_and_rank_error():
    conv = L.Conv2d(8, 3, stride=1, pad=1)
    x = rng.random((2, 3, 6, 6)).astype(np.float32)
    y = conv(x)
    assert conv.W.shape == (8, 3, 3, 3) and y.shape == (2, 8, 6, 6) and y.dtype == np.float32
    with pytest.raises(ValueError, match=r"\(N, C, H, W\).*\(2, 108\)"):
        conv(x.reshape(2, -1))
    with pytest.raises(ValueError, match="channels"):
        conv(rng.random((2, 4, 6, 6)).astype(np.float32))
    assert L.Conv2d(4, 3, nobias=True, in_channels=2).b is None


def test_deconv2d_layer():
    d = L.Deconv2d(4, 3, stride=2, pad=1)
    y = d(rng.random((2, 3, 5, 5)).astype(np.float32))
    assert d.W.shape == (3, 4, 3, 3) and y.shape == (2, 4, 9, 9) and y.dtype == np.float32


# ---------------------------------------------------------------------------
# batch_norm
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(8, 5), (4, 3, 5, 6)])
def test_batch_norm_train_matches_torch(shape):
    c = shape[1]
    x = rng.normal(size=shape) * 2 + 1
    gamma, beta = rng.normal(size=c), rng.normal(size=c)
    mean, var = rng.normal(size=c), rng.random(c) + 0.5
    tmean, tvar = torch.tensor(mean.copy()), torch.tensor(var.copy())
    vx, vg, vb = Variable(x.copy()), Variable(gamma.copy()), Variable(beta.copy())
    y = F.batch_norm(vx, vg, vb, mean, var, decay=0.9, eps=1e-5)
    tx, tg, tb = (torch.tensor(a, requires_grad=True) for a in (x, gamma, beta))
    ty = tF.batch_norm(tx, tmean, tvar, tg, tb, training=True, momentum=0.1, eps=1e-5)
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(mean, tmean.numpy(), rtol=1e-10)  # running stats updated in place
    np.testing.assert_allclose(var, tvar.numpy(), rtol=1e-10)
    gy = rng.normal(size=shape)
    y.grad = Variable(gy)
    y.backward()
    ty.backward(torch.tensor(gy))
    for v, t in ((vx, tx), (vg, tg), (vb, tb)):
        np.testing.assert_allclose(v.grad.data, t.grad.numpy(), rtol=1e-8, atol=1e-9)


@pytest.mark.parametrize("shape", [(6, 4), (3, 2, 4, 4)])
def test_batch_norm_test_mode_matches_torch(shape):
    c = shape[1]
    x = rng.normal(size=shape)
    gamma, beta = rng.normal(size=c), rng.normal(size=c)
    mean, var = rng.normal(size=c), rng.random(c) + 0.5
    mean0, var0 = mean.copy(), var.copy()
    vx, vg, vb = Variable(x.copy()), Variable(gamma.copy()), Variable(beta.copy())
    with inference_mode():
        y = F.batch_norm(vx, vg, vb, mean, var, eps=1e-5)
    np.testing.assert_array_equal(mean, mean0)  # untouched in test mode
    np.testing.assert_array_equal(var, var0)
    tx, tg, tb = (torch.tensor(a, requires_grad=True) for a in (x, gamma, beta))
    ty = tF.batch_norm(tx, torch.tensor(mean), torch.tensor(var), tg, tb, training=False, eps=1e-5)
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-9, atol=1e-9)
    gy = rng.normal(size=shape)
    y.grad = Variable(gy)
    y.backward()
    ty.backward(torch.tensor(gy))
    for v, t in ((vx, tx), (vg, tg), (vb, tb)):
        np.testing.assert_allclose(v.grad.data, t.grad.numpy(), rtol=1e-8, atol=1e-9)


def test_batch_norm_numerical_and_double_backward():
    x = rng.normal(size=(5, 3))
    g, b = rng.normal(size=3), rng.normal(size=3)

    def f(a, gg, bb):
        return F.batch_norm(a, gg, bb, np.zeros(3), np.ones(3), eps=1e-5)

    backward_check(f, [x, g, b], NUMPY)
    double_backward_check(lambda a, gg, bb: f(a, gg, bb) ** 3, [x, g, b], NUMPY, rtol=1e-3, atol=1e-4)
    x4 = rng.normal(size=(2, 2, 3, 3))
    backward_check(lambda a, gg, bb: F.batch_norm(a, gg, bb, np.zeros(2), np.ones(2)), [x4, g[:2], b[:2]], NUMPY)


def test_batchnorm_layer_float32_and_modes():
    bn = L.BatchNorm()
    x = (rng.normal(size=(16, 4, 3, 3)) * 3 + 2).astype(np.float32)
    y = bn(x)
    assert y.dtype == np.float32 and bn.avg_mean.dtype == np.float32
    np.testing.assert_allclose(y.data.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    F.sum(y * y).backward()
    assert bn.gamma.grad.dtype == np.float32 and bn.avg_mean.grad is None
    with inference_mode():
        y2 = bn(x)
    assert y2.dtype == np.float32


# ---------------------------------------------------------------------------
# embed_id, losses
# ---------------------------------------------------------------------------
def test_embed_id_matches_torch_with_repeated_ids():
    W = rng.normal(size=(7, 4))
    ids = np.array([[1, 3, 1], [6, 1, 0]])
    vW = Variable(W.copy())
    y = F.embed_id(ids, vW)
    tW = torch.tensor(W, requires_grad=True)
    ty = tF.embedding(torch.tensor(ids), tW)
    np.testing.assert_allclose(y.data, ty.detach().numpy())
    gy = rng.normal(size=y.shape)
    y.grad = Variable(gy)
    y.backward()
    ty.backward(torch.tensor(gy))
    np.testing.assert_allclose(vW.grad.data, tW.grad.numpy(), rtol=1e-12)
    layer = L.EmbedID(10, 3)
    assert layer(np.array([1, 2])).dtype == np.float32
    with pytest.raises(TypeError, match="integer"):
        F.embed_id(np.array([1.0]), vW)


def test_losses_match_torch():
    x = rng.normal(size=(6, 4))
    t = rng.integers(0, 4, size=6)
    vx = Variable(x.copy())
    loss = F.softmax_cross_entropy(vx, t)
    tx = torch.tensor(x, requires_grad=True)
    tloss = tF.cross_entropy(tx, torch.tensor(t))
    np.testing.assert_allclose(loss.data, tloss.item(), rtol=1e-10)
    loss.backward()
    tloss.backward()
    np.testing.assert_allclose(vx.grad.data, tx.grad.numpy(), rtol=1e-9, atol=1e-12)

    y = rng.normal(size=(5, 3))
    target = rng.normal(size=(5, 3))
    vy = Variable(y.copy())
    mse = F.mean_squared_error(vy, target)
    ty = torch.tensor(y, requires_grad=True)
    tmse = ((ty - torch.tensor(target)) ** 2).sum() / 5  # DeZero divides by the batch size
    np.testing.assert_allclose(mse.data, tmse.item(), rtol=1e-10)
    mse.backward()
    tmse.backward()
    np.testing.assert_allclose(vy.grad.data, ty.grad.numpy(), rtol=1e-9)

    z = rng.normal(size=(8, 1))
    tt = rng.integers(0, 2, size=(8, 1))
    vz = Variable(z.copy())
    sce = F.sigmoid_cross_entropy(vz, tt)
    tz = torch.tensor(z, requires_grad=True)
    tsce = tF.binary_cross_entropy_with_logits(tz, torch.tensor(tt, dtype=torch.float64))
    np.testing.assert_allclose(sce.data, tsce.item(), rtol=1e-8)
    sce.backward()
    tsce.backward()
    np.testing.assert_allclose(vz.grad.data, tz.grad.numpy(), rtol=1e-7)


# ---------------------------------------------------------------------------
# RNN / LSTM against PyTorch cells
# ---------------------------------------------------------------------------
def test_lstm_matches_torch_lstm_cell_over_a_sequence():
    n, i_size, h_size, steps = 3, 4, 5, 4
    lstm = L.LSTM(h_size, in_size=i_size)
    for p in lstm.params():
        p.data = rng.normal(size=p.shape) * 0.5
    cell = torch.nn.LSTMCell(i_size, h_size, dtype=torch.float64)
    # torch's gate order: input, forget, cell (u), output; weights are (4H, in)
    with torch.no_grad():
        cell.weight_ih.copy_(torch.tensor(np.concatenate([lstm.x2i.W.data.T, lstm.x2f.W.data.T,
                                                          lstm.x2u.W.data.T, lstm.x2o.W.data.T])))
        cell.weight_hh.copy_(torch.tensor(np.concatenate([lstm.h2i.W.data.T, lstm.h2f.W.data.T,
                                                          lstm.h2u.W.data.T, lstm.h2o.W.data.T])))
        cell.bias_ih.copy_(torch.tensor(np.concatenate([lstm.x2i.b.data, lstm.x2f.b.data,
                                                        lstm.x2u.b.data, lstm.x2o.b.data])))
        cell.bias_hh.zero_()
    xs = rng.normal(size=(steps, n, i_size))
    loss = 0
    h = c = torch.zeros(n, h_size, dtype=torch.float64)
    tloss = 0
    for k in range(steps):
        y = lstm(xs[k])
        h, c = cell(torch.tensor(xs[k]), (h, c))
        np.testing.assert_allclose(y.data, h.detach().numpy(), rtol=1e-9, atol=1e-12)
        loss = loss + F.sum(y * y)
        tloss = tloss + (h * h).sum()
    loss.backward()
    tloss.backward()
    np.testing.assert_allclose(lstm.x2f.W.grad.data.T, cell.weight_ih.grad.numpy()[h_size:2 * h_size], rtol=1e-8)
    np.testing.assert_allclose(lstm.h2o.W.grad.data.T, cell.weight_hh.grad.numpy()[3 * h_size:], rtol=1e-8)
    np.testing.assert_allclose(lstm.x2u.b.grad.data, cell.bias_ih.grad.numpy()[2 * h_size:3 * h_size], rtol=1e-8)
    lstm.reset_state()
    assert lstm.h is None and lstm.c is None


def test_rnn_matches_torch_rnn_cell():
    rnn = L.RNN(4, in_size=3)
    assert rnn.h2h.W.data is None  # created lazily from h, as in DeZero
    rnn.h2h.W.data = rng.normal(size=(4, 4))
    for p in rnn.params():
        p.data = rng.normal(size=p.shape) * 0.5
    cell = torch.nn.RNNCell(3, 4, dtype=torch.float64)
    with torch.no_grad():
        cell.weight_ih.copy_(torch.tensor(rnn.x2h.W.data.T))
        cell.weight_hh.copy_(torch.tensor(rnn.h2h.W.data.T))
        cell.bias_ih.copy_(torch.tensor(rnn.x2h.b.data))
        cell.bias_hh.zero_()
    h = torch.zeros(2, 4, dtype=torch.float64)
    for _ in range(3):
        x = rng.normal(size=(2, 3))
        y = rnn(x)
        h = cell(torch.tensor(x), h)
        np.testing.assert_allclose(y.data, h.detach().numpy(), rtol=1e-10)


# ---------------------------------------------------------------------------
# save_weights / load_weights
# ---------------------------------------------------------------------------
def _mlp(sizes):
    from stucrs.models import MLP

    m = MLP(sizes)
    m(np.zeros((1, 4), dtype=np.float32))
    return m


def test_save_load_round_trip(tmp_path):
    a = _mlp((6, 3))
    path = a.save_weights(tmp_path / "w")  # .npz is appended as np.savez does
    assert path.endswith("w.npz") and os.path.exists(path)
    assert [f for f in os.listdir(tmp_path)] == ["w.npz"]  # no temporary file left
    b = _mlp((6, 3))
    b.load_weights(tmp_path / "w.npz")
    for pa, pb in zip(a.params(), b.params()):
        np.testing.assert_array_equal(pa.data, pb.data)
        assert pb.data.dtype == np.float32
    c = L.Linear(6)  # uninitialised parameters adopt the stored arrays
    m = _mlp((6, 3))
    m.l0 = c
    m.load_weights(str(tmp_path / "w"))
    np.testing.assert_array_equal(c.W.data, a.l0.W.data)
    with np.load(path, allow_pickle=False) as npz:
        assert sorted(npz.files) == ["l0/W", "l0/b", "l1/W", "l1/b"]


def test_load_wrong_architecture_names_param_and_shapes(tmp_path):
    _mlp((6, 3)).save_weights(tmp_path / "w.npz")
    with pytest.raises(ValueError, match=r"'l0/W'.*\(4, 6\).*\(4, 5\)"):
        _mlp((5, 3)).load_weights(tmp_path / "w.npz")
    with pytest.raises(ValueError, match=r"missing in the file: l2/W, l2/b"):
        _mlp((6, 3, 2)).load_weights(tmp_path / "w.npz")
    with pytest.raises(ValueError, match=r"not in the model: l1/W, l1/b"):
        _mlp((6,)).load_weights(tmp_path / "w.npz")


def test_load_refuses_pickle(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, **{"l0/W": np.array([{"a": 1}], dtype=object)})
    with pytest.raises(ValueError, match="pickle"):
        _mlp((6, 3)).load_weights(path)


def test_failed_save_leaves_old_file_intact(tmp_path, monkeypatch):
    m = _mlp((6, 3))
    path = m.save_weights(tmp_path / "w.npz")
    before = open(path, "rb").read()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    m2 = _mlp((6, 3))
    with pytest.raises(OSError, match="disk full"):
        m2.save_weights(path)
    assert open(path, "rb").read() == before
    assert os.listdir(tmp_path) == ["w.npz"]


def test_save_uninitialised_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="not initialised"):
        L.Linear(3).save_weights(tmp_path / "x.npz")
