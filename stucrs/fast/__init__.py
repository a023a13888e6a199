"""StuCrs を速くする仕掛けを 1 か所に集めたパッケージ。/ Every speed trick of StuCrs, in one place.

``core.py``・``functions.py``・``layers.py``・``optimizers.py`` は本 (DeZero) と同じ書き方のままです。
速い実装は、ここで本のクラスの **子クラス** として書き、:func:`register` で登録します。
``Function`` や ``Optimizer`` を作るとき、``Config.fast`` が True なら登録された子クラスが
使われます (差し替え口は ``core.Function.__new__`` と ``optimizers.Optimizer.__new__`` の 1 行ずつ)。

* スイッチは 1 つ: 環境変数 ``STUCRS_FAST=0`` か ``stucrs.Config.fast = False``
  (``with stucrs.using_config("fast", False):`` でも可) で、本のとおりの計算だけになります。
  切り替えは、関数やオプティマイザを **作るとき** に読まれます。
* 速い実装の中身 (どれも本のクラスと同じ値を返します。丸めの順序で最後の数ビットが違うことはあります):

  - :mod:`stucrs.fast.functions`: 高階微分をしない逆伝播を配列のまま計算する (第 16 章)。
  - :mod:`stucrs.fast.deferred`: 全結合の重みの勾配 ``x.T @ gy`` を SGD まで後回しにする。
  - :mod:`stucrs.fast.optimizers`: SGD の更新を BLAS の axpy / gemm 1 回で。
  - :mod:`stucrs.fast.blas`, :mod:`stucrs.fast.matmul_plan`, :mod:`stucrs.fast.elementwise`: その道具。
  - :mod:`stucrs.fast.conv`: 畳み込みとプーリングの速い実装 (プーリングの入力の勾配は、読まれるまで
    作らない。すぐ前の ReLU の逆伝播は小さな勾配にマスクを掛けるだけ)。
  - :mod:`stucrs.fast.malloc`: glibc の malloc の調整 (``import stucrs`` では何もしない。
    使うときは :func:`tune_malloc` を自分で呼ぶ)。

``import stucrs`` は、ここでクラスを登録するだけです。C の関数を探したり、プロセス全体の設定を
変えたりはしません (BLAS の関数は最初の大きな更新のときに探します)。

The seam: fast implementations are subclasses of the book's classes, registered here and picked
when a Function or Optimizer is constructed while ``Config.fast`` is True.
"""
import contextlib

from stucrs.core import fast_variants

__all__ = ["register", "replaced", "tune_malloc"]


def register(base):
    """``base`` (本のクラス) の速い実装として、デコレートした子クラスを登録する。

    子クラスの名前は本のクラスと同じにする (計算グラフの図やプロファイルの表示を変えないため)。
    """
    def decorate(cls):
        if not issubclass(cls, base):
            raise TypeError(f"{cls.__name__} must subclass {base.__name__} to replace it")
        cls.__name__ = cls.__qualname__ = base.__name__
        fast_variants[base] = cls
        return cls
    return decorate


@contextlib.contextmanager
def replaced(substitutes):
    """``with`` の間だけ、クラスの実装を差し替える (実験用: ``{本のクラス: その子クラス}``)。

    ベンチマークの ``gap`` コマンドが「この部分の計算がただだったら」を測るのに使います。
    """
    saved = {base: fast_variants.get(base) for base in substitutes}
    for base, cls in substitutes.items():
        if not issubclass(cls, base):
            raise TypeError(f"{cls.__name__} must subclass {base.__name__} to replace it")
        fast_variants[base] = cls
    try:
        yield
    finally:
        for base, cls in saved.items():
            if cls is None:
                fast_variants.pop(base, None)
            else:
                fast_variants[base] = cls


def tune_malloc():
    """glibc の malloc を、大きな配列を使い回す設定にする (:func:`stucrs.fast.malloc.tune_malloc`)。"""
    from stucrs.fast import malloc
    return malloc.tune_malloc()


def install():
    """速い実装のクラスを登録する (``import stucrs`` の最後に 1 回呼ばれる)。"""
    from stucrs.fast import conv, functions, optimizers  # noqa: F401 - importing registers them
