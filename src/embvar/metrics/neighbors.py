"""Nearest neighbours of every entity, and how much two runs agree on them.

Two runs can disagree on every coordinate and still put the same entities
next to each other. The k-NN overlap measures that: for each entity, the
share of its k nearest neighbours in one run that are also among its k
nearest neighbours in the other.

Neighbours are found in one of three ways:

- ``"exact"``: blocked float32 matrix products on this machine's cores,
  keeping the k best columns of each block (see :func:`knn_indices`);
- ``"faiss"``: FAISS's exact flat inner-product index;
- ``"approx"``: a FAISS inverted-file index whose number of probed lists is
  raised until its recall, measured against exact neighbours on a seeded
  sample of queries, reaches ``recall_target``.

``"auto"`` picks ``"exact"`` up to :data:`AUTO_EXACT_MAX_ROWS` rows and
``"approx"`` above.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from embvar.checks import check_choice, check_float, check_int
from embvar.errors import DependencyError, ShapeMismatchError
from embvar.metrics._inputs import (
    check_pair,
    check_table,
    parallel_map,
    thread_count,
)

__all__ = [
    "AUTO_EXACT_MAX_ROWS",
    "NeighborSets",
    "knn_indices",
    "knn_recall",
    "knn_overlap",
    "neighbor_overlap",
    "neighbor_sets",
]

Metric = Literal["cosine", "dot"]
Method = Literal["auto", "exact", "faiss", "approx"]
OverlapKind = Literal["overlap", "jaccard"]

METRICS = ("cosine", "dot")
METHODS = ("auto", "exact", "faiss", "approx")
KINDS = ("overlap", "jaccard")

#: Tables with at most this many rows get exact neighbours under "auto".
AUTO_EXACT_MAX_ROWS = 50_000

# Rows of queries per block of the exact search: with two workers the score
# blocks (rows x n floats each) stay close to the last-level cache.
_BLOCK_ROWS = 128


def knn_indices(
    X: Any,
    k: int = 10,
    *,
    metric: Metric = "cosine",
    method: Method = "auto",
    n_threads: int | None = None,
    recall_target: float = 0.98,
    seed: int = 0,
) -> np.ndarray:
    """Return the indices of each row's k nearest other rows.

    Parameters
    ----------
    X : array-like of shape (n_entities, dim)
        One embedding table; rows are entities.
    k : int, default=10
        Number of neighbours, in [1, n_entities - 1]. An entity is never its
        own neighbour.
    metric : {"cosine", "dot"}, default="cosine"
        Similarity to rank by. Rows of zero norm have cosine similarity 0 to
        every row.
    method : {"auto", "exact", "faiss", "approx"}, default="auto"
        How to search; see the module docstring. "auto" is "exact" up to
        ``AUTO_EXACT_MAX_ROWS`` rows and "approx" above.
    n_threads : int, optional
        Worker threads of the exact search; default: the cores this process
        may use.
    recall_target : float, default=0.98
        For "approx": the recall@k, against exact neighbours on a seeded
        sample of queries, that the index is tuned to reach.
    seed : int, default=0
        Seed of the sample of queries and of the index training ("approx").

    Returns
    -------
    indices : ndarray of shape (n_entities, k), dtype int64
        Row ``i`` holds the neighbours of entity ``i``, most similar first.
        Ties are broken arbitrarily.

    Raises
    ------
    ConfigError
        If ``k``, ``metric`` or ``method`` is out of range.
    NonFiniteError
        If ``X`` holds NaN or inf.

    Notes
    -----
    The exact search computes the similarities of a block of query rows to
    all rows with one float32 matrix product per slice of ``m`` columns. It
    keeps, per query, the running maximum over slices of each column
    position: the ``k`` positions whose maximum is largest contain the
    ``k`` largest similarities (every value outside them is below ``k``
    values inside), so only ``k * n / m`` candidates are ranked. The work
    is the ``2 n^2 dim`` flops of the products, spread over ``n_threads``
    threads.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> knn_indices(X, k=1)
    array([[1],
           [0],
           [3],
           [2]])
    """
    X = check_table("X", X, min_rows=2)
    n = X.shape[0]
    k = check_int("k", k, 1, n - 1, context=f" (the table has {n} rows)")
    check_choice("metric", metric, METRICS)
    check_choice("method", method, METHODS)
    recall_target = check_float("recall_target", recall_target, 0.0, 1.0)
    if method == "auto":
        method = "exact" if n <= AUTO_EXACT_MAX_ROWS else "approx"

    Z = _prepare(X, metric)
    if method == "exact":
        return _exact_search(Z, k, thread_count(n_threads))
    if method == "faiss":
        return _faiss_flat_search(Z, k)
    return _approx_search(Z, k, recall_target, seed)[0]


def knn_recall(
    X: Any,
    indices: Any,
    *,
    metric: Metric = "cosine",
    n_queries: int = 1000,
    seed: int = 0,
) -> float:
    """Return the recall@k of ``indices`` against exact neighbours.

    Parameters
    ----------
    X : array-like of shape (n_entities, dim)
        The table the neighbours were searched in.
    indices : array-like of shape (n_entities, k)
        Neighbours to check, e.g. from ``knn_indices(X, method="approx")``.
    metric : {"cosine", "dot"}, default="cosine"
        The similarity ``indices`` were ranked by.
    n_queries : int, default=1000
        Size of the seeded sample of query rows (all rows if fewer).
    seed : int, default=0
        Seed of the sample.

    Returns
    -------
    recall : float in [0, 1]
        Mean over the sampled rows of ``|approx ∩ exact| / k``.
    """
    X = check_table("X", X, min_rows=2)
    indices = _check_indices("indices", indices, X.shape[0])
    check_choice("metric", metric, METRICS)
    n_queries = check_int("n_queries", n_queries, 1)
    Z = _prepare(X, metric)
    rows = _sample_rows(Z.shape[0], n_queries, seed)
    exact = _exact_rows(Z, rows, indices.shape[1], thread_count(None))
    return float(neighbor_overlap(indices[rows], exact).mean())


def neighbor_overlap(
    indices_a: Any, indices_b: Any, *, kind: OverlapKind = "overlap"
) -> np.ndarray:
    """Return each entity's overlap between two neighbour lists.

    Parameters
    ----------
    indices_a, indices_b : array-like of shape (n_entities, k)
        Neighbour indices of the same entities in two runs, e.g. from
        :func:`knn_indices`. Each row must hold distinct indices; negative
        entries (an approximate search that found fewer than k) count as
        not shared.
    kind : {"overlap", "jaccard"}, default="overlap"
        ``"overlap"`` is ``|A ∩ B| / k``; ``"jaccard"`` is
        ``|A ∩ B| / |A ∪ B|``.

    Returns
    -------
    overlap : ndarray of shape (n_entities,)
        Values in [0, 1]; 1 where both runs give the same neighbour set.

    Notes
    -----
    Symmetric in the two runs, and invariant to the order of the
    neighbours within a row.
    """
    check_choice("kind", kind, KINDS)
    A = np.asarray(indices_a)
    B = np.asarray(indices_b)
    if A.ndim != 2 or A.shape != B.shape:
        raise ShapeMismatchError(
            "indices_a and indices_b must be 2-D arrays of the same shape "
            f"(n_entities, k); got shapes {A.shape} and {B.shape}."
        )
    _check_integers("indices_a", A)
    _check_integers("indices_b", B)
    k = A.shape[1]

    shared = _shared_counts(A, B)
    if kind == "overlap":
        return shared / k
    return shared / (2 * k - shared)


def knn_overlap(
    X: Any,
    Y: Any,
    k: int = 10,
    *,
    metric: Metric = "cosine",
    kind: OverlapKind = "overlap",
    method: Method = "auto",
    n_threads: int | None = None,
) -> np.ndarray:
    """Return each entity's k-NN overlap between two runs.

    Parameters
    ----------
    X, Y : array-like of shape (n_entities, dim)
        The same entities, row for row, in two runs (dimensions may
        differ).
    k : int, default=10
        Number of neighbours, in [1, n_entities - 1].
    metric : {"cosine", "dot"}, default="cosine"
        Similarity that ranks the neighbours.
    kind : {"overlap", "jaccard"}, default="overlap"
        ``|A ∩ B| / k`` or ``|A ∩ B| / |A ∪ B|``.
    method : {"auto", "exact", "faiss", "approx"}, default="auto"
        Neighbour search; see :func:`knn_indices`. To see the measured
        recall of an approximate search, use :func:`neighbor_sets`.
    n_threads : int, optional
        Worker threads of the exact search.

    Returns
    -------
    overlap : ndarray of shape (n_entities,)
        Values in [0, 1]; the mean is the usual "overlap@k".

    Notes
    -----
    ``overlap_i = |N_k^X(i) ∩ N_k^Y(i)| / k`` where ``N_k^X(i)`` is the set
    of the k nearest neighbours of entity ``i`` in ``X``. Symmetric.
    Invariant to any rotation and isotropic scaling of either table (with
    cosine, also to rescaling rows); not invariant to translation. To
    compare many runs, compute :func:`neighbor_sets` once and call
    :func:`neighbor_overlap` on each pair.

    References
    ----------
    Hellrich & Hahn (2016), "Bad company — neighborhoods in neural embedding
    spaces considered harmful", COLING; Wendlandt et al. (2018), "Factors
    influencing the surprising instability of word embeddings", NAACL.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(50, 4))
    >>> float(knn_overlap(X, 3.0 * X, k=5).mean())
    1.0
    """
    X, Y = check_pair(X, Y, same_dim=False, min_rows=2)
    found_x = knn_indices(X, k, metric=metric, method=method, n_threads=n_threads)
    found_y = knn_indices(Y, k, metric=metric, method=method, n_threads=n_threads)
    return neighbor_overlap(found_x, found_y, kind=kind)


@dataclass(frozen=True)
class NeighborSets:
    """Neighbours of every entity in each of several runs.

    Attributes
    ----------
    indices : list of ndarray of shape (n_entities, k)
        One array per run, as returned by :func:`knn_indices`.
    k : int
        Number of neighbours.
    metric : str
        Similarity used.
    method : str
        Search actually used ("exact", "faiss" or "approx").
    recall : list of float or None
        Per run, the measured recall@k of an approximate search on a seeded
        sample of queries; None for exact searches.
    """

    indices: list[np.ndarray]
    k: int
    metric: str
    method: str
    recall: list[float | None] = field(default_factory=list)

    def overlap(self, a: int, b: int, *, kind: OverlapKind = "overlap") -> np.ndarray:
        """Return the per-entity overlap between runs ``a`` and ``b``."""
        return neighbor_overlap(self.indices[a], self.indices[b], kind=kind)

    def pairwise_mean_overlap(self, *, kind: OverlapKind = "overlap") -> np.ndarray:
        """Return the (K, K) matrix of mean overlaps; 1 on the diagonal."""
        K = len(self.indices)
        pairs = [(a, b) for a in range(K) for b in range(a + 1, K)]
        means = parallel_map(lambda ab: self.overlap(*ab, kind=kind).mean(), pairs)
        out = np.ones((K, K))
        for (a, b), value in zip(pairs, means, strict=True):
            out[a, b] = out[b, a] = value
        return out


def neighbor_sets(
    tables: Sequence[Any],
    k: int = 10,
    *,
    metric: Metric = "cosine",
    method: Method = "auto",
    n_threads: int | None = None,
    recall_target: float = 0.98,
    seed: int = 0,
    names: Sequence[str] | None = None,
) -> NeighborSets:
    """Search the neighbours of every entity once per run.

    Parameters
    ----------
    tables : sequence of array-like of shape (n_entities, dim)
        The same entities, row for row, in K runs.
    k, metric, method, n_threads, recall_target, seed
        As in :func:`knn_indices`.
    names : sequence of str, optional
        Run names used in error messages.

    Returns
    -------
    NeighborSets
        The indices per run, with the recall of approximate searches.
    """
    names = _run_names(tables, names)
    checked = [
        check_table(name, T, min_rows=2) for name, T in zip(names, tables, strict=True)
    ]
    n = checked[0].shape[0]
    for name, T in zip(names, checked, strict=True):
        if T.shape[0] != n:
            raise ShapeMismatchError(
                f"every table must have one row per entity; {names[0]} has "
                f"{n} rows and {name} has {T.shape[0]}. Match the tables on "
                "their ids with embvar.metrics.match_ids first."
            )
    k = check_int("k", k, 1, n - 1, context=f" (the tables have {n} rows)")
    check_choice("method", method, METHODS)
    if method == "auto":
        method = "exact" if n <= AUTO_EXACT_MAX_ROWS else "approx"

    indices: list[np.ndarray] = []
    recall: list[float | None] = []
    for T in checked:
        if method == "approx":
            check_choice("metric", metric, METRICS)
            found, measured = _approx_search(
                _prepare(T, metric), k, recall_target, seed
            )
            indices.append(found)
            recall.append(measured)
        else:
            indices.append(
                knn_indices(T, k, metric=metric, method=method, n_threads=n_threads)
            )
            recall.append(None)
    return NeighborSets(indices, k, metric, method, recall)


def _shared_counts(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Per row, the number of non-negative entries of A that B also holds."""
    n, k = A.shape
    if k <= 32:
        # Compare each column of A with each column of B: k^2 vector passes
        # over contiguous columns, counted in bytes. Missing entries become
        # -1 in A and -2 in B so that they never match.
        small = max(int(A.max(initial=0)), int(B.max(initial=0))) < 2**31 - 1
        dtype = np.int32 if small else np.int64
        At = np.where(A < 0, -1, A).astype(dtype).T.copy()
        Bt = np.where(B < 0, -2, B).astype(dtype).T.copy()
        count = np.zeros(n, dtype=np.uint8)
        equal = np.empty(n, dtype=bool)
        for a in At:
            for b in Bt:
                np.equal(a, b, out=equal)
                np.add(count, equal.view(np.uint8), out=count)
        return count.astype(np.int64)

    # Long rows: in the sorted union of two rows of distinct values, each
    # shared value appears as two equal neighbours.
    both = np.sort(np.concatenate([A, B], axis=1), axis=1)
    equal = (both[:, 1:] == both[:, :-1]) & (both[:, 1:] >= 0)
    return np.count_nonzero(equal, axis=1)


