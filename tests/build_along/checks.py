"""作って確かめる (docs/ja/build-along/) の答え合わせ: ページが作ったクラスを StuCrs と比べる。

Run inside the namespace of a build-along page, after all its blocks (``docblocks.run_page(...,
epilogue=...)``): ``check_stageN(ns)`` takes the page's globals and compares the learner's classes
with StuCrs (``stucrs.core_simple`` for stage 2's first-order core) on inputs the page never used.
Each check raises AssertionError naming what differs.
"""
import numpy as np

import stucrs
import stucrs.core_simple as simple
import stucrs.functions as F
import stucrs.functions_conv as FC
import stucrs.layers as L
import stucrs.models  # noqa: F401 - stucrs.models.MLP
import stucrs.optimizers  # noqa: F401


def _data(v):
    if hasattr(v, "creator"):  # a Variable of any of the cores (learner's, core_simple, stucrs)
        v = v.data
    return np.asarray(v)


def _close(what, a, b, rtol=1e-6, atol=1e-6):
    a, b = _data(a), _data(b)
    assert a.shape == b.shape, f"{what}: shape {a.shape} (learner) vs {b.shape} (StuCrs)"
    assert np.allclose(a, b, rtol=rtol, atol=atol), \
        f"{what}: learner's values differ from StuCrs's (max diff {np.abs(a - b).max():.3g})"


def check_stage1(ns):
    Variable, square, exp = ns["Variable"], ns["square"], ns["exp"]
    rng = np.random.default_rng(11)
    for _ in range(5):
        value = np.array(rng.uniform(-1, 1))
        x = Variable(value.copy())
        y = square(exp(square(x)))
        y.backward()
        xs = stucrs.Variable(value.copy())
        ys = F.square(F.exp(F.square(xs)))
        ys.backward()
        _close("square(exp(square(x)))", y.data, ys.data)
        _close("its gradient", x.grad, xs.grad.data)
        num = ns["numerical_diff"](lambda v: square(exp(square(v))), Variable(value.copy()))
        _close("numerical_diff", num, xs.grad.data, rtol=1e-5, atol=1e-6)
    # step 8: the loop, not recursion, walks a graph deeper than Python's recursion limit
    x = Variable(np.array(1.0))
    y = x
    for _ in range(1000):  # deeper than a recursive backward can go (Python's limit is 1000 frames)
        y = square(y)  # stays 1; each square doubles the gradient
    y.backward()
    assert float(x.grad) == 2.0 ** 1000, f"1000 squares of 1: gradient {x.grad}, expected 2**1000"
    try:
        Variable(1.0)
    except TypeError:
        pass
    else:
        raise AssertionError("Variable(1.0) must raise TypeError (step 9)")


def _expressions():
    return [
        lambda x, y: x * y + x / y - y ** 3,
        lambda x, y: (x + 1.5) * (2.0 - y) / (x * x + 1.0),
        lambda x, y: -x + 3 * y - 1 / (y * y + 0.5),
        goldstein,
        lambda x, y: (x * x) * (x * x) + y * x * y,
    ]


def goldstein(x, y):
    return (1 + (x + y + 1) ** 2 * (19 - 14 * x + 3 * x ** 2 - 14 * y + 6 * x * y + 3 * y ** 2)) * \
        (30 + (2 * x - 3 * y) ** 2 * (18 - 32 * x + 12 * x ** 2 + 48 * y - 36 * x * y + 27 * y ** 2))


