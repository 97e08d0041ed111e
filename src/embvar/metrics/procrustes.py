"""Distances between two runs' spaces up to rotation (and translation, scale).

Two runs of a model whose loss depends only on dot products or distances
can land on rotated copies of one another. Orthogonal Procrustes analysis
finds the rotation that best maps one table onto the other and reports what
is left; every quantity here comes from the ``dim x dim`` cross-product
``X^T Y``, never from an ``n x n`` matrix.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from embvar.metrics._inputs import (
    centered,
    check_pair,
    nuclear_norm,
    one_blas_thread,
    single_threaded_blas,
)

__all__ = [
    "procrustes_distance",
    "angular_shape_distance",
    "procrustes_rotation",
]


@one_blas_thread
def procrustes_distance(
    X: Any, Y: Any, *, center: bool = True, scale: bool = True
) -> float:
    """Return the orthogonal Procrustes distance between two runs.

    Parameters
    ----------
    X, Y : array-like of shape (n_entities, dim)
        The same entities, row for row, in two runs. If the dimensions
        differ, the narrower table is padded with zero columns.
    center : bool, default=True
        Subtract each column's mean first (invariance to translation).
    scale : bool, default=True
        Divide each table by its Frobenius norm and let the fit rescale
        ``Y`` (invariance to isotropic scaling).

    Returns
    -------
    distance : float
        0 when one table is a rotated (translated, scaled) copy of the
        other. In [0, 1] with ``scale=True``; in
        ``[0, ||X||_F + ||Y||_F]`` otherwise.

    Notes
    -----
    With ``X`` and ``Y`` centred (if ``center``) and ``||.||_*`` the
    nuclear norm (sum of singular values):

    - ``scale=False``: ``d = min_R ||X - Y R||_F`` over orthogonal ``R``,
      ``d^2 = ||X||_F^2 + ||Y||_F^2 - 2 ||X^T Y||_*``.
    - ``scale=True``: with ``X`` and ``Y`` of unit Frobenius norm,
      ``d = min_{R, s} ||X - s Y R||_F``, ``d^2 = 1 - ||X^T Y||_*^2``.
      ``d^2`` equals the ``disparity`` of :func:`scipy.spatial.procrustes`.

    Symmetric in ``X`` and ``Y``. Invariant to any orthogonal transform of
    either table, to translation (``center``) and to isotropic scaling
    (``scale``); not to a general invertible linear map.

    References
    ----------
    Schönemann (1966), "A generalized solution of the orthogonal Procrustes
    problem", Psychometrika 31; Gower (1975), "Generalized Procrustes
    analysis", Psychometrika 40.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(100, 3))
    >>> R, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(3, 3)))
    >>> round(procrustes_distance(X, 2.0 * X @ R + 1.0), 6)
    0.0
    """
    X, Y = check_pair(X, Y, same_dim=False)
    X, Y = _standardized(X, Y, center, scale)
    return _distance_from_products(
        float(np.einsum("ij,ij->", X, X)),
        float(np.einsum("ij,ij->", Y, Y)),
        X.T @ Y,
        scale,
    )


@one_blas_thread
def angular_shape_distance(X: Any, Y: Any) -> float:
    """Return the angle between two runs' centred, normalised shapes.

    Parameters
    ----------
    X, Y : array-like of shape (n_entities, dim)
        The same entities, row for row, in two runs.

    Returns
    -------
    angle : float
        In radians, in [0, pi/2]; 0 when one table is a rotated,
        translated and scaled copy of the other.

    Notes
    -----
    ``theta = arccos(||X^T Y||_*)`` with ``X`` and ``Y`` centred and of
    unit Frobenius norm. Unlike the Procrustes distance this is a metric
    on shapes (it obeys the triangle inequality). Symmetric; invariant to
    rotation, translation and isotropic scaling.

    References
    ----------
    Williams, Kunz, Kornblith & Linderman (2021), "Generalized shape
    metrics on neural representations", NeurIPS.
    """
    X, Y = check_pair(X, Y, same_dim=False)
    X, Y = _standardized(X, Y, center=True, scale=True)
    return _angle_from_products(X.T @ Y)


@one_blas_thread
def procrustes_rotation(X: Any, Y: Any, *, center: bool = True) -> np.ndarray:
    """Return the orthogonal matrix ``R`` that minimises ``||X - Y R||_F``.

    Parameters
    ----------
    X, Y : array-like of shape (n_entities, dim)
        Target and source tables, same shape.
    center : bool, default=True
        Fit the rotation on centred tables.

    Returns
    -------
    R : ndarray of shape (dim, dim)
        ``Y @ R`` is ``Y`` rotated onto ``X``.

    Notes
    -----
    With ``Y^T X = W Sigma V^T`` (singular value decomposition),
    ``R = W V^T`` (Schönemann, 1966).
    """
    X, Y = check_pair(X, Y)
    if center:
        X, Y = centered(X), centered(Y)
    return rotation_from_cross(np.asarray(Y, np.float64).T @ np.asarray(X, np.float64))


def rotation_from_cross(YtX: np.ndarray) -> np.ndarray:
    """Return ``W V^T`` from the SVD ``Y^T X = W Sigma V^T``."""
    with single_threaded_blas():
        W, _, Vt = np.linalg.svd(YtX)
        return W @ Vt


def _standardized(
    X: np.ndarray, Y: np.ndarray, center: bool, scale: bool
) -> tuple[np.ndarray, np.ndarray]:
    X = centered(X) if center else np.asarray(X, dtype=np.float64)
    Y = centered(Y) if center else np.asarray(Y, dtype=np.float64)
    if scale:
        X = X / _norm_or_one(X)
        Y = Y / _norm_or_one(Y)
    return X, Y


def _norm_or_one(X: np.ndarray) -> float:
    """Frobenius norm, or 1 for an all-zero table (nothing to rescale)."""
    norm = float(np.linalg.norm(X))
    return norm if norm > 0 else 1.0


def _distance_from_products(
    xx: float, yy: float, XtY: np.ndarray, scale: bool
) -> float:
    """Procrustes distance from ``||X||^2``, ``||Y||^2`` and ``X^T Y``."""
    return distance_from_nuclear(xx, yy, nuclear_norm(XtY), scale)


def distance_from_nuclear(xx: float, yy: float, nuclear: float, scale: bool) -> float:
    """Procrustes distance from ``||X||^2``, ``||Y||^2`` and ``||X^T Y||_*``."""
    if scale:
        # Normalise by the norms (1 here unless a table was all zeros).
        nuclear = nuclear / np.sqrt(xx * yy) if xx > 0 and yy > 0 else 0.0
        return float(np.sqrt(max(0.0, 1.0 - min(nuclear, 1.0) ** 2)))
    return float(np.sqrt(max(0.0, xx + yy - 2.0 * nuclear)))


def _angle_from_products(XtY: np.ndarray) -> float:
    return angle_from_nuclear(nuclear_norm(XtY))


def angle_from_nuclear(nuclear: float) -> float:
    """Angular shape distance from ``||X^T Y||_*`` of unit-norm tables."""
    return float(np.arccos(np.clip(nuclear, -1.0, 1.0)))
