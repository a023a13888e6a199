"""使うときまで計算しない勾配の Variable (第 16 章)。

* :class:`DeferredGrad`: 全結合の重みの勾配 ``x.T @ gy``。SGD (:mod:`stucrs.fast.optimizers`) は
  この勾配を読まずに ``W -= lr * (x.T @ gy)`` を BLAS の gemm 1 回で計算します。勾配の配列を書いて
  読み直す分のメモリの往復がなくなります。
* :class:`LazyGrad`: その土台。:class:`stucrs.fast.conv.PooledGrad` (最大値プーリングの入力の勾配) も
  これを使います。
"""
from stucrs.core import Variable

# Variable の data の入れ物 (__slots__ の記述子)。LazyGrad は data を property にするので、
# 中身はこれで直接読み書きする
_data_slot = Variable.__dict__["data"]


class LazyGrad(Variable):
    """``data`` が初めて読まれたときに計算される勾配 (計算は子クラスの :meth:`compute`)。

    読む側から見ればふつうの勾配です。計算したら、そのための材料は手放します (:meth:`release`)。
    """

    __slots__ = ()

    @property
    def data(self):
        """勾配の配列 (最初に読まれたときに計算する)。"""
        value = _data_slot.__get__(self, Variable)
        if value is None and self.pending():
            value = self.compute()
            _data_slot.__set__(self, value)
            self.release()
        return value

    @data.setter
    def data(self, value):
        _data_slot.__set__(self, value)
        self.release()  # 差し替えられた配列が勾配になる

    def __reduce_ex__(self, protocol):
        # pickle や copy.deepcopy では、計算したふつうの勾配として写す (計算の材料は持ち込まない)
        return Variable, (self.data, self.name)

    def pending(self):
        """まだ計算していなければ True。"""
        raise NotImplementedError

    def compute(self):
        """勾配の配列を計算して返す。"""
        raise NotImplementedError

    def release(self):
        """計算の材料を手放す (このあとは ``pending()`` が False)。"""
        raise NotImplementedError


class DeferredGrad(LazyGrad):
    """``a.T @ b`` の形の勾配。``data`` が初めて読まれたときに計算する。

    読む側から見ればふつうの勾配です (``W.grad.data`` はいつ読んでも ``x.T @ gy``)。``a`` は
    作る側がコピーを渡すので、あとで入力の配列が書き換えられても勾配は変わりません。``b`` (``gy``) は
    コピーしません: StuCrs の関数は勾配の配列をその場で書き換えず、StuCrs のオプティマイザはフックの前に
    この勾配を計算します。自分で与えた出力の勾配の配列 (``y.grad = Variable(buf)``) を逆伝播のあとで
    書き換えるコードや、自作のオプティマイザでフックが勾配をその場で書き換えるときは、その前に
    ``W.grad.data`` を読むか、``STUCRS_FAST=0`` にしてください。
    """

    __slots__ = ("_a", "_b")

    def __init__(self, a, b):
        super().__init__(None)
        self._a, self._b = a, b

    def pending(self):
        return self._a is not None

    def compute(self):
        return self._a.T @ self._b

    def release(self):
        self._a = self._b = None

    def factors(self):
        """まだ計算していなければ ``(a, b)`` (勾配は ``a.T @ b``)、計算済みなら None。"""
        if self._a is None:
            return None
        return self._a, self._b


def compute_deferred(params):
    """後回しにした勾配 (:class:`LazyGrad`) をすべて計算しておく (オプティマイザのフックが勾配を読み書きする前に)。

    後回しの勾配は、ほかの勾配と配列を共有していることがあります (足し算の逆伝播は同じ勾配を 2 つの入力に
    渡す)。フックがその配列をその場で書き換える前に計算しておけば、書き換えが混ざりません。
    """
    for p in params:
        if isinstance(p.grad, LazyGrad):
            p.grad.data  # noqa: B018 - 読むと計算される
