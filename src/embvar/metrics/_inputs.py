"""Input checks and shared linear-algebra steps for the metrics.

Every public metric validates its tables here, so a bad table is rejected
the same way everywhere: the message names the argument, what it must be,
and what was received.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from typing import Any, TypeVar

import numpy as np

from embvar.checks import check_int, check_matrix
from embvar.errors import ShapeMismatchError

__all__ = [
    "check_pair",
    "check_table",
    "centered",
    "nuclear_norm",
    "parallel_map",
    "single_threaded_blas",
    "one_blas_thread",
    "thread_count",
]

T = TypeVar("T")


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
    with single_threaded_blas():
        return float(np.linalg.svd(M, compute_uv=False).sum())


def single_threaded_blas() -> AbstractContextManager[Any]:
    """Limit BLAS and LAPACK to one thread inside a ``with`` block.

    Two uses: small (``dim x dim``) decompositions, which run hundreds of
    times slower with threads on a busy machine (thread wake-ups cost more
    than the work), and our own worker threads, which each run their BLAS
    calls on one core. The limit is process-wide while the block runs.
    Without threadpoolctl (it comes with scikit-learn) nothing is limited.
    """
    controller = _blas_controller()
    if controller is None:
        return nullcontext()
    return controller.limit(limits=1, user_api="blas")


F = TypeVar("F", bound=Callable[..., Any])


def one_blas_thread(function: F) -> F:
    """Run ``function`` under :func:`single_threaded_blas`.

    For metrics made of ``n x dim`` by ``dim x dim`` products: on one
    thread these take milliseconds, and they cannot be slowed by BLAS
    threads that wait for busy cores.
    """

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with single_threaded_blas():
            return function(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


@functools.cache
def _blas_controller() -> Any:
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - optional speed-up
        return None
    return ThreadpoolController()


def thread_count(n_threads: int | None) -> int:
    """Return ``n_threads``, or the number of cores this process may use."""
    if n_threads is not None:
        return check_int("n_threads", n_threads, 1)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def parallel_map(
    function: Callable[[Any], T], items: Iterable[Any], n_threads: int | None = None
) -> list[T]:
    """Return ``[function(item) for item in items]``, computed on threads.

    Each thread runs its NumPy work with one BLAS thread, so the cores are
    shared by our threads rather than oversubscribed by BLAS's own. NumPy
    releases the GIL in matrix products and ufuncs, which is where the
    work is.
    """
    items = list(items)
    workers = min(thread_count(n_threads), len(items))
    if workers <= 1:
        return [function(item) for item in items]
    with single_threaded_blas(), ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(function, items))
