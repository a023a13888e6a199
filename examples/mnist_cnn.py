"""MNIST を小さな CNN で学習する。/ MNIST with a small convolutional network.

ネットワーク: Conv 32 (3×3, バイアスなし) → ReLU → max-pool 2 → dropout 0.2 → flatten
→ Dense 128 (ReLU) → Linear 10。SGD (lr 0.1)、バッチ 128、10 エポック。

    python examples/mnist_cnn.py
    python examples/mnist_cnn.py --epochs 1 --train-size 1000
"""
import common  # noqa: F401  (stucrs を import できるようにする)

import stucrs.functions as F
import stucrs.layers as L
from stucrs import Model, optimizers
from stucrs.dataloaders import DataLoader
from stucrs.transforms import Compose, Normalize, ToFloat


class CNN(Model):
    def __init__(self):
        super().__init__()
        self.conv1 = L.Conv2d(32, kernel_size=3, nobias=True)
        self.fc1 = L.Linear(128)
        self.fc2 = L.Linear(10)

    def forward(self, x):
        h = F.relu(self.conv1(x))           # (N, 32, 26, 26)
        h = F.pooling(h, 2, 2)              # (N, 32, 13, 13)
        h = F.dropout(h, 0.2)
        h = F.flatten(h)                    # (N, 5408)
        h = F.relu(self.fc1(h))
        return self.fc2(h)


def main(argv=None):
    p = common.make_parser(__doc__.splitlines()[0], epochs=10, batch_size=128, lr=0.1, mnist=True)
    args = p.parse_args(argv)
    gpu = common.check_device(args.device)
    common.seed_everything(args.seed)

    # 画像は (1, 28, 28) のまま、[0, 1] の float32 にする
    transform = Compose([ToFloat(), Normalize(0.0, 255.0)])
    train_set, test_set = common.load_mnist(args, transform=transform)
    train_loader = DataLoader(train_set, args.batch_size, gpu=gpu)
    test_loader = DataLoader(test_set, 1000, shuffle=False, gpu=gpu)

    model = CNN()
    optimizer = optimizers.SGD(args.lr).setup(model)
    if gpu:
        model.to_gpu()
    common.say(f"MNIST CNN: train {len(train_set)}, test {len(test_set)}, batch {args.batch_size}, "
               f"SGD lr {args.lr}, device {args.device}")
    return common.train_classifier(model, optimizer, train_loader, test_loader, args.epochs, args.no_progress)


if __name__ == "__main__":
    main()
