"""Benchmark: R skip-gram runs as one replica group versus R independent fits.

R runs of the built-in skip-gram model on gensim's text8 excerpt (the
settings of ``studies/text8.toml``: dim 50, window 5, 5 negatives,
subsampling 1e-3, batch 4096, Adam), trained in this process by
``train_replicas`` (the fused kernel) and by ``train_keras_run`` one after
the other (a fresh Keras model and ``fit`` per run, XLA-compiled). Prints
both wall times, their ratio and how far the replicas' tables are from the
independent runs'.

Usage::

    .venv/bin/python benchmarks/skipgram_replicas.py [--replicas 4] [--epochs 2]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from embvar.config import parse_study, plan_runs  # noqa: E402
from embvar.data.prepared import prepare_data  # noqa: E402
from embvar.training.keras_run import train_keras_run  # noqa: E402
from embvar.training.replicas import train_replicas  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    study = parse_study(
        {
            "name": "bench-skipgram",
            "root_seed": 7,
            "data": {"source": "text8", "kind": "text", "min_count": 5},
            "model": {
                "kind": "skipgram",
                "dim": 50,
                "window": 5,
                "negatives": 5,
                "subsample": 1e-3,
            },
            "training": {
                "optimizer": "adam",
                "learning_rate": 0.005,
                "batch_size": 4096,
                "epochs": args.epochs,
            },
            "design": [{"name": "seeds", "replicates": args.replicas}],
        }
    )
    specs = plan_runs(study)
    data = prepare_data(specs[0].data, specs[0].seeds["split"])
    print(
        f"text8: {data.n_words} words, {data.n_tokens} tokens; R={len(specs)}, "
        f"{args.epochs} epochs; load {os.getloadavg()[0]:.2f}"
    )
    # First-use costs outside the timings: Keras's and XLA's start, Numba's
    # loading of the kernel.
    warm = specs[0].model_copy(
        update={"training": specs[0].training.model_copy(update={"epochs": 1})}
    )
    train_keras_run(warm, data)
    train_replicas([warm], data)

    t0 = time.perf_counter()
    replicas = train_replicas(specs, data)
    t_rep = time.perf_counter() - t0
    print(f"replicas (kernel): {t_rep:.2f} s")
    t0 = time.perf_counter()
    independent = [train_keras_run(s, data) for s in specs]
    t_ind = time.perf_counter() - t0
    print(f"independent: {t_ind:.2f} s for {len(specs)} fits")
    print(f"speedup: independent / replicas = {t_ind / t_rep:.2f}x")
    for epoch in (1, args.epochs):
        diffs = sorted(
            float(np.linalg.norm(a.snapshots[epoch][n] - t) / np.linalg.norm(t))
            for a, b in zip(replicas, independent, strict=True)
            for n, t in b.snapshots[epoch].items()
        )
        print(
            f"relative difference of a table vs independent, epoch {epoch}: "
            f"median {diffs[len(diffs) // 2]:.1e}, worst {diffs[-1]:.1e}"
        )


if __name__ == "__main__":
    main()
