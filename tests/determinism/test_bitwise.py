"""Bit-for-bit comparison: digests, ULP distances, per-variable differences."""

import numpy as np
import pytest

from embvar.determinism.bitwise import array_difference, array_digest, ulp_distance
from embvar.errors import ShapeMismatchError


def test_ulp_distance_neighbours_are_one_apart():
    one = np.float32(1.0)
    up = np.nextafter(one, np.float32(2.0))
    down = np.nextafter(-one, np.float32(-2.0))
    assert int(ulp_distance(one, up)) == 1
    assert int(ulp_distance(-one, down)) == 1
    assert int(ulp_distance(up, one)) == 1


def test_ulp_distance_signed_zeros_are_equal():
    assert int(ulp_distance(np.float32(0.0), np.float32(-0.0))) == 0


def test_ulp_distance_across_zero_counts_both_sides():
    # The smallest subnormals on either side of zero: +1 step, -1 step.
    tiny = np.nextafter(np.float32(0.0), np.float32(1.0))
    assert int(ulp_distance(tiny, -tiny)) == 2


def test_ulp_distance_float64_and_float16():
    x = np.array([1.0, 2.0])
    assert ulp_distance(x, np.nextafter(x, 3.0)).tolist() == [1, 1]
    h = np.array([1.0], np.float16)
    assert ulp_distance(h, np.nextafter(h, np.float16(2))).tolist() == [1]


def test_ulp_distance_ten_steps():
    x = np.float32(3.0)
    y = x
    for _ in range(10):
        y = np.nextafter(y, np.float32(4.0))
    assert int(ulp_distance(x, y)) == 10


def test_ulp_distance_mismatched_dtypes_raises():
    with pytest.raises(ShapeMismatchError, match="a and b must have the same dtype"):
        ulp_distance(np.zeros(2, np.float32), np.zeros(2, np.float64))


def test_ulp_distance_integers_raises():
    with pytest.raises(ShapeMismatchError, match="a and b must be float16"):
        ulp_distance(np.zeros(2, np.int32), np.zeros(2, np.int32))


def test_array_difference_identical():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    out = array_difference(a, a.copy())
    assert out == {
        "identical": True,
        "n_differ": 0,
        "size": 6,
        "max_abs": 0.0,
        "max_ulp": 0,
    }


def test_array_difference_signed_zero_differs_in_bits_only():
    out = array_difference(np.array([0.0], np.float32), np.array([-0.0], np.float32))
    assert out["identical"] is False
    assert out["n_differ"] == 1
    assert out["max_abs"] == 0.0
    assert out["max_ulp"] == 0


def test_array_difference_known_answer():
    a = np.array([1.0, 2.0, 3.0], np.float32)
    b = a.copy()
    b[1] = np.nextafter(b[1], np.float32(3.0))  # one ULP of 2.0 is 2**-22
    b[2] = 3.5
    out = array_difference(a, b)
    assert out["n_differ"] == 2
    assert out["max_abs"] == 0.5
    assert out["max_ulp"] == 2**21  # 0.5 / 2**-22, float32's ULP in [2, 4)


def test_array_difference_same_nan_bits_identical():
    a = np.array([np.nan, 1.0], np.float32)
    assert array_difference(a, a.copy())["identical"] is True


def test_array_difference_integers():
    out = array_difference(np.array([1, 2, 3]), np.array([1, 5, 3]))
    assert out["identical"] is False and out["n_differ"] == 1 and out["max_abs"] == 3
    assert "max_ulp" not in out


def test_array_difference_shape_change():
    out = array_difference(np.zeros((2, 2), np.float32), np.zeros(4, np.float32))
    assert out["identical"] is False
    assert out["shape"] == ["float32[2, 2]", "float32[4]"]


def test_array_digest_sees_dtype_shape_and_bits():
    a = np.zeros(4, np.float32)
    assert array_digest(a) == array_digest(np.zeros(4, np.float32))
    assert array_digest(a) != array_digest(a.reshape(2, 2))
    assert array_digest(a) != array_digest(np.zeros(4, np.float64))
    assert array_digest(a) != array_digest(-a)
