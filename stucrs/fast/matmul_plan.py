"""全結合の入力の勾配 ``gy @ W.T`` を、BLAS の 2 つの呼び方のうち速い方で計算する (第 16 章)。

同じ積は ``(W @ gy.T).T`` とも書けます。どちらが速いかは行列の形と BLAS とその CPU 向けの
カーネルで違うので、大きな NumPy の float の積では、形ごとに最初の何回かを交互に測り、その後は
速かった方を使います (cuDNN の benchmark モードと同じ考え)。最初の 1 回で 2 つの結果がビット単位で
同じかを確かめ、違えばいつも ``gy @ W.T`` を使うので、選び方で学習の結果は変わりません。
"""

import time

import numpy as np

__all__ = ["MIN_WORK", "ROUNDS", "matmul_nt", "plans"]

# これより小さな積 (掛け算の回数) は測らずに NumPy の式で (差が小さく、測る手間の方が大きい)
MIN_WORK = 1 << 24
ROUNDS = 32  # それぞれの計算を測る回数 (中央値で比べる。8 回では遅い時間帯の機械で選び間違えた)
_MARGIN = 0.97  # 転置の方がこの割合より速いときだけ選ぶ (同じくらいなら素直な式)
_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class _Plan:
    """1 つの形の積の計算のしかた: 測っている間は ``choice`` が None。"""

    __slots__ = ("choice", "direct_s", "transposed_s")

    def __init__(self, choice):
        self.choice = choice
        self.direct_s, self.transposed_s = [], []

    def measured(self, transposed, seconds):
        times = self.transposed_s if transposed else self.direct_s
        times.append(seconds)
        if len(self.transposed_s) >= ROUNDS and len(self.direct_s) >= ROUNDS:
            mid = ROUNDS // 2
            self.choice = (sorted(self.transposed_s)[mid] < _MARGIN * sorted(self.direct_s)[mid])


_plans = {}  # (N, K, M, dtype の文字) -> _Plan


def _transposed(a, b):
    """``a @ b.T`` を ``(b @ a.T).T`` として計算し、C の並びの新しい配列にする。"""
    return np.ascontiguousarray((b @ a.T).T)


def matmul_nt(a, b):
    """``a @ b.T`` を計算する (全結合の逆伝播の ``gy @ W.T``)。値は ``a @ b.T`` とビット単位で同じ。

    Args:
        a: 形 (N, K) の配列 (出力の勾配 ``gy``)。
        b: 形 (M, K) の配列 (重み ``W``)。

    C の並びの float32 / float64 の NumPy 配列で積が大きいときだけ、形ごとに速い方の計算を選ぶ
    (最初の ``1 + 2 * ROUNDS`` 回で測る)。それ以外 (CuPy、小さな積、dtype の違い) は ``a @ b.T`` そのもの。
    """
    if (type(a) is not np.ndarray or type(b) is not np.ndarray or a.ndim != 2 or b.ndim != 2
            or a.dtype != b.dtype or a.dtype not in _DTYPES or a.shape[1] != b.shape[1]
            or a.shape[0] * a.shape[1] * b.shape[0] < MIN_WORK
            or not a.flags.c_contiguous or not b.flags.c_contiguous):
        return a @ b.T
    key = (a.shape[0], a.shape[1], b.shape[0], a.dtype.char)
    plan = _plans.get(key)
    if plan is None:  # 初めての形: 2 つの結果が同じ値になるかを確かめる
        direct = a @ b.T
        same = np.array_equal(direct, _transposed(a, b), equal_nan=True)
        _plans[key] = _Plan(None if same else False)
        return direct
    if plan.choice is not None:
        return _transposed(a, b) if plan.choice else a @ b.T
    transposed = len(plan.transposed_s) < len(plan.direct_s)  # 交互に
    t0 = time.perf_counter()
    result = _transposed(a, b) if transposed else a @ b.T
    plan.measured(transposed, time.perf_counter() - t0)
    return result


def plans():
    """これまでに選んだ計算の一覧 ``{"N×K @ (M×K).T float32": "transposed" / "direct" / "measuring"}``
    (記録用。``measuring`` はまだ測っている途中の形: たとえば 1 エポックに 1 回だけの最後の小さなバッチ)。"""
    names = {True: "transposed", False: "direct", None: "measuring"}
    return {"%d×%d @ (%d×%d).T %s" % (n, k, m, k, np.dtype(c).name): names[plan.choice]
            for (n, k, m, c), plan in _plans.items()}

