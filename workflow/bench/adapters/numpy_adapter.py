"""NumPy by hand: the dense networks' training step written out in plain NumPy, no framework.

The reference for the frameworks built on NumPy: per step the forward GEMMs with the bias added in
place and ReLU in place, a stable softmax cross entropy, the backward GEMMs (none for the input
batch), and the SGD update ``W -= lr * gW`` in place, each layer's as soon as its gradient
exists (while it is still in the cache; a framework with DeZero's API updates after the whole
backward pass). Nothing is recorded for a graph, nothing is
checked, no object is made per operation, so the distance from StuCrs to this row is StuCrs's own
overhead, and the distance from this row to the GEMM floor is the work plain NumPy does beside its
matrix products (elementwise passes, the update's memory traffic). StuCrs's SGD hands large updates
to the BLAS (``stucrs.fast.blas``: axpy, one fused pass on the BLAS threads, and for the dense layers'
weights one gemm that adds ``-lr * x.T @ gy`` to ``W`` without writing the gradient), which plain
NumPy cannot, so StuCrs may come out ahead of this row.

It imports nothing of StuCrs. glibc malloc is set by the harness exactly as for every NumPy-based
variant (``--malloc``, contract.MALLOC_TUNED_ENV). Dense networks (mlp1, mlp2) and the CPU only.
"""

import numpy as np

NAME = "numpy"
NETWORK_KINDS = ("mlp",)  # the hand-written step covers the dense networks


def version():
    return "numpy " + np.__version__


def gpu_status():
    return False, "the hand-written NumPy reference runs on the CPU only"


class Adapter:
    def __init__(self, spec, weights, *, device, lr, seed, threads=None):
        if spec.kind not in NETWORK_KINDS:
            raise ValueError("the hand-written NumPy reference covers the dense networks only "
                             "(mlp1, mlp2), not %r" % spec.name)
        if device != "cpu":
            raise ValueError("the hand-written NumPy reference runs on the CPU only")
        self.Ws = [np.array(W, dtype=np.float32) for W, _ in weights["dense"]]
        self.bs = [np.array(b, dtype=np.float32) for _, b in weights["dense"]]
        self.lr = np.float32(lr)

    def set_data(self, x_train, t_train, x_test, t_test):
        self.x_train, self.t_train = x_train, t_train
        self.x_test, self.t_test = x_test, t_test

    def _forward(self, x):
        """The activations [x, h1, ..., logits] (ReLU applied in place to the hidden ones)."""
        hs = [x]
        last = len(self.Ws) - 1
        for j, (W, b) in enumerate(zip(self.Ws, self.bs)):
            h = hs[-1] @ W
            h += b
            if j < last:
                np.maximum(h, 0, out=h)
            hs.append(h)
        return hs

    @staticmethod
    def _loss(logits, t):
        """(mean softmax cross entropy, accuracy, log-probabilities)."""
        n = len(t)
        z = logits - logits.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        loss = -float(logp[np.arange(n), t].mean())
        acc = float((logits.argmax(axis=1) == t).mean())
        return loss, acc, logp

    def train_epoch(self, perm, batch_size):
        for i in range(0, len(perm), batch_size):
            idx = perm[i:i + batch_size]
            x, t = self.x_train[idx], self.t_train[idx]
            n = len(t)
            hs = self._forward(x)
            loss, acc, logp = self._loss(hs[-1], t)
            g = np.exp(logp, out=logp)  # softmax, then its gradient (p - onehot) / n
            g[np.arange(n), t] -= 1
            g /= np.float32(n)
            for j in range(len(self.Ws) - 1, -1, -1):
                gW = hs[j].T @ g
                gb = g.sum(axis=0)
                if j > 0:  # the input batch needs no gradient
                    g = g @ self.Ws[j].T
                    g *= hs[j] > 0
                self.Ws[j] -= self.lr * gW
                self.bs[j] -= self.lr * gb
            yield loss, acc, n

    def test_epoch(self, batch_size):
        for i in range(0, len(self.x_test), batch_size):
            x, t = self.x_test[i:i + batch_size], self.t_test[i:i + batch_size]
            loss, acc, _ = self._loss(self._forward(x)[-1], t)
            yield loss, acc, len(t)

    def sync(self):
        pass
