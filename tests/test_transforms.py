"""stucrs.transforms: 1 サンプルとバッチで同じ結果になること。 / single-sample vs batch equivalence."""

import numpy as np
import pytest

from stucrs.transforms import AsType, Compose, Flatten, Normalize, ToFloat, ToInt, Transform, apply_batch


def _images(n=7, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, 1, 28, 28), dtype=np.uint8)


def _per_sample(t, xs):
    return np.stack([t(x) for x in xs])


CASES = [
    Flatten(),
    ToFloat(),
    ToInt(),
    AsType(np.float16),
    Normalize(0.0, 255.0),
    Normalize(127.5, 3),
    Compose([Flatten(), ToFloat(), Normalize(0.0, 255.0)]),
    Compose([ToFloat(), Normalize(0.5, 0.25), Flatten()]),
    Compose([]),
]


@pytest.mark.parametrize("t", CASES, ids=repr)
def test_batch_equals_per_sample(t):
    xs = _images()
    batched = apply_batch(t, xs)
    expected = _per_sample(t, xs)
    assert batched.shape == expected.shape
    assert batched.dtype == expected.dtype
    np.testing.assert_array_equal(batched, expected)


def test_mnist_default_pipeline_values():
    xs = _images()
    out = Compose([Flatten(), ToFloat(), Normalize(0.0, 255.0)]).apply_batch(xs)
    assert out.shape == (7, 784)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, xs.reshape(7, -1).astype(np.float32) / 255, rtol=1e-6)
    assert 0.0 <= out.min() and out.max() <= 1.0


def test_flatten_keeps_batch_axis():
    xs = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    assert Flatten()(xs[0]).shape == (12,)
    assert Flatten().apply_batch(xs).shape == (2, 12)


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64])
def test_normalize_keeps_float_dtype(dtype):
    x = np.ones((3, 4), dtype=dtype)
    assert Normalize(np.float64(0.5), np.float64(2.0))(x).dtype == dtype
    assert Normalize(0.5, 2.0).apply_batch(x).dtype == dtype


def test_normalize_integer_input_gives_float32():
    x = np.full((2, 5), 255, dtype=np.uint8)
    out = Normalize(0, 255)(x)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, np.ones((2, 5), np.float32))


def test_normalize_does_not_modify_input():
    x = np.ones((4, 3), dtype=np.float32)
    Normalize(1.0, 2.0)(x)
    Normalize(1.0, 2.0).apply_batch(x)
    np.testing.assert_array_equal(x, np.ones((4, 3), np.float32))


def test_normalize_per_channel():
    rng = np.random.default_rng(1)
    xs = rng.random((5, 3, 4, 4)).astype(np.float32)
    t = Normalize(mean=[0.1, 0.2, 0.3], std=[1.0, 2.0, 4.0])
    single = t(xs[0])
    assert single.dtype == np.float32
    np.testing.assert_allclose(single[1], (xs[0, 1] - 0.2) / 2.0, rtol=1e-6)
    np.testing.assert_array_equal(t.apply_batch(xs), _per_sample(t, xs))
    # a one-element sequence behaves like a scalar
    np.testing.assert_array_equal(Normalize([2.0], [4.0])(xs[0]), Normalize(2.0, 4.0)(xs[0]))


def test_plain_function_in_compose_falls_back_per_sample():
    calls = []

    def double_first(x):
        calls.append(x.shape)
        return x[:1] * 2

    xs = np.arange(12, dtype=np.float32).reshape(4, 3)
    t = Compose([double_first, ToFloat()])
    out = t.apply_batch(xs)
    assert out.shape == (4, 1)
    np.testing.assert_array_equal(out[:, 0], xs[:, 0] * 2)
    assert calls == [(3,)] * 4  # called once per sample, never on the whole batch


def test_apply_batch_none_and_custom_transform():
    xs = np.arange(6).reshape(3, 2)
    assert apply_batch(None, xs) is xs

    class AddOne(Transform):
        def __call__(self, x):
            return x + 1

    np.testing.assert_array_equal(apply_batch(AddOne(), xs), xs + 1)


def test_dtypes_of_casts():
    x = np.arange(4, dtype=np.uint8)
    assert ToFloat()(x).dtype == np.float32
    assert ToInt()(x.astype(np.float32)).dtype == np.int64
    assert AsType("float16")(x).dtype == np.float16
    assert repr(Compose([Flatten(), ToFloat()])) == "Compose([Flatten(), ToFloat(dtype=float32)])"
