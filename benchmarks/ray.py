"""Benchmark: one study on the local pool and on Ray with 1 and 2 workers.

The same small MovieLens study (``--runs`` seeds, ``--epochs`` epochs on a
``--fraction`` of the ratings) is trained four times, each into a fresh
directory, without the analysis: locally in this process (the baseline),
locally in a pool of 2 spawned processes, and on a Ray instance started
here with 1 and with 2 CPUs (one run per CPU at a time). Prints each wall
time and its ratio to the baseline, the time Ray takes to start, and Ray's
overhead per task two ways:

- ``null task``: the round trip of a task that does nothing (scheduling,
  argument and result transfer), from 200 such tasks on the 1-CPU Ray;
- ``per run``: (Ray 1-worker study time - baseline study time) / runs, the
  whole extra cost of training a run as a Ray task (worker start,
  TensorFlow import and data preparation in the worker, progress events,
  the result's arrays through the object store), amortised over the runs.

On a cluster the study time is estimated from these figures as
``start + ceil(runs / workers) * (run_seconds + overhead_per_run)``, with
``run_seconds`` the median time a run trains (printed) and ``workers`` the
tasks the cluster runs at once (its CPUs divided by ``cpus`` per task).

Usage::

    .venv/bin/python benchmarks/ray.py [--runs 4] [--epochs 2] [--fraction 0.2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
# Run as a script, this file's folder comes first on the path, and this
# file (ray.py) would shadow the ray package.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import ray  # noqa: E402

from embvar.config import parse_study  # noqa: E402
from embvar.execution.local import LocalExecutor  # noqa: E402
from embvar.execution.ray import RayExecutor  # noqa: E402
from embvar.store import Store  # noqa: E402
from embvar.study import run_study  # noqa: E402


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _null() -> int:
    return 0


def null_task_seconds(n: int = 200) -> float:
    """Median-free mean round trip of ``n`` empty tasks, after a warm-up."""
    remote = ray.remote(num_cpus=1)(_null)
    ray.get([remote.remote() for _ in range(4)])
    t0 = time.perf_counter()
    ray.get([remote.remote() for _ in range(n)])
    return (time.perf_counter() - t0) / n


def timed_study(study, directory: Path, executor) -> float:
    t0 = time.perf_counter()
    outcome = run_study(study, directory, executor=executor, analyze=False)
    seconds = time.perf_counter() - t0
    if outcome.failed or len(outcome.trained) != outcome.planned:
        raise SystemExit(f"study failed in {directory}: {outcome.failed}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--fraction", type=float, default=0.2)
    args = parser.parse_args()

    study = parse_study(
        {
            "name": "raybench",
            "root_seed": 3,
            "data": {"fraction": args.fraction},
            "model": {"dim": 16},
            "training": {
                "epochs": args.epochs,
                "learning_rate": 0.01,
                "batch_size": 1024,
            },
            "design": [{"name": "seeds", "factors": {"init": list(range(args.runs))}}],
        }
    )
    root = Path(tempfile.mkdtemp(prefix="embvar-raybench-"))
    print(
        f"study: {args.runs} runs x {args.epochs} epochs, data fraction "
        f"{args.fraction}; cores {os.cpu_count()}; load before {load()}"
    )
    try:
        times: dict[str, float] = {}
        times["local, this process"] = timed_study(
            study, root / "local1", LocalExecutor(1)
        )
        with Store(root / "local1") as store:
            run_seconds = statistics.median(r.seconds for r in store.runs())
        times["local pool, 2 processes"] = timed_study(
            study, root / "local2", LocalExecutor(2)
        )
        starts, null_s = {}, None
        for workers in (1, 2):
            t0 = time.perf_counter()
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
            starts[workers] = time.perf_counter() - t0
            try:
                if workers == 1:
                    null_s = null_task_seconds()
                executor = RayExecutor(workers=workers, cpus=1)
                times[f"ray, {workers} worker{'s' if workers > 1 else ''}"] = (
                    timed_study(study, root / f"ray{workers}", executor)
                )
            finally:
                ray.shutdown()

        base = times["local, this process"]
        for label, seconds in times.items():
            print(
                f"{label:26s} {seconds:8.1f} s   ratio to local {seconds / base:5.2f}"
            )
        print(
            f"ray start (ray.init)       {starts[1]:8.1f} s (1 CPU), "
            f"{starts[2]:.1f} s (2 CPUs); not in the study times above"
        )
        print(f"run training time (median) {run_seconds:8.2f} s")
        print(f"ray overhead, null task    {null_s * 1e3:8.2f} ms per task")
        per_run = (times["ray, 1 worker"] - base) / args.runs
        print(
            f"ray overhead, per run      {per_run:8.2f} s per task "
            "((ray 1 worker - local) / runs)"
        )
        print(f"load after {load()}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
