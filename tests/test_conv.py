"""Convolution, transposed convolution, pooling, im2col/col2im: against PyTorch and numerically."""
import numpy as np
import pytest

import stucrs.functions as F
import stucrs.functions_conv as FC
import stucrs.fast.conv as FASTCONV
from stucrs import Config
from stucrs import Variable, no_grad
from tests.opcheck import NUMPY, backward_check, double_backward_check, forward_dtype_check

from tests.needs_torch import import_torch  # noqa: E402

torch = import_torch()
pytestmark = pytest.mark.torch
tF = torch.nn.functional

rng = np.random.default_rng(2024)


def t64(a, grad=True):
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def run_both(sf, tf, arrays):
    """Forward both frameworks on float64 copies, backprop the same random upstream gradient."""
    vs = [Variable(np.array(a, dtype=np.float64)) for a in arrays]
    ts = [t64(a) for a in arrays]
    y = sf(*vs)
    ty = tf(*ts)
    assert y.shape == tuple(ty.shape), (y.shape, tuple(ty.shape))
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-10, atol=1e-10)
    gy = rng.normal(size=y.shape)
    y.grad = Variable(gy.copy())
    y.backward()
    ty.backward(torch.tensor(gy))
    for i, (v, t) in enumerate(zip(vs, ts)):
        assert v.grad is not None, f"input {i} has no gradient"
        np.testing.assert_allclose(v.grad.data, t.grad.numpy(), rtol=1e-9, atol=1e-9,
                                   err_msg=f"gradient of input {i}")


# ---------------------------------------------------------------------------
# im2col / col2im
# ---------------------------------------------------------------------------
def naive_im2col(x, kh, kw, sy, sx, ph, pw):
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh = (h + 2 * ph - kh) // sy + 1
    ow = (w + 2 * pw - kw) // sx + 1
    col = np.zeros((n, c, kh, kw, oh, ow))
    for a in range(oh):
        for b in range(ow):
            col[:, :, :, :, a, b] = xp[:, :, a * sy:a * sy + kh, b * sx:b * sx + kw]
    return col


@pytest.mark.parametrize("k,s,p", [(3, 1, 0), (3, 2, 1), ((2, 3), (1, 2), (1, 0)), (1, 1, 0)])
def test_im2col_array_matches_loop_and_col2im_is_its_adjoint(k, s, p):
    x = rng.normal(size=(2, 3, 7, 6))
    kh, kw = (k, k) if isinstance(k, int) else k
    sy, sx = (s, s) if isinstance(s, int) else s
    ph, pw = (p, p) if isinstance(p, int) else p
    ref = naive_im2col(x, kh, kw, sy, sx, ph, pw)
    col = FC.im2col_array(x, k, s, p, to_matrix=False)
    np.testing.assert_array_equal(col, ref)
    mat = FC.im2col_array(x, k, s, p, to_matrix=True)
    n, c, _, _, oh, ow = ref.shape
    np.testing.assert_array_equal(mat, ref.transpose(0, 4, 5, 1, 2, 3).reshape(n * oh * ow, -1))
    # <im2col(x), r> == <x, col2im(r)> for both layouts
    for to_matrix, shape in ((False, col.shape), (True, mat.shape)):
        r = rng.normal(size=shape)
        back = FC.col2im_array(r, x.shape, k, s, p, to_matrix=to_matrix)
        assert back.shape == x.shape
        lhs = np.sum(FC.im2col_array(x, k, s, p, to_matrix=to_matrix) * r)
        np.testing.assert_allclose(lhs, np.sum(x * back), rtol=1e-10)


def test_im2col_col2im_functions_gradients():
    x = rng.normal(size=(2, 2, 5, 5))
    backward_check(lambda v: F.im2col(v, 3, 2, 1), [x], NUMPY)
    double_backward_check(lambda v: F.im2col(v, 3, 2, 1) ** 2, [x], NUMPY)
    col = rng.normal(size=(2 * 3 * 3, 2 * 3 * 3))
    backward_check(lambda v: F.col2im(v, (2, 2, 5, 5), 3, 2, 1), [col], NUMPY)


