"""サンプル共通の小道具: 引数、デバイスの確認、MNIST の場所、進捗バー、評価。

Shared helpers for the example scripts (argument parsing, device check, MNIST folder, progress bar,
evaluation). Each example stays a short, readable training loop; everything incidental lives here.
"""
import argparse
import os
import sys
import time

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
_REPO = os.path.dirname(_HERE)
try:
    import stucrs
except ImportError:  # リポジトリから直接実行したとき / running from a checkout without installing
    sys.path.insert(0, _REPO)
    import stucrs

import stucrs.functions as F  # noqa: E402
from stucrs import cuda  # noqa: E402

try:
    from tqdm import tqdm as _tqdm
except ImportError:  # tqdm が無くても動く / work without tqdm
    _tqdm = None


def default_mnist_dir():
    """MNIST のフォルダ: 環境変数 STUCRS_MNIST_DIR、なければ ../shared/mnist (あれば)、なければ None。"""
    env = os.environ.get("STUCRS_MNIST_DIR")
    if env:
        return env
    for cand in (os.path.join(os.getcwd(), "..", "shared", "mnist"), os.path.join(_REPO, "..", "shared", "mnist")):
        if os.path.isdir(cand):
            return os.path.normpath(cand)
    return None


def make_parser(description, epochs, batch_size, lr, mnist=False):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu", help="cpu (NumPy) or gpu (CuPy)")
    p.add_argument("--epochs", type=int, default=epochs, help=f"number of epochs (default {epochs})")
    p.add_argument("--batch-size", type=int, default=batch_size, help=f"mini-batch size (default {batch_size})")
    p.add_argument("--lr", type=float, default=lr, help=f"learning rate (default {lr})")
    p.add_argument("--train-size", type=int, default=None, help="use only the first N training samples")
    p.add_argument("--test-size", type=int, default=None, help="use only the first N test samples")
    p.add_argument("--seed", type=int, default=0, help="seed of numpy's global random generator")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    if mnist:
        p.add_argument("--mnist-dir", default=default_mnist_dir(),
                       help="folder with the four MNIST .gz files (default: $STUCRS_MNIST_DIR or "
                            "../shared/mnist if present; otherwise they are downloaded)")
    return p


def check_device(device):
    """``--device gpu`` なのに GPU が無ければ、分かりやすいメッセージで終了する。"""
    if device == "gpu" and not cuda.gpu_enable:
        reason = f" ({cuda._cupy_error})" if getattr(cuda, "_cupy_error", None) else ""
        sys.exit(f"error: --device gpu was requested but CuPy / a CUDA GPU is not available{reason}. "
                 f"Run with --device cpu.")
    return device == "gpu"


def load_mnist(args, transform):
    """MNIST の学習用とテスト用のデータセット (--train-size / --test-size で先頭だけに絞る)。"""
    from stucrs.datasets import MNIST

    kw = {"transform": transform}
    if args.mnist_dir:
        kw["local_dir"] = args.mnist_dir
    train_set, test_set = MNIST(train=True, **kw), MNIST(train=False, **kw)
    subset(train_set, args.train_size)
    subset(test_set, args.test_size)
    return train_set, test_set


def subset(dataset, n):
    if n is not None:
        dataset.data = dataset.data[:n]
        dataset.label = dataset.label[:n]
    return dataset


def progress(iterable, total, desc, disable):
    if _tqdm is None or disable:
        return iterable
    return _tqdm(iterable, total=total, desc=desc, leave=False, dynamic_ncols=True)


def say(msg):
    if _tqdm is not None:
        _tqdm.write(msg)
    else:
        print(msg, flush=True)


def evaluate(model, loader):
    """テスト用データの平均損失と正解率 (推論モード、計算グラフなし)。"""
    total_loss = total_acc = 0.0
    n = 0
    with stucrs.test_mode(), stucrs.no_grad():
        for x, t in loader:
            y = model(x)
            total_loss += float(F.softmax_cross_entropy(y, t).data) * len(t)
            total_acc += float(F.accuracy(y, t).data) * len(t)
            n += len(t)
    return total_loss / n, total_acc / n


def train_classifier(model, optimizer, train_loader, test_loader, epochs, no_progress=False):
    """分類モデルの学習ループ。エポックごとに損失・正解率・時間を表示し、履歴を返す。"""
    history = []
    for epoch in range(epochs):
        start = time.perf_counter()
        sum_loss = sum_acc = 0.0
        n = 0
        bar = progress(train_loader, len(train_loader), f"epoch {epoch + 1}/{epochs}", no_progress)
        for x, t in bar:
            y = model(x)
            loss = F.softmax_cross_entropy(y, t)
            model.cleargrads()
            loss.backward()
            optimizer.update()
            sum_loss += float(loss.data) * len(t)
            sum_acc += float(F.accuracy(y, t).data) * len(t)
            n += len(t)
        train_time = time.perf_counter() - start
        test_loss, test_acc = evaluate(model, test_loader)
        elapsed = time.perf_counter() - start
        rec = {"epoch": epoch + 1, "train_loss": sum_loss / n, "train_acc": sum_acc / n,
               "test_loss": test_loss, "test_acc": test_acc, "train_time_s": train_time, "epoch_time_s": elapsed}
        history.append(rec)
        say(f"epoch {epoch + 1:3d}/{epochs}  train loss {rec['train_loss']:.4f} acc {rec['train_acc']:.4f}  "
            f"test loss {test_loss:.4f} acc {test_acc:.4f}  time {elapsed:.1f}s (train {train_time:.1f}s)")
    return history


def seed_everything(seed):
    np.random.seed(seed)
    if cuda.gpu_enable:
        cuda.cp.random.seed(seed)
