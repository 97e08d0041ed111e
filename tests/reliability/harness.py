"""Kill a study process again and again, restart it, check what readers see.

Each round starts ``embvar study`` on the same directory and kills it with
``SIGKILL`` in one of these ways, in turn:

- at a named point of the store's writes, through the ``EMBVAR_FAULT`` hook
  (:mod:`embvar.faults`): a snapshot half written, a snapshot written but
  not renamed, inside the SQLite commit that records a run, just after it,
  while the prepared data is written;
- after a random delay, from outside, wherever the process then is
  (starting up, training, writing, analysing, writing the report).

Rounds alternate between the two trainers (``--trainer independent``: one
Keras fit per run; ``--trainer replicas``: the unfinished runs as replicas
in one compiled step), so both paths are killed, and a study begun with one is
resumed with the other. After every kill the directory is checked as a
reader sees it
(:func:`check_store`): finished runs whole, checksums right, no run twice,
and no finished run changed or lost since the round before. Once enough
kills have landed, a last start without faults must finish the study.

Run as a script to print the figures the README quotes::

    python -m tests.reliability.harness [KILLS]
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tests.reliability.conftest import (
    EMBVAR,
    SUBPROCESS_ENV,
    check_store,
    study_text,
    write_ratings,
)

# Fault points and the probability of dying each time one is passed; a run
# passes array-write and array-rename 8 times (2 epochs x 4 tables), the
# commit points once, so a commit round dies in its first commit and tells
# whether that commit reached the disk before the kill.
HOOKS = {
    "array-write": 0.2,
    "array-rename": 0.2,
    "index-commit": 1.0,
    "after-commit": 1.0,
    "prepare": 1.0,
}
TRAINERS = ("independent", "replicas")
MODES = (
    "array-write",
    "index-commit",
    "timed",
    "array-rename",
    "after-commit",
    "index-commit",
    "timed",
)


@dataclass
class KillReport:
    """What a kill loop did."""

    planned: int
    kills: Counter = field(default_factory=Counter)
    kills_by_trainer: Counter = field(default_factory=Counter)
    rounds: int = 0
    survived: int = 0
    commit_kills_recorded: int = 0
    claims: int = 0
    seconds: float = 0.0
    final_rc: int | None = None
    final_stderr: str = ""
    checks: int = 0


def make_study(folder: Path, *, init: int = 4, order: int = 3) -> Path:
    """Write the harness's quick study (``init`` x ``order`` runs) into ``folder``."""
    ratings = write_ratings(folder / "ratings.csv")
    path = folder / "crash.toml"
    path.write_text(study_text("crash", ratings, init=init, order=order, epochs=1))
    return path


def kill_loop(
    study: Path,
    out: Path,
    *,
    kills: int = 20,
    planned: int,
    seed: int = 0,
    max_rounds: int = 80,
) -> KillReport:
    """Kill ``embvar study`` on ``out`` until ``kills`` kills landed, then finish it."""
    rng = random.Random(seed)
    report = KillReport(planned=planned)
    start = time.perf_counter()
    lifetimes: list[float] = []
    kept: dict[str, tuple] = {}
    base = [*EMBVAR, "study", str(study), "--dir", str(out), "--no-progress"]
    while sum(report.kills.values()) < kills and report.rounds < max_rounds:
        mode = "prepare" if report.rounds == 0 else MODES[report.rounds % len(MODES)]
        if len(kept) == planned:
            mode = "timed"  # nothing left to write: kill it wherever it is
        trainer = TRAINERS[report.rounds % len(TRAINERS)]
        cmd = [*base, "--trainer", trainer]
        env = dict(SUBPROCESS_ENV)
        if mode != "timed":
            env["EMBVAR_FAULT"] = f"{mode}:{HOOKS[mode]}"
            env["EMBVAR_FAULT_SEED"] = str(rng.randrange(1 << 30))
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        if mode == "timed":
            typical = sorted(lifetimes)[len(lifetimes) // 2] if lifetimes else 10.0
            try:
                proc.wait(timeout=rng.uniform(0.1, 1.2) * typical)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate()
        lifetimes.append(time.perf_counter() - t0)
        report.rounds += 1
        if proc.returncode == -signal.SIGKILL:
            report.kills[mode] += 1
            report.kills_by_trainer[trainer] += 1
        elif proc.returncode == 0:
            report.survived += 1
        else:
            raise AssertionError(
                f"round {report.rounds} ({mode}) exited {proc.returncode}: {err}"
            )
        if not (out / "index.sqlite").is_file():
            continue
        state = check_store(out)
        # The plan is registered in one transaction: all of it or none.
        assert state["registered"] in (0, planned), state["registered"]
        report.checks += 1
        for run_id, before in kept.items():
            assert state["finished"].get(run_id) == before, (
                f"finished run {run_id} changed or vanished in round {report.rounds}"
            )
        if mode == "index-commit" and proc.returncode == -signal.SIGKILL:
            report.commit_kills_recorded += len(state["finished"]) > len(kept)
        kept = state["finished"]
    final = subprocess.run(base, env=SUBPROCESS_ENV, capture_output=True, text=True)
    report.final_rc, report.final_stderr = final.returncode, final.stderr
    state = check_store(out, planned=planned)
    report.claims = sum(state["attempts"].values())
    report.seconds = time.perf_counter() - start
    return report


def main(argv: list[str]) -> None:
    import tempfile

    kills = int(argv[0]) if argv else 20
    with tempfile.TemporaryDirectory() as tmp:
        study = make_study(Path(tmp))
        rep = kill_loop(study, Path(tmp) / "out", kills=kills, planned=12)
    print(
        f"{sum(rep.kills.values())} SIGKILLs in {rep.rounds} rounds "
        f"({dict(rep.kills)}; by trainer {dict(rep.kills_by_trainer)}), "
        f"{rep.survived} rounds ended on their own, "
        f"{rep.checks} store checks passed"
    )
    print(
        f"final start exit code {rep.final_rc}; {rep.planned} runs stored once each; "
        f"{rep.claims} claims in all (each start claims every unfinished run); "
        f"{rep.commit_kills_recorded} of {rep.kills['index-commit']} kills in the "
        "commit came after the run was durable"
    )
    print(f"{rep.seconds:.0f} s in all")


if __name__ == "__main__":
    main(sys.argv[1:])
