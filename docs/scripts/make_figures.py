"""ドキュメントに載せる図をすべて作るスクリプト。

Generate every figure embedded in the documentation into ``docs/ja/figures/`` (or ``--out DIR``).
Each figure is computed with StuCrs itself, with fixed random seeds, and drawn with matplotlib's
Agg backend, so running the script again gives the same pictures (tests/test_docs.py checks it).

    .venvs/workspace/bin/python docs/scripts/make_figures.py            # all figures
    .venvs/workspace/bin/python docs/scripts/make_figures.py --only newton

Labels are in Japanese, drawn with IPAex Gothic from the ``matplotlib-fontja`` wheel of the
workspace environment (no system font needed); ``japanese_font()`` fails with a clear message where
it is missing, and tests/test_figures_font.py checks that every label's characters have glyphs.
"""
import argparse
import os
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
try:
    import matplotlib_fontja  # noqa: F401, E402 - registers IPAex Gothic with matplotlib
except ImportError:  # japanese_font() says what to install
    matplotlib_fontja = None
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import stucrs  # noqa: E402
import stucrs.functions as F  # noqa: E402
from stucrs import Variable  # noqa: E402

DEFAULT_OUT = REPO / "docs" / "ja" / "figures"
FIGURES = {}


def figure(name):
    def register(fn):
        FIGURES[name] = fn
        return fn
    return register


def _save(fig, out_dir, name):
    path = Path(out_dir) / f"{name}.png"
    # no "Software" entry: the file does not change when only the matplotlib version does
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)
    return path


# -----------------------------------------------------------------------------
# Chapter 5: Newton's method vs gradient descent, tanh higher derivatives
# -----------------------------------------------------------------------------
def _f(x):
    return x ** 4 - 2 * x ** 2


@figure("newton")
def newton(out_dir):
    # Newton's method (the code of chapter 5)
    x = Variable(np.array(2.0))
    newton_xs = []
    for _ in range(10):
        newton_xs.append(float(x.data))
        y = _f(x)
        x.cleargrad()
        y.backward(create_graph=True)
        gx = x.grad
        x.cleargrad()
        gx.backward()
        x.data = x.data - gx.data / x.grad.data
    # gradient descent with lr = 0.01 (the code of chapter 5)
    x = Variable(np.array(2.0))
    gd_xs = []
    for _ in range(200):
        gd_xs.append(float(x.data))
        y = _f(x)
        x.cleargrad()
        y.backward()
        x.data = x.data - 0.01 * x.grad.data

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    grid = np.linspace(-2.2, 2.2, 400)
    axes[0].plot(grid, _f(grid), color="gray", label=r"$y = x^4 - 2x^2$")
    nx = np.array(newton_xs[:6])
    axes[0].plot(nx, _f(nx), "o-", color="tab:red", label="ニュートン法")
    for i, v in enumerate(nx[:3]):
        axes[0].annotate(str(i), (v, _f(v)), textcoords="offset points", xytext=(6, 6))
    axes[0].set_xlabel("x")
    axes[0].set_ylabel("y")
    axes[0].set_ylim(-1.5, 9)
    axes[0].legend()
    axes[0].set_title("曲線の上の点の動き")

    err_gd = np.maximum(np.abs(np.array(gd_xs) - 1.0), 1e-16)
    err_nt = np.maximum(np.abs(np.array(newton_xs) - 1.0), 1e-16)
    axes[1].semilogy(range(len(gd_xs)), err_gd, ".-", color="tab:blue", label="勾配降下法 (lr=0.01)")
    axes[1].semilogy(range(len(newton_xs)), err_nt, "o-", color="tab:red", label="ニュートン法")
    axes[1].set_xlabel("反復の回数")
    axes[1].set_ylabel("|x - 1| (最小値までの距離)")
    axes[1].legend()
    axes[1].set_title("最小値 x = 1 までの距離 (対数目盛)")
    fig.tight_layout()
    return _save(fig, out_dir, "newton")