# ---------------------------------------------------------------------------
# conv2d against PyTorch
# ---------------------------------------------------------------------------
CONV_CASES = [
    # N, C, H, W, OC, kernel, stride, pad, bias
    (2, 1, 6, 6, 3, 3, 1, 0, True),
    (3, 3, 7, 5, 4, 3, 2, 1, True),
    (2, 4, 8, 8, 2, (3, 2), (2, 1), (1, 0), False),
    (1, 2, 5, 6, 5, 1, 1, 0, True),
    (4, 3, 9, 9, 6, 5, 3, 2, False),
]


@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: "x".join(map(str, c[:5])) + f"-k{c[5]}s{c[6]}p{c[7]}b{int(c[8])}")
def test_conv2d_matches_torch(case):
    n, c, h, w, oc, k, s, p, bias = case
    kh, kw = (k, k) if isinstance(k, int) else k
    x = rng.normal(size=(n, c, h, w))
    W = rng.normal(size=(oc, c, kh, kw))
    arrays = [x, W] + ([rng.normal(size=oc)] if bias else [])
    if bias:
        run_both(lambda x_, W_, b_: F.conv2d(x_, W_, b_, s, p),
                 lambda x_, W_, b_: tF.conv2d(x_, W_, b_, s, p), arrays)
    else:
        run_both(lambda x_, W_: F.conv2d(x_, W_, None, s, p),
                 lambda x_, W_: tF.conv2d(x_, W_, None, s, p), arrays)


def test_conv2d_random_shapes_against_torch():
    r = np.random.default_rng(11)
    for _ in range(5):
        n, c, oc = r.integers(1, 4, size=3)
        kh, kw = r.integers(1, 4, size=2)
        sy, sx = r.integers(1, 3, size=2)
        ph, pw = r.integers(0, 2, size=2)
        h, w = r.integers(max(kh, kw) + 1, 9, size=2)
        x, W, b = r.normal(size=(n, c, h, w)), r.normal(size=(oc, c, kh, kw)), r.normal(size=oc)
        run_both(lambda x_, W_, b_: F.conv2d(x_, W_, b_, (sy, sx), (ph, pw)),
                 lambda x_, W_, b_: tF.conv2d(x_, W_, b_, (int(sy), int(sx)), (int(ph), int(pw))),
                 [x, W, b])


def test_conv2d_numerical_and_double_backward():
    x = rng.normal(size=(2, 2, 5, 5))
    W = rng.normal(size=(3, 2, 3, 3))
    b = rng.normal(size=3)
    backward_check(lambda a, B, c: F.conv2d(a, B, c, 2, 1), [x, W, b], NUMPY)
    # second derivatives (conv is bilinear in x and W, so the squares make them non-trivial)
    double_backward_check(lambda a, B, c: F.conv2d(a, B, c, 2, 1) ** 2, [x, W, b], NUMPY)
    double_backward_check(lambda a, B: F.conv2d(F.tanh(a), B, None, 1, 0) ** 2, [x, W], NUMPY)


def test_conv2d_gradient_check_utility():
    from stucrs.utils import gradient_check

    W = rng.normal(size=(2, 2, 3, 3))
    x = rng.normal(size=(1, 2, 4, 4))
    assert gradient_check(lambda v: F.conv2d(v, W, None, 1, 1), x)
    assert gradient_check(lambda v: F.conv2d(x, v, None, 1, 1), W)


