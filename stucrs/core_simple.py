"""本の第 2 ステージ (ステップ 11〜32) の小さなコア。

The simple core of the book's second stage: ``Variable`` and ``Function`` whose gradients are plain
arrays, with the operators (``+ - * / **``). The book's scripts for steps 23-32 use it through
``from dezero.core_simple import Variable, setup_variable`` (with StuCrs:
``python -m stucrs.as_dezero step28.py``, or ``from stucrs.core_simple import ...``).

ここまでで作ったものの全部です。``stucrs.core`` (第 3 ステージ以降) との違いは 1 つだけで、
勾配 ``grad`` が Variable ではなく ndarray です。そのため逆伝播の計算はグラフにならず、
高階微分はできません。その代わり ``x.data -= lr * x.grad`` のように、勾配をそのまま配列の
計算に使えます (ステップ 28 の勾配降下法)。

このファイルは単独で動きます (NumPy だけを import します)。``stucrs.core`` と混ぜて使わないでください。
"""
import contextlib
import weakref

import numpy as np


# =============================================================================
# Config: 逆伝播を有効にするかどうか (ステップ 18)
# =============================================================================
class Config:
    """設定。``enable_backprop`` が False なら計算グラフを作らない。"""

    enable_backprop = True


@contextlib.contextmanager
def using_config(name, value):
    """``with`` ブロックの間だけ ``Config`` の設定 ``name`` を ``value`` にする。"""
    old_value = getattr(Config, name)
    setattr(Config, name, value)
    try:
        yield
    finally:
        setattr(Config, name, old_value)


def no_grad():
    """計算グラフを作らないモード (推論だけのとき)。"""
    return using_config("enable_backprop", False)


# =============================================================================
# Variable (ステップ 1, 7〜9, 16〜19)
# =============================================================================
class Variable:
    """変数: データ (ndarray) と、その勾配 (ndarray) を持つ箱。"""

    __array_priority__ = 200  # ndarray が左にあっても Variable の演算子を使わせる

    def __init__(self, data, name=None):
        if data is not None and not isinstance(data, np.ndarray):
            raise TypeError(f"{type(data).__name__} is not supported: Variable needs a numpy.ndarray "
                            f"(wrap the value with np.array(...))")
        self.data = data
        self.name = name
        self.grad = None
        self.creator = None
        self.generation = 0

    @property
    def shape(self):
        return self.data.shape

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def size(self):
        return self.data.size

    @property
    def dtype(self):
        return self.data.dtype

    def __len__(self):
        return len(self.data)

    def __repr__(self):
        if self.data is None:
            return "variable(None)"
        p = str(self.data).replace("\n", "\n" + " " * 9)
        return "variable(" + p + ")"

    def set_creator(self, func):
        """この変数を作った関数を覚える。世代は関数の世代 + 1。"""
        self.creator = func
        self.generation = func.generation + 1

    def cleargrad(self):
        self.grad = None

    def backward(self, retain_grad=False):
        """逆伝播。世代の大きい関数から順に ``backward`` を呼ぶ (ステップ 16)。"""
        if self.grad is None:
            self.grad = np.ones_like(self.data)

        funcs = []
        seen_set = set()

        def add_func(f):
            if f not in seen_set:
                funcs.append(f)
                seen_set.add(f)
                funcs.sort(key=lambda x: x.generation)

        add_func(self.creator)

        while funcs:
            f = funcs.pop()  # 世代が一番大きい関数
            gys = [output().grad for output in f.outputs]
            gxs = f.backward(*gys)
            if not isinstance(gxs, tuple):
                gxs = (gxs,)

            for x, gx in zip(f.inputs, gxs):
                if x.grad is None:
                    x.grad = gx
                else:
                    x.grad = x.grad + gx  # 同じ変数を 2 回使ったら勾配を足す (ステップ 14)

                if x.creator is not None:
                    add_func(x.creator)

            if not retain_grad:
                for y in f.outputs:
                    y().grad = None  # 途中の変数の勾配は捨てる (ステップ 18)


