"""The benchmark networks, shared by every framework, and their seeded initial weights.

Weights are drawn once here with NumPy (normal x sqrt(1 / fan_in), biases zero) and copied into
every framework, so that all of them start from the same point.  Layouts are DeZero's:

* dense ``W`` is ``(in, out)`` (``y = x @ W + b``; PyTorch copies ``W.T``, Keras uses it as is);
* conv ``W`` is ``(out_channels, in_channels, kh, kw)`` (NCHW; Keras gets ``W.transpose(2, 3, 1, 0)``);
* the CNN's first dense layer takes the NCHW-flattened ``(C, H, W)`` features; a framework that
  flattens NHWC ``(H, W, C)`` must permute its rows (``cnn_dense_rows_to_nhwc``).

No NumPy at import time: the CLI needs the names before the thread variables are set.
"""

from dataclasses import dataclass

NETWORKS = ("mlp1", "mlp2", "cnn")
ALIASES = {"1": "mlp1", "2": "mlp2", "3": "cnn"}

IMAGE_SHAPE = (1, 28, 28)  # C, H, W
N_CLASSES = 10


@dataclass(frozen=True)
class NetworkSpec:
    name: str
    kind: str  # "mlp" or "cnn"
    hidden: tuple  # mlp: hidden layer sizes; cnn: (conv channels, dense units)
    epochs: int
    batch_size: int
    lr: float
    # cnn only
    kernel: int = 3
    pool: int = 2
    dropout: float = 0.0

    @property
    def conv_out(self):
        """(channels, height, width) after conv (stride 1, no padding) and max-pool (cnn only)."""
        c = self.hidden[0]
        h = (IMAGE_SHAPE[1] - self.kernel + 1) // self.pool
        w = (IMAGE_SHAPE[2] - self.kernel + 1) // self.pool
        return c, h, w

    def dense_sizes(self):
        """(in, out) of each dense layer, in order."""
        if self.kind == "mlp":
            sizes = [IMAGE_SHAPE[0] * IMAGE_SHAPE[1] * IMAGE_SHAPE[2], *self.hidden, N_CLASSES]
        else:
            c, h, w = self.conv_out
            sizes = [c * h * w, self.hidden[1], N_CLASSES]
        return list(zip(sizes[:-1], sizes[1:]))


SPECS = {
    "mlp1": NetworkSpec("mlp1", "mlp", (1000,), epochs=5, batch_size=100, lr=0.01),
    "mlp2": NetworkSpec("mlp2", "mlp", (1000, 1000), epochs=5, batch_size=100, lr=0.01),
    "cnn": NetworkSpec("cnn", "cnn", (32, 128), epochs=10, batch_size=128, lr=0.1,
                       kernel=3, pool=2, dropout=0.2),
}


def resolve(name):
    """Canonical network name for ``name`` or an alias; ``ValueError`` listing the allowed values."""
    key = str(name).strip().lower()
    key = ALIASES.get(key, key)
    if key not in SPECS:
        raise ValueError("unknown network %r; allowed: %s (aliases %s)" % (
            name, ", ".join(NETWORKS), ", ".join("%s=%s" % kv for kv in ALIASES.items())))
    return key


def get_spec(name):
    return SPECS[resolve(name)]


def init_weights(spec, seed):
    """Seeded initial weights (float32 NumPy arrays), identical for every framework.

    Returns ``{"dense": [(W, b), ...], "conv": W or None}``.
    """
    import numpy as np

    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0]))

    def normal(shape, fan_in):
        return (rng.standard_normal(shape) * np.sqrt(1.0 / fan_in)).astype(np.float32)

    conv = None
    if spec.kind == "cnn":
        c_in = IMAGE_SHAPE[0]
        conv = normal((spec.hidden[0], c_in, spec.kernel, spec.kernel), c_in * spec.kernel ** 2)
    dense = [(normal((n_in, n_out), n_in), np.zeros(n_out, dtype=np.float32))
             for n_in, n_out in spec.dense_sizes()]
    return {"dense": dense, "conv": conv}


def shuffle_rng(seed):
    """The harness's generator of per-epoch shuffle permutations (separate from the weights')."""
    import numpy as np

    return np.random.default_rng(np.random.SeedSequence([int(seed), 1]))


def cnn_dense_rows_to_nhwc(W, spec):
    """Permute the rows of the CNN's first dense weight from (C, H, W) to (H, W, C) order."""
    c, h, w = spec.conv_out
    return W.reshape(c, h, w, -1).transpose(1, 2, 0, 3).reshape(c * h * w, -1).copy()


def n_batches(n, batch_size):
    return -(-int(n) // int(batch_size))
