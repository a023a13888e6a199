"""スパイラルデータを 2 層のニューラルネットワークで分類する (本のステップ 48–50)。/ Spiral classification.

本と同じ設定: MLP((10, 3)) (シグモイド)、SGD lr 1.0、バッチ 30、300 エポック。
学習後に決定境界の図を ``--out`` (PNG) に保存します。

    python examples/spiral.py --out spiral.png
"""
import os

import common  # noqa: F401  (stucrs を import できるようにする)
import numpy as np

import stucrs
from stucrs import optimizers
from stucrs.dataloaders import DataLoader
from stucrs.datasets import Spiral
from stucrs.models import MLP


def plot_decision_boundary(model, x, t, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h = 0.01
    x_min, x_max = x[:, 0].min() - 0.1, x[:, 0].max() + 0.1
    y_min, y_max = x[:, 1].min() - 0.1, x[:, 1].max() + 0.1
    xx, yy = np.meshgrid(np.arange(x_min, x_max, h), np.arange(y_min, y_max, h))
    grid = np.c_[xx.ravel(), yy.ravel()].astype(np.float32)
    with stucrs.no_grad(), stucrs.test_mode():
        score = model(grid)
    pred = stucrs.cuda.as_numpy(score.data).argmax(axis=1).reshape(xx.shape)
    from matplotlib.colors import ListedColormap

    colors = ("tab:blue", "tab:orange", "tab:green")
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.contourf(xx, yy, pred, alpha=0.25, levels=[-0.5, 0.5, 1.5, 2.5], cmap=ListedColormap(colors))
    for c, marker in zip(range(3), ("o", "x", "^")):
        ax.scatter(x[t == c, 0], x[t == c, 1], s=30, marker=marker, color=colors[c], label=f"class {c}")
    ax.set_xlim(x_min, x_max)
    ax.set_ylim(y_min, y_max)
    ax.set_title("Spiral: decision boundary")
    ax.legend(loc="upper right", fontsize=8)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def main(argv=None):
    p = common.make_parser(__doc__.splitlines()[0], epochs=300, batch_size=30, lr=1.0)
    p.add_argument("--hidden", type=int, default=10, help="hidden layer size (default 10)")
    p.add_argument("--out", default="spiral.png", help="decision-boundary figure (PNG); '' to skip")
    args = p.parse_args(argv)
    gpu = common.check_device(args.device)

    train_set = Spiral(train=True)  # 本と同じく np.random を固定の seed で初期化する
    test_set = Spiral(train=False)
    common.subset(train_set, args.train_size)
    common.subset(test_set, args.test_size)
    common.seed_everything(args.seed)
    train_loader = DataLoader(train_set, args.batch_size, gpu=gpu)
    test_loader = DataLoader(test_set, args.batch_size, shuffle=False, gpu=gpu)

    model = MLP((args.hidden, 3))  # 活性化関数はシグモイド (本と同じ)
    optimizer = optimizers.SGD(args.lr).setup(model)
    if gpu:
        model.to_gpu()
    history = common.train_classifier(model, optimizer, train_loader, test_loader, args.epochs,
                                      no_progress=True if args.no_progress else args.epochs > 50)
    common.say(f"final train loss {history[-1]['train_loss']:.4f}, test accuracy {history[-1]['test_acc']:.4f}")
    if args.out:
        model.to_cpu()
        plot_decision_boundary(model, train_set.data, train_set.label, args.out)
        common.say(f"decision boundary saved to {os.path.abspath(args.out)}")
    return history


if __name__ == "__main__":
    main()
