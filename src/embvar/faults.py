"""A testing hook: kill this process at a named point of the store's writes.

The reliability tests prove that a study survives being killed at the worst
moments. They set ``EMBVAR_FAULT`` in the environment of a study process to
a comma-separated list of ``point:probability`` pairs; each time the store
passes a named point, the process kills itself with ``SIGKILL`` (no
clean-up, no ``finally``) with that probability. ``EMBVAR_FAULT_SEED``
makes the draws repeatable. Unset, every hook costs one dictionary lookup
and does nothing; nothing in embvar sets it.

Points:

``array-write``
    A table is half written under its temporary name: the file is cut to a
    random length, flushed, and the process dies.
``array-rename``
    A table is written and flushed, just before it is renamed into place.
``index-commit``
    The transaction that records a finished run is committing: a thread
    fires ``SIGKILL`` a random 0-5 ms after the ``COMMIT`` starts, so the
    kill lands inside SQLite's write of its log or just after it.
``after-commit``
    Just after a finished run is committed, before the runner goes on.
``prepare``
    While the study's prepared data (id mappings, split) is written.

Example::

    EMBVAR_FAULT="array-write:0.1,index-commit:0.3" embvar study s.toml
"""

from __future__ import annotations

import functools
import os
import random
import signal
import threading
from typing import IO, NoReturn

from embvar.errors import ConfigError

__all__ = [
    "FAULT_ENV",
    "FAULT_SEED_ENV",
    "POINTS",
    "fault_point",
    "kill_soon",
    "cut_and_kill",
]

FAULT_ENV = "EMBVAR_FAULT"
FAULT_SEED_ENV = "EMBVAR_FAULT_SEED"
POINTS = ("array-write", "array-rename", "index-commit", "after-commit", "prepare")


@functools.cache
def _plan() -> tuple[dict[str, float], random.Random]:
    text = os.environ.get(FAULT_ENV, "").strip()
    seed = os.environ.get(FAULT_SEED_ENV)
    rng = random.Random(int(seed) if seed and seed.isdigit() else None)
    plan: dict[str, float] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        point, _, prob = item.partition(":")
        try:
            p = float(prob) if prob else 1.0
        except ValueError:
            p = -1.0
        if point not in POINTS or not 0.0 <= p <= 1.0:
            raise ConfigError(
                f"{FAULT_ENV} must list point:probability pairs with a point in "
                f"{', '.join(POINTS)} and a probability in [0, 1]; got "
                f"{FAULT_ENV}={text!r}."
            )
        plan[point] = p
    return plan, rng


def _armed(point: str) -> bool:
    plan, rng = _plan()
    p = plan.get(point)
    return p is not None and rng.random() < p


def _kill() -> NoReturn:
    os.kill(os.getpid(), signal.SIGKILL)
    raise SystemExit(137)  # pragma: no cover - SIGKILL does not return


def fault_point(point: str) -> None:
    """Die here with the probability ``EMBVAR_FAULT`` gives ``point``."""
    if _armed(point):
        _kill()


def cut_and_kill(point: str, f: IO[bytes]) -> None:
    """If armed, cut the open file ``f`` to a random length and die."""
    if _armed(point):
        f.flush()
        size = f.tell()
        f.truncate(_plan()[1].randrange(size) if size else 0)
        f.flush()
        os.fsync(f.fileno())
        _kill()


def kill_soon(point: str, within_s: float = 0.005) -> None:
    """If armed, start a thread that kills the process within ``within_s``."""
    if _armed(point):
        delay = _plan()[1].uniform(0.0, within_s)
        threading.Timer(delay, _kill).start()
