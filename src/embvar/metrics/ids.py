"""Lining up two runs whose rows carry entity ids."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from embvar.errors import DataError

__all__ = ["IdMatch", "match_ids"]


@dataclass(frozen=True)
class IdMatch:
    """Rows of two runs that hold the same entities.

    Attributes
    ----------
    index_a, index_b : ndarray of shape (n_common,), dtype int64
        ``X_a[index_a]`` and ``X_b[index_b]`` are the same entities, row for
        row, in the order the ids appear in ``ids_a``.
    ids : ndarray of shape (n_common,)
        The shared ids, in that order.
    n_a, n_b : int
        Number of ids on each side.
    """

    index_a: np.ndarray
    index_b: np.ndarray
    ids: np.ndarray
    n_a: int
    n_b: int

    @property
    def n_common(self) -> int:
        """Number of shared ids."""
        return len(self.ids)

    @property
    def coverage_a(self) -> float:
        """Share of run a's entities that run b also has, in (0, 1]."""
        return self.n_common / self.n_a

    @property
    def coverage_b(self) -> float:
        """Share of run b's entities that run a also has, in (0, 1]."""
        return self.n_common / self.n_b


def match_ids(ids_a: Any, ids_b: Any) -> IdMatch:
    """Return the rows of two runs that share an entity id.

    Parameters
    ----------
    ids_a : array-like of shape (n_a,)
        Entity id of each row of run a (ints or strings), all distinct.
    ids_b : array-like of shape (n_b,)
        Entity id of each row of run b, all distinct.

    Returns
    -------
    IdMatch
        Index arrays into each run for the shared ids, and the coverage.

    Raises
    ------
    DataError
        If an id repeats within a run, or the runs share no id.

    Examples
    --------
    >>> match = match_ids(["a", "b", "c"], ["c", "a", "d", "e"])
    >>> match.index_a.tolist(), match.index_b.tolist(), match.coverage_b
    ([0, 2], [1, 0], 0.5)
    """
    ids_a = _check_ids("ids_a", ids_a)
    ids_b = _check_ids("ids_b", ids_b)
    common, index_a, index_b = np.intersect1d(
        ids_a, ids_b, assume_unique=True, return_indices=True
    )
    if len(common) == 0:
        raise DataError(
            f"ids_a and ids_b must share at least one id; got {len(ids_a)} and "
            f"{len(ids_b)} ids with none in common (first ids: "
            f"{ids_a[:3].tolist()} and {ids_b[:3].tolist()}). Check that both "
            "runs use the same id column and type."
        )

    # Keep run a's row order.
    order = np.argsort(index_a, kind="stable")
    return IdMatch(
        index_a[order].astype(np.int64),
        index_b[order].astype(np.int64),
        common[order],
        len(ids_a),
        len(ids_b),
    )


def _check_ids(name: str, ids: Any) -> np.ndarray:
    ids = np.asarray(ids)
    if ids.ndim != 1 or ids.size == 0:
        raise DataError(
            f"{name} must be a non-empty 1-D array of ids; got shape {ids.shape}."
        )
    unique, counts = np.unique(ids, return_counts=True)
    if len(unique) != len(ids):
        repeated = unique[counts > 1]
        raise DataError(
            f"{name} must hold distinct ids; {len(repeated)} ids repeat, e.g. "
            f"{repeated[:3].tolist()}."
        )
    return ids