def test_conv2d_hessian_vector_product_against_torch():
    x = rng.normal(size=(2, 2, 5, 5))
    W = rng.normal(size=(3, 2, 3, 3))
    vx = Variable(x.copy())
    vW = Variable(W.copy())
    y = F.sum(F.tanh(F.conv2d(vx, vW, None, 1, 1)))
    y.backward(create_graph=True)
    gx = vx.grad
    vx.cleargrad()
    vW.cleargrad()
    F.sum(gx * gx).backward()
    tx, tW = t64(x), t64(W)
    ty = torch.tanh(tF.conv2d(tx, tW, None, 1, 1)).sum()
    (tgx,) = torch.autograd.grad(ty, tx, create_graph=True)
    (tgx * tgx).sum().backward()
    np.testing.assert_allclose(vx.grad.data, tx.grad.numpy(), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(vW.grad.data, tW.grad.numpy(), rtol=1e-9, atol=1e-9)


def test_conv2d_skips_input_gradient_for_data(monkeypatch):
    x = rng.normal(size=(2, 1, 6, 6)).astype(np.float32)
    W = Variable(rng.normal(size=(3, 1, 3, 3)).astype(np.float32))
    called = []
    real = FC.deconv2d
    monkeypatch.setattr(FC, "deconv2d", lambda *a, **k: called.append(1) or real(*a, **k))
    y = F.conv2d(x, W)  # x is a raw array: requires_grad is False
    F.sum(y).backward()
    assert not called, "the input gradient was computed for a raw data batch"
    assert W.grad is not None and W.grad.dtype == np.float32
    xv = Variable(x)
    W.cleargrad()
    F.sum(F.conv2d(xv, W)).backward()
    assert called and xv.grad is not None


def test_conv2d_float32_in_float32_out():
    x = rng.normal(size=(2, 3, 6, 6))
    W = rng.normal(size=(4, 3, 3, 3))
    b = rng.normal(size=4)
    forward_dtype_check(lambda a, B, c: F.conv2d(a, B, c, 1, 1), [x, W, b], np.float32, NUMPY)
    forward_dtype_check(lambda a, B, c: F.deconv2d(a, B, c, 2, 1), [x, W.transpose(1, 0, 2, 3).copy(), rng.normal(size=4)],
                        np.float32, NUMPY)
    forward_dtype_check(lambda a: F.pooling(a, 2, 2), [x], np.float32, NUMPY)
    forward_dtype_check(lambda a: F.average_pooling(a, 2, 2), [x], np.float32, NUMPY)


def test_conv2d_simple_and_pooling_simple_agree():
    x = rng.normal(size=(2, 3, 7, 7))
    W = rng.normal(size=(4, 3, 3, 3))
    b = rng.normal(size=4)
    np.testing.assert_allclose(F.conv2d_simple(x, W, b, 2, 1).data, F.conv2d(x, W, b, 2, 1).data, rtol=1e-12)
    run_both(lambda a, B, c: F.conv2d_simple(a, B, c, 2, 1), lambda a, B, c: tF.conv2d(a, B, c, 2, 1), [x, W, b])
    np.testing.assert_allclose(F.pooling_simple(x, 2, 2).data, F.pooling(x, 2, 2).data)
    run_both(lambda a: F.pooling_simple(a, 3, 2), lambda a: tF.max_pool2d(a, 3, 2), [x])


def test_conv2d_errors():
    with pytest.raises(ValueError, match="channels"):
        F.conv2d(np.zeros((1, 3, 5, 5)), np.zeros((2, 2, 3, 3)))
    with pytest.raises(ValueError, match="4-D"):
        F.conv2d(np.zeros((3, 5, 5)), np.zeros((2, 3, 3, 3)))


# ---------------------------------------------------------------------------
# deconv2d
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("n,c,h,w,oc,k,s,p,outpad,bias", [
    (2, 3, 4, 4, 2, 3, 1, 0, 0, True),
    (2, 2, 3, 5, 3, 3, 2, 1, 0, False),
    (1, 2, 4, 3, 2, 3, 2, 1, 1, True),
    (2, 1, 3, 3, 4, (2, 3), (2, 1), (0, 1), 0, True),
])
def test_deconv2d_matches_torch(n, c, h, w, oc, k, s, p, outpad, bias):
    kh, kw = (k, k) if isinstance(k, int) else k
    sy, sx = (s, s) if isinstance(s, int) else s
    ph, pw = (p, p) if isinstance(p, int) else p
    x = rng.normal(size=(n, c, h, w))
    W = rng.normal(size=(c, oc, kh, kw))
    outsize = None
    if outpad:
        outsize = (sy * (h - 1) + kh - 2 * ph + outpad, sx * (w - 1) + kw - 2 * pw + outpad)
    arrays = [x, W] + ([rng.normal(size=oc)] if bias else [])

    def sf(*a):
        return F.deconv2d(a[0], a[1], a[2] if bias else None, s, p, outsize=outsize)

    def tf(*a):
        return tF.conv_transpose2d(a[0], a[1], a[2] if bias else None, s, p, output_padding=outpad)

    run_both(sf, tf, arrays)


def test_deconv2d_numerical_and_double_backward():
    x = rng.normal(size=(2, 2, 3, 3))
    W = rng.normal(size=(2, 3, 3, 3))
    b = rng.normal(size=3)
    backward_check(lambda a, B, c: F.deconv2d(a, B, c, 2, 1), [x, W, b], NUMPY)
    double_backward_check(lambda a, B, c: F.deconv2d(a, B, c, 2, 1) ** 2, [x, W, b], NUMPY)


def test_deconv2d_bad_outsize():
    with pytest.raises(ValueError, match="outsize"):
        F.deconv2d(np.zeros((1, 1, 3, 3)), np.zeros((1, 1, 3, 3)), stride=1, outsize=(9, 9))


# ---------------------------------------------------------------------------
# pooling
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("shape,k,s,p", [
    ((2, 3, 6, 6), 2, 2, 0),
    ((2, 2, 7, 5), 3, 2, 1),
    ((1, 2, 6, 7), (2, 3), (1, 2), (1, 1)),
    ((2, 3, 5, 5), 3, 1, 0),
    ((2, 3, 7, 7), 2, 2, 0),  # last row/column not covered by any window
    ((2, 2, 8, 8), 2, 3, 0),  # gaps between windows
])
def test_max_pooling_matches_torch(shape, k, s, p):
    x = rng.normal(size=shape) - 3.0  # mostly negative: padding must not win the max
    run_both(lambda a: F.pooling(a, k, s, p), lambda a: tF.max_pool2d(a, k, s, p), [x])


@pytest.mark.parametrize("shape,k,s,p", [
    ((2, 3, 6, 6), 2, 2, 0),
    ((2, 2, 7, 5), 3, 2, 1),
    ((1, 2, 6, 7), (2, 3), (1, 2), (1, 1)),
])
def test_average_pooling_matches_torch(shape, k, s, p):
    x = rng.normal(size=shape)
    run_both(lambda a: F.average_pooling(a, k, s, p), lambda a: tF.avg_pool2d(a, k, s, p), [x])


def test_pooling_numerical_and_double_backward():
    x = rng.normal(size=(2, 2, 5, 5))
    backward_check(lambda a: F.pooling(a, 2, 2, 0), [x], NUMPY)
    backward_check(lambda a: F.pooling(a, 3, 1, 1), [x], NUMPY)
    double_backward_check(lambda a: F.pooling(a, 3, 2, 1) ** 2, [x], NUMPY)
    double_backward_check(lambda a: F.pooling(a * a, 2, 1, 0) ** 2, [x], NUMPY)
    backward_check(lambda a: F.average_pooling(a, 3, 2, 1), [x], NUMPY)
    double_backward_check(lambda a: F.average_pooling(a, 2, 1, 0) ** 2, [x], NUMPY)


def test_pooling_keeps_argmax_and_works_on_conv_output_layout():
    # the conv output is a (C, N, H, W)-ordered view; pooling and its gradient must not care
    x = rng.normal(size=(3, 2, 6, 6))
    W = rng.normal(size=(4, 2, 3, 3))
    run_both(lambda a, B: F.pooling(F.relu(F.conv2d(a, B, None, 1, 1)), 2, 2),
             lambda a, B: tF.max_pool2d(torch.relu(tF.conv2d(a, B, None, 1, 1)), 2, 2), [x, W])
    pool = FC.Pooling(2, 2, 0)
    y = pool(Variable(x))
    assert pool.indexes.shape == y.shape and pool.indexes.max() < 4


def test_no_grad_conv_pool_does_not_keep_graph():
    x = rng.normal(size=(2, 1, 6, 6)).astype(np.float32)
    W = Variable(rng.normal(size=(2, 1, 3, 3)).astype(np.float32))
    with no_grad():
        y = F.pooling(F.conv2d(x, W), 2, 2)
    assert y.creator is None


@pytest.mark.parametrize("block_bytes", [1, 700])
@pytest.mark.parametrize("shape,k,s,p", [
    ((3, 4, 6, 6), 2, 2, 0),
    ((2, 3, 7, 5), 3, 2, 1),
    ((3, 2, 8, 8), 3, 1, 1),  # overlapping windows: the gradient is accumulated
])
def test_max_pooling_in_cache_blocks_matches_torch(monkeypatch, block_bytes, shape, k, s, p):
    # pooling walks the input in cache-sized blocks (one sample or channel at a time here):
    # the result and the gradient must not depend on the blocking, on either memory layout
    monkeypatch.setattr(FASTCONV, "_BLOCK_BYTES", block_bytes)
    x = rng.normal(size=shape)
    run_both(lambda a: F.pooling(a, k, s, p), lambda a: tF.max_pool2d(a, k, s, p), [x])
    W = rng.normal(size=(3, shape[1], 3, 3))
    run_both(lambda a, B: F.pooling(F.conv2d(a, B, None, 1, 1), k, s, p),
             lambda a, B: tF.max_pool2d(tF.conv2d(a, B, None, 1, 1), k, s, p), [x, W])


def test_cache_blocks_cover_the_array_once(monkeypatch):
    monkeypatch.setattr(FASTCONV, "_BLOCK_BYTES", 2 * 3 * 5 * 5 * 8)  # two channels of a (3, C, 5, 5) array
    x = np.zeros((3, 5, 5, 5))
    blocks = FASTCONV._cache_blocks(x, cn=False)
    assert [b[0] for b in blocks] == [slice(0, 1), slice(1, 2), slice(2, 3)]
    cn = np.zeros((5, 3, 5, 5)).transpose(1, 0, 2, 3)
    blocks = FASTCONV._cache_blocks(cn, cn=True)
    assert [b[1] for b in blocks] == [slice(0, 2), slice(2, 4), slice(4, 6)]
    covered = np.zeros(cn.shape, dtype=int)
    for b in blocks:
        covered[b] += 1
    assert (covered == 1).all()


def test_max_pooling_ties_keep_the_first_position_in_blocks(monkeypatch):
    monkeypatch.setattr(FASTCONV, "_BLOCK_BYTES", 1)
    x = np.zeros((2, 3, 4, 4), dtype=np.float32)  # every window is a tie (as after ReLU)
    xv = Variable(x)
    y = F.pooling(xv, 2, 2)
    y.backward()
    expected = np.zeros_like(x)
    expected[:, :, ::2, ::2] = 1  # PyTorch's rule: the first maximum in scan order gets the gradient
    np.testing.assert_array_equal(xv.grad.data, expected)


def test_pooling_without_graph_gives_the_same_values_and_keeps_no_positions(monkeypatch):
    # the fast pooling (stucrs.fast.conv): under no_grad the positions of the maxima are not needed
    # (no backward), so they are not computed
    monkeypatch.setattr(Config, "fast", True)
    monkeypatch.setattr(FASTCONV, "_BLOCK_BYTES", 300)
    x = rng.normal(size=(3, 4, 7, 6)).astype(np.float32)
    with_graph = F.pooling(Variable(x), 3, 2, 1)
    with no_grad():
        y = F.pooling(x, 3, 2, 1)
        pool = FC.Pooling(3, 2, 1)
        pool(Variable(x))
    np.testing.assert_array_equal(y.data, with_graph.data)
    assert pool.indexes is None
    with pytest.raises(RuntimeError, match="no_grad"):
        pool.backward(Variable(np.ones_like(y.data)))
