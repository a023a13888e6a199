"""Named errors that say what to do, where a learner or a careless caller would get a number or a
NumPy message without context."""
import numpy as np
import pytest

import stucrs.functions as F
from stucrs import Variable


@pytest.mark.parametrize("expr", [lambda: Variable(None) + 1, lambda: 1 + Variable(None),
                                  lambda: Variable(np.array(1.0)) * Variable(None)])
def test_empty_variable_in_arithmetic(expr):
    with pytest.raises(TypeError, match=r"holds no data \(Variable\(None\)\).*Variable\(np\.array"):
        expr()


def test_linear_names_a_wrong_bias_shape():
    with pytest.raises(ValueError, match=r"linear: bias b of shape \(3,\) .* must have shape \(4,\)"):
        F.linear(np.ones((2, 3)), np.ones((3, 4)), np.ones(3))
    assert F.linear(np.ones((2, 3)), np.ones((3, 4)), np.ones(4)).shape == (2, 4)


def test_accuracy_refuses_labels_out_of_range():
    with pytest.raises(ValueError, match=r"accuracy: label 5 is out of range for 3 classes"):
        F.accuracy(np.ones((2, 3)), np.array([0, 5]))
    with pytest.raises(ValueError, match=r"label -1"):
        F.accuracy(np.ones((2, 3)), np.array([-1, 0]))
    assert float(F.accuracy(np.eye(3), np.array([0, 1, 2])).data) == 1.0


@pytest.mark.parametrize("fn, x", [(F.sigmoid_cross_entropy, np.zeros((2, 1))),
                                   (F.binary_cross_entropy, np.full((2, 1), 0.5))])
def test_binary_losses_refuse_labels_other_than_0_and_1(fn, x):
    with pytest.raises(ValueError, match=r"labels t must be 0 or 1 .* got \[5, 7\]"):
        fn(x, np.array([[5], [7]]))
    assert np.isfinite(float(fn(x, np.array([[0], [1]])).data))