def _run_names(tables: Sequence[Any], names: Sequence[str] | None) -> list[str]:
    if len(tables) == 0:
        raise ShapeMismatchError("tables must hold at least one table; got none.")
    if names is None:
        return [f"tables[{i}]" for i in range(len(tables))]
    if len(names) != len(tables):
        raise ShapeMismatchError(
            f"names must give one name per table; got {len(names)} names for "
            f"{len(tables)} tables."
        )
    return [str(name) for name in names]


def _check_indices(name: str, indices: Any, n: int) -> np.ndarray:
    indices = np.asarray(indices)
    if indices.ndim != 2 or indices.shape[0] != n:
        raise ShapeMismatchError(
            f"{name} must have shape (n_entities, k) with n_entities={n}; "
            f"got shape {indices.shape}."
        )
    _check_integers(name, indices)
    return indices


def _check_integers(name: str, indices: np.ndarray) -> None:
    if indices.size and not np.issubdtype(indices.dtype, np.integer):
        raise ShapeMismatchError(
            f"{name} must hold integer row indices (as knn_indices returns); got "
            f"dtype {indices.dtype}."
        )


def _prepare(X: np.ndarray, metric: str) -> np.ndarray:
    """Return a C-contiguous float32 copy, rows unit-normalised for cosine."""
    Z = np.array(X, dtype=np.float32, order="C", copy=True)
    if metric == "cosine":
        norms = np.linalg.norm(Z, axis=1, keepdims=True)
        np.divide(Z, norms, out=Z, where=norms > 0)
    return Z


