"""Benchmark of embvar.metrics on K runs of a large embedding table.

Builds K tables of shape (n, dim), float32: one planted structure
(clusters in a random subspace), rotated at random in each run and with
fresh noise, so the runs agree on the geometry only in part. Then it times,
on that same input and in the same process:

- exact mode: neighbours of every table (embvar's blocked search, and
  FAISS's exact flat index for comparison, table by table), then every
  pairwise metric for all K(K-1)/2 pairs, generalized Procrustes, and the
  k-NN overlaps of all pairs;
- approximate mode: the same suite with FAISS IVF neighbours, with the
  recall of each table measured against exact neighbours;
- the reference constructions: scikit-learn's brute-force cosine
  neighbours (on a share of the queries, scaled up) and the n x n Gram
  CKA and PIP loss at the largest n that fits in the memory budget.

Usage::

    .venv/bin/python benchmarks/metrics.py            # K=10, n=100000, dim=64
    .venv/bin/python benchmarks/metrics.py --n 20000  # a quick check
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

import numpy as np

from embvar.metrics import (
    NeighborSets,
    cross_products,
    generalized_procrustes,
    knn_indices,
    knn_recall,
    linear_cka,
    neighbor_overlap,
    neighbor_sets,
    pairwise_metrics,
    pip_loss,
    spearman_similarity_matrix,
)


def make_tables(n: int, dim: int, runs: int, seed: int) -> list[np.ndarray]:
    """K runs of one planted structure: rotated copies plus fresh noise."""
    rng = np.random.default_rng(seed)
    n_clusters = max(2, n // 500)
    centres = rng.normal(size=(n_clusters, dim))
    base = centres[rng.integers(0, n_clusters, n)] + 0.6 * rng.normal(size=(n, dim))
    tables = []
    for _ in range(runs):
        Q, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
        noisy = base + 0.3 * rng.normal(size=(n, dim))
        tables.append((noisy @ Q).astype(np.float32))
    return tables


def peak_gib() -> float:
    """Peak resident memory of this process so far, in GiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


#: CPU seconds of every call to :func:`timed`, by the same key order.
CPU: list[float] = []


def timed(function, *args, **kwargs):
    """Return ``function(...)`` and its wall time; its CPU time goes to CPU.

    On a shared machine the wall time depends on the other jobs; the CPU
    time (all threads of this process) bounds from above what the wall
    time would be on an idle machine.
    """
    start, cpu = time.perf_counter(), time.process_time()
    result = function(*args, **kwargs)
    CPU.append(time.process_time() - cpu)
    return result, time.perf_counter() - start