def check_stage2(ns):
    Variable = ns["Variable"]
    rng = np.random.default_rng(12)
    for i, fn in enumerate(_expressions()):
        a, b = rng.uniform(0.5, 1.5, size=2)
        x, y = Variable(np.array(a)), Variable(np.array(b))
        z = fn(x, y)
        z.backward()
        xs, ys = simple.Variable(np.array(a)), simple.Variable(np.array(b))
        zs = fn(xs, ys)
        zs.backward()
        _close(f"expression {i}", z.data, zs.data)
        _close(f"expression {i}: dz/dx", _data(x.grad), xs.grad)
        _close(f"expression {i}: dz/dy", _data(y.grad), ys.grad)
    # a branching graph: every function once, in generation order
    x = Variable(np.array(3.0))
    a = x * x
    y = a * a + a * a
    y.backward()
    _close("2x^4 through a shared node", _data(x.grad), 8 * 27.0)
    # no_grad records nothing; Config is restored after the with block
    with ns["no_grad"]():
        z = Variable(np.array(2.0)) * 3.0
    assert z.creator is None, "no_grad(): the output must have no creator"
    assert ns["Config"].enable_backprop is True, "no_grad() must restore Config.enable_backprop"
    try:
        with ns["no_grad"]():
            raise ValueError
    except ValueError:
        pass
    assert ns["Config"].enable_backprop is True, "using_config must restore the value even after an error"
    # functions hold their outputs weakly: the output is freed once the user drops it
    y = Variable(np.array(1.0)) * 2.0
    f = y.creator
    del y
    assert f.outputs[0]() is None, "Function.outputs must be weak references (step 17)"
    # backward() without create_graph records no graph of the backward pass
    x = Variable(np.array(2.0))
    (x ** 3).backward()
    assert x.grad.creator is None, "backward() without create_graph=True must not record a graph"
    # the graph as DOT text: the same text as StuCrs's get_dot_graph on the learner's graph
    from stucrs.utils import get_dot_graph
    x, y = Variable(np.array(0.5), name="x"), Variable(np.array(2.0))
    z = x * y + x / y
    z.name = "z"
    for verbose in (True, False):
        assert ns["get_dot_graph"](z, verbose) == get_dot_graph(z, verbose), \
            f"get_dot_graph(z, verbose={verbose}) differs from stucrs.utils.get_dot_graph"
    # higher-order derivatives against StuCrs: second of x^4 - 2x^2, third of sin(x) * cos(x)
    for fn_mine, fn_stucrs, order in [(lambda v: v ** 4 - 2 * v ** 2, lambda v: v ** 4 - 2 * v ** 2, 2),
                                      (lambda v: ns["sin"](v) * ns["cos"](v), lambda v: F.sin(v) * F.cos(v), 3)]:
        value = rng.uniform(-1, 1)
        results = []
        for var, fn in [(Variable, fn_mine), (stucrs.Variable, fn_stucrs)]:
            x = var(np.array(value))
            y = fn(x)
            for _ in range(order):
                x.cleargrad()
                y.backward(create_graph=True)
                y = x.grad
            results.append(float(y.data))
        _close(f"derivative of order {order}", results[0], results[1])


def _grads_of(fn_mine, fn_stucrs, arrays, what, rtol=1e-5, atol=1e-5, double=False):
    """Output and input gradients of ``sum(fn(*arrays) * w)``; with ``double``, also the gradient of
    ``sum(gx0 ** 2)`` (needs a backward written with Variables)."""
    outs = []
    for fn in (fn_mine, fn_stucrs):
        vs = [stucrs.Variable(a.copy()) for a in arrays]
        y = fn(*vs)
        w = np.linspace(0.5, 1.5, y.size).reshape(y.shape).astype(y.dtype)  # no zero weight
        F.sum(y * w).backward(create_graph=double)
        got = [y] + [v.grad for v in vs]
        if double:
            gx = vs[0].grad
            for v in vs:
                v.cleargrad()
            F.sum(gx * gx).backward()
            got.append(vs[0].grad)
        outs.append(got)
    for i, (m, s) in enumerate(zip(*outs)):
        name = "output" if i == 0 else f"gradient of input {i}" if i <= len(arrays) else "double backward"
        _close(f"{what}: {name}", m, s, rtol, atol)


