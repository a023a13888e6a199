"""Shared code of the StuCrs and DeZero adapters (StuCrs keeps DeZero's API, so both train alike).

The book's idiom: ``Model`` subclasses built from ``L.Linear`` / ``L.Conv2d``, ``F.relu``,
``F.pooling``, ``F.dropout``, ``F.softmax_cross_entropy``, ``F.accuracy``, ``optimizers.SGD``,
``DataLoader`` over a ``Dataset``, ``no_grad()`` + ``test_mode()`` for the test pass, and
``model.to_gpu()`` / ``DataLoader(gpu=True)`` with CuPy.

The harness's shuffle permutation replaces ``DataLoader``'s own ``np.random.permutation``.
"""

import numpy as np


def cupy_status():
    try:
        import cupy
    except Exception as exc:  # noqa: BLE001
        return False, "CuPy is not installed (%s)" % exc.__class__.__name__
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # noqa: BLE001
        return False, "CuPy finds no CUDA device (%s)" % exc
    if n < 1:
        return False, "CuPy finds no CUDA device"
    return True, "CuPy %s, %d CUDA device(s)" % (cupy.__version__, n)


def make_dataset_class(lib):
    class ArrayDataset(lib.datasets.Dataset):
        """A ``Dataset`` over in-memory arrays (``__getitem__`` yields one example, as in the book)."""

        def __init__(self, x, t):
            self._x, self._t = x, t
            super().__init__(train=True)

        def prepare(self):
            self.data, self.label = self._x, self._t

    return ArrayDataset


def make_loader_class(lib):
    class PermutedDataLoader(lib.dataloaders.DataLoader):
        """``DataLoader`` walking the harness's permutation instead of drawing its own."""

        def __init__(self, dataset, batch_size, index, gpu=False):
            self._fixed_index = np.asarray(index)
            super().__init__(dataset, batch_size, shuffle=False, gpu=gpu)

        def reset(self):
            super().reset()
            self.index = self._fixed_index

    return PermutedDataLoader


def build_model(lib, spec, weights):
    L, F = lib.layers, lib.functions

    if spec.kind == "mlp":
        class MLPNet(lib.Model):
            def __init__(self):
                super().__init__()
                self.fcs = []
                for i, (W, b) in enumerate(weights["dense"]):
                    layer = L.Linear(W.shape[1], in_size=None)
                    layer.W.data = W.copy()
                    layer.b.data = b.copy()
                    setattr(self, "l%d" % i, layer)
                    self.fcs.append(layer)

            def forward(self, x):
                for layer in self.fcs[:-1]:
                    x = F.relu(layer(x))
                return self.fcs[-1](x)

        return MLPNet()

    (W1, b1), (W2, b2) = weights["dense"]

    class ConvNet(lib.Model):
        def __init__(self):
            super().__init__()
            Wc = weights["conv"]
            self.conv = L.Conv2d(Wc.shape[0], kernel_size=spec.kernel, stride=1, pad=0,
                                 nobias=True)
            self.conv.W.data = Wc.copy()
            self.fc1 = L.Linear(W1.shape[1])
            self.fc1.W.data, self.fc1.b.data = W1.copy(), b1.copy()
            self.fc2 = L.Linear(W2.shape[1])
            self.fc2.W.data, self.fc2.b.data = W2.copy(), b2.copy()

        def forward(self, x):
            x = F.relu(self.conv(x))
            x = F.pooling(x, spec.pool, spec.pool)
            x = F.dropout(x, spec.dropout)
            x = F.reshape(x, (x.shape[0], -1))
            x = F.relu(self.fc1(x))
            return self.fc2(x)

    return ConvNet()


class DezeroLikeAdapter:
    lib = None  # the framework module (stucrs or dezero), set by the subclass

    def __init__(self, spec, weights, *, device, lr, seed, threads=None):
        lib = self.lib
        self.F = lib.functions
        self.spec = spec
        self.gpu = device == "gpu"
        np.random.seed(seed)  # F.dropout draws from NumPy's global generator
        self.model = build_model(lib, spec, weights)
        self.optimizer = lib.optimizers.SGD(lr).setup(self.model)
        self.xp = np
        if self.gpu:
            import cupy
            cupy.random.seed(seed)
            self.model.to_gpu()
            self.xp = cupy
        self._Dataset = make_dataset_class(lib)
        self._Loader = make_loader_class(lib)

    def set_data(self, x_train, t_train, x_test, t_test):
        if self.spec.kind == "cnn":
            x_train = x_train.reshape(-1, 1, 28, 28)
            x_test = x_test.reshape(-1, 1, 28, 28)
        self.train_set = self._Dataset(x_train, t_train)
        self.test_set = self._Dataset(x_test, t_test)

    def _batches(self, dataset, batch_size, index):
        return self._Loader(dataset, batch_size, index, gpu=self.gpu)

    def train_epoch(self, perm, batch_size):
        F, model, optimizer = self.F, self.model, self.optimizer
        for x, t in self._batches(self.train_set, batch_size, perm):
            y = model(x)
            loss = F.softmax_cross_entropy(y, t)
            acc = F.accuracy(y, t)
            model.cleargrads()
            loss.backward()
            optimizer.update()
            yield float(loss.data), float(acc.data), len(t)

    def test_epoch(self, batch_size):
        lib, F, model = self.lib, self.F, self.model
        index = np.arange(len(self.test_set))
        with lib.test_mode(), lib.no_grad():
            for x, t in self._batches(self.test_set, batch_size, index):
                y = model(x)
                loss = F.softmax_cross_entropy(y, t)
                acc = F.accuracy(y, t)
                yield float(loss.data), float(acc.data), len(t)

    def sync(self):
        if self.gpu:
            import cupy
            cupy.cuda.Device().synchronize()
