"""Benchmark: R seeded runs as one replica group versus R independent fits.

R matrix-factorization runs on the 100k MovieLens ratings (dim 32, batch
1024, Adam, 10 epochs by default), trained in this process by
``train_replicas`` with each engine (the fused kernel, the XLA graph) and by
``train_run`` one after the other (a fresh Keras model and ``fit`` per run).
Prints the wall times and their ratios, the largest difference between the
kernel's and the independent runs' tables, and the replica times against a
memory-traffic floor.

The floor: Keras's Adam updates every row of every table and both moment
tables at every step, so each step must read and write the tables, the
first and the second moments, 24 bytes per parameter. The bandwidth is the
copy bandwidth of this machine, measured here with NumPy (bytes read plus
bytes written per second).

Usage::

    .venv/bin/python benchmarks/replicas.py [--replicas 16] [--epochs 10]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from embvar.config import parse_study, plan_runs  # noqa: E402
from embvar.data.prepared import prepare_data  # noqa: E402
from embvar.training.fit import train_run  # noqa: E402
from embvar.training.replicas import train_replicas  # noqa: E402

# Bytes each Adam step moves per parameter: read and write w, m and v.
ADAM_BYTES_PER_PARAM = 6 * 4


def copy_bandwidth(megabytes: int = 256, repeats: int = 5) -> float:
    """Return the best NumPy copy bandwidth in bytes/s (read + write)."""
    src = np.ones(megabytes * (1 << 20) // 4, np.float32)
    dst = np.empty_like(src)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - t0)
    return 2 * src.nbytes / best


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--optimizer", default="adam")
    parser.add_argument(
        "--engine",
        choices=["kernel", "graph"],
        action="append",
        help="the replica engines to time (default: both)",
    )
    parser.add_argument(
        "--no-jit", action="store_true", help="the graph's step without XLA"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="TensorFlow intra-op threads (default: all cores)",
    )
    parser.add_argument("--skip-independent", action="store_true")
    args = parser.parse_args()
    if args.threads:
        from embvar.execution.task import configure_threads

        configure_threads(args.threads)

    study = parse_study(
        {
            "name": "bench",
            "root_seed": 7,
            "model": {"dim": 32},
            "training": {
                "optimizer": args.optimizer,
                "learning_rate": 0.005,
                "batch_size": 1024,
                "epochs": args.epochs,
            },
            "design": [{"name": "seeds", "replicates": args.replicas}],
        }
    )
    specs = plan_runs(study)
    data = prepare_data(specs[0].data, specs[0].seeds["split"])
    inter = data.interactions
    n_train = len(data.split.train)
    params = (inter.n_users + inter.n_items) * (32 + 1)
    steps = -(-n_train // 1024) * args.epochs
    print(
        f"MovieLens: {inter.n_users} users, {inter.n_items} items, {n_train} "
        f"training ratings; R={len(specs)}, {args.epochs} epochs, {steps} steps, "
        f"{args.optimizer}; load {load()}"
    )

    # The machine's bandwidth first, before training tunes the allocator
    # (embvar.training.allocator), in freshly mapped memory as usual.
    bandwidth = copy_bandwidth()

    # Warm up TensorFlow and Keras (first-use costs), outside the timings;
    # each replica group still compiles its own step, counted below.
    warm = specs[0].model_copy(
        update={"training": specs[0].training.model_copy(update={"epochs": 1})}
    )
    train_run(warm, data)
    engines = args.engine or ["kernel", "graph"]
    for engine in engines:
        t0 = time.perf_counter()
        train_replicas([warm], data, engine=engine)
        if engine == "kernel":
            # Numba compiles the kernel once per machine (cached on disk),
            # and loads it once per process.
            print(
                f"kernel's first call (compiling or loading it): "
                f"{time.perf_counter() - t0:.2f} s"
            )

    floor = ADAM_BYTES_PER_PARAM * params * len(specs) * steps / bandwidth
    print(
        f"copy bandwidth {bandwidth / 1e9:.1f} GB/s; Adam floor "
        f"{ADAM_BYTES_PER_PARAM} B x {params} params x {len(specs)} replicas x "
        f"{steps} steps = {floor:.2f} s"
    )

    timed = {}
    for engine in engines:
        options = {"jit_compile": False} if args.no_jit and engine == "graph" else {}
        t0, c0 = time.perf_counter(), time.process_time()
        replicas = train_replicas(specs, data, engine=engine, **options)
        t_rep, c_rep = time.perf_counter() - t0, time.process_time() - c0
        timed[engine] = (replicas, t_rep, c_rep)
        # The epochs' own time (steps and loss bookkeeping), without set-up,
        # evaluation and snapshots (the graph's include compiling its step).
        t_loop = sum(h["seconds"] for h in replicas[0].history) * len(specs)
        print(
            f"replicas ({engine}): {t_rep:.2f} s wall, {c_rep:.2f} CPU-s "
            f"({t_loop:.2f} s in the epochs' steps); {t_rep / floor:.2f}x the "
            f"floor (steps {t_loop / floor:.2f}x); load {load()}"
        )
    if args.skip_independent:
        return

    t0, c0 = time.perf_counter(), time.process_time()
    independent = [train_run(s, data) for s in specs]
    t_ind, c_ind = time.perf_counter() - t0, time.process_time() - c0
    print(
        f"independent: {t_ind:.2f} s wall, {c_ind:.2f} CPU-s for {len(specs)} fits; "
        f"load {load()}"
    )
    for engine, (_, t_rep, c_rep) in timed.items():
        print(
            f"speedup ({engine}): independent / replicas = {t_ind / t_rep:.2f}x "
            f"wall, {c_ind / c_rep:.2f}x CPU"
        )
    for engine, (replicas, _, _) in timed.items():
        print(f"{engine}:")
        report_differences(replicas, independent, data)


def report_differences(replicas, independent, data) -> None:
    """Print how far the replicas' tables are from the independent runs'."""
    last = max(independent[0].snapshots)
    for epoch in (1, last):
        diffs = []
        for r, (a, b) in enumerate(zip(replicas, independent, strict=True)):
            for name, B in b.snapshots[epoch].items():
                A = a.snapshots[epoch][name]
                diffs.append(
                    (float(np.linalg.norm(A - B) / np.linalg.norm(B)), r, name)
                )
        diffs.sort()
        worst, r, name = diffs[-1]
        print(
            f"  relative difference of a table vs independent, epoch {epoch}: "
            f"median {diffs[len(diffs) // 2][0]:.1e}, worst {worst:.1e} "
            f"(replica {r}, {name})"
        )
    # Where the worst difference sits: typically one row whose gradient was at
    # rounding level, which Adam's normalisation turns into a full step.
    A = replicas[r].snapshots[last][name]
    B = independent[r].snapshots[last][name]
    rows = np.linalg.norm((A - B).reshape(len(A), -1), axis=1)
    top = int(np.argmax(rows))
    side = data.train_items if name.startswith("item") else data.train_users
    print(
        f"    its worst row {top} ({int(np.sum(side == top))} training ratings) holds "
        f"{rows[top] ** 2 / np.sum(rows**2):.1%} of the squared difference"
    )


if __name__ == "__main__":
    main()