def check_stage3(ns):
    rng = np.random.default_rng(13)
    a = rng.standard_normal((2, 3, 4))
    _grads_of(lambda x: ns["reshape"](x, (6, 4)) ** 2, lambda x: F.reshape(x, (6, 4)) ** 2, [a], "reshape",
              double=True)
    _grads_of(lambda x: ns["transpose"](x), lambda x: F.transpose(x), [rng.standard_normal((3, 5))], "transpose")
    for axis, keepdims in [(None, False), (0, False), (1, True), ((0, 2), False), (-1, False)]:
        _grads_of(lambda x: ns["sum"](x * x, axis=axis, keepdims=keepdims),
                  lambda x: F.sum(x * x, axis=axis, keepdims=keepdims), [a],
                  f"sum(axis={axis}, keepdims={keepdims})", double=True)
    _grads_of(lambda x: ns["broadcast_to"](x * x, (2, 3, 4)), lambda x: F.broadcast_to(x * x, (2, 3, 4)),
              [rng.standard_normal((3, 1))], "broadcast_to", double=True)
    _grads_of(lambda x: ns["sum_to"](x, (3, 1)), lambda x: F.sum_to(x, (3, 1)), [a], "sum_to")
    _grads_of(lambda x, W: ns["matmul"](x * x, W), lambda x, W: F.matmul(x * x, W),
              [rng.standard_normal((4, 3)), rng.standard_normal((3, 5))], "matmul", double=True)
    x = rng.standard_normal((6, 4)).astype(np.float32) * 5
    t = rng.integers(0, 4, size=6)
    _grads_of(lambda v: ns["softmax_cross_entropy"](v, t), lambda v: F.softmax_cross_entropy(v, t), [x],
              "softmax_cross_entropy", double=True)
    # Linear / MLP with the same weights, then one SGD step
    x = rng.standard_normal((8, 3)).astype(np.float32)
    t = rng.integers(0, 2, size=8)
    mine, theirs = ns["MLP"]((5, 2)), stucrs.models.MLP((5, 2))
    mine(x), theirs(x)
    assert len(list(mine.params())) == 4, "MLP((5, 2)) must have 4 parameters (2 W, 2 b)"
    theirs.l0.W.data, theirs.l0.b.data = mine.l0.W.data.copy(), mine.l0.b.data.copy()
    theirs.l1.W.data, theirs.l1.b.data = mine.l1.W.data.copy(), mine.l1.b.data.copy()
    opt_mine = ns["SGD"](lr=0.5).setup(mine)
    opt_theirs = stucrs.optimizers.SGD(lr=0.5).setup(theirs)
    for model, loss_fn, opt in [(mine, ns["softmax_cross_entropy"], opt_mine),
                                (theirs, F.softmax_cross_entropy, opt_theirs)]:
        loss = loss_fn(model(x), t)
        model.cleargrads()
        loss.backward()
        opt.update()
    for name in ["l0", "l1"]:
        for p in ["W", "b"]:
            _close(f"MLP.{name}.{p} after one SGD step", getattr(getattr(mine, name), p),
                   getattr(getattr(theirs, name), p))
    # DataLoader: every example once per epoch, in order without shuffle, the same batches as StuCrs's
    data, label = np.arange(22.0).reshape(11, 2), np.arange(11)
    dataset = ns["Dataset"](data, label)
    batches = [(x.copy(), t.copy()) for x, t in ns["DataLoader"](dataset, batch_size=4, shuffle=False)]
    theirs = list(stucrs.DataLoader(dataset, 4, shuffle=False))  # the same dataset: only the loaders differ
    assert [len(t) for _, t in batches] == [4, 4, 3], f"batch sizes {[len(t) for _, t in batches]}"
    for (xm, tm), (xs, ts) in zip(batches, theirs):
        _close("DataLoader batch", xm, xs)
        _close("DataLoader labels", tm, ts)
    loader = ns["DataLoader"](dataset, batch_size=3, shuffle=True)
    for _ in range(2):  # two epochs: reset after StopIteration
        seen = np.concatenate([t for _, t in loader])
        assert sorted(seen.tolist()) == list(range(11)), f"one epoch must see each example once, saw {seen}"
    np.random.seed(0)
    orders = [np.concatenate([t for _, t in loader]) for _ in range(3)]
    assert any((o != np.arange(11)).any() for o in orders), "shuffle=True must change the order"
    # Linear's first weights: std sqrt(1 / in_size), as StuCrs's
    layer = ns["Linear"](400)
    layer(np.zeros((1, 400), dtype=np.float32))
    std = float(layer.W.data.std())
    assert abs(std - np.sqrt(1 / 400)) < 0.1 * np.sqrt(1 / 400), f"Linear(400) on 400 inputs: W std {std:.4f}"