@figure("tanh_derivatives")
def tanh_derivatives(out_dir):
    x = Variable(np.linspace(-5, 5, 200))
    y = F.tanh(x)
    curves = [("y = tanh(x)", y.data.copy())]
    gx = y
    for order in range(1, 7):
        x.cleargrad()
        gx.backward(create_graph=True)
        gx = x.grad
        curves.append((f"{order} 階微分", gx.data.copy()))
    fig, ax = plt.subplots(figsize=(7, 5))
    for label, data in curves:
        ax.plot(x.data, data, label=label)
    ax.set_xlabel("x")
    ax.set_ylim(-15, 15)
    ax.legend(loc="lower right", fontsize=9)
    ax.set_title("tanh とその高階微分 (create_graph=True)")
    fig.tight_layout()
    return _save(fig, out_dir, "tanh_derivatives")


# -----------------------------------------------------------------------------
# Chapters 9 and 10: the spiral dataset and the decision boundary
# -----------------------------------------------------------------------------
_MARKERS = ["o", "x", "^"]


def _scatter_spiral(ax, x, t):
    for c in range(3):
        sel = t == c
        ax.scatter(x[sel, 0], x[sel, 1], s=18, marker=_MARKERS[c], label=f"クラス {c}")
    ax.set_xlim(-1, 1)
    ax.set_ylim(-1, 1)
    ax.set_aspect("equal")


@figure("spiral_data")
def spiral_data(out_dir):
    from stucrs.datasets import Spiral

    ds = Spiral(train=True)
    fig, ax = plt.subplots(figsize=(5, 5))
    _scatter_spiral(ax, ds.data, ds.label)
    ax.legend(loc="upper right", fontsize=9)
    ax.set_title("Spiral(train=True): 3 クラス × 100 点")
    fig.tight_layout()
    return _save(fig, out_dir, "spiral_data")


def train_spiral():
    """The training of chapter 10 (same seeds, same hyper-parameters)."""
    from stucrs import optimizers
    from stucrs.dataloaders import DataLoader
    from stucrs.datasets import Spiral
    from stucrs.models import MLP

    train_set = Spiral(train=True)
    test_set = Spiral(train=False)
    np.random.seed(0)
    loader = DataLoader(train_set, 30)
    model = MLP((10, 3))
    optimizer = optimizers.SGD(1.0).setup(model)
    for _ in range(300):
        for x, t in loader:
            loss = F.softmax_cross_entropy(model(x), t)
            model.cleargrads()
            loss.backward()
            optimizer.update()
    return model, train_set, test_set


@figure("spiral_boundary")
def spiral_boundary(out_dir):
    model, train_set, test_set = train_spiral()
    h = 0.01
    xx, yy = np.meshgrid(np.arange(-1.0, 1.0, h), np.arange(-1.0, 1.0, h))
    grid = np.c_[xx.ravel(), yy.ravel()].astype(np.float32)
    with stucrs.no_grad():
        predicted = model(grid).data.argmax(axis=1).reshape(xx.shape)
    fig, axes = plt.subplots(1, 2, figsize=(10, 5))
    for ax, ds, title in [(axes[0], train_set, "学習データ"), (axes[1], test_set, "テストデータ")]:
        ax.contourf(xx, yy, predicted, levels=[-0.5, 0.5, 1.5, 2.5], alpha=0.3,
                    colors=["tab:blue", "tab:orange", "tab:green"])
        _scatter_spiral(ax, ds.data, ds.label)
        ax.set_title(f"MLP((10, 3)) の決定境界と{title}")
    axes[0].legend(loc="upper right", fontsize=9)
    fig.tight_layout()
    return _save(fig, out_dir, "spiral_boundary")


# -----------------------------------------------------------------------------
# Chapter 11: MNIST samples
# -----------------------------------------------------------------------------
def _mnist_dir():
    return os.environ.get("STUCRS_MNIST_DIR", str((REPO / ".." / "shared" / "mnist").resolve()))


