"""Bit-for-bit comparison of arrays: digests, differences, units in the last place.

Two runs are "identical" here only if every byte of every array agrees:
``-0.0`` and ``+0.0`` differ, and a NaN equals only the same NaN bits.
Where they differ, :func:`array_difference` says by how much, as the
largest absolute difference and the largest distance in units in the last
place (ULPs): the number of representable floats between the two values.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from embvar.errors import ShapeMismatchError

__all__ = ["array_digest", "ulp_distance", "array_difference"]

# Signed integer types of the same width as each float type.
_INT_OF = {2: np.int16, 4: np.int32, 8: np.int64}


def array_digest(array: np.ndarray) -> str:
    """Return a SHA-256 of an array's dtype, shape and bytes.

    Examples
    --------
    >>> a = np.zeros(3, np.float32)
    >>> array_digest(a) == array_digest(a.copy())
    True
    >>> array_digest(a) == array_digest(-a)  # -0.0 has other bits
    False
    """
    array = np.ascontiguousarray(array)
    h = hashlib.sha256()
    h.update(f"{array.dtype.str}{array.shape}".encode())
    h.update(array.tobytes())
    return h.hexdigest()


def ulp_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Return the elementwise distance between two float arrays in ULPs.

    Parameters
    ----------
    a, b : ndarray of the same float dtype and shape

    Returns
    -------
    ndarray of int64, same shape
        How many representable values of the dtype lie between ``a`` and
        ``b`` (0 for equal values, 1 for neighbours; ``+0.0`` and ``-0.0``
        are 0 apart). Each float's bits are mapped to an integer that
        increases with the float, and the integers subtracted.

    Examples
    --------
    >>> one = np.float32(1.0)
    >>> int(ulp_distance(one, np.nextafter(one, np.float32(2))))
    1
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != b.dtype or a.shape != b.shape:
        raise ShapeMismatchError(
            "a and b must have the same dtype and shape; "
            f"got {a.dtype}{a.shape} and {b.dtype}{b.shape}."
        )
    if not np.issubdtype(a.dtype, np.floating) or a.dtype.itemsize not in _INT_OF:
        raise ShapeMismatchError(
            f"a and b must be float16, float32 or float64 arrays; got {a.dtype}."
        )
    return np.abs(_ordered(a) - _ordered(b))


def array_difference(a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    """Return how two arrays of one variable differ.

    Returns
    -------
    dict
        ``identical`` (bitwise), ``n_differ`` (elements whose bits differ),
        ``size``, ``max_abs`` (largest absolute difference, float64) and,
        for floats, ``max_ulp``; for a shape or dtype change, ``identical``
        is False and ``shape`` gives both shapes.
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return {
            "identical": False,
            "shape": [f"{a.dtype}{list(a.shape)}", f"{b.dtype}{list(b.shape)}"],
        }
    if np.issubdtype(a.dtype, np.floating) and a.dtype.itemsize in _INT_OF:
        view = _INT_OF[a.dtype.itemsize]
        differ = a.view(view) != b.view(view)
    else:
        differ = a != b
    n_differ = int(np.count_nonzero(differ))
    out: dict[str, Any] = {
        "identical": n_differ == 0,
        "n_differ": n_differ,
        "size": int(a.size),
        "max_abs": 0.0,
    }
    if np.issubdtype(a.dtype, np.floating) and a.dtype.itemsize in _INT_OF:
        out["max_ulp"] = 0
    if n_differ == 0:
        return out
    da = a[differ].astype(np.float64)
    db = b[differ].astype(np.float64)
    with np.errstate(invalid="ignore"):
        gap = np.abs(da - db)
    out["max_abs"] = float(np.nanmax(gap)) if np.isfinite(gap).any() else float("nan")
    if "max_ulp" in out:
        out["max_ulp"] = int(ulp_distance(a[differ], b[differ]).max())
    return out


def _ordered(x: np.ndarray) -> np.ndarray:
    # Sign-magnitude bits -> an integer line that increases with the float:
    # non-negative floats keep their bits, negative ones count down from 0.
    width = _INT_OF[x.dtype.itemsize]
    bits = x.view(width).astype(np.int64)
    lowest = np.int64(-(2 ** (8 * x.dtype.itemsize - 1)))
    return np.where(bits < 0, lowest - bits, bits)
