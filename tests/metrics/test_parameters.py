import numpy as np
import pytest

from embvar.errors import ShapeMismatchError
from embvar.metrics import mean_abs_difference, relative_frobenius


def test_relative_frobenius_by_hand():
    X = np.array([[3.0, 0.0]])
    Y = np.array([[0.0, 4.0]])
    # ||X - Y|| = 5, (||X|| + ||Y||) / 2 = 3.5
    assert relative_frobenius(X, Y) == pytest.approx(5.0 / 3.5)


def test_relative_frobenius_equal_negated_and_zero():
    X = np.arange(6.0).reshape(3, 2)
    assert relative_frobenius(X, X) == 0.0
    assert relative_frobenius(X, -X) == pytest.approx(2.0)
    assert relative_frobenius(0 * X, 0 * X) == 0.0


def test_relative_frobenius_is_symmetric(rng):
    X, Y = rng.normal(size=(10, 3)), rng.normal(size=(10, 3))
    assert relative_frobenius(X, Y) == pytest.approx(relative_frobenius(Y, X))


def test_mean_abs_difference_by_hand():
    X = np.array([[0.0, 1.0], [2.0, 3.0]])
    Y = np.array([[1.0, 1.0], [2.0, 0.0]])
    assert mean_abs_difference(X, Y) == pytest.approx((1 + 0 + 0 + 3) / 4)


def test_mean_abs_difference_shape_mismatch_raises():
    with pytest.raises(ShapeMismatchError, match="^X and Y must have the same dim"):
        mean_abs_difference(np.ones((2, 2)), np.ones((2, 3)))
