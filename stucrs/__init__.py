"""StuCrs: 『ゼロから作る Deep Learning ③』(DeZero) と同じ API の自動微分フレームワーク。

StuCrs: a define-by-run autodiff framework with DeZero's public API, on NumPy (CPU) and CuPy (GPU).

使い方 / usage::

    import numpy as np
    from stucrs import Variable
    import stucrs.functions as F

    x = Variable(np.array(1.0))
    y = F.tanh(x)
    y.backward(create_graph=True)
"""
from stucrs.core import (  # noqa: F401
    Config,
    Function,
    Parameter,
    Variable,
    as_array,
    as_variable,
    no_grad,
    test_mode,
    using_config,
)
from stucrs import core as _core
from stucrs import cuda  # noqa: F401
from stucrs import functions  # noqa: F401
from stucrs import utils  # noqa: F401

_core._install_functions(functions)

# ニューラルネットワーク (レイヤ・モデル・オプティマイザ) / neural-network part
from stucrs import functions_conv  # noqa: E402,F401
from stucrs import layers  # noqa: E402,F401
from stucrs import models  # noqa: E402,F401
from stucrs import optimizers  # noqa: E402,F401
from stucrs.layers import Layer  # noqa: E402,F401
from stucrs.models import Model  # noqa: E402,F401

# データ (データセット・前処理・データローダ) / data part
from stucrs import datasets  # noqa: E402,F401
from stucrs import dataloaders  # noqa: E402,F401
from stucrs import transforms  # noqa: E402,F401
from stucrs.datasets import Dataset  # noqa: E402,F401
from stucrs.dataloaders import DataLoader, SeqDataLoader  # noqa: E402,F401

# 速い実装 (stucrs/fast) のクラスを登録する。STUCRS_FAST=0 / Config.fast = False なら使われない
from stucrs import fast  # noqa: E402
fast.install()

__version__ = "0.1.0"

# DeZero の印: 第 2 ステージの小さなコア (stucrs.core_simple) ではなく、完全なコアを使っている。
# 本のステップ 23〜32 のスクリプトは、これが False なら ``core_simple`` を自分で import する。
is_simple_core = False


def setup_variable():
    """DeZero 互換のための関数 (StuCrs では import 時に演算子が設定済みなので何もしない)。"""