def as_variable(obj):
    """Variable でなければ Variable に包む。"""
    if isinstance(obj, Variable):
        return obj
    return Variable(obj)


def as_array(x):
    """スカラーを 0 次元の ndarray にする (ステップ 9)。"""
    if np.isscalar(x):
        return np.array(x)
    return x


# =============================================================================
# Function (ステップ 2, 11〜13)
# =============================================================================
class Function:
    """関数の基底クラス。``forward`` も ``backward`` も ndarray を受け取り ndarray を返す。"""

    def __call__(self, *inputs):
        inputs = [as_variable(x) for x in inputs]

        xs = [x.data for x in inputs]
        ys = self.forward(*xs)
        if not isinstance(ys, tuple):
            ys = (ys,)
        outputs = [Variable(as_array(y)) for y in ys]

        if Config.enable_backprop:
            self.generation = max([x.generation for x in inputs])
            for output in outputs:
                output.set_creator(self)
            self.inputs = inputs
            # 出力は弱参照で持つ (関数と出力が互いを参照し合う循環を作らない: ステップ 17)
            self.outputs = [weakref.ref(output) for output in outputs]

        return outputs if len(outputs) > 1 else outputs[0]

    def forward(self, *xs):
        raise NotImplementedError()

    def backward(self, *gys):
        raise NotImplementedError()


# =============================================================================
# 四則演算と累乗 (ステップ 20〜22)
# =============================================================================
class Add(Function):
    def forward(self, x0, x1):
        return x0 + x1

    def backward(self, gy):
        return gy, gy


def add(x0, x1):
    x1 = as_array(x1)
    return Add()(x0, x1)


class Mul(Function):
    def forward(self, x0, x1):
        return x0 * x1

    def backward(self, gy):
        x0, x1 = self.inputs[0].data, self.inputs[1].data
        return gy * x1, gy * x0


def mul(x0, x1):
    x1 = as_array(x1)
    return Mul()(x0, x1)


class Neg(Function):
    def forward(self, x):
        return -x

    def backward(self, gy):
        return -gy


def neg(x):
    return Neg()(x)


class Sub(Function):
    def forward(self, x0, x1):
        return x0 - x1

    def backward(self, gy):
        return gy, -gy


def sub(x0, x1):
    x1 = as_array(x1)
    return Sub()(x0, x1)


def rsub(x0, x1):
    x1 = as_array(x1)
    return Sub()(x1, x0)  # x1 - x0 (左辺がスカラーや配列のとき)


class Div(Function):
    def forward(self, x0, x1):
        return x0 / x1

    def backward(self, gy):
        x0, x1 = self.inputs[0].data, self.inputs[1].data
        gx0 = gy / x1
        gx1 = gy * (-x0 / x1 ** 2)
        return gx0, gx1


def div(x0, x1):
    x1 = as_array(x1)
    return Div()(x0, x1)


def rdiv(x0, x1):
    x1 = as_array(x1)
    return Div()(x1, x0)  # x1 / x0


class Pow(Function):
    def __init__(self, c):
        self.c = c  # 指数は定数

    def forward(self, x):
        return x ** self.c

    def backward(self, gy):
        x = self.inputs[0].data
        c = self.c
        return c * x ** (c - 1) * gy


def pow(x, c):
    return Pow(c)(x)


def setup_variable():
    """Variable に演算子 (``+ - * / **`` と単項の ``-``) を登録する (ステップ 20〜22)。"""
    Variable.__add__ = add
    Variable.__radd__ = add
    Variable.__mul__ = mul
    Variable.__rmul__ = mul
    Variable.__neg__ = neg
    Variable.__sub__ = sub
    Variable.__rsub__ = rsub
    Variable.__truediv__ = div
    Variable.__rtruediv__ = rdiv
    Variable.__pow__ = pow


setup_variable()
