"""sin 波の次の値を LSTM で予測する (本のステップ 59–60)。/ Predict a sine wave with an LSTM.

本と同じ設定: SinCurve (ノイズ入りの sin)、隠れ層 100 の LSTM + Linear、Adam、
SeqDataLoader (バッチ 30)、Truncated BPTT 長 30、100 エポック。テストはノイズのない cos 波で、
1 ステップ先の予測の平均二乗誤差を表示します。``--out`` を与えると予測の図を保存します。

    python examples/sin_lstm.py --epochs 100 --out sin_lstm.png
"""
import os
import time

import common  # noqa: F401  (stucrs を import できるようにする)
import numpy as np

import stucrs
import stucrs.functions as F
import stucrs.layers as L
from stucrs import Model, optimizers
from stucrs.dataloaders import SeqDataLoader
from stucrs.datasets import SinCurve
from stucrs.transforms import ToFloat


class BetterRNN(Model):
    def __init__(self, hidden_size, out_size):
        super().__init__()
        self.rnn = L.LSTM(hidden_size)
        self.fc = L.Linear(out_size)

    def reset_state(self):
        self.rnn.reset_state()

    def forward(self, x):
        return self.fc(self.rnn(x))


def predict_series(model, xs):
    """系列 xs (T, 1) を 1 ステップずつ入れて、各時刻の予測 (次の値) を返す。"""
    model.reset_state()
    preds = []
    with stucrs.no_grad(), stucrs.test_mode():
        for x in xs:
            y = model(x.reshape(1, 1))
            preds.append(float(y.data[0, 0]))
    return np.array(preds)


def main(argv=None):
    p = common.make_parser(__doc__.splitlines()[0], epochs=100, batch_size=30, lr=0.001)
    p.add_argument("--hidden", type=int, default=100, help="LSTM hidden size (default 100)")
    p.add_argument("--bptt", type=int, default=30, help="truncated BPTT length (default 30)")
    p.add_argument("--out", default="", help="prediction figure (PNG); empty to skip")
    args = p.parse_args(argv)
    gpu = common.check_device(args.device)
    common.seed_everything(args.seed)

    train_set = SinCurve(train=True, transform=ToFloat(), target_transform=ToFloat())
    test_set = SinCurve(train=False)
    common.subset(train_set, args.train_size)
    common.subset(test_set, args.test_size)
    loader = SeqDataLoader(train_set, args.batch_size, gpu=gpu)
    seqlen = len(train_set)

    model = BetterRNN(args.hidden, 1)
    optimizer = optimizers.Adam(alpha=args.lr).setup(model)
    if gpu:
        model.to_gpu()
    common.say(f"SinCurve LSTM: hidden {args.hidden}, batch {args.batch_size}, BPTT {args.bptt}, "
               f"Adam alpha {args.lr}, device {args.device}")
    xs_test = test_set.data.astype(np.float32)
    for epoch in range(args.epochs):
        start = time.perf_counter()
        model.reset_state()
        loss, count, sum_loss = 0, 0, 0.0
        for x, t in common.progress(loader, len(loader), f"epoch {epoch + 1}/{args.epochs}", args.no_progress):
            y = model(x)
            loss += F.mean_squared_error(y, t)
            count += 1
            if count % args.bptt == 0 or count == seqlen:
                model.cleargrads()
                loss.backward()
                loss.unchain_backward()
                optimizer.update()
                sum_loss += float(loss.data)
                loss = 0
        if not isinstance(loss, int):
            sum_loss += float(loss.data)
        avg_loss = sum_loss / count
        model.to_cpu()
        pred = predict_series(model, xs_test)
        if gpu:
            model.to_gpu()
        test_mse = float(np.mean((pred[:-1] - test_set.label[:-1, 0]) ** 2))
        common.say(f"epoch {epoch + 1:3d}/{args.epochs}  train loss {avg_loss:.6f}  test mse {test_mse:.6f}  "
                   f"time {time.perf_counter() - start:.1f}s")
    if args.out:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        model.to_cpu()
        pred = predict_series(model, xs_test)
        fig, ax = plt.subplots(figsize=(6, 3))
        ax.plot(np.arange(len(xs_test)), xs_test[:, 0], label="y = cos(x)")
        ax.plot(np.arange(1, len(pred) + 1), pred, label="predict")
        ax.legend()
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        fig.savefig(args.out, dpi=100, bbox_inches="tight")
        plt.close(fig)
        common.say(f"prediction figure saved to {os.path.abspath(args.out)}")
    return avg_loss, test_mse


if __name__ == "__main__":
    main()
