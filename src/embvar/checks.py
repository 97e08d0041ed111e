"""Parameter checks shared by the whole package.

Every public function validates its arguments through these helpers, so
bad input is rejected the same way everywhere: the message names the
argument, what it must be, and what was received.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from embvar.errors import ConfigError, NonFiniteError, ShapeMismatchError

__all__ = [
    "check_choice",
    "check_int",
    "check_float",
    "check_matrix",
    "check_finite",
]


def check_choice(name: str, value: Any, choices: Sequence[Any]) -> Any:
    """Return ``value`` if it is one of ``choices``, else raise ConfigError."""
    if value not in choices:
        accepted = ", ".join(repr(c) for c in choices)
        raise ConfigError(f"{name} must be one of {accepted}; got {name}={value!r}.")
    return value


def check_int(
    name: str,
    value: Any,
    low: int | None = None,
    high: int | None = None,
    context: str = "",
) -> int:
    """Return ``value`` as int if it is an integer in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError(
            f"{name} must be an integer{_range(low, high)}{context}; "
            f"got {name}={value!r}."
        )
    if (low is not None and value < low) or (high is not None and value > high):
        raise ConfigError(
            f"{name} must be an integer{_range(low, high)}{context}; "
            f"got {name}={value!r}."
        )
    return int(value)


def check_float(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    low_inclusive: bool = True,
    context: str = "",
) -> float:
    """Return ``value`` as float if it is a finite number in range."""
    ok = isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(
        value, bool
    )
    if ok:
        value = float(value)
        ok = np.isfinite(value)
        if ok and low is not None:
            ok = value >= low if low_inclusive else value > low
        if ok and high is not None:
            ok = value <= high
    if not ok:
        bracket = "[" if low_inclusive else "("
        rng = _range(low, high, bracket)
        raise ConfigError(
            f"{name} must be a finite number{rng}{context}; got {name}={value!r}."
        )
    return float(value)


def check_matrix(
    name: str, X: Any, *, dim: int | None = None, min_rows: int = 1
) -> np.ndarray:
    """Return ``X`` as a finite 2-D float array, or raise a named error."""
    try:
        X = np.asarray(X)
    except ValueError as exc:  # ragged rows
        raise ShapeMismatchError(
            f"{name} must be a 2-D array of shape (n_entities, dim); got rows of "
            f"different lengths ({' '.join(str(exc).split())[:120]})."
        ) from exc
    if X.ndim != 2:
        raise ShapeMismatchError(
            f"{name} must be a 2-D array of shape (n_entities, dim); "
            f"got an array of shape {X.shape}."
        )
    if not np.issubdtype(X.dtype, np.number) or np.issubdtype(
        X.dtype, np.complexfloating
    ):
        raise ShapeMismatchError(f"{name} must hold real numbers; got dtype {X.dtype}.")
    if X.shape[0] < min_rows:
        raise ShapeMismatchError(
            f"{name} must have at least {min_rows} rows; got {X.shape[0]}."
        )
    if dim is not None and X.shape[1] != dim:
        raise ShapeMismatchError(
            f"{name} must have {dim} columns to match; got {X.shape[1]}."
        )
    check_finite(name, X)
    return X


def check_finite(name: str, X: np.ndarray) -> np.ndarray:
    """Raise NonFiniteError naming ``name`` and the count of bad rows."""
    if np.issubdtype(X.dtype, np.floating) and not np.isfinite(X).all():
        bad = ~np.isfinite(X)
        rows = (
            int(bad.any(axis=tuple(range(1, X.ndim))).sum())
            if X.ndim > 1
            else int(bad.sum())
        )
        raise NonFiniteError(
            f"{name} must be finite; {rows} of {X.shape[0]} rows hold NaN or inf."
        )
    return X


def _range(low: Any, high: Any, bracket: str = "[") -> str:
    if low is None and high is None:
        return ""
    if high is None:
        return f" >= {low}" if bracket == "[" else f" > {low}"
    if low is None:
        return f" <= {high}"
    return f" in {bracket}{low}, {high}]"