def check_stage4(ns):
    rng = np.random.default_rng(14)
    x = rng.standard_normal((2, 3, 9, 8))
    assert np.array_equal(ns["im2col_array"](x, (3, 2), 2, 1), FC.im2col_array(x, (3, 2), 2, 1)), \
        "im2col_array differs from StuCrs's"
    for stride, pad, k in [(1, 0, (3, 3)), (2, 1, (3, 3)), (1, 2, (2, 4))]:
        W = rng.standard_normal((4, 3) + k)
        b = rng.standard_normal(4)
        _grads_of(lambda x, W, b: ns["conv2d"](x, W, b, stride=stride, pad=pad),
                  lambda x, W, b: F.conv2d(x, W, b, stride=stride, pad=pad), [x, W, b],
                  f"conv2d(stride={stride}, pad={pad}, kernel={k})")
    for k, stride in [((2, 2), 2), ((3, 3), 1), ((2, 3), 2)]:  # the page pads with 0: no padding here
        _grads_of(lambda x: ns["pooling"](x, k, stride=stride),
                  lambda x: F.pooling(x, k, stride=stride), [x], f"pooling(kernel={k}, stride={stride})")
    # double backward through im2col / col2im
    W = rng.standard_normal((2, 3, 3, 3))
    results = []
    for conv in (ns["conv2d"], F.conv2d):
        xv = stucrs.Variable(x.copy())
        y = F.sum(conv(xv, stucrs.Variable(W.copy())) ** 2)
        y.backward(create_graph=True)
        gx = xv.grad
        xv.cleargrad()
        F.sum(gx * gx).backward()
        results.append(xv.grad.data)
    _close("double backward of conv2d", results[0], results[1], rtol=1e-5, atol=1e-5)
    # layers with the same weights
    xi = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    mine, theirs = ns["Conv2d"](5, (3, 3), stride=1, pad=1), L.Conv2d(5, 3, stride=1, pad=1)
    mine(xi), theirs(xi)
    theirs.W.data, theirs.b.data = mine.W.data.copy(), mine.b.data.copy()
    _close("Conv2d layer", mine(xi), theirs(xi), 1e-5, 1e-5)
    xs = rng.standard_normal((4, 3, 2)).astype(np.float32)
    for name in ["RNN", "LSTM"]:
        mine, theirs = ns[name](6, in_size=2), getattr(L, name)(6, in_size=2)
        sublayers = [attr for attr, layer in vars(mine).items() if isinstance(layer, stucrs.Layer)]
        expected = {"RNN": 2, "LSTM": 8}[name]
        assert len(sublayers) == expected, f"{name}: {len(sublayers)} Linear sublayers found, expected {expected}"
        for attr, layer in vars(mine).items():
            if isinstance(layer, stucrs.Layer):
                other = getattr(theirs, attr)
                other.W.data = layer.W.data.copy()
                if layer.b is not None:
                    other.b.data = layer.b.data.copy()
        losses = []
        for model in (mine, theirs):
            loss = 0
            for x in xs:
                loss = loss + F.sum(model(x) ** 2)
            model.cleargrads()
            loss.backward()
            losses.append(loss)
        _close(f"{name}: loss over 4 steps", losses[0], losses[1], 1e-5, 1e-5)
        for attr, layer in vars(mine).items():
            if isinstance(layer, stucrs.Layer):
                _close(f"{name}.{attr}.W gradient", layer.W.grad, getattr(theirs, attr).W.grad, 1e-4, 1e-5)
    np.random.seed(3)
    mine = ns["dropout"](np.ones((50, 20), dtype=np.float32), 0.2)
    np.random.seed(3)
    # the page draws the mask as the book does (np.random.rand(*shape) > ratio): same seed, same mask
    _close("dropout with the same seed (mask from np.random.rand(*x.shape) > ratio)", mine,
           F.dropout(np.ones((50, 20), dtype=np.float32), 0.2))
    with stucrs.test_mode():
        xin = rng.standard_normal(5)
        _close("dropout in test mode", ns["dropout"](xin, 0.5), xin)


CHECKS = {"stage1": check_stage1, "stage2": check_stage2, "stage3": check_stage3, "stage4": check_stage4}