def _exact_search(Z: np.ndarray, k: int, n_threads: int) -> np.ndarray:
    """Exact top-k of ``Z @ Z.T`` per row, the diagonal excluded."""
    return _exact_rows(Z, np.arange(Z.shape[0]), k, n_threads)


def _exact_rows(
    Z: np.ndarray, rows: np.ndarray, k: int, n_threads: int = 1
) -> np.ndarray:
    """Exact top-k of ``Z[rows] @ Z.T`` per query row, itself excluded."""
    n, dim = Z.shape

    # Slice the columns into g slices of width m; m ~ 2 sqrt(n k) balances
    # the cost of ranking the m running maxima against the k * g candidates.
    m = min(n, max(k, int(np.ceil(2.0 * np.sqrt(n * k)))))
    g = -(-n // m)
    padded = np.zeros((g * m, dim), dtype=np.float32)
    padded[:n] = Z

    out = np.empty((len(rows), k), dtype=np.int64)

    def run_block(start: int) -> None:
        block = rows[start : start + _BLOCK_ROWS]
        out[start : start + len(block)] = _top_k_block(
            Z[block], padded, block, n, k, m, g
        )

    parallel_map(run_block, range(0, len(rows), _BLOCK_ROWS), n_threads)
    return out


def _top_k_block(
    Q: np.ndarray,
    padded: np.ndarray,
    rows: np.ndarray,
    n: int,
    k: int,
    m: int,
    g: int,
) -> np.ndarray:
    """Top-k columns of ``Q @ padded[:n].T`` per row; row i skips ``rows[i]``."""
    b = Q.shape[0]
    scores = np.empty((g, b, m), dtype=np.float32)
    running_max = np.full((b, m), -np.inf, dtype=np.float32)

    # Step 1: scores slice by slice, with the running maximum per column
    # position taken while the slice is still in cache.
    for s in range(g):
        tile = scores[s]
        np.matmul(Q, padded[s * m : (s + 1) * m].T, out=tile)
        lo, hi = s * m, min((s + 1) * m, n)
        tile[:, hi - lo :] = -np.inf
        own = np.flatnonzero((rows >= lo) & (rows < hi))
        tile[own, rows[own] - lo] = -np.inf
        np.maximum(running_max, tile, out=running_max)

    # Step 2: the k column positions with the largest maxima hold the top k.
    positions = np.argpartition(running_max, m - k, axis=1)[:, m - k :]
    candidates = (positions[:, :, None] + m * np.arange(g)).reshape(b, -1)
    values = scores[:, np.arange(b)[:, None], positions].transpose(1, 2, 0)
    values = values.reshape(b, -1)

    # Step 3: rank the candidates, best first.
    best = np.argpartition(values, values.shape[1] - k, axis=1)[:, -k:]
    order = np.argsort(-np.take_along_axis(values, best, axis=1), axis=1)
    return np.take_along_axis(np.take_along_axis(candidates, best, 1), order, 1)


def _sample_rows(n: int, size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if size >= n:
        return np.arange(n)
    return np.sort(rng.choice(n, size=size, replace=False))


def _import_faiss() -> Any:
    try:
        import faiss
    except ImportError as error:  # pragma: no cover - faiss-cpu is required
        raise DependencyError(
            "method='faiss' and method='approx' need FAISS; install it with "
            "`pip install faiss-cpu`, or use method='exact'."
        ) from error
    return faiss


def _drop_self(
    found: np.ndarray, k: int, queries: np.ndarray | None = None
) -> np.ndarray:
    """Remove each query's own index from ``k + 1`` results (else the last)."""
    n = found.shape[0]
    own = np.arange(n) if queries is None else queries
    is_self = found == own[:, None]
    # FAISS marks missing results with -1; rank them last.
    is_self[:, -1] |= ~is_self.any(axis=1)
    keep = ~is_self
    return found[keep].reshape(n, k)


def _faiss_flat_search(Z: np.ndarray, k: int) -> np.ndarray:
    faiss = _import_faiss()
    index = faiss.IndexFlatIP(Z.shape[1])
    index.add(Z)
    _, found = index.search(Z, k + 1)
    return _drop_self(found.astype(np.int64), k)


def _approx_search(
    Z: np.ndarray, k: int, recall_target: float, seed: int
) -> tuple[np.ndarray, float]:
    """IVF search with nprobe doubled until the sampled recall is reached."""
    faiss = _import_faiss()
    n, dim = Z.shape

    # Step 1: an inverted file of about sqrt(n) lists, trained by k-means
    # on a sample of 40 rows per list.
    n_lists = int(max(1, min(n // 40, np.sqrt(n))))
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, n_lists, faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = seed
    index.cp.niter = 10
    rows = _sample_rows(n, min(n, 40 * n_lists), seed)
    index.train(Z[rows])
    index.add(Z)

    # Step 2: double the lists probed until the recall on a sample of
    # queries, against their exact neighbours, reaches the target.
    queries = _sample_rows(n, 1000, seed + 1)
    exact = _exact_rows(Z, queries, k, thread_count(None))
    nprobe = 1
    while True:
        index.nprobe = nprobe
        _, found = index.search(Z[queries], k + 1)
        found = _drop_self(found.astype(np.int64), k, queries)
        recall = float(neighbor_overlap(found, exact).mean())
        if recall >= recall_target or nprobe >= n_lists:
            break
        nprobe = min(2 * nprobe, n_lists)

    # Step 3: search every row at that setting.
    _, found = index.search(Z, k + 1)
    return _drop_self(found.astype(np.int64), k), recall
