"""Input checks and shared linear-algebra steps for the metrics.

Every public metric validates its tables here, so a bad table is rejected
the same way everywhere: the message names the argument, what it must be,
and what was received.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from embvar.checks import check_matrix
from embvar.errors import ShapeMismatchError

__all__ = ["check_pair", "check_table", "centered", "nuclear_norm"]


def check_table(name: str, X: Any, *, min_rows: int = 1) -> np.ndarray:
    """Return ``X`` as a finite 2-D float array (float32 kept, else float64)."""
    X = check_matrix(name, X, min_rows=min_rows)
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float64)
    return X


def check_pair(
    X: Any,
    Y: Any,
    *,
    names: tuple[str, str] = ("X", "Y"),
    same_dim: bool = True,
    min_rows: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Return two checked tables whose rows are the same entities.

    Raises
    ------
    ShapeMismatchError
        If the tables have different numbers of rows, or different numbers
        of columns where ``same_dim`` is true.
    NonFiniteError
        If either table holds NaN or inf.
    """
    X = check_table(names[0], X, min_rows=min_rows)
    Y = check_table(names[1], Y, min_rows=min_rows)
    if X.shape[0] != Y.shape[0]:
        raise ShapeMismatchError(
            f"{names[0]} and {names[1]} must have one row per entity, in the "
            f"same order; got {X.shape[0]} and {Y.shape[0]} rows. Match the "
            "tables on their ids with embvar.metrics.match_ids first."
        )
    if same_dim and X.shape[1] != Y.shape[1]:
        raise ShapeMismatchError(
            f"{names[0]} and {names[1]} must have the same dimension; got "
            f"{X.shape[1]} and {Y.shape[1]} columns."
        )
    return X, Y


def centered(X: np.ndarray) -> np.ndarray:
    """Return ``X`` in float64 with each column's mean subtracted."""
    X = np.asarray(X, dtype=np.float64)
    return X - X.mean(axis=0)


def nuclear_norm(M: np.ndarray) -> float:
    """Return the sum of the singular values of a small matrix."""
    return float(np.linalg.svd(M, compute_uv=False).sum())
