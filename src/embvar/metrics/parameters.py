"""Parameter-level differences: the raw coordinates of two runs.

These ignore that two runs can be rotated (or, for a factorization model,
linearly transformed) copies of each other and still behave the same;
read them beside the geometry and function metrics.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from embvar.metrics._inputs import check_pair

__all__ = ["relative_frobenius", "mean_abs_difference"]


def relative_frobenius(X: Any, Y: Any) -> float:
    """Return the Frobenius distance relative to the tables' mean norm.

    Parameters
    ----------
    X, Y : array-like of shape (n_entities, dim)
        The same entities, row for row, in two runs.

    Returns
    -------
    distance : float
        In [0, 2]; 0 when the tables are equal, 2 when ``Y = -X``. Defined
        as 0 when both tables are all zeros.

    Notes
    -----
    ``d = 2 ||X - Y||_F / (||X||_F + ||Y||_F)``. Symmetric; invariant only
    to scaling both tables by the same factor.

    Examples
    --------
    >>> import numpy as np
    >>> relative_frobenius(np.ones((2, 2)), np.zeros((2, 2)))
    2.0
    """
    X, Y = check_pair(X, Y)
    X, Y = np.asarray(X, np.float64), np.asarray(Y, np.float64)
    total = float(np.linalg.norm(X) + np.linalg.norm(Y))
    if total == 0.0:
        return 0.0
    return float(2.0 * np.linalg.norm(X - Y) / total)


def mean_abs_difference(X: Any, Y: Any) -> float:
    """Return the mean absolute difference of matching coordinates.

    Parameters
    ----------
    X, Y : array-like of shape (n_entities, dim)
        The same entities, row for row, in two runs.

    Returns
    -------
    difference : float
        In [0, inf), in the units of the coordinates.

    Notes
    -----
    ``d = mean_ij |X_ij - Y_ij|``. Symmetric; invariant to nothing but a
    common translation.

    Examples
    --------
    >>> import numpy as np
    >>> mean_abs_difference(np.array([[0.0, 1.0]]), np.array([[1.0, 1.0]]))
    0.5
    """
    X, Y = check_pair(X, Y)
    return float(np.mean(np.abs(np.asarray(X, np.float64) - Y)))
