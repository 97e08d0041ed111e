"""Every pairwise metric for a set of K runs, from one pass over the tables.

The geometry metrics of a pair depend on the tables only through their
``dim x dim`` products ``X_j^T X_k``. :func:`cross_products` computes all
of them for K runs at once, as the Gram matrix of the side-by-side table
``[X_1 ... X_K]`` built block of rows by block of rows, so comparing 10
runs of 100,000 entities costs one pass over the data and a few hundred
small matrix operations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from embvar.checks import check_choice
from embvar.errors import ShapeMismatchError
from embvar.metrics._inputs import (
    check_table,
    nuclear_norm,
    parallel_map,
    single_threaded_blas,
    thread_count,
)
from embvar.metrics.cka import cka_from_products
from embvar.metrics.procrustes import angle_from_nuclear, distance_from_nuclear
from embvar.metrics.spectral import (
    basis_coefficients,
    overlap_from_bases,
    pip_from_products,
)

__all__ = ["PAIRWISE_METRICS", "CrossProducts", "cross_products", "pairwise_metrics"]

#: Names accepted by :func:`pairwise_metrics`, with the function each matches.
PAIRWISE_METRICS = {
    "procrustes": "procrustes_distance(X, Y)",
    "procrustes_unscaled": "procrustes_distance(X, Y, scale=False)",
    "angular_shape": "angular_shape_distance(X, Y)",
    "linear_cka": "linear_cka(X, Y)",
    "pip_loss": "pip_loss(X, Y)",
    "eigenspace_overlap": "eigenspace_overlap(X, Y)",
    "relative_frobenius": "relative_frobenius(X, Y)",
    "mean_abs_difference": "mean_abs_difference(X, Y)",
}

_DISTANCES = {
    "procrustes",
    "procrustes_unscaled",
    "angular_shape",
    "pip_loss",
    "relative_frobenius",
    "mean_abs_difference",
}

# Rows per block of the pass over the tables (float64 copies of one block
# of every table stay a few MB).
_BLOCK_ROWS = 4096


@dataclass(frozen=True)
class CrossProducts:
    """The ``dim x dim`` products of K tables.

    Attributes
    ----------
    centered : ndarray of shape (K, K, dim, dim)
        ``centered[j, k] = X_j^T X_k`` for the column-centred tables.
    means : ndarray of shape (K, dim)
        Column means of each table.
    n_entities : int
        Number of rows of each table.
    abs_difference : ndarray of shape (K, K)
        ``sum |X_j - X_k|`` over all coordinates of the raw tables.
    """

    centered: np.ndarray
    means: np.ndarray
    n_entities: int
    abs_difference: np.ndarray

    @property
    def n_runs(self) -> int:
        """Number of tables K."""
        return self.centered.shape[0]

    def raw(self, j: int, k: int) -> np.ndarray:
        """Return ``X_j^T X_k`` for the uncentred tables."""
        return self.centered[j, k] + self.n_entities * np.outer(
            self.means[j], self.means[k]
        )


def cross_products(
    tables: Sequence[Any], *, names: Sequence[str] | None = None
) -> CrossProducts:
    """Return the ``dim x dim`` products of every pair of K tables.

    Parameters
    ----------
    tables : sequence of array-like of shape (n_entities, dim)
        The same entities, row for row, in K runs, all of one dimension.
    names : sequence of str, optional
        Run names for error messages; default ``tables[0]``, ...

    Returns
    -------
    CrossProducts
        Centred products, column means, and absolute differences.

    Raises
    ------
    ShapeMismatchError
        If the tables differ in shape.
    NonFiniteError
        If a table holds NaN or inf; the message names the run.
    """
    checked = _check_tables(tables, names)
    K = len(checked)
    n, dim = checked[0].shape

    # Pass 1: column means (float64 accumulation).
    means = np.stack([T.mean(axis=0, dtype=np.float64) for T in checked])

    # Pass 2, split by rows over the cores: Gram matrix of the side-by-side
    # centred tables, and sums of absolute differences of the raw tables.
    n_threads = thread_count(None)
    bounds = np.linspace(0, n, n_threads + 1).astype(int)
    parts = parallel_map(
        lambda i: _accumulate(checked, means, bounds[i], bounds[i + 1]),
        range(n_threads),
    )
    gram = np.sum([part[0] for part in parts], axis=0)
    abs_difference = np.sum([part[1] for part in parts], axis=0)
    abs_difference += abs_difference.T
    gram = np.triu(gram) + np.triu(gram, 1).T
    centered = gram.reshape(K, dim, K, dim).transpose(0, 2, 1, 3)
    return CrossProducts(np.ascontiguousarray(centered), means, n, abs_difference)


def _accumulate(
    tables: list[np.ndarray], means: np.ndarray, first: int, last: int
) -> tuple[np.ndarray, np.ndarray]:
    """Upper blocks of the centred Gram matrix and the absolute differences
    of rows ``first:last``, in the tables' dtype and summed in float64."""
    K, dim = means.shape
    dtype = np.result_type(*tables)
    gram = np.zeros((K * dim, K * dim))
    abs_difference = np.zeros((K, K))

    # Runs in groups about 256 columns wide; only the group products on and
    # above the diagonal are computed, each a large, contiguous GEMM.
    per_group = max(1, 256 // dim)
    groups = [range(g, min(g + per_group, K)) for g in range(0, K, per_group)]
    height = min(last - first, _BLOCK_ROWS)
    buffers = [np.empty((height, len(g), dim)) for g in groups]
    for start in range(first, last, _BLOCK_ROWS):
        stop = min(start + _BLOCK_ROWS, last)
        raw = np.stack([np.asarray(T[start:stop], dtype) for T in tables])
        blocks = []
        for runs, buffer in zip(groups, buffers, strict=True):
            rows = buffer[: stop - start]
            np.subtract(raw[runs].transpose(1, 0, 2), means[runs], out=rows)
            blocks.append(rows.reshape(stop - start, -1))
        for p, (runs_p, block_p) in enumerate(zip(groups, blocks, strict=True)):
            cols_p = slice(runs_p[0] * dim, (runs_p[-1] + 1) * dim)
            for runs_q, block_q in zip(groups[p:], blocks[p:], strict=True):
                cols_q = slice(runs_q[0] * dim, (runs_q[-1] + 1) * dim)
                gram[cols_p, cols_q] += block_p.T @ block_q
        for j in range(K - 1):
            sums = np.abs(raw[j + 1 :] - raw[j]).sum(axis=(1, 2), dtype=np.float64)
            abs_difference[j, j + 1 :] += sums
    return gram, abs_difference


def pairwise_metrics(
    tables: Sequence[Any] | CrossProducts,
    metrics: Sequence[str] | None = None,
    *,
    names: Sequence[str] | None = None,
) -> dict[str, np.ndarray]:
    """Return each pairwise metric for every pair of K runs.

    Parameters
    ----------
    tables : sequence of array-like of shape (n_entities, dim), or CrossProducts
        The same entities, row for row, in K runs; or their products from
        :func:`cross_products`, to reuse them.
    metrics : sequence of str, optional
        Names from :data:`PAIRWISE_METRICS`; default all of them.
    names : sequence of str, optional
        Run names for error messages.

    Returns
    -------
    matrices : dict of str to ndarray of shape (K, K)
        Symmetric matrices; entry ``[j, k]`` equals the named function
        applied to tables ``j`` and ``k`` (to rounding), and the diagonal
        holds each metric's value for identical tables.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(100, 4))
    >>> Q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    >>> M = pairwise_metrics([X, X @ Q, rng.normal(size=(100, 4))], ["linear_cka"])
    >>> bool(np.isclose(M["linear_cka"][0, 1], 1.0))
    True
    """
    metrics = list(PAIRWISE_METRICS) if metrics is None else list(metrics)
    for name in metrics:
        check_choice("metrics", name, tuple(PAIRWISE_METRICS))
    P = (
        tables
        if isinstance(tables, CrossProducts)
        else cross_products(tables, names=names)
    )
    K = P.n_runs

    # Per-run quantities, computed once.
    with single_threaded_blas():
        runs = [_RunSummary.of(P, j) for j in range(K)]

    out = {name: np.zeros((K, K)) for name in metrics}
    with single_threaded_blas():
        for j in range(K):
            for k in range(j, K):
                values = _pair_metrics(P, runs[j], runs[k], j, k, metrics)
                for name, value in values.items():
                    out[name][j, k] = out[name][k, j] = value

    # A table is at distance 0 from itself; skip the rounding of the formulas.
    for name in set(metrics) & _DISTANCES:
        np.fill_diagonal(out[name], 0.0)
    return out


@dataclass(frozen=True)
class _RunSummary:
    """What every pair involving one run reuses."""

    centered_norm: float  # ||X - mean||_F^2
    raw_gram: np.ndarray  # X^T X
    raw_norm: float  # ||X||_F^2
    basis: np.ndarray  # B with X B an orthonormal basis of X's columns

    @classmethod
    def of(cls, P: CrossProducts, j: int) -> _RunSummary:
        raw = P.raw(j, j)
        return cls(
            float(np.trace(P.centered[j, j])),
            raw,
            float(np.trace(raw)),
            basis_coefficients(raw),
        )


def _pair_metrics(
    P: CrossProducts,
    a: _RunSummary,
    b: _RunSummary,
    j: int,
    k: int,
    metrics: list[str],
) -> dict[str, float]:
    C = P.centered[j, k]
    raw = P.raw(j, k)
    nuclear = nuclear_norm(C)
    values: dict[str, float] = {}
    for name in metrics:
        if name == "procrustes":
            values[name] = distance_from_nuclear(
                a.centered_norm, b.centered_norm, nuclear, True
            )
        elif name == "procrustes_unscaled":
            values[name] = distance_from_nuclear(
                a.centered_norm, b.centered_norm, nuclear, False
            )
        elif name == "angular_shape":
            scale = np.sqrt(a.centered_norm * b.centered_norm)
            values[name] = angle_from_nuclear(nuclear / scale) if scale else np.pi / 2
        elif name == "linear_cka":
            values[name] = cka_from_products(P.centered[j, j], P.centered[k, k], C)
        elif name == "pip_loss":
            values[name] = pip_from_products(a.raw_gram, b.raw_gram, raw)
        elif name == "eigenspace_overlap":
            values[name] = overlap_from_bases(a.basis, b.basis, raw)
        elif name == "relative_frobenius":
            squared = a.raw_norm + b.raw_norm - 2.0 * float(np.trace(raw))
            total = np.sqrt(a.raw_norm) + np.sqrt(b.raw_norm)
            distance = 2.0 * np.sqrt(max(squared, 0.0)) / total if total else 0.0
            values[name] = float(distance)
        elif name == "mean_abs_difference":
            values[name] = float(P.abs_difference[j, k]) / (P.n_entities * C.shape[0])
    return values


def _check_tables(
    tables: Sequence[Any], names: Sequence[str] | None
) -> list[np.ndarray]:
    if len(tables) == 0:
        raise ShapeMismatchError("tables must hold at least one table; got none.")
    if names is None:
        names = [f"tables[{i}]" for i in range(len(tables))]
    if len(names) != len(tables):
        raise ShapeMismatchError(
            f"names must give one name per table; got {len(names)} names for "
            f"{len(tables)} tables."
        )
    checked = [check_table(str(name), T) for name, T in zip(names, tables, strict=True)]
    shape = checked[0].shape
    for name, T in zip(names, checked, strict=True):
        if T.shape != shape:
            raise ShapeMismatchError(
                f"every table must have the shape of {names[0]}, {shape}; "
                f"{name} has shape {T.shape}. Match the tables on their ids "
                "with embvar.metrics.match_ids first."
            )
    return checked
