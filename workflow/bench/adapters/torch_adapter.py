"""PyTorch: ``nn.Module``, ``torch.optim.SGD``, ``F.cross_entropy``, manual batching by indexing
tensors that live on the device; ``model.eval()`` + ``torch.no_grad()`` for the test pass."""

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

NAME = "torch"


def version():
    return torch.__version__


def gpu_status():
    if not torch.cuda.is_available():
        return False, "torch %s sees no CUDA device (torch.cuda.is_available() is False; built for CUDA %s)" % (
            torch.__version__, torch.version.cuda or "none")
    return True, "torch %s, %s" % (torch.__version__, torch.cuda.get_device_name(0))


class MLPNet(nn.Module):
    def __init__(self, dense):
        super().__init__()
        self.fcs = nn.ModuleList(nn.Linear(W.shape[0], W.shape[1]) for W, _ in dense)

    def forward(self, x):
        for fc in self.fcs[:-1]:
            x = F.relu(fc(x))
        return self.fcs[-1](x)


class ConvNet(nn.Module):
    def __init__(self, spec, conv_W, dense):
        super().__init__()
        oc, c, kh, _ = conv_W.shape
        self.conv = nn.Conv2d(c, oc, kh, stride=1, padding=0, bias=False)
        self.pool = nn.MaxPool2d(spec.pool)
        self.dropout = nn.Dropout(spec.dropout)
        (W1, _), (W2, _) = dense
        self.fc1 = nn.Linear(W1.shape[0], W1.shape[1])
        self.fc2 = nn.Linear(W2.shape[0], W2.shape[1])
        self.fcs = [self.fc1, self.fc2]

    def forward(self, x):
        x = self.dropout(self.pool(F.relu(self.conv(x))))
        x = torch.flatten(x, 1)  # NCHW flatten: (C, H, W) order, as the shared weights
        x = F.relu(self.fc1(x))
        return self.fc2(x)


class Adapter:
    def __init__(self, spec, weights, *, device, lr, seed, threads=None):
        if threads:
            torch.set_num_threads(int(threads))
        torch.manual_seed(seed)
        self.spec = spec
        self.device = torch.device("cuda" if device == "gpu" else "cpu")
        if spec.kind == "mlp":
            model = MLPNet(weights["dense"])
        else:
            model = ConvNet(spec, weights["conv"], weights["dense"])
        with torch.no_grad():
            for fc, (W, b) in zip(model.fcs, weights["dense"]):
                fc.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
                fc.bias.copy_(torch.from_numpy(b))
            if spec.kind == "cnn":
                model.conv.weight.copy_(torch.from_numpy(weights["conv"]))
        self.model = model.to(self.device)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=lr)

    def set_data(self, x_train, t_train, x_test, t_test):
        def tensor(a):
            return torch.from_numpy(a).to(self.device)

        if self.spec.kind == "cnn":
            x_train = x_train.reshape(-1, 1, 28, 28)
            x_test = x_test.reshape(-1, 1, 28, 28)
        self.x_train, self.t_train = tensor(x_train), tensor(t_train)
        self.x_test, self.t_test = tensor(x_test), tensor(t_test)

    def train_epoch(self, perm, batch_size):
        model, opt = self.model, self.optimizer
        model.train()
        perm = torch.from_numpy(np.asarray(perm, dtype=np.int64)).to(self.device)
        for i in range(0, len(perm), batch_size):
            idx = perm[i:i + batch_size]
            x, t = self.x_train[idx], self.t_train[idx]
            y = model(x)
            loss = F.cross_entropy(y, t)
            opt.zero_grad()
            loss.backward()
            opt.step()
            acc = (y.detach().argmax(dim=1) == t).float().mean()
            yield loss.item(), acc.item(), len(t)

    def test_epoch(self, batch_size):
        model = self.model
        model.eval()
        with torch.no_grad():
            for i in range(0, len(self.x_test), batch_size):
                x, t = self.x_test[i:i + batch_size], self.t_test[i:i + batch_size]
                y = model(x)
                loss = F.cross_entropy(y, t)
                acc = (y.argmax(dim=1) == t).float().mean()
                yield loss.item(), acc.item(), len(t)

    def sync(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize()