@figure("mnist_samples")
def mnist_samples(out_dir):
    from stucrs.datasets import MNIST

    ds = MNIST(train=True, transform=None, local_dir=_mnist_dir())
    fig, axes = plt.subplots(2, 10, figsize=(10, 2.6))
    for i, ax in enumerate(axes.ravel()):
        ax.imshow(ds.data[i, 0], cmap="gray_r")
        ax.set_title(str(int(ds.label[i])))
        ax.axis("off")
    fig.suptitle("MNIST: the first 20 training images and their labels")
    fig.tight_layout()
    return _save(fig, out_dir, "mnist_samples")


# -----------------------------------------------------------------------------
# Chapter 14: RNN / LSTM predictions of a cosine wave
# -----------------------------------------------------------------------------
def train_sequence_models():
    """The trainings of chapter 14 (same seeds, same hyper-parameters)."""
    import stucrs.layers as L
    from stucrs import optimizers
    from stucrs.datasets import SinCurve
    from stucrs.models import Model

    class SeqModel(Model):
        def __init__(self, rnn, out_size):
            super().__init__()
            self.rnn = rnn
            self.fc = L.Linear(out_size)

        def reset_state(self):
            self.rnn.reset_state()

        def forward(self, x):
            return self.fc(self.rnn(x))

    np.random.seed(0)
    train_set = SinCurve(train=True)

    def train(model, max_epoch=10, bptt_length=30):
        optimizer = optimizers.Adam().setup(model)
        for _ in range(max_epoch):
            model.reset_state()
            loss, count = 0, 0
            for x, t in train_set:
                loss += F.mean_squared_error(model(x.reshape(1, 1)), t.reshape(1, 1))
                count += 1
                if count % bptt_length == 0 or count == len(train_set):
                    model.cleargrads()
                    loss.backward()
                    loss.unchain_backward()
                    optimizer.update()
                    loss = 0
        return model

    np.random.seed(0)
    rnn_model = train(SeqModel(L.RNN(10), 1))
    np.random.seed(0)
    lstm_model = train(SeqModel(L.LSTM(10), 1))
    return rnn_model, lstm_model


@figure("lstm_sin")
def lstm_sin(out_dir):
    rnn_model, lstm_model = train_sequence_models()
    xs = np.cos(np.linspace(0, 4 * np.pi, 1000))
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.plot(np.arange(1, 1000), xs[1:], color="gray", linewidth=3, alpha=0.5, label="y = cos(x) (正解)")
    for name, model in [("RNN", rnn_model), ("LSTM", lstm_model)]:
        model.reset_state()
        pred = []
        with stucrs.no_grad():
            for x in xs:
                pred.append(model(np.array(x).reshape(1, 1)).data.item())
        ax.plot(np.arange(1, 1000), pred[:-1], label=f"{name} の予測")
    ax.set_xlabel("時刻")
    ax.legend(loc="lower left", fontsize=9)
    ax.set_title("10 エポック学習した後の 1 時刻先の予測")
    fig.tight_layout()
    return _save(fig, out_dir, "lstm_sin")


def japanese_font():
    """The Japanese font the figures use (IPAex Gothic of matplotlib-fontja), or a clear error."""
    from matplotlib import font_manager
    names = {f.name for f in font_manager.fontManager.ttflist}
    if "IPAexGothic" not in names:
        raise SystemExit("no Japanese font for the figure labels: install the workspace environment "
                         "(python3 envs/build.py workspace; it holds matplotlib-fontja) or "
                         "`pip install matplotlib-fontja`")
    return "IPAexGothic"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[2])
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="output folder (default: docs/ja/figures)")
    parser.add_argument("--only", action="append", choices=sorted(FIGURES), help="make only this figure")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 100, "font.size": 10,
                         "font.family": japanese_font(), "axes.unicode_minus": False})
    for name in args.only or list(FIGURES):
        np.random.seed(0)
        path = FIGURES[name](args.out)
        print("wrote", os.path.relpath(path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
