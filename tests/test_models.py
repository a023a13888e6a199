"""Models (Model, Sequential, MLP): structure, training, a whole CNN against PyTorch."""
import shutil

import numpy as np
import pytest

import stucrs
import stucrs.functions as F
import stucrs.layers as L
from stucrs import Model, optimizers
from stucrs.models import MLP, Sequential

rng = np.random.default_rng(3)


def test_mlp_structure_and_forward():
    m = MLP((10, 7, 3), activation=F.relu)
    y = m(np.zeros((4, 2), dtype=np.float32))
    assert y.shape == (4, 3) and y.dtype == np.float32
    d = {}
    m._flatten_params(d)
    assert list(d) == ["l0/W", "l0/b", "l1/W", "l1/b", "l2/W", "l2/b"]
    assert isinstance(m, Model) and isinstance(m, stucrs.Layer)


def test_sequential_with_layers_and_functions():
    m = Sequential(L.Linear(5), F.relu, L.Linear(2))
    y = m(rng.random((3, 4)).astype(np.float32))
    assert y.shape == (3, 2)
    assert [p.name for p in m.params()] == ["W", "b", "W", "b"]
    d = {}
    m._flatten_params(d)
    assert list(d) == ["l0/W", "l0/b", "l2/W", "l2/b"]
    with pytest.raises(TypeError):
        Sequential(L.Linear(2), 3)


def test_mlp_learns_spiral_like_toy_problem():
    np.random.seed(0)
    x = rng.normal(size=(60, 2)).astype(np.float32)
    t = (x[:, 0] * x[:, 1] > 0).astype(np.int64)
    m = MLP((16, 2), activation=F.tanh)
    opt = optimizers.Adam(0.05).setup(m)
    first = None
    for _ in range(150):
        loss = F.softmax_cross_entropy(m(x), t)
        first = float(loss.data) if first is None else first
        m.cleargrads()
        loss.backward()
        opt.update()
    assert float(loss.data) < 0.5 * first
    assert float(F.accuracy(m(x), t).data) > 0.85


def test_model_plot(tmp_path):
    m = MLP((3, 2))
    x = np.zeros((1, 2), dtype=np.float32)
    if shutil.which("dot") is None:
        with pytest.raises(RuntimeError, match="Graphviz"):
            m.plot(x, to_file=str(tmp_path / "m.png"))
    else:
        m.plot(x, to_file=str(tmp_path / "m.png"))
        assert (tmp_path / "m.png").exists()


@pytest.mark.torch
def test_small_cnn_matches_torch():
    from tests.needs_torch import import_torch
    torch = import_torch()

    class CNN(Model):
        def __init__(self):
            super().__init__()
            self.conv = L.Conv2d(4, 3, pad=1, nobias=True, dtype=np.float64, in_channels=1)
            self.fc = L.Linear(3, dtype=np.float64, in_size=4 * 3 * 3)

        def forward(self, x):
            h = F.pooling(F.relu(self.conv(x)), 2, 2)
            return self.fc(F.flatten(h))

    m = CNN()
    x = rng.random((5, 1, 6, 6))
    t = rng.integers(0, 3, size=5)
    loss = F.softmax_cross_entropy(m(x), t)
    loss.backward()

    conv_w = torch.tensor(m.conv.W.data.copy(), requires_grad=True)
    fc_w = torch.tensor(m.fc.W.data.copy(), requires_grad=True)
    fc_b = torch.tensor(m.fc.b.data.copy(), requires_grad=True)
    h = torch.nn.functional.max_pool2d(torch.relu(torch.nn.functional.conv2d(torch.tensor(x), conv_w, padding=1)), 2, 2)
    tl = torch.nn.functional.cross_entropy(h.flatten(1) @ fc_w + fc_b, torch.tensor(t))
    tl.backward()
    np.testing.assert_allclose(loss.data, tl.item(), rtol=1e-10)
    np.testing.assert_allclose(m.conv.W.grad.data, conv_w.grad.numpy(), rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(m.fc.W.grad.data, fc_w.grad.numpy(), rtol=1e-8, atol=1e-12)


def test_float32_cnn_training_step_stays_float32():
    m = Sequential(L.Conv2d(4, 3, nobias=True), F.relu, lambda h: F.pooling(h, 2, 2), F.flatten, L.Linear(3))
    x = rng.random((4, 1, 8, 8)).astype(np.float32)
    t = rng.integers(0, 3, size=4)
    opt = optimizers.SGD(0.1).setup(m)
    loss = F.softmax_cross_entropy(m(x), t)
    assert loss.dtype == np.float32
    m.cleargrads()
    loss.backward()
    opt.update()
    assert all(p.data.dtype == np.float32 and p.grad.dtype == np.float32 for p in m.params())


# ---------------------------------------------------------------------------
# model zoo (architectures only: pretrained weights need a download)
# ---------------------------------------------------------------------------
def test_bottlenecks_and_building_block_shapes():
    from stucrs.models import BottleneckA, BottleneckB, BuildingBlock

    x = rng.random((2, 8, 8, 8)).astype(np.float32)
    assert BottleneckA(8, 4, 16, stride=2)(x).shape == (2, 16, 4, 4)
    assert BottleneckA(8, 4, 16, stride=2, downsample_fb=True)(x).shape == (2, 16, 4, 4)
    assert BottleneckB(8, 4)(x).shape == (2, 8, 8, 8)
    block = BuildingBlock(3, 8, 4, 16, 1)
    y = block(x)
    assert y.shape == (2, 16, 8, 8) and y.dtype == np.float32
    d = {}
    block._flatten_params(d)
    assert "a/conv4/W" in d and "b2/bn3/gamma" in d and "b3/conv1/W" not in d


def test_resnet50_small_input_and_names():
    from stucrs.models import ResNet50

    np.random.seed(0)
    m = ResNet50()
    with stucrs.test_mode(), stucrs.no_grad():
        y = m(rng.random((1, 3, 32, 32)).astype(np.float32))
    assert y.shape == (1, 1000) and y.dtype == np.float32
    d = {}
    m._flatten_params(d)
    assert "res4/b5/conv2/W" in d and "res4/b6/conv2/W" not in d and "fc6/W" in d


def test_vgg16_structure_and_preprocess():
    from stucrs.models import VGG16

    m = VGG16()
    d = {}
    m._flatten_params(d)
    convs = [k for k in d if k.startswith("conv") and k.endswith("/W")]
    assert len(convs) == 13 and "conv5_3/W" in d and "fc8/b" in d
    img = (rng.random((30, 40, 3)) * 255).astype(np.uint8)
    x = VGG16.preprocess(img)
    assert x.shape == (3, 224, 224) and x.dtype == np.float32


def test_squeezenet_forward_backward():
    from stucrs.models import SqueezeNet

    m = SqueezeNet()
    x = rng.random((2, 3, 48, 48)).astype(np.float32)
    y = m(x)
    assert y.shape == (2, 1000)
    F.sum(y).backward()
    assert m.fire5.expand3.W.grad is not None
    with pytest.raises(ValueError):
        SqueezeNet(pretrained=True)
