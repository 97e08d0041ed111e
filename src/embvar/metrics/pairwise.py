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
from scipy.linalg.blas import dsyrk

from embvar.checks import check_choice
from embvar.errors import ShapeMismatchError
from embvar.metrics._inputs import check_table
from embvar.metrics.cka import cka_from_products
from embvar.metrics.procrustes import _angle_from_products, _distance_from_products
from embvar.metrics.spectral import overlap_from_products, pip_from_products

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

    # Pass 2: Gram matrix of the side-by-side centred block, and the sums
    # of absolute differences of the raw blocks.
    gram = np.zeros((K * dim, K * dim), order="F")
    abs_difference = np.zeros((K, K))
    for start in range(0, n, _BLOCK_ROWS):
        raw = np.stack(
            [np.asarray(T[start : start + _BLOCK_ROWS], np.float64) for T in checked]
        )
        block = (raw - means[:, None, :]).transpose(1, 0, 2).reshape(-1, K * dim)
        # Upper triangle of block^T block (BLAS syrk: half a GEMM's flops).
        gram = dsyrk(1.0, block.T, beta=1.0, c=gram, overwrite_c=True)
        for j in range(K - 1):
            sums = np.abs(raw[j + 1 :] - raw[j]).sum(axis=(1, 2))
            abs_difference[j, j + 1 :] += sums
    abs_difference += abs_difference.T
    gram = np.triu(gram) + np.triu(gram, 1).T
    centered = gram.reshape(K, dim, K, dim).transpose(0, 2, 1, 3)
    return CrossProducts(np.ascontiguousarray(centered), means, n, abs_difference)


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
    K, n = P.n_runs, P.n_entities

    # Per-run quantities, computed once.
    norms_c = [float(np.trace(P.centered[j, j])) for j in range(K)]
    raw_grams = [P.raw(j, j) for j in range(K)]
    norms_raw = [float(np.trace(G)) for G in raw_grams]

    out = {name: np.zeros((K, K)) for name in metrics}
    for j in range(K):
        for k in range(j, K):
            values = _pair_metrics(P, j, k, metrics, norms_c, raw_grams, norms_raw, n)
            for name, value in values.items():
                out[name][j, k] = out[name][k, j] = value

    # A table is at distance 0 from itself; skip the rounding of the formulas.
    for name in set(metrics) & _DISTANCES:
        np.fill_diagonal(out[name], 0.0)
    return out


def _pair_metrics(
    P: CrossProducts,
    j: int,
    k: int,
    metrics: list[str],
    norms_c: list[float],
    raw_grams: list[np.ndarray],
    norms_raw: list[float],
    n: int,
) -> dict[str, float]:
    C = P.centered[j, k]
    values: dict[str, float] = {}
    for name in metrics:
        if name == "procrustes":
            values[name] = _distance_from_products(norms_c[j], norms_c[k], C, True)
        elif name == "procrustes_unscaled":
            values[name] = _distance_from_products(norms_c[j], norms_c[k], C, False)
        elif name == "angular_shape":
            scale = np.sqrt(norms_c[j] * norms_c[k])
            values[name] = _angle_from_products(C / scale) if scale > 0 else np.pi / 2
        elif name == "linear_cka":
            values[name] = cka_from_products(P.centered[j, j], P.centered[k, k], C)
        elif name == "pip_loss":
            values[name] = pip_from_products(raw_grams[j], raw_grams[k], P.raw(j, k))
        elif name == "eigenspace_overlap":
            values[name] = overlap_from_products(
                raw_grams[j], raw_grams[k], P.raw(j, k)
            )
        elif name == "relative_frobenius":
            squared = norms_raw[j] + norms_raw[k] - 2.0 * np.trace(P.raw(j, k))
            total = np.sqrt(norms_raw[j]) + np.sqrt(norms_raw[k])
            distance = 2.0 * np.sqrt(max(float(squared), 0.0)) / total if total else 0.0
            values[name] = float(distance)
        elif name == "mean_abs_difference":
            values[name] = float(P.abs_difference[j, k]) / (n * C.shape[0])
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
