"""Train many runs of the built-in factorization at once, as one replica group.

A study is dozens of trainings of one small model that differ only in their
seeds and a few hyperparameters. Trained one after another, each Keras
``fit`` spends most of its time on per-step overhead. Here ``R`` runs that
share the table shapes are stacked: every table becomes one array of shape
``(R, n, k)``, and one compiled step trains all of them. Two engines
compute the step: a fused CPU kernel compiled by Numba
(:mod:`embvar.training.replica_kernel`, the default without a GPU) and
TensorFlow variables with a step compiled by XLA
(:mod:`embvar.training.replica_step`, which TensorFlow places on a GPU
where it sees one).

Each replica ``r`` is the independent run of its spec, step for step:

- its initial values come from the same Keras initializers, drawn under its
  own ``init`` seed exactly as :func:`~embvar.training.fit.train_run`
  draws them (and the ``perturb`` control moves the same weight);
- its batches are the same: each epoch one permutation from its own
  ``order`` generator, cut into consecutive batches of ``batch_size``;
- its loss is its own batch mean squared error plus its own L2 penalty, and
  the step minimises the *sum* of the replicas' losses, so the gradient of
  each replica's tables is exactly the gradient of its own loss;
- its optimizer state is its own slice of stacked slots, updated by the
  arithmetic Keras's SGD, Adam, AdamW, RMSprop and Adagrad apply to an
  embedding's sparse gradient (:mod:`embvar.training.replica_step`);
  learning rate, weight decay and L2 may differ per replica;
- a replica whose loss stops being finite is stopped after that step, as
  the independent run's divergence guard stops it, its result is handed on
  at once, and its slice is zeroed so that it cannot disturb the others.

The built-in factorization draws no random numbers while it trains, so the
``noise`` seed changes nothing on either path. The tables match the
independent runs to rounding (the compiled step sums and fuses in its own
order), not bit for bit. With the kernel, each replica's tables are bitwise
the same whatever other runs share its group and however many threads run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from embvar.checks import check_choice, check_int
from embvar.config import TRAINERS, RunSpec, Trainer
from embvar.data.prepared import PreparedData, data_key
from embvar.errors import ConfigError, ShapeMismatchError
from embvar.models.factorization import Pretrained, draw_table, make_initializer
from embvar.seeds import order_generator
from embvar.training.allocator import tune_allocator
from embvar.training.fit import RunResult, rmse
from embvar.training.replica_step import (
    DECAY_PERIOD,
    MAX_DECAY_PERIOD,
    SLOTS,
    Evaluation,
    ReplicaModel,
    distinct_rows,
)

__all__ = [
    "REPLICA_MODELS",
    "Engine",
    "ENGINES",
    "Trainer",
    "TRAINERS",
    "DEFAULT_MEMORY_BUDGET",
    "JIT_POSITIONS",
    "JIT_PARAMETER_STEPS",
    "GroupResult",
    "replica_key",
    "replica_bytes",
    "group_runs",
    "initial_tables",
    "train_replicas",
]

logger = logging.getLogger(__name__)


# Bytes one group of replicas may hold in tables, slots, gradients and
# per-epoch arrays; a larger group is cut into chunks under this size.
DEFAULT_MEMORY_BUDGET = 1 << 30

# When a group's step is worth compiling with XLA (measured on this 2-core
# machine): the batch-row work from this many replica batch positions
# (replicas x training ratings x epochs; about 3 CPU-seconds of compiling
# against 4 microseconds saved per position), the dense update of every row
# from this many parameter-steps (replicas x parameters x steps; about 1
# CPU-second against 16 nanoseconds saved per parameter-step).
JIT_POSITIONS = 1_000_000
JIT_PARAMETER_STEPS = 100_000_000

# The built-in models the replica trainer trains.
REPLICA_MODELS = ("factorization", "skipgram")

# How a group is trained: the fused CPU kernel, or TensorFlow's graph (XLA).
Engine = Literal["auto", "kernel", "graph"]
ENGINES: tuple[str, ...] = ("auto", "kernel", "graph")

EpochCallback = Callable[[int, int], None]
ResultCallback = Callable[[RunResult], None]


@dataclass
class GroupResult:
    """What one replica group produced: each run's result, in the group's order."""

    results: list[RunResult] = field(default_factory=list)


def replica_key(spec: RunSpec) -> str | None:
    """Return the key of the runs ``spec`` can share a replica group with.

    Runs with the same key train on the same prepared data with tables of
    the same shapes, the same optimizer and the same schedule; they may
    differ in their seeds, the perturbation control, the initializer, the
    learning rate, the weight decay and (the factorization's) L2 penalty.

    Returns
    -------
    str or None
        A hash, or None if the run needs the independent trainer: a model
        other than the built-in factorization and skip-gram, or a training
        hook.
    """
    if spec.model.kind not in REPLICA_MODELS or spec.model.fit is not None:
        return None
    shared = {
        "data": data_key(spec.data, spec.seeds["split"]),
        "kind": spec.model.kind,
        "dim": spec.model.dim,
        "optimizer": spec.training.optimizer,
        "batch_size": spec.training.batch_size,
        "epochs": spec.training.epochs,
    }
    if spec.model.kind == "factorization":
        shared["use_bias"] = spec.model.use_bias
    else:
        shared["window"] = spec.model.window
        shared["negatives"] = spec.model.negatives
        shared["subsample"] = spec.model.subsample
    blob = json.dumps(shared, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def replica_bytes(spec: RunSpec, n_users: int, n_items: int, n_ratings: int) -> int:
    """Return the bytes one replica of ``spec`` holds while it trains.

    Parameters
    ----------
    spec : RunSpec
    n_users, n_items : int
        Rows of the user and item tables.
    n_ratings : int
        Training plus test ratings (the epoch's batches and the evaluation).

    Returns
    -------
    int
        The float32 tables, their optimizer slots and three temporaries of
        the same size (the dense update's), plus 40 bytes per rating.
    """
    width = spec.model.dim + (1 if spec.model.use_bias else 0)
    params = (n_users + n_items) * width
    tensors = 1 + len(SLOTS[spec.training.optimizer]) + 3
    return 4 * params * tensors + 40 * n_ratings


def group_runs(
    specs: Sequence[RunSpec],
    *,
    trainer: Trainer = "auto",
    prepared: Mapping[str, PreparedData] | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
) -> list[list[RunSpec]]:
    """Return ``specs`` cut into the groups that train together.

    Parameters
    ----------
    specs : sequence of RunSpec
        The runs to train, in plan order.
    trainer : {"auto", "replicas", "independent"}
        ``"auto"``: runs that share a :func:`replica_key` with another run
        train as replicas; runs that repeat another run's seeds (a
        determinism design) and runs the replica trainer cannot train
        train alone. ``"replicas"``: every run as a replica, even in a
        group of one. ``"independent"``: every run alone.
    prepared : mapping of str to PreparedData, optional
        The prepared data by :func:`~embvar.data.prepared.data_key`, to size
        the groups; without it groups are not cut for memory.
    memory_budget : int
        The most bytes (:func:`replica_bytes` times replicas) one group may
        hold; a larger group is cut into chunks of near-equal size.

    Returns
    -------
    list of list of RunSpec
        Groups in the order of their first run. Under ``"auto"`` and
        ``"independent"`` a group of one is an independent run.

    Raises
    ------
    ConfigError
        ``trainer="replicas"`` and a run the replica trainer cannot train.
    """
    check_choice("trainer", trainer, TRAINERS)
    check_int("memory_budget", memory_budget, 1)
    if trainer == "independent":
        return [[s] for s in specs]
    by_key: dict[str, list[RunSpec]] = {}
    order: list[tuple[str, RunSpec | None]] = []
    for spec in specs:
        key = replica_key(spec)
        if key is None and trainer == "replicas":
            raise ConfigError(
                "the replicas trainer (--trainer replicas) needs runs of the "
                "built-in factorization or skip-gram model without a training "
                "hook; run "
                f"{spec.run_id} has model.kind={spec.model.kind!r}, "
                f"model.fit={spec.model.fit!r}. Use the auto trainer "
                "(--trainer auto) to train such runs on their own."
            )
        if key is None or (trainer == "auto" and spec.repeat is not None):
            order.append((spec.run_id, spec))
            continue
        if key not in by_key:
            by_key[key] = []
            order.append((key, None))
        by_key[key].append(spec)
    groups: list[list[RunSpec]] = []
    for key, alone in order:
        if alone is not None:
            groups.append([alone])
            continue
        members = by_key[key]
        size = _chunk_size(members[0], prepared, memory_budget)
        groups.extend(_chunks(members, size))
    return groups


def _chunk_size(
    spec: RunSpec, prepared: Mapping[str, PreparedData] | None, budget: int
) -> int:
    data = (
        None
        if prepared is None
        else prepared.get(data_key(spec.data, spec.seeds["split"]))
    )
    if data is None:
        return 1 << 30
    if spec.model.kind == "skipgram":
        # Both tables, their slots and the epoch's rows (a few per token).
        tensors = 1 + len(SLOTS[spec.training.optimizer])
        table = 4 * data.n_words * spec.model.dim
        rows = 4 * (2 + spec.model.negatives) * 2 * spec.model.window * data.n_tokens
        return max(1, budget // (2 * tensors * table + rows))
    inter = data.interactions
    n_ratings = len(data.split.train) + len(data.split.test)
    return max(
        1, budget // replica_bytes(spec, inter.n_users, inter.n_items, n_ratings)
    )


def _chunks(members: list[RunSpec], size: int) -> list[list[RunSpec]]:
    """Cut ``members`` into the fewest chunks of at most ``size``, sizes within 1."""
    n_chunks = -(-len(members) // size)
    base, extra = divmod(len(members), n_chunks)
    out, start = [], 0
    for i in range(n_chunks):
        stop = start + base + (1 if i < extra else 0)
        out.append(members[start:stop])
        start = stop
    return out


def initial_tables(
    spec: RunSpec,
    n_users: int,
    n_items: int,
    pretrained: Pretrained | None = None,
) -> dict[str, np.ndarray]:
    """Return the initial tables the independent run of ``spec`` starts from.

    The same draws as :func:`~embvar.models.factorization.build_factorization`
    under the run's ``init`` seed, without building a Keras model (which
    costs a quarter of a second): the seed is set, the user and then the
    item initializer are made (each takes its seed from Python's ``random``
    when it is made) and called on its table's shape; the biases start at
    zero; the ``perturb`` control then moves one item weight up by one unit
    in the last place, as :func:`~embvar.training.fit.perturb_weight` does.

    Returns
    -------
    dict of str to ndarray
        ``user_embedding`` (n_users, dim), ``item_embedding`` (n_items, dim)
        and, with biases, ``user_bias`` (n_users, 1), ``item_bias``
        (n_items, 1), all float32.

    Raises
    ------
    ConfigError
        ``initializer = "pretrained"`` without the pretrained tables.
    """
    import keras

    model = spec.model
    if model.initializer == "pretrained" and pretrained is None:
        raise ConfigError(
            "model.initializer = 'pretrained' needs the pretrained tables; "
            "got none (set model.pretrained)."
        )
    keras.utils.set_random_seed(spec.seeds["init"])
    pre_u = pretrained.user if pretrained is not None else None
    pre_i = pretrained.item if pretrained is not None else None
    tables = {}
    init_u = make_initializer(model, pre_u)
    tables["user_embedding"] = draw_table(init_u, (n_users, model.dim))
    init_i = make_initializer(model, pre_i)
    tables["item_embedding"] = draw_table(init_i, (n_items, model.dim))
    if model.use_bias:
        tables["user_bias"] = np.zeros((n_users, 1), np.float32)
        tables["item_bias"] = np.zeros((n_items, 1), np.float32)
    if spec.perturb:
        flat = tables["item_embedding"].reshape(-1)
        k = (spec.perturb - 1) % flat.size
        flat[k] = np.nextafter(flat[k], np.float32(np.inf))
    return tables


def train_replicas(
    specs: Sequence[RunSpec],
    data: PreparedData,
    *,
    pretrained: Sequence[Pretrained | None] | None = None,
    on_epoch: EpochCallback | None = None,
    on_result: ResultCallback | None = None,
    snapshot_epochs: set[int] | None = None,
    engine: Engine = "auto",
    jit_compile: bool | None = None,
    touched_rows: bool | None = None,
    decay_period: int | None = None,
) -> list[RunResult]:
    """Train the runs ``specs`` together, as replicas in one compiled step.

    Parameters
    ----------
    specs : sequence of RunSpec
        Runs that share one :func:`replica_key` (same data, table shapes,
        optimizer, batch size and epochs).
    data : PreparedData
        The split every replica trains and tests on.
    pretrained : sequence of Pretrained or None, optional
        Per run, the initial rows for ``initializer = "pretrained"``.
    on_epoch : callable(epoch, epochs), optional
        Called after each epoch of the group, for progress bars.
    on_result : callable(RunResult), optional
        Called with each run's result as soon as the run is finished: a
        diverged replica when it stops, the others after the last epoch.
    snapshot_epochs : set of int, optional
        Epochs to snapshot (default: all, from 0).
    engine : {"auto", "kernel", "graph"}
        ``"kernel"``: the fused CPU kernel
        (:class:`~embvar.training.replica_kernel.KernelModel`); ``"graph"``:
        TensorFlow variables and a step compiled by XLA
        (:class:`~embvar.training.replica_step.ReplicaModel`), which runs
        where TensorFlow places it, a GPU included. ``"auto"``: the graph
        where TensorFlow sees a GPU, else the kernel. The options below
        apply to the graph only.
    jit_compile : bool, optional
        Compile the step with XLA: True for all of it, False for none of it.
        By default each part is compiled where the faster steps repay the
        compile time: the dense update of every row (fused, it moves a
        fraction of the bytes) from ``JIT_PARAMETER_STEPS`` parameter-steps,
        the work on the batch rows and the evaluation from
        ``JIT_POSITIONS`` replica batch positions.
    touched_rows : bool, optional
        Update the rows a batch touches on their own instead of densifying
        the gradient of a dense optimizer slot; by default where a table has
        many more rows than a batch has positions
        (:class:`~embvar.training.replica_step.ReplicaModel`). True compiles
        the batch work with XLA whatever the group's size.
    decay_period : int, optional
        For Adam with touched rows: the zero-gradient steps of the rows
        outside the batch applied together, 1 to ``MAX_DECAY_PERIOD``
        (used up to the group's number of steps; default ``DECAY_PERIOD``).

    Returns
    -------
    list of RunResult
        In the order of ``specs``, with the fields ``train_run`` fills.
        ``seconds`` (of the run and of each epoch) is the group's time
        divided by the number of replicas: each run's share of the cost.

    Raises
    ------
    ShapeMismatchError
        The runs do not share a replica key, or ``pretrained`` does not give
        one entry per run.
    TrainingError
        An optimizer setting the replica step does not implement.
    """
    start = time.perf_counter()
    specs = list(specs)
    for name, value in (("jit_compile", jit_compile), ("touched_rows", touched_rows)):
        if value is not None and not isinstance(value, bool):
            raise ConfigError(
                f"{name} must be True, False or None; got {name}={value!r}."
            )
    if decay_period is not None:
        check_int("decay_period", decay_period, 1, MAX_DECAY_PERIOD)
    check_choice("engine", engine, ENGINES)
    graph_options = {
        name: value
        for name, value in (
            ("jit_compile", jit_compile),
            ("touched_rows", touched_rows),
            ("decay_period", decay_period),
        )
        if value is not None
    }
    if engine == "kernel" and graph_options:
        name, value = next(iter(graph_options.items()))
        raise ConfigError(
            f"{name} applies to engine='graph' only; got {name}={value!r} "
            "with engine='kernel'."
        )
    if touched_rows and jit_compile is False:
        raise ConfigError(
            "touched_rows=True needs the step compiled with XLA; got "
            "jit_compile=False (set jit_compile=True or leave it unset)."
        )
    if not specs:
        return []
    tune_allocator()
    keys = {replica_key(s) for s in specs}
    if None in keys or len(keys) != 1:
        raise ShapeMismatchError(
            "train_replicas needs runs of one built-in model (factorization or "
            "skip-gram) that share data, dim, optimizer, batch_size, epochs and "
            "the model's other shapes; got "
            f"{len(keys)} different kinds among {len(specs)} runs."
        )
    if pretrained is not None and len(pretrained) != len(specs):
        raise ShapeMismatchError(
            f"pretrained must give one entry per run ({len(specs)}); "
            f"got {len(pretrained)}."
        )
    if specs[0].model.kind == "skipgram":
        if engine == "graph" or graph_options:
            raise ConfigError(
                "the skip-gram model's replicas train in the kernel only; got "
                f"engine={engine!r}"
                + "".join(f", {k}={v!r}" for k, v in graph_options.items())
                + "."
            )
        from embvar.training.skipgram_replicas import train_skipgram_replicas

        return train_skipgram_replicas(
            specs,
            data,  # type: ignore[arg-type]
            on_epoch=on_epoch,
            on_result=on_result,
            snapshot_epochs=snapshot_epochs,
        )
    import keras

    R = len(specs)
    epochs = specs[0].training.epochs
    batch = specs[0].training.batch_size
    wanted = set(range(epochs + 1)) if snapshot_epochs is None else snapshot_epochs
    inter = data.interactions
    mu = data.mu
    users, items, ratings = data.train_users, data.train_items, data.train_ratings
    test = (data.test_users, data.test_items, data.test_ratings)
    n = len(users)
    results = [RunResult(run_id=s.run_id) for s in specs]

    # Each replica's initial values from its own init seed, as its run draws them.
    keras.backend.clear_session()
    initial = [
        initial_tables(
            s,
            inter.n_users,
            inter.n_items,
            None if pretrained is None else pretrained[r],
        )
        for r, s in enumerate(specs)
    ]
    if engine == "auto":
        engine = "graph" if graph_options or _gpu_visible() else "kernel"
    if engine == "kernel":
        # Numba is imported (and the kernel compiled or loaded) on first use.
        from embvar.training.replica_kernel import KernelEvaluation, KernelModel

        model = KernelModel(initial, specs, mu)
        evaluation = KernelEvaluation(model, data)
    else:
        model = _graph_model(
            initial, specs, data, jit_compile, touched_rows, decay_period
        )
        evaluation = Evaluation(model, data)
    del initial
    orders = [order_generator(s.seeds["order"]) for s in specs]
    running = list(range(R))

    def record(
        epoch: int,
        r: int,
        tables: dict[str, np.ndarray],
        loss: float,
        seconds: float,
        errors: tuple[float, float] | None,
    ) -> bool:
        """Add replica ``r``'s epoch to its result, as ``train_run`` records it."""
        finite = all(np.isfinite(t).all() for t in tables.values())
        if epoch in wanted or not finite:
            results[r].snapshots[epoch] = tables
        if not finite:
            errors = (float("nan"), float("nan"))
        elif errors is None:
            errors = (rmse(tables, users, items, ratings, mu), rmse(tables, *test, mu))
        results[r].history.append(
            {
                "epoch": epoch,
                "loss": loss,
                "train_rmse": errors[0],
                "test_rmse": errors[1],
                "seconds": seconds,
            }
        )
        return finite

    def stop(r: int, epoch: int, step: int) -> None:
        """Mark replica ``r`` diverged, take it out and hand its result on."""
        results[r].status = "diverged"
        results[r].diverged = {"epoch": epoch, "step": step}
        logger.warning(
            "run %s diverged at epoch %d step %s", specs[r].run_id, epoch, step
        )
        model.stop(r)
        running.remove(r)
        finish(r)

    def finish(r: int) -> None:
        results[r].seconds = (time.perf_counter() - start) / R
        if on_result is not None:
            on_result(results[r])

    stacked = model.values()
    train0, test0 = evaluation.rmse()
    for r in running:
        record(0, r, _replica(stacked, r), float("nan"), 0.0, (train0[r], test0[r]))

    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        # This epoch's batches of every replica, each from its own order generator.
        perm = np.stack(
            [
                orders[r].permutation(n) if r in running else np.arange(n)
                for r in range(R)
            ]
        )
        epoch_users = _padded(users[perm], batch)
        epoch_items = _padded(items[perm], batch)
        epoch_ratings = _padded(ratings[perm], batch)
        if engine == "kernel":
            counts = [min(batch, n - lo) for lo in range(0, n, batch)]
            mean, stopped = model.run_epoch(
                epoch_users, epoch_items, epoch_ratings, counts
            )
            seconds = (time.perf_counter() - t0) / R
            diverged = [r for r in running if stopped[r] >= 0]
            # Stopped by the kernel after that step, as the run's guard would;
            # their tables as they were then (stopping one zeroes only its own).
            stacked = model.values() if diverged else {}
            for r in diverged:
                record(epoch, r, _replica(stacked, r), float(mean[r]), seconds, None)
                stop(r, epoch, int(stopped[r]))
        else:
            mean = _graph_epoch(
                model,
                epoch_users,
                epoch_items,
                epoch_ratings,
                n,
                running,
                t0,
                record,
                stop,
                epoch,
            )
        if not running:
            return results
        seconds = (time.perf_counter() - t0) / R
        stacked = model.values()
        train_e, test_e = evaluation.rmse()
        for r in list(running):
            if not record(
                epoch,
                r,
                _replica(stacked, r),
                float(mean[r]),
                seconds,
                (train_e[r], test_e[r]),
            ):
                stop(r, epoch, -1)
        if not running:
            return results
        if on_epoch is not None:
            on_epoch(epoch, epochs)
    for r in list(running):
        finish(r)
    return results


def _graph_epoch(
    model: ReplicaModel,
    users: np.ndarray,
    items: np.ndarray,
    ratings: np.ndarray,
    n: int,
    running: list[int],
    t0: float,
    record: Callable[..., bool],
    stop: Callable[[int, int, int], None],
    epoch: int,
) -> np.ndarray:
    """One epoch of the graph engine, a step at a time; return each mean loss.

    Keras's loss tracker: float32 running sums of loss * batch and of batch.
    A replica whose mean stops being finite is recorded and stopped after
    that step, as the independent run's guard stops it.
    """
    R, batch = model.R, model.batch
    model.start_epoch(users, items, ratings)
    total = np.zeros(R, np.float32)
    count = np.float32(0)
    mean = total
    for step, lo in enumerate(range(0, n, batch)):
        hi = min(lo + batch, n)
        losses = model.step(step, hi - lo).numpy()
        total = (total + losses * np.float32(hi - lo)).astype(np.float32)
        count = np.float32(count + np.float32(hi - lo))
        with np.errstate(invalid="ignore", over="ignore"):
            mean = total / count
        for r in [r for r in running if not math.isfinite(float(mean[r]))]:
            seconds = (time.perf_counter() - t0) / R
            record(epoch, r, _replica(model.values(), r), float(mean[r]), seconds, None)
            stop(r, epoch, step)
        if not running:
            break
    return mean


def _gpu_visible() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def _graph_model(
    initial: list[dict[str, np.ndarray]],
    specs: Sequence[RunSpec],
    data: PreparedData,
    jit_compile: bool | None,
    touched_rows: bool | None,
    decay_period: int | None,
) -> ReplicaModel:
    """The group's tables as TensorFlow variables, its step compiled by XLA."""
    R = len(specs)
    n = len(data.train_users)
    batch = specs[0].training.batch_size
    epochs = specs[0].training.epochs
    # XLA where the group is large enough to repay compiling (see JIT_*).
    steps = -(-n // batch) * epochs
    params = sum(t.size for t in initial[0].values())
    jit_dense = R * params * steps >= JIT_PARAMETER_STEPS
    jit_batch = R * n * epochs >= JIT_POSITIONS
    if jit_compile is not None:
        jit_dense = jit_batch = jit_compile
    if touched_rows:
        jit_batch = True  # the touched-row scatters rely on XLA
    model = ReplicaModel(
        initial,
        specs,
        data.mu,
        jit_dense=jit_dense,
        jit_batch=jit_batch,
        touched_rows=touched_rows,
        decay_period=min(decay_period or DECAY_PERIOD, max(1, steps)),
    )
    if model.touched_sides:
        model.reserve_slots(
            _most_distinct_rows(specs, data, batch, model.touched_sides)
        )
    return model


def _most_distinct_rows(
    specs: Sequence[RunSpec], data: PreparedData, batch: int, sides: set[str]
) -> dict[str, int]:
    """Return, per side, the most distinct rows one step of the group will touch.

    The epochs' batches are drawn ahead from fresh order generators of the
    replicas (the same permutations the training draws), so the step can be
    compiled for that many touched rows rather than one per position. A
    replica that stops early trains on no new permutations; should a step
    touch more rows than counted, the step grows (ReplicaModel.step).
    """
    orders = [order_generator(s.seeds["order"]) for s in specs]
    n = len(data.train_users)
    inter = data.interactions
    tables = {
        "user": (data.train_users, inter.n_users),
        "item": (data.train_items, inter.n_items),
    }
    sides = {side: tables[side] for side in sorted(sides)}
    most = dict.fromkeys(sides, 0)
    for _ in range(specs[0].training.epochs):
        perm = np.stack([order.permutation(n) for order in orders])
        for side, (index, n_rows) in sides.items():
            epoch = index[perm]
            for lo in range(0, n, batch):
                most[side] = max(
                    most[side], distinct_rows(epoch[:, lo : lo + batch], n_rows)
                )
    return most


def _padded(table: np.ndarray, batch: int) -> np.ndarray:
    """Return ``table`` (R, n) with zero columns up to a multiple of ``batch``."""
    R, n = table.shape
    out = np.zeros((R, -(-n // batch) * batch), table.dtype)
    out[:, :n] = table
    return out


def _replica(stacked: dict[str, np.ndarray], r: int) -> dict[str, np.ndarray]:
    return {name: np.array(table[r]) for name, table in stacked.items()}