def rest_of_suite(tables, sets, n_pairs):
    """Everything but the neighbour search, for all pairs of runs."""
    times = {}
    products, times["cross products (one pass)"] = timed(cross_products, tables)
    _, times["d x d metrics, all pairs"] = timed(pairwise_metrics, products)
    _, times["generalized Procrustes"] = timed(
        generalized_procrustes, tables, products=products
    )

    _, times["k-NN overlap, all pairs"] = timed(sets.pairwise_mean_overlap)

    _, times[f"Spearman of {n_pairs} pair similarities, all pairs"] = timed(
        spearman_similarity_matrix, tables, n_pairs=n_pairs
    )
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-pairs", type=int, default=100_000)
    parser.add_argument(
        "--flat-tables",
        type=int,
        default=10,
        help="tables also searched with FAISS's flat index, for the ratio",
    )
    parser.add_argument(
        "--sklearn-share",
        type=float,
        default=0.1,
        help="share of the queries scikit-learn searches (its time is scaled up)",
    )
    parser.add_argument(
        "--reference-gib",
        type=float,
        default=4.0,
        help="memory for the two n x n Gram matrices of the reference CKA",
    )
    args = parser.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # progress shows when piped
    K, n, dim, k = args.runs, args.n, args.dim, args.k
    pairs = K * (K - 1) // 2
    print(f"input: {K} runs of {n} x {dim} float32, k={k}, {pairs} pairs")

    tables, seconds = timed(make_tables, n, dim, K, args.seed)
    print(f"  built the tables in {seconds:.1f} s")

    # Exact mode: our search and FAISS's flat index, table by table so that
    # the load of this shared machine falls on both alike.
    ours = ours_cpu = ours_compared = flat = flat_cpu = 0.0
    indices = []
    for number, T in enumerate(tables):
        found, seconds = timed(knn_indices, T, k, method="exact")
        ours += seconds
        ours_cpu += CPU[-1]
        indices.append(found)
        line = f"  table {number}: embvar {seconds:.1f} s (cpu {CPU[-1]:.1f} s)"
        if number < args.flat_tables:
            reference, seconds_flat = timed(knn_indices, T, k, method="faiss")
            ours_compared += seconds
            flat += seconds_flat
            flat_cpu += CPU[-1]
            agree = float(neighbor_overlap(found, reference).mean())
            line += (
                f", FAISS {seconds_flat:.1f} s (cpu {CPU[-1]:.1f} s), agreement "
                f"{agree:.4f}"
            )
        print(line)
    sets = NeighborSets(indices, k, "cosine", "exact", [None] * K)
    compared = min(K, args.flat_tables)
    print(
        f"exact neighbours, {K} tables: embvar {ours:.1f} s (cpu {ours_cpu:.1f} s); "
        f"on the {compared} tables also searched by FAISS IndexFlatIP: embvar "
        f"{ours_compared:.1f} s, FAISS {flat:.1f} s (cpu {flat_cpu:.1f} s), ratio "
        f"{ours_compared / flat:.2f} (goal <= 1.3)"
    )
    first = len(CPU)
    times = rest_of_suite(tables, sets, args.n_pairs)
    rest, rest_cpu = sum(times.values()), sum(CPU[first:])
    for (name, seconds), cpu in zip(times.items(), CPU[first:], strict=True):
        print(f"  {name}: {seconds:.2f} s (cpu {cpu:.2f} s)")
    print(
        f"exact mode, everything but neighbours: {rest:.1f} s, cpu {rest_cpu:.1f} s "
        "(goal < 10 s)"
    )
    print(
        f"exact mode total: {ours + rest:.1f} s (cpu {ours_cpu + rest_cpu:.1f} s); "
        f"peak memory {peak_gib():.2f} GiB (goal < 2 GiB)"
    )

    # Approximate mode: the whole suite with FAISS IVF neighbours.
    start, cpu = time.perf_counter(), time.process_time()
    approx = neighbor_sets(tables, k, method="approx")
    search = time.perf_counter() - start
    times = rest_of_suite(tables, approx, args.n_pairs)
    total, total_cpu = time.perf_counter() - start, time.process_time() - cpu
    recall = np.array(approx.recall)
    exact_recall = knn_recall(tables[0], approx.indices[0], seed=args.seed + 7)
    print(
        f"approx mode: neighbours {search:.1f} s, whole suite {total:.1f} s "
        f"(cpu {total_cpu:.1f} s; goal < 60 s); recall@{k} per table min "
        f"{recall.min():.4f} mean "
        f"{recall.mean():.4f} (goal >= 0.98), on a fresh sample "
        f"{exact_recall:.4f}; mean overlap change vs exact "
        f"{_overlap_shift(sets, approx):+.4f}; peak memory {peak_gib():.2f} GiB"
    )

    # Reference constructions, after our peak memory has been recorded.
    from sklearn.neighbors import NearestNeighbors

    queries = max(1, int(round(args.sklearn_share * n)))
    nn = NearestNeighbors(n_neighbors=k + 1, metric="cosine", algorithm="brute")
    nn.fit(tables[0])
    _, seconds = timed(nn.kneighbors, tables[0][:queries])
    projected, projected_cpu = seconds * n / queries, CPU[-1] * n / queries
    per_table = ours / K
    print(
        f"scikit-learn brute-force cosine neighbours, one table: {projected:.1f} s "
        f"(cpu {projected_cpu:.1f} s; measured on {queries} queries, scaled); "
        f"embvar exact {per_table:.1f} s (cpu {ours_cpu / K:.1f} s); speed-up "
        f"{projected / per_table:.1f}x"
    )

    m = int(min(n, np.sqrt(args.reference_gib * 2**30 / (2 * 4))))
    X, Y = tables[0][:m], tables[1][:m]
    gram, seconds_gram = timed(_gram_cka_and_pip, X, Y)
    (cka_small, pip_small), seconds_small = timed(
        lambda: (linear_cka(X, Y), pip_loss(X, Y))
    )
    print(
        f"n x n Gram CKA + PIP at n={m}: {seconds_gram:.1f} s; embvar d x d "
        f"{seconds_small:.3f} s; speed-up {seconds_gram / seconds_small:.0f}x; "
        f"CKA {gram[0]:.6f} vs {cka_small:.6f}, PIP {gram[1]:.2f} vs {pip_small:.2f}"
    )
    return 0


def _overlap_shift(exact, approx) -> float:
    """Mean over pairs of (approx overlap - exact overlap)."""
    return float(
        np.mean(approx.pairwise_mean_overlap() - exact.pairwise_mean_overlap())
    )


def _gram_cka_and_pip(X: np.ndarray, Y: np.ndarray) -> tuple[float, float]:
    """CKA and PIP loss the direct way, from n x n Gram matrices (float32)."""
    Kx = X @ X.T
    Ky = Y @ Y.T
    squared = 0.0
    for start in range(0, len(Kx), 1024):
        block = Kx[start : start + 1024] - Ky[start : start + 1024]
        squared += float(np.einsum("ij,ij->", block, block, dtype=np.float64))
    pip = float(np.sqrt(squared))
    for G in (Kx, Ky):
        # H G H: subtract row and column means, add back the grand mean.
        rows = G.mean(axis=1, dtype=np.float64).astype(np.float32)
        G -= rows[:, None]
        G -= rows[None, :]
        G += np.float32(rows.mean())
    hsic = xx = yy = 0.0
    for start in range(0, len(Kx), 1024):
        a, b = Kx[start : start + 1024], Ky[start : start + 1024]
        hsic += float(np.einsum("ij,ij->", a, b, dtype=np.float64))
        xx += float(np.einsum("ij,ij->", a, a, dtype=np.float64))
        yy += float(np.einsum("ij,ij->", b, b, dtype=np.float64))
    cka = hsic / np.sqrt(xx * yy)
    return cka, pip


if __name__ == "__main__":
    sys.exit(main())
