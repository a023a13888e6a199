"""MNIST を多層パーセプトロンで学習する (本のステップ 51)。/ MNIST with an MLP.

ネットワーク: 784 → 1000 (ReLU) [→ 1000 (ReLU)] → 10、SGD (lr 0.01)、バッチ 100、5 エポック。

    python examples/mnist_mlp.py --layers 2
    python examples/mnist_mlp.py --layers 1 --epochs 1 --train-size 1000
"""
import common  # noqa: F401  (stucrs を import できるようにする)

import stucrs.functions as F
from stucrs import optimizers
from stucrs.dataloaders import DataLoader
from stucrs.models import MLP


def main(argv=None):
    p = common.make_parser(__doc__.splitlines()[0], epochs=5, batch_size=100, lr=0.01, mnist=True)
    p.add_argument("--layers", type=int, choices=(1, 2), default=2, help="number of hidden layers (1 or 2)")
    p.add_argument("--hidden", type=int, default=1000, help="hidden layer size (default 1000)")
    args = p.parse_args(argv)
    gpu = common.check_device(args.device)
    common.seed_everything(args.seed)

    train_set, test_set = common.load_mnist(args, transform=_flat_float())
    train_loader = DataLoader(train_set, args.batch_size, gpu=gpu)
    test_loader = DataLoader(test_set, 1000, shuffle=False, gpu=gpu)

    model = MLP((args.hidden,) * args.layers + (10,), activation=F.relu)
    optimizer = optimizers.SGD(args.lr).setup(model)
    if gpu:
        model.to_gpu()
    common.say(f"MNIST MLP: {args.layers} hidden layer(s) of {args.hidden}, train {len(train_set)}, "
               f"test {len(test_set)}, batch {args.batch_size}, SGD lr {args.lr}, device {args.device}")
    return common.train_classifier(model, optimizer, train_loader, test_loader, args.epochs, args.no_progress)


def _flat_float():
    from stucrs.transforms import Compose, Flatten, Normalize, ToFloat

    return Compose([Flatten(), ToFloat(), Normalize(0.0, 255.0)])  # (784,) float32 in [0, 1]


if __name__ == "__main__":
    main()
