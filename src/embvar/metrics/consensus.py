"""Generalized Procrustes analysis: K runs aligned to their consensus.

Pairwise distances say how far two runs are; aligning all K runs to one
consensus says which entities move. Each entity's displacement is the
cosine distance between its aligned vector in a run and its consensus
vector.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from embvar.checks import check_float, check_int
from embvar.metrics._inputs import parallel_map, single_threaded_blas
from embvar.metrics.pairwise import CrossProducts, cross_products
from embvar.metrics.procrustes import rotation_from_cross

__all__ = ["GeneralizedProcrustesResult", "generalized_procrustes"]


@dataclass(frozen=True)
class GeneralizedProcrustesResult:
    """The outcome of :func:`generalized_procrustes`.

    Attributes
    ----------
    consensus : ndarray of shape (n_entities, dim)
        Mean of the aligned tables.
    aligned : ndarray of shape (K, n_entities, dim)
        Each run centred, scaled (if asked) and rotated onto the consensus;
        float32 when every input is float32, else float64.
    rotations : ndarray of shape (K, dim, dim)
        ``aligned[k] = standardized(tables[k]) @ rotations[k]``.
    displacement : ndarray of shape (K, n_entities)
        Cosine distance, in [0, 2], between each aligned row and the
        consensus row (1 where either row is zero).
    residual : float
        ``sum_k ||aligned[k] - consensus||_F^2`` at the end, in [0, K) for
        scaled tables.
    n_iter : int
        Iterations run.
    converged : bool
        Whether the relative change of the residual fell below ``tol``.
    """

    consensus: np.ndarray
    aligned: np.ndarray
    rotations: np.ndarray
    displacement: np.ndarray
    residual: float
    n_iter: int
    converged: bool

    @property
    def mean_displacement(self) -> np.ndarray:
        """Per-entity displacement averaged over runs, shape (n_entities,)."""
        return self.displacement.mean(axis=0)


def generalized_procrustes(
    tables: Sequence[Any],
    *,
    max_iter: int = 100,
    tol: float = 1e-10,
    scale: bool = True,
    names: Sequence[str] | None = None,
    products: CrossProducts | None = None,
) -> GeneralizedProcrustesResult:
    """Align K runs to their consensus by generalized Procrustes analysis.

    Parameters
    ----------
    tables : sequence of array-like of shape (n_entities, dim)
        The same entities, row for row, in K runs, of one dimension.
    max_iter : int, default=100
        Largest number of alignment rounds.
    tol : float, default=1e-10
        Stop when the residual changes by less than ``tol`` times itself.
    scale : bool, default=True
        Scale each centred table to unit Frobenius norm first, so runs of
        different overall scale weigh the same.
    names : sequence of str, optional
        Run names for error messages.
    products : CrossProducts, optional
        The tables' products from :func:`cross_products`, to reuse them.

    Returns
    -------
    GeneralizedProcrustesResult
        Consensus, aligned tables, rotations and per-entity displacement.

    Notes
    -----
    Each table is centred (and scaled) to ``T_k``. Starting from the
    rotations that align every table to the first, each round sets the
    consensus ``C = (1/K) sum_k T_k R_k`` and replaces each ``R_j`` by the
    orthogonal Procrustes solution of ``T_j R_j ~ C``. The residual
    ``sum_k ||T_k R_k - C||^2`` never increases. Because
    ``T_j^T C = (1/K) sum_k (T_j^T T_k) R_k``, a round needs only the
    ``dim x dim`` products of the pairs, computed once; the tables are read
    again only to form the aligned output.

    Invariant to any rotation, translation and (with ``scale``) isotropic
    scaling of each input: the consensus is defined up to one common
    rotation, and the displacement does not depend on it.

    References
    ----------
    Gower (1975), "Generalized Procrustes analysis", Psychometrika 40;
    Hamilton, Leskovec & Jurafsky (2016), "Diachronic word embeddings
    reveal statistical laws of semantic change", ACL (aligned cosine
    displacement).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(30, 3))
    >>> Q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    >>> result = generalized_procrustes([X, X @ Q, 2 * X])
    >>> bool(result.displacement.max() < 1e-9)
    True
    """
    max_iter = check_int("max_iter", max_iter, 1)
    tol = check_float("tol", tol, 0.0)
    P = products if products is not None else cross_products(tables, names=names)
    K, dim = P.n_runs, P.centered.shape[-1]

    # Step 1: products of the standardized tables T_k = (X_k - mean) / norm.
    norms = np.sqrt([max(float(np.trace(P.centered[k, k])), 0.0) for k in range(K)])
    factor = 1.0 / np.where(norms > 0, norms, 1.0) if scale else np.ones(K)
    G = P.centered * factor[:, None, None, None] * factor[None, :, None, None]
    sizes = np.array([np.trace(G[k, k]) for k in range(K)])

    # Steps 2-3 work on dim x dim matrices only: one BLAS thread is faster.
    with single_threaded_blas():
        # Step 2: start from the rotations that align each table to the first.
        R = np.stack([rotation_from_cross(G[k, 0]) for k in range(K)])
        residual = _residual(G, R, sizes)
        converged = False
        n_iter = 0
        while n_iter < max_iter:
            n_iter += 1

            # Step 3: R_j <- polar factor of T_j^T C, C = mean_k T_k R_k.
            cross = np.einsum("jkab,kbc->jac", G, R) / K
            R = np.stack([rotation_from_cross(M) for M in cross])
            updated = _residual(G, R, sizes)
            change = abs(residual - updated)
            residual = updated
            if change <= tol * max(residual, np.finfo(float).tiny):
                converged = True
                break

    # Step 4: the aligned tables, in the inputs' precision:
    # (X - mean) f R = X (f R) - mean f R, one product per run. The
    # consensus is accumulated in float64.
    dtype = np.result_type(*(np.asarray(T).dtype for T in tables), np.float32)
    aligned = np.empty((K, P.n_entities, dim), dtype=dtype)

    def align(k: int) -> None:
        M = factor[k] * R[k]
        np.matmul(np.asarray(tables[k], dtype), M.astype(dtype), out=aligned[k])
        aligned[k] -= (P.means[k] @ M).astype(dtype)

    parallel_map(align, range(K))
    consensus = aligned.sum(axis=0, dtype=np.float64) / K
    reference = consensus.astype(dtype)
    displacement = np.stack(
        parallel_map(lambda A: _cosine_distance(A, reference), aligned)
    )
    return GeneralizedProcrustesResult(
        consensus, aligned, R, displacement, float(residual), n_iter, converged
    )


def _residual(G: np.ndarray, R: np.ndarray, sizes: np.ndarray) -> float:
    """``sum_k ||T_k R_k - C||^2 = sum_k ||T_k||^2 - K ||C||^2``."""
    K = len(R)
    consensus_sq = np.einsum("jac,jkab,kbc->", R, G, R) / K**2
    return float(max(sizes.sum() - K * consensus_sq, 0.0))


def _cosine_distance(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Row-wise ``1 - cos(a, b)``; 1 where either row is zero."""
    dots = np.einsum("ij,ij->i", A, B)
    norms = np.linalg.norm(A, axis=1) * np.linalg.norm(B, axis=1)
    cosine = np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0)
    return 1.0 - cosine.astype(np.float64)
