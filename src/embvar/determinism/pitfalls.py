"""Find the common reasons behind "my seeded runs differ", with cause and fix.

:func:`diagnose_pitfalls` trains a training function a few times under the
:class:`~embvar.determinism.tracer.Tracer` and checks six pitfalls, each on
what the runs did (the trace) and on what they produced (the recorded
values):

``model_reused``
    A model object trained again as a "new" run: the run's initial weights
    equal the previous run's final weights.
``seed_after_build``
    The seed set after the model (or its initializers) was created: the
    initial weights do not follow the seed.
``unseeded_generator``
    A generator the framework draws from that nothing seeded: Python's
    ``random`` (Keras draws unseeded initializers' and layers' seeds from
    it), NumPy's global generator, TensorFlow ops with no seed, a NumPy
    ``default_rng()`` without a seed.
``mapping_changes``
    An entity-to-row mapping that changes between processes, such as a
    vocabulary built from a set under another ``PYTHONHASHSEED``.
``shared_initializer``
    Two layers starting from identical tables: one initializer object (its
    seed is fixed when it is created) given to both, or two with one seed.
``unseeded_shuffle``
    Data shuffled without a seed: ``fit(shuffle=True)`` or
    ``Dataset.shuffle()`` with no TensorFlow seed, ``random.shuffle`` or a
    NumPy permutation from an unseeded generator.

The runs: process A (``PYTHONHASHSEED=1``) trains with the seed, again
with the same seed, then with another seed; process B
(``PYTHONHASHSEED=2``) trains with the seed once; process C (A's hash seed)
only when B differs from A and nothing recorded explains it.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from embvar.determinism.recorder import RunRecord, load_record
from embvar.determinism.records import compare_records
from embvar.determinism.target import AuditTarget
from embvar.determinism.worker import launch, train_runs

__all__ = ["PITFALLS", "Pitfall", "diagnose_pitfalls"]

logger = logging.getLogger(__name__)

# name -> (title, fix)
PITFALLS: dict[str, tuple[str, str]] = {
    "model_reused": (
        "A model object reused across runs",
        "Build a new model inside the run, after keras.backend.clear_session() "
        "and the seed; never call compile()/fit() on a trained model to start "
        "another run.",
    ),
    "seed_after_build": (
        "The seed set after the model was built",
        "Call keras.utils.set_random_seed(seed) first, then create the "
        "initializers and build the model.",
    ),
    "unseeded_generator": (
        "A generator the framework draws from, never seeded",
        "Call keras.utils.set_random_seed(seed) at the start of every run (it "
        "seeds Python's random, NumPy and TensorFlow); create NumPy generators "
        "as numpy.random.default_rng(seed).",
    ),
    "mapping_changes": (
        "An entity-to-row mapping that changes between processes",
        "Build the vocabulary in a defined order: sorted(set(tokens)) or "
        "numpy.unique, or by frequency with ties broken by the token; never "
        "from the iteration order of a set or of a dict filled from one.",
    ),
    "shared_initializer": (
        "Two layers given identical initial tables by one initializer",
        "Give each layer its own initializer: a string such as 'uniform', or a "
        "new instance per layer, without a fixed seed (the run's seed then "
        "makes them differ reproducibly).",
    ),
    "unseeded_shuffle": (
        "Data shuffled without a seed",
        "Draw each epoch's order from numpy.random.default_rng(seed) and call "
        "fit(..., shuffle=False); or pass seed= to Dataset.shuffle, or set "
        "keras.utils.set_random_seed(seed) before fit(shuffle=True).",
    ),
}

_GENERATOR_WORDS = {
    "python": "Python's random module",
    "numpy": "NumPy's global generator",
    "numpy_generator": "a NumPy Generator created by default_rng() without a seed",
    "tensorflow": "TensorFlow's random ops, with neither a global nor an op seed",
}


@dataclass
class Pitfall:
    """One pitfall's diagnosis.

    Attributes
    ----------
    name : str
        A key of :data:`PITFALLS`.
    found : bool or None
        None: it could not be checked (``evidence`` says why).
    cause : str
        In plain words, what happened (empty when not found).
    fix : str
    evidence : list of str
        What the trace and the recorded values showed.
    where : list of str
        ``file:line (function)`` in the user's code, where known.
    """

    name: str
    found: bool | None
    cause: str = ""
    evidence: list[str] = field(default_factory=list)
    where: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        return PITFALLS[self.name][0]

    @property
    def fix(self) -> str:
        return PITFALLS[self.name][1]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "found": self.found,
            "cause": self.cause,
            "fix": self.fix,
            "evidence": self.evidence,
            "where": self.where[:3],
        }


def diagnose_pitfalls(
    target: AuditTarget,
    *,
    directory: str | Path | None = None,
    in_process: bool = False,
    cross_process: bool = True,
    hash_seeds: tuple[str, str] = ("1", "2"),
    env: dict[str, str | None] | None = None,
) -> dict[str, Any]:
    """Check a training function for the six pitfalls.

    Parameters
    ----------
    target : AuditTarget
        What to train (:func:`~embvar.determinism.target.spec_target` or
        :func:`~embvar.determinism.target.function_target`).
    directory : str or Path, optional
        Where the runs' records go (default: a temporary folder, removed).
    in_process : bool
        Train process A's three runs in this process instead of a fresh
        one (faster; the tracer first reseeds Python, NumPy and TensorFlow
        from entropy, as a fresh process has them, and leaves them so).
    cross_process : bool
        Also train process B under another ``PYTHONHASHSEED`` (and C when
        needed). Without it, ``mapping_changes`` is not checked.
    hash_seeds : (str, str)
        ``PYTHONHASHSEED`` of processes A and B.
    env : dict, optional
        Further environment variables for the worker processes.

    Returns
    -------
    dict
        ``pitfalls``: one :meth:`Pitfall.to_json` per pitfall, in the order
        of :data:`PITFALLS`; ``found``: the names found; ``in_process``:
        :func:`~embvar.determinism.records.compare_records` of two runs with
        the same seed in one process; ``cross_process``: the same across
        processes A and B (None if not run); ``processes``: how many fresh
        processes were started.
    """
    own = directory is None
    root = Path(tempfile.mkdtemp(prefix="embvar-pitfalls-") if own else str(directory))
    try:
        return _diagnose(target, root, in_process, cross_process, hash_seeds, env or {})
    finally:
        if own:
            shutil.rmtree(root, ignore_errors=True)


def _diagnose(target, root, in_process, cross_process, hash_seeds, env) -> dict:
    processes = 0
    seeds = [target.seed, target.seed, target.other_seed]
    a_dirs = [root / "A" / f"run{i}" for i in range(3)]
    request = {
        "target": target.to_json(),
        "trace": True,
        "settings": {},
        "runs": [
            {"dir": str(d), "seed": s, "save_steps": "none"}
            for d, s in zip(a_dirs, seeds, strict=True)
        ],
    }
    if in_process:
        from embvar.determinism.tracer import Tracer

        with Tracer(fresh=True) as tracer:
            train_runs(request, tracer=tracer)
        hash_a = os.environ.get("PYTHONHASHSEED")
    else:
        _run(
            request,
            root / "A" / "request.json",
            {**env, "PYTHONHASHSEED": hash_seeds[0]},
        )
        processes += 1
        hash_a = hash_seeds[0]
    A = [load_record(d) for d in a_dirs]

    B = C = None
    if cross_process:
        hash_b = (
            hash_seeds[1] if hash_seeds[1] != hash_a else str(int(hash_seeds[1]) + 1)
        )
        B = _single(target, root / "B", {**env, "PYTHONHASHSEED": hash_b})
        processes += 1
        explained = B is None or _ids_differ(A[0], B) or _traced_unseeded(A)
        if (
            B is not None
            and hash_a is not None
            and not explained
            and compare_records(A[0], B)["identical"] is False
        ):
            C = _single(target, root / "C", {**env, "PYTHONHASHSEED": hash_a})
            processes += 1

    pitfalls = [
        _model_reused(A),
        _seed_after_build(A, B),
        _unseeded(A, B, shuffles=False),
        _mapping(A, B, C, cross_process),
        _shared_initializer(A),
        _unseeded(A, B, shuffles=True),
    ]
    cross = None if B is None else compare_records(A[0], B)
    found = [p.name for p in pitfalls if p.found]
    unexplained = None
    if cross is not None and cross["identical"] is False and not found:
        unexplained = (
            f"Runs in two processes differ from epoch {cross['first_epoch']} and none "
            "of these pitfalls explains it; the audit's cells show whether a setting "
            "(op determinism, threads, oneDNN) does."
        )
    return {
        "pitfalls": [p.to_json() for p in pitfalls],
        "found": found,
        "unexplained": unexplained,
        "in_process": compare_records(A[0], A[1]),
        "cross_process": cross,
        "errors": sorted({r.error for r in [*A, B, C] if r is not None and r.error}),
        "processes": processes,
    }


def _run(request: dict, path: Path, env: dict) -> None:
    error = launch(request, path, env=env)
    if error:
        logger.warning("pitfall check worker failed: %s", error)


def _single(target: AuditTarget, folder: Path, env: dict) -> RunRecord | None:
    request = {
        "target": target.to_json(),
        "trace": True,
        "settings": {},
        "runs": [
            {"dir": str(folder / "run0"), "seed": target.seed, "save_steps": "none"}
        ],
    }
    _run(request, folder / "request.json", env)
    try:
        return load_record(folder / "run0")
    except Exception as exc:  # a worker that died leaves no record
        logger.warning("no record from %s: %s", folder, exc)
        return None


# -- the six checks -----------------------------------------------------------


def _events(record: RunRecord | None, kind: str | None = None) -> list[dict]:
    if record is None or not record.data.get("trace"):
        return []
    events = record.data["trace"]["events"]
    return [e for e in events if kind is None or e["kind"] == kind]


def _model_arrays(record: RunRecord, epoch: int) -> dict[str, np.ndarray]:
    arrays = record.arrays("epoch", epoch) or {}
    return {
        p: v
        for p, v in arrays.items()
        if record.variables[p]["kind"] in ("embedding", "weight")
    }


def _model_reused(A: list[RunRecord]) -> Pitfall:
    pit = Pitfall("model_reused", False)
    for run, record in enumerate(A[1:], start=1):
        for event in _events(record, "fit"):
            if event.get("trained_in_run") is not None:
                pit.found = True
                pit.where.append(event["where"])
                pit.evidence.append(
                    f"run {run + 1} called fit() on the model object run "
                    f"{event['trained_in_run'] + 1} had trained."
                )
    if A[0].error or A[1].error:
        return pit
    last = max(A[0].epochs)
    end, start = _model_arrays(A[0], last), _model_arrays(A[1], 0)
    common = [p for p in start if p in end and start[p].shape == end[p].shape]
    if common and last > 0 and all(_same_bits(start[p], end[p]) for p in common):
        pit.found = True
        pit.evidence.append(
            f"run 2 started from run 1's final weights: all {len(common)} model "
            f"variables at its epoch 0 equal run 1's epoch {last} bit for bit."
        )
    if pit.found:
        pit.cause = (
            "The same model object was trained again as if it were a new run, so "
            "each later run continues the previous one; their differences shrink as "
            "it converges, which looks like seed variance but is not."
        )
    return pit


def _seed_after_build(A: list[RunRecord], B: RunRecord | None) -> Pitfall:
    pit = Pitfall("seed_after_build", False)
    for run, record in enumerate(A):
        events = _events(record)
        first_seed = next((e["first"] for e in events if e["kind"] == "seed"), None)
        if first_seed is None:
            continue
        early = [
            e
            for e in events
            if e["first"] < first_seed
            and (
                (e["kind"] == "weight" and e.get("random"))
                or (
                    e["kind"] == "draw"
                    and e["generator"] == "python"
                    and e["via_keras"]
                )
            )
        ]
        if early:
            weights = [
                f"{e['layer']}/{e['variable']}" for e in early if e["kind"] == "weight"
            ]
            what = (
                f"weights {', '.join(weights[:4])}"
                if weights
                else "Keras initializer or layer seeds"
            )
            pit.found = True
            pit.where.extend(e["where"] for e in early)
            pit.evidence.append(
                f"run {run + 1} created {what} before its first seed call."
            )
            break
    changed = _init_changes_with_seed(A)
    if changed is False:
        pit.found = True
        pit.evidence.append(
            "the initial values were identical with two different seeds "
            "(runs 2 and 3 of one process)."
        )
    if pit.found:
        pit.cause = (
            "The initial weights were drawn before the run set its seed, so they do "
            "not follow the seed: they come from whatever state the generators were "
            "in (fresh entropy in a new process, the previous run's state in a loop)."
            if pit.where
            else "The initial weights do not follow the seed passed to the run: it is "
            "set after the model is built, or the initializers carry fixed seeds."
        )
    return pit


def _unseeded(A: list[RunRecord], B: RunRecord | None, *, shuffles: bool) -> Pitfall:
    pit = Pitfall("unseeded_shuffle" if shuffles else "unseeded_generator", False)
    kinds = ("shuffle",) if shuffles else ("draw", "unseeded_generator")
    generators: list[str] = []
    for record in A:
        events = _events(record)
        seeded_in_run = {e["generator"] for e in events if e["kind"] == "seed"}
        for e in events:
            if e["kind"] not in kinds or e.get("seeded", False):
                continue
            if e["kind"] == "unseeded_generator" and shuffles:
                continue
            if e["generator"] in seeded_in_run and e["generator"] != "numpy_generator":
                continue  # seeded later in the run: the seed-after-build pitfall
            if e["kind"] == "unseeded_generator" and not _generator_draws(
                events, False
            ):
                continue  # created, but only used to shuffle
            if e["generator"] not in generators:
                generators.append(e["generator"])
            pit.where.append(e["where"])
    if generators:
        pit.found = True
        words = "; ".join(_GENERATOR_WORDS[g] for g in generators)
        verb = "shuffled the data with" if shuffles else "drew from"
        pit.evidence.append(f"the run {verb}: {words}; nothing seeded it in the run.")
        pit.cause = (
            f"The training data's order came from {words}, which nothing seeded, so "
            "every process sees another order."
            if shuffles
            else f"Values were drawn from {words}, which nothing seeded, so every "
            "process starts it from fresh entropy and draws other values."
        )
    if pit.found and B is not None and not A[0].error and not B.error:
        diff = compare_records(A[0], B)
        first = diff.get("first_epoch")
        if first == 0 and not shuffles:
            pit.evidence.append("the initial values differ between two processes.")
        elif first is not None and first > 0 and shuffles:
            pit.evidence.append(
                "two processes start from the same initial values and part at epoch "
                f"{first}."
            )
    return pit


def _generator_draws(events: list[dict], shuffles: bool) -> bool:
    kind = "shuffle" if shuffles else "draw"
    return any(
        e["kind"] == kind and e["generator"] == "numpy_generator" for e in events
    )


def _mapping(A, B, C, cross_process: bool) -> Pitfall:
    pit = Pitfall("mapping_changes", False)
    if not cross_process or B is None:
        pit.found = None
        pit.evidence.append("not checked: it needs a second process.")
        return pit
    a_ids, b_ids = A[0].data.get("ids", {}), B.data.get("ids", {})
    for table in sorted(set(a_ids) & set(b_ids)):
        ia, ib = a_ids[table], b_ids[table]
        if ia["order"] == ib["order"]:
            continue
        pit.found = True
        same = ia["members"] == ib["members"]
        pit.evidence.append(
            f"table {table!r}: "
            + (
                f"the same {ia['n']} entities in another row order "
                if same
                else "other entities "
            )
            + f"(first rows {ia['first'][:3]} vs {ib['first'][:3]}) under "
            "PYTHONHASHSEED "
            f"{_hash_seed(A[0])} and {_hash_seed(B)}."
        )
    if not pit.found and not a_ids and C is not None:
        ab = compare_records(A[0], B)
        ac = compare_records(A[0], C)
        if ab["identical"] is False and ac["identical"]:
            pit.found = True
            pit.evidence.append(
                "runs under two PYTHONHASHSEED values differ, and a third process "
                "under the first value reproduces the first: the result depends on "
                "Python's string hashing (record the ids with recorder.entity_ids to "
                "see which table)."
            )
    if pit.found:
        pit.cause = (
            "The same entity lands on another row in another process: the row order "
            "comes from iterating a set (or a dict filled from one) of strings, whose "
            "order follows Python's per-process hash seed (PYTHONHASHSEED)."
        )
    elif not a_ids:
        pit.evidence.append(
            "no entity ids recorded (recorder.entity_ids); checked by the values only."
        )
    return pit


def _shared_initializer(A: list[RunRecord]) -> Pitfall:
    pit = Pitfall("shared_initializer", False)
    shared: dict[int, list[str]] = {}
    for e in _events(A[0], "weight"):
        if e.get("random") and e.get("initializer_id") is not None:
            shared.setdefault(e["initializer_id"], []).append(e["layer"])
    for layers in shared.values():
        if len(set(layers)) > 1:
            shared_by = ", ".join(sorted(set(layers)))
            pit.evidence.append(
                f"one initializer object was given to layers {shared_by}."
            )
    arrays = _model_arrays(A[0], 0) if not A[0].error else {}
    names = [
        p
        for p, v in arrays.items()
        if np.issubdtype(v.dtype, np.floating) and v.size >= 4 and np.ptp(v) > 0
    ]
    for i, p in enumerate(names):
        for q in names[i + 1 :]:
            how = _same_draws(arrays[p], arrays[q])
            if how:
                pit.found = True
                pit.evidence.append(f"initial {p} and {q}: {how}.")
    if pit.found:
        pit.cause = (
            "Two layers start from the same random values: a Keras initializer fixes "
            "its seed when it is created (an unseeded one draws it then), so one "
            "instance given to two layers, or two with the same seed, makes the same "
            "draws for both."
        )
    return pit


def _same_draws(a: np.ndarray, b: np.ndarray) -> str | None:
    n = min(a.size, b.size)
    x, y = a.reshape(-1)[:n], b.reshape(-1)[:n]
    if _same_bits(x, y):
        return f"the first {n} values are identical bit for bit"
    nonzero = y != 0
    if nonzero.sum() < 4 or not np.array_equal(x == 0, ~nonzero):
        return None
    ratio = x[nonzero].astype(np.float64) / y[nonzero]
    if np.allclose(ratio, ratio[0], rtol=1e-5, atol=0) and ratio[0] > 0:
        return f"the first {n} values are the same draws scaled by {ratio[0]:.4g}"
    return None


# -- helpers --------------------------------------------------------------------


def _init_changes_with_seed(A: list[RunRecord]) -> bool | None:
    if any(r.error for r in A[1:]):
        return None
    x, y = _model_arrays(A[1], 0), _model_arrays(A[2], 0)
    random_like = [p for p in x if p in y and np.ptp(x[p]) > 0]
    if not random_like:
        return None
    return not all(_same_bits(x[p], y[p]) for p in random_like)


def _ids_differ(a: RunRecord, b: RunRecord | None) -> bool:
    if b is None:
        return False
    ia, ib = a.data.get("ids", {}), b.data.get("ids", {})
    return any(ia[t]["order"] != ib[t]["order"] for t in set(ia) & set(ib))


def _traced_unseeded(A: list[RunRecord]) -> bool:
    return bool(
        _unseeded(A, None, shuffles=False).found
        or _unseeded(A, None, shuffles=True).found
    )


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def _hash_seed(record: RunRecord) -> str:
    value = (record.manifest.get("env") or {}).get("PYTHONHASHSEED")
    return "unset (random)" if value is None else value
