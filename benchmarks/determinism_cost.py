"""Benchmark: what each reproducibility setting costs, measured in one audit.

Runs the determinism audit on one study run (default: the first run of
the MovieLens study's quick plan) over the full CPU matrix (op determinism
on/off x 1 thread/all x oneDNN on/off), two fresh processes per cell, and
prints, per cell, whether its replicates agreed bit for bit, whether it
gave the baseline's bits, and its training time relative to the baseline
cell (TensorFlow's defaults), all measured in this same run. Training time
is the time inside the worker's training function minus the time the
recorder spent snapshotting; the TensorFlow import is not counted.

Usage::

    .venv/bin/python benchmarks/determinism_cost.py
    .venv/bin/python benchmarks/determinism_cost.py --study movielens --epochs 2
    .venv/bin/python benchmarks/determinism_cost.py --out runs/bench-determinism

Other users of a shared machine change the absolute times; the ratios
within one run are what it reports. The load average is printed first.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from embvar.determinism.audit import determinism_audit


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", default="movielens")
    parser.add_argument("--full", action="store_true", help="not the quick plan")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--replicates", type=int, default=2)
    parser.add_argument("--pitfalls", action="store_true")
    parser.add_argument("--out", default=None, help="write determinism.json here")
    args = parser.parse_args()

    print(
        f"load average before: {os.getloadavg()[0]:.2f} "
        f"({os.cpu_count()} logical cores)"
    )
    t0 = time.perf_counter()
    audit = determinism_audit(
        args.study,
        quick=not args.full,
        epochs=args.epochs,
        replicates=args.replicates,
        pitfalls=args.pitfalls,
        directory=args.out,
        progress=lambda line: print("  ..", line, file=sys.stderr),
    )
    doc = audit.document
    print(
        f"audited: {doc['target']['label']}, {doc['replicates']} processes per "
        f"cell, {doc['processes']} processes, {time.perf_counter() - t0:.0f} s"
    )
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print(
        f"{'cell':48s} {'identical':>9s} {'=base':>6s} {'median s':>9s} {'ratio':>6s}"
    )
    for c in doc["cells"]:
        same = "-" if c["vs_baseline"] is None else str(c["same_as_baseline"])
        ratio = f"{c['time_ratio']:.2f}" if c["time_ratio"] else "-"
        median = f"{c['seconds_median']:.2f}" if c["seconds_median"] else "-"
        print(
            f"{c['label']:48s} {str(c['reproducible']):>9s} {same:>6s} "
            f"{median:>9s} {ratio:>6s}"
        )
    for name, cost in doc["costs"].items():
        if cost["ratio"] is not None:
            print(
                f"cost {name}: {cost['ratio']:.2f}x (geometric mean of "
                f"{cost['pairs']} matched pairs)"
            )
    for sentence in doc["verdict"]["sentences"]:
        print(sentence)
    return 0


if __name__ == "__main__":
    sys.exit(main())
