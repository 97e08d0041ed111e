"""The compiled step of a replica group: stacked tables, Keras's update rules.

The trainer in :mod:`embvar.training.replicas` drives this: ``ReplicaModel``
holds the tables of ``R`` runs stacked, one variable of shape ``(R, n, k)``
per side (users, items) with the bias as the last column, the optimizer's
slots likewise, and trains all replicas one batch at a time with the
arithmetic Keras applies to each run on its own.

Keras receives an embedding's gradient as ``IndexedSlices``, one row per
batch position with repeated rows repeated, and its sparse-aware ops decide
what gets summed. Read in Keras 3.15's source and checked against it, the
rules are:

- a gradient subtracted from a dense slot (Adam's first moment) is
  densified: the positions of one row are summed, ``sum_i g_i``;
- a squared gradient is squared per position and then summed:
  Adam's second moment and RMSprop's and Adagrad's accumulators grow by
  ``sum_i g_i**2``, not ``(sum_i g_i)**2``;
- a gradient times the learning rate (SGD, RMSprop, Adagrad) stays per
  position and is scattered into the table one position at a time;
- every row of a dense slot (Adam's moments, RMSprop's velocity) and of a
  table moved by a dense slot changes at every step, in the batch or not.

A step is up to three compiled functions: the losses, the gradients and
what the updates need (reads only); the dense update of every row; the
scatters. The same arithmetic, element by element, as the Keras step; only
the order of some sums may differ.

A dense slot moves every row at every step, but a row outside the batch
moves by the same rule with a zero gradient. For a side whose table has
many more rows than the batch has positions (the items of MovieLens: 9,066
rows against 1,024 positions), densifying the gradient would write and then
read a table-sized array of mostly zeros. There the batch's distinct rows
(``touched`` rows, found on the host by :func:`touched_index`) get their
new values from their values before the step and their summed gradients,
and are written over. For RMSprop every row's velocity still decays at
every step. For Adam the zero-gradient steps of all rows are deferred:
each row records the steps it has had, a touched row is first brought up
to date, and every ``decay_period`` steps (and before the tables are read)
:meth:`ReplicaModel.flush` applies the missing steps to every row in one
pass, each with its own step size. Element by element, each row gets the
arithmetic it gets from the densified gradient at every step.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from embvar.checks import check_int
from embvar.config import RunSpec
from embvar.data.prepared import PreparedData
from embvar.errors import ShapeMismatchError, TrainingError
from embvar.models.factorization import make_optimizer

__all__ = [
    "ReplicaModel",
    "Evaluation",
    "optimizer_settings",
    "SLOTS",
    "TOUCHED_ROWS_RATIO",
    "TOUCHED_ROWS_MIN_BYTES",
    "DECAY_PERIOD",
    "MAX_DECAY_PERIOD",
    "distinct_rows",
    "touched_index",
    "stacked_table",
]

# Optimizer state tables per model table, and their initial values.
SLOTS: dict[str, tuple[tuple[str, str], ...]] = {
    "sgd": (),
    "adam": (("momentum", "zeros"), ("velocity", "zeros")),
    "adamw": (("momentum", "zeros"), ("velocity", "zeros")),
    "rmsprop": (("velocity", "zeros"),),
    "adagrad": (("accumulator", "initial_accumulator_value"),),
}

# A side's touched rows are updated on their own (instead of densifying its
# gradient) when its table has at least this many rows per batch position.
TOUCHED_ROWS_RATIO = 4
# ... and its stacked table holds at least this many bytes: for smaller ones
# (measured: 3 MovieLens replicas, 3.6 MB an item table) the densified update
# stays in the cache and the touched-row work costs more than it saves.
TOUCHED_ROWS_MIN_BYTES = 16 << 20

# Adam's zero-gradient steps of the rows outside the batch are applied this
# many at a time, in one pass over the tables (see ReplicaModel.flush).
DECAY_PERIOD = 4
# The steps are unrolled in the compiled step: its size grows with the period.
MAX_DECAY_PERIOD = 64

# Keras optimizer settings the replica step does not implement; a value
# other than the default here means the run cannot be trained as a replica.
_UNSUPPORTED = {
    "clipnorm": None,
    "clipvalue": None,
    "global_clipnorm": None,
    "use_ema": False,
    "loss_scale_factor": None,
    "gradient_accumulation_steps": None,
    "momentum": 0.0,
    "nesterov": False,
    "amsgrad": False,
    "centered": False,
}


def optimizer_settings(specs: Sequence[RunSpec]) -> dict[str, Any]:
    """Return the Keras optimizer settings of the group, per replica where they vary.

    The settings are read from the same Keras optimizer the independent run
    makes (:func:`~embvar.models.factorization.make_optimizer`), so defaults
    such as AdamW's weight decay are the same on both paths.
    """
    name = specs[0].training.optimizer
    configs = [make_optimizer(s.training).get_config() for s in specs]
    for spec, config in zip(specs, configs, strict=True):
        for key, default in _UNSUPPORTED.items():
            if config.get(key, default) not in (default, None):
                raise TrainingError(
                    f"the replica trainer does not implement {key}={config[key]!r} "
                    f"of the {name} optimizer (run {spec.run_id}); "
                    "train it with trainer='independent'."
                )
    shared = {}
    for key in ("beta_1", "beta_2", "epsilon", "rho", "initial_accumulator_value"):
        if key in configs[0]:
            values = {float(c[key]) for c in configs}
            if len(values) != 1:
                raise ShapeMismatchError(
                    f"a replica group must share the optimizer's {key}; "
                    f"got {sorted(values)}."
                )
            shared[key] = values.pop()
    return {
        "name": name,
        "learning_rate": np.array(
            [float(c["learning_rate"]) for c in configs], np.float32
        ),
        "weight_decay": np.array(
            [float(c.get("weight_decay") or 0.0) for c in configs], np.float32
        ),
        **shared,
    }


def stacked_table(initial: Sequence[Mapping[str, np.ndarray]], side: str) -> np.ndarray:
    """One side's table of every replica, (R, n, k) float32: embedding, then bias.

    ``initial`` holds each replica's ``{side}_embedding`` and, where the
    model has them, ``{side}_bias``.
    """
    return np.stack(
        [
            np.concatenate(
                [t[f"{side}_embedding"]]
                + ([t[f"{side}_bias"]] if f"{side}_bias" in t else []),
                axis=1,
            )
            for t in initial
        ]
    ).astype(np.float32)


class BatchRows:
    """The rows one batch touches on one side (users or items), for every replica.

    Positions are flattened replica-major: position ``r * b + j`` is batch
    position ``j`` of replica ``r``.
    """

    def __init__(self, tf: Any, index: Any, n_rows: int):
        self.tf = tf
        R, b = index.shape
        self.R, self.b, self.n_rows = R, b, n_rows
        self._replica = tf.repeat(tf.range(R, dtype=index.dtype), b)
        self._row = tf.reshape(index, [-1])
        self.nd = tf.stack([self._replica, self._row], axis=1)
        self._flat = self._replica * n_rows + self._row

    def dense(self, values):
        """The per-position ``values`` (R*b, k) summed into their rows: (R, n, k).

        Keras's densification of a sparse gradient: the positions of a row
        are added in batch order, the other rows are zero.
        """
        tf = self.tf
        total = tf.math.unsorted_segment_sum(values, self._flat, self.R * self.n_rows)
        return tf.reshape(total, (self.R, self.n_rows, values.shape[-1]))

    def gather(self, state):
        """Per position, its row of a side's state (R, n, ...) -> (R*b, ...)."""
        tf = self.tf
        flat = tf.reshape(state, (self.R * self.n_rows, *state.shape[2:]))
        return tf.gather(flat, self._flat)

    def per_position(self, vector):
        """A per-replica vector (R,) repeated for each position -> (R*b, 1)."""
        return self.tf.repeat(vector, self.b)[:, None]


def _marked_rows(index: np.ndarray, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Each position's row of the stacked table, and a mark on every row used."""
    R = index.shape[0]
    flat = (np.asarray(index, np.int64) + (np.arange(R) * n_rows)[:, None]).ravel()
    mark = np.zeros(R * n_rows, bool)
    mark[flat] = True
    return flat, mark


def distinct_rows(index: np.ndarray, n_rows: int) -> int:
    """Return how many distinct (replica, row) pairs a batch ``index`` (R, b) holds."""
    return int(np.count_nonzero(_marked_rows(index, n_rows)[1]))


def touched_index(index: np.ndarray, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the distinct rows of a batch ``index`` (R, b) and each position's slot.

    Rows are indices into the stacked table (``replica * n_rows + row``), in
    increasing order; slot ``s`` holds row ``rows[s]``.

    Returns
    -------
    slot : ndarray of shape (R*b,), int32
        Each position's slot.
    rows : ndarray of shape (slots,), int32
    """
    flat, mark = _marked_rows(index, n_rows)
    rows = np.flatnonzero(mark)
    rank = np.empty(mark.size, np.int32)
    rank[rows] = np.arange(len(rows), dtype=np.int32)
    return rank[flat], rows.astype(np.int32)


class TouchedRows:
    """The distinct (replica, row) pairs of one side's batch, in fixed-size slots.

    Built from :func:`touched_index`, its rows padded to a fixed number of
    slots (a static shape, at least the number of distinct rows); the unused
    slots point one past the last row of the stacked table, where XLA's
    scatters drop their writes.
    """

    def __init__(self, tf: Any, slot, rows, R: int, n_rows: int):
        self.tf = tf
        self.size = R * n_rows
        self.n_rows = n_rows
        self.slot = slot
        self.n_slots = rows.shape[0]
        self._safe = tf.minimum(rows, self.size - 1)
        self.nd = tf.stack([rows // n_rows, rows % n_rows], axis=1)

    def sums(self, values):
        """The per-position ``values`` summed per slot, in batch order."""
        return self.tf.math.unsorted_segment_sum(values, self.slot, self.n_slots)

    def gather(self, state):
        """Each slot's row of a side's state (R, n, k) -> (slots, k)."""
        tf = self.tf
        flat = tf.reshape(state, (self.size, *state.shape[2:]))
        return tf.gather(flat, self._safe)

    def per_slot(self, vector):
        """A per-replica vector (R,) read for each slot's replica -> (slots, 1)."""
        return self.tf.gather(vector, self._safe // self.n_rows)[:, None]

    def per_position(self, values):
        """Per slot values (slots, k) read back for each position -> (R*b, k)."""
        return self.tf.gather(values, self.slot)


class ReplicaModel:
    """Stacked tables, optimizer slots and the compiled step of one group.

    Each side (users, items) is a list of variables of shape ``(R, n, k)``:
    the table (each row the embedding, then the bias when the model has
    one: ``k = dim + 1``), then each optimizer slot. A batch row is then
    read and written once per variable, not once per table: XLA's gathers
    and scatters on a CPU cost about the same per row whatever its width.

    Parameters
    ----------
    initial : list of dict of str to ndarray
        Each replica's initial tables.
    specs : sequence of RunSpec
        The replicas' runs (optimizer, learning rate, weight decay, L2).
    mu : float
        The training mean, the model's constant offset.
    jit_dense, jit_batch : bool
        Compile with XLA the dense update of every row (where fusion saves
        most of the memory traffic), and the work on the batch rows, the
        flush of Adam's deferred steps and the evaluation (worth its compile
        time only for large groups).
    decay_period : int
        For Adam's touched sides: how many zero-gradient steps of the rows
        outside the batch are applied together (1: at every step).
    slots : mapping of str to int, optional
        Per side, the most distinct rows a batch will touch (a step that
        touches more recompiles the step for one slot per position). Fewer
        slots make the work on touched rows smaller; default: one per
        position.
    touched_rows : bool, optional
        Update the rows a batch touches on their own rather than densify
        the gradient of a dense slot (Adam, AdamW, RMSprop): True for both
        sides, False for neither. By default, for each side whose table has
        ``TOUCHED_ROWS_RATIO`` rows per batch position or more and whose
        stacked table holds ``TOUCHED_ROWS_MIN_BYTES`` or more, when the
        batch work is compiled (the scatters rely on XLA dropping writes
        outside the table).
    """

    SIDES = ("user", "item")

    def __init__(
        self,
        initial: list[dict[str, np.ndarray]],
        specs: Sequence[RunSpec],
        mu: float,
        *,
        jit_dense: bool = True,
        jit_batch: bool = True,
        touched_rows: bool | None = None,
        decay_period: int = DECAY_PERIOD,
        slots: Mapping[str, int] | None = None,
    ):
        import tensorflow as tf

        self.tf = tf
        self.R = len(initial)
        self.dim = initial[0]["user_embedding"].shape[1]
        self.use_bias = "user_bias" in initial[0]
        self.settings = optimizer_settings(specs)
        slot_kinds = SLOTS[self.settings["name"]]
        self.state = {}
        for side in self.SIDES:
            w = stacked_table(initial, side)
            fills = [
                0.0 if init == "zeros" else self.settings[init]
                for _, init in slot_kinds
            ]
            self.state[side] = [tf.Variable(w, name=f"{side}_table")] + [
                tf.Variable(np.full_like(w, fill), name=f"{side}_{name}")
                for (name, _), fill in zip(slot_kinds, fills, strict=True)
            ]
        self.iterations = tf.Variable(0, dtype=tf.int64, name="iterations")
        self.mu = tf.constant(mu, tf.float32)
        self.mu64 = tf.constant(mu, tf.float64)
        self.lr_vector = tf.constant(self.settings["learning_rate"])
        self.lr = tf.reshape(self.lr_vector, (self.R, 1, 1))
        self.wd_vector = tf.constant(self.settings["weight_decay"])
        self.wd = tf.reshape(self.wd_vector, (self.R, 1, 1))
        self.use_wd = bool(np.any(self.settings["weight_decay"] > 0))
        l2 = np.array([s.model.l2 for s in specs], np.float32)
        self.l2 = tf.constant(l2)
        self.use_l2 = bool(np.any(l2 > 0))
        self.active = tf.Variable(np.ones(self.R, np.float32), name="active")
        name = self.settings["name"]
        dense_slots = name in ("adam", "adamw", "rmsprop")
        check_int("decay_period", decay_period, 1, MAX_DECAY_PERIOD)
        if touched_rows and not jit_batch:
            raise TrainingError(
                "touched_rows=True needs the batch work compiled with XLA; "
                "got jit_batch=False."
            )
        batch = specs[0].training.batch_size
        self.touched_sides = {
            side
            for side in self.SIDES
            if dense_slots
            and (
                touched_rows
                if touched_rows is not None
                else jit_batch
                and self.state[side][0].shape[1] >= TOUCHED_ROWS_RATIO * batch
                and 4 * self.state[side][0].shape.num_elements()
                >= TOUCHED_ROWS_MIN_BYTES
            )
        }
        # Adam's touched sides defer their rows' zero-gradient steps: each row
        # records how many steps it has had (``done``), a touched row is
        # brought up to date before its step, every row every few steps.
        self.decay_period = int(decay_period)
        self.batch = batch
        self.positions = self.R * batch
        self._counts: dict[int, Any] = {}  # a batch's size as a tensor
        self._step_index: list[Any] = []  # step i's index as a tensor
        self.slots = dict.fromkeys(self.SIDES, self.positions)
        self.reserve_slots(slots or {})
        self.lazy_sides = self.touched_sides if name in ("adam", "adamw") else set()
        self.done = {
            side: tf.Variable(
                np.zeros((self.R, self.state[side][0].shape[1], 1), np.int64),
                name=f"{side}_done",
            )
            for side in self.lazy_sides
        }
        self._steps = 0  # steps taken, as self.iterations counts them
        self._flushed = 0  # the step up to which every row is up to date
        # Compiled as the batch work is (always, where a side is lazy): a row
        # takes its deferred steps either here or when a batch touches it,
        # and XLA and TensorFlow's kernels round Adam's update differently
        # (a helper found 1-ulp differences), so with two compilers the
        # result would depend on when the flushes fall.
        self._flush_phases = [
            tf.function(
                functools.partial(self._flush, part),
                jit_compile=jit_batch,
                autograph=False,
            )
            for part in ("table", "slots")
        ]
        # Up to three compiled functions per step: gradients (reads only), the
        # dense update, the scatters. Compiled as one, XLA keeps a copy of a
        # table for its reads or fuses a scatter with the dense update that
        # feeds it into one serial loop (measured: several times slower).
        self._rows_phase = tf.function(
            self._rows, jit_compile=jit_batch, autograph=False
        )
        self._dense_phase = tf.function(
            self._dense, jit_compile=jit_dense, autograph=False
        )
        self._sparse_phase = tf.function(
            self._sparse, jit_compile=jit_batch, autograph=False
        )
        self.has_dense = self.use_wd or name not in ("sgd", "adagrad")
        self.has_sparse = name not in ("adam", "adamw") or bool(self.touched_sides)
        # One graph calls the phases, so a step is one call from Python, its
        # intermediate tensors stay in TensorFlow, and phases that update
        # different variables may run at once (measured: about 15% faster
        # a step than three calls).
        self._step_graph = tf.function(self._step, autograph=False)
        # Called from a graph as in the step, the flush reuses its compilation
        # (called eagerly, XLA compiled it again: about 0.5 s a group).
        self._flush_graph = tf.function(self._flush_all, autograph=False)
        self._tables = tf.function(
            self._split_tables, jit_compile=False, autograph=False
        )
        self.predict = tf.function(
            self._predict, jit_compile=jit_batch, autograph=False
        )

    # -- one step ------------------------------------------------------------------

    def start_epoch(self, users, items, ratings) -> None:
        """Hold one epoch's batches of every replica for :meth:`step`.

        Parameters
        ----------
        users, items : ndarray of shape (R, steps * b), int32
            The epoch's batches of every replica, one after the other; a
            short last batch is padded to ``b`` (its padding weighs nothing).
        ratings : ndarray of shape (R, steps * b), float32

        The arrays are handed to TensorFlow once per epoch, and the touched
        rows of every step (:func:`touched_index`) found here; a step
        takes its batch inside the compiled function.
        """
        tf = self.tf
        b = self.batch
        steps = users.shape[1] // b
        index = {"user": np.asarray(users), "item": np.asarray(items)}
        touched = {}
        for side in sorted(self.touched_sides):
            n_rows = self.state[side][0].shape[1]
            per_step = [
                touched_index(index[side][:, i * b : (i + 1) * b], n_rows)
                for i in range(steps)
            ]
            if max(len(rows) for _, rows in per_step) > self.slots[side]:
                # More distinct rows than reserved: one slot per position from now.
                self.slots[side] = self.positions
            padded = np.full((steps, self.slots[side]), self.R * n_rows, np.int32)
            for i, (_, rows) in enumerate(per_step):
                padded[i, : len(rows)] = rows
            slot = np.stack([slot for slot, _ in per_step])
            touched[side] = (tf.constant(slot), tf.constant(padded))
        # (R, steps, b): a step gathers its batch (a slice's start would have
        # to be a compile-time constant, one compilation per step).
        shape = (self.R, steps, b)
        self._epoch = (
            tf.constant(index["user"].reshape(shape), tf.int32),
            tf.constant(index["item"].reshape(shape), tf.int32),
            tf.constant(np.asarray(ratings).reshape(shape), tf.float32),
            touched,
        )
        for i in range(len(self._step_index), steps):
            self._step_index.append(tf.constant(i, tf.int32))

    def step(self, i: int, count: int):
        """Step ``i`` of the epoch for every replica; return each replica's loss (R,).

        ``count`` is the batch's real size (the rest of a short last batch
        is padding).
        """
        tf = self.tf
        if count not in self._counts:
            self._counts[count] = tf.constant(count, tf.int32)
        self._steps += 1
        flush = bool(self.lazy_sides) and (
            self._steps - self._flushed >= self.decay_period
        )
        losses = self._step_graph(
            *self._epoch, self._step_index[i], self._counts[count], flush
        )
        if flush:
            self._flushed = self._steps
        return losses

    def _step(
        self, epoch_users, epoch_items, epoch_ratings, epoch_touched, i, count, flush
    ):
        """The phases of one step, and with ``flush`` the deferred steps after it."""
        losses, dense, sparse = self._rows_phase(
            epoch_users, epoch_items, epoch_ratings, epoch_touched, i, count
        )
        if self.has_dense:
            self._dense_phase(dense)
        if self.has_sparse:
            self._sparse_phase(sparse)
        if flush:
            self._flush_all()
        return losses

    def _flush_all(self) -> None:
        for phase in self._flush_phases:
            phase()

    def reserve_slots(self, counts: Mapping[str, int]) -> None:
        """Compile the touched-row work for ``counts[side]`` distinct rows per step.

        A step that touches more rows than reserved grows its side to one
        slot per position (and compiles the step again).
        """
        for side, count in counts.items():
            self.slots[side] = min(self.positions, max(1, int(count)))

    def flush(self) -> None:
        """Bring every row of the lazy sides up to date (before reading the tables).

        A row outside the batch takes Adam's step with a zero gradient at
        every step. Those steps are deferred and applied here, up to
        ``decay_period`` of them in one pass over the tables: each row takes
        the steps after the last one it has had, one by one, with each
        step's own step size. The arithmetic per step is the same as taking
        it at its time.
        """
        if self.lazy_sides and self._flushed < self._steps:
            self._flush_graph()
        self._flushed = self._steps

    def _flush(self, part: str):
        """Apply the deferred steps to the tables (``part="table"``), then the rest.

        Two compiled functions: the table's new values read the old moments,
        so written in one function XLA would first copy both moment tables.
        """
        tf = self.tf
        upto = self.iterations.read_value()
        for side in self.lazy_sides:
            state = self.state[side]
            done = self.done[side]
            new = self._catch_up(
                [var.read_value() for var in state],
                done.read_value(),
                upto,
                self.decay_period,
                lambda vector: tf.reshape(vector, (self.R, 1, 1)),
            )
            if part == "table":
                state[0].assign(new[0])
                continue
            for var, value in zip(state[1:], new[1:], strict=True):
                var.assign(value)
            done.assign(tf.fill(done.shape, upto))

    def _catch_up(self, state, done, upto, n_steps: int, per_replica):
        """Apply Adam's zero-gradient steps ``done+1 .. upto`` to some rows.

        Steps ``upto - n_steps + 1 .. upto`` are unrolled; a row skips those
        it has had (at most ``done``). ``per_replica`` shapes a per-replica
        vector (R,) to broadcast against the rows.
        """
        tf = self.tf
        lr, wd = per_replica(self.lr_vector), per_replica(self.wd_vector)
        for j in range(n_steps):
            step = upto - (n_steps - 1) + j
            alpha = per_replica(self._alpha_at(step))
            new = self._adam_rule(state, 0.0, 0.0, alpha, lr, wd)
            due = step > done
            state = [tf.where(due, n, o) for n, o in zip(new, state, strict=True)]
        return state

    def _rows(self, epoch_users, epoch_items, epoch_ratings, epoch_touched, i, count):
        """Losses and gradients of step ``i``; what the dense, sparse updates need."""
        tf = self.tf
        users = tf.gather(epoch_users, i, axis=1)
        items = tf.gather(epoch_items, i, axis=1)
        ratings = tf.gather(epoch_ratings, i, axis=1)
        touched = {
            side: (tf.gather(slot, i), tf.gather(rows, i))
            for side, (slot, rows) in epoch_touched.items()
        }
        index = {"user": users, "item": items}
        batch = {
            side: BatchRows(tf, index[side], self.state[side][0].shape[1])
            for side in self.SIDES
        }
        w, lazy = {}, {}
        for side in self.SIDES:
            if side in self.lazy_sides:
                # Each touched row as of the last step, then its rows per position.
                t = self._touched(side, touched[side])
                old = self._catch_up(
                    [t.gather(var) for var in self.state[side]],
                    t.gather(self.done[side]),
                    self.iterations.read_value(),
                    self.decay_period - 1,
                    t.per_slot,
                )
                lazy[side] = (t, old)
                w[side] = t.per_position(old[0])
            else:
                w[side] = batch[side].gather(self.state[side][0])
        losses, grads = self._losses(w, ratings, count)
        dense, sparse = {}, {}
        for side, g in zip(self.SIDES, grads, strict=True):
            if side in lazy:
                dense[side], sparse[side] = {}, self._touched_adam(*lazy[side], g)
                continue
            dense[side], sparse[side] = self._gradient_parts(
                batch[side],
                g,
                self.state[side],
                self._touched(side, touched[side]) if side in touched else None,
            )
            if sparse[side]:
                sparse[side]["index"] = index[side]
        return losses, dense, sparse

    def _losses(self, w, ratings, count):
        """Each replica's loss (R,) and its gradient by each side's batch rows.

        The loss is Keras's batch MSE plus the L2 penalty; means are taken
        over the first ``count`` positions, and padding adds exact zeros to
        the sums and gets a zero gradient. The gradient is that of the sum
        of the replicas' losses (so each replica's rows get their own
        loss's gradient; stopped replicas weigh 0), written out in the
        order of operations automatic differentiation takes, so that it
        rounds alike, without the pads and copies a tape adds.

        Returns
        -------
        losses : Tensor (R,)
        grads : list of Tensor (R*b, k)
            The gradient by the user and by the item row of each position.
        """
        tf = self.tf
        R, b = ratings.shape
        size = tf.cast(count, tf.float32)
        real = tf.cast(tf.range(b) < count, tf.float32)
        wu = tf.reshape(w["user"], (R, b, -1))
        wi = tf.reshape(w["item"], (R, b, -1))
        u, v = wu[..., : self.dim], wi[..., : self.dim]
        # The same order of additions as FactorizationScore: dot + mu + b_u + b_i.
        score = tf.reduce_sum(u * v, axis=-1) + self.mu
        if self.use_bias:
            score = score + wu[..., self.dim] + wi[..., self.dim]
        error = ratings - score
        losses = tf.reduce_sum(tf.square(error) * real, axis=-1) / size
        # d(sum_r active_r * loss_r) / d score, per position.
        d_score = -(((self.active / size)[:, None] * real) * (error * 2.0))[..., None]
        # A row's gradient: d_score times the other side's row, times 1 in the
        # bias column (the full rows, so that no concatenation is needed).
        k = wu.shape[-1]
        is_bias = tf.range(k) >= self.dim
        g_u = d_score * tf.where(is_bias, 1.0, wi)
        g_v = d_score * tf.where(is_bias, 1.0, wu)
        if self.use_l2:
            norms = tf.reduce_sum(u * u, axis=-1) + tf.reduce_sum(v * v, axis=-1)
            losses = losses + self.l2 * (tf.reduce_sum(norms * real, axis=-1) / size)
            d_norm = ((self.active * self.l2 / size)[:, None] * real)[..., None]
            d_u = d_norm * tf.where(is_bias, 0.0, wu)
            d_v = d_norm * tf.where(is_bias, 0.0, wi)
            g_u, g_v = g_u + (d_u + d_u), g_v + (d_v + d_v)
        return losses, [tf.reshape(g_u, (R * b, k)), tf.reshape(g_v, (R * b, k))]

    def _dense(self, dense):
        """Update every row of both sides' tables and dense slots.

        A side whose touched rows are updated on their own gets no dense
        gradient: every row moves as if its gradient were zero, and the
        sparse phase then writes the touched rows over. Adam's touched
        sides are left to :meth:`flush`.
        """
        for side in self.SIDES:
            if side not in self.lazy_sides:
                self._dense_update(self.state[side], dense[side])
        self.iterations.assign_add(1)  # Adam's step count, read above

    def _sparse(self, sparse):
        """Scatter each side's per-position updates (the last part of the step)."""
        for side in self.SIDES:
            self._sparse_update(self.state[side], sparse[side])
            if "done" in sparse[side]:
                self.done[side].scatter_nd_update(
                    sparse[side]["touched"], sparse[side]["done"]
                )

    # -- the update rules, as Keras applies them to an embedding's sparse gradient --

    def _alpha(self):
        """Adam's step size per replica, (R,), at this step."""
        return self._alpha_at(self.iterations + 1)

    def _alpha_at(self, step):
        """Adam's step size per replica, (R,), at step ``step`` (counted from 1)."""
        tf = self.tf
        s = self.settings
        local_step = tf.cast(step, tf.float32)
        beta_1_power = tf.pow(tf.constant(s["beta_1"], tf.float32), local_step)
        beta_2_power = tf.pow(tf.constant(s["beta_2"], tf.float32), local_step)
        return self.lr_vector * tf.sqrt(1 - beta_2_power) / (1 - beta_1_power)

    def _touched(self, side: str, index) -> TouchedRows:
        n_rows = self.state[side][0].shape[1]
        return TouchedRows(self.tf, *index, self.R, n_rows)

    def _gradient_parts(self, rows: BatchRows, g, state, touched: TouchedRows | None):
        """Split one side's gradient into Keras's dense and per-position parts.

        ``g`` (R*b, k) is the gradient of each batch position's row. Keras
        receives an embedding's gradient as ``IndexedSlices`` (one row per
        batch position, repeated rows included) and its sparse-aware ops
        decide what is summed: a gradient subtracted from a dense slot is
        densified (repeats summed), a squared gradient is squared per
        position and then densified (``sum_i g_i**2``), a product with the
        learning rate stays per position and is scattered into the table one
        position at a time.

        With ``touched``, the dense sums are taken per touched row instead,
        and the touched rows' new values of the dense slots (and, for Adam,
        of the table) are computed here from ``state`` before the step.

        Returns
        -------
        dense : dict of str to Tensor
            Dense (R, n, k) sums for the slots that decay every row; empty
            with ``touched``.
        sparse : dict of str to Tensor
            Per-position values for the scatters (none for Adam, whose dense
            phase updates every row); with ``touched`` also the
            touched rows' indices (``touched``) and their new values (``rows``, one
            entry per state variable, None where the variable keeps the
            dense phase's value).
        """
        tf = self.tf
        s = self.settings
        dense: dict[str, Any] = {}
        if s["name"] in ("adam", "adamw"):
            # No per-position part: the dense phase updates every row.
            dense["g"] = rows.dense(g)
            dense["g2"] = rows.dense(tf.square(g))
            return dense, {}
        sparse: dict[str, Any] = {"g": g, "lr": rows.per_position(self.lr_vector)}
        if s["name"] == "rmsprop":
            g2 = (1 - s["rho"]) * tf.square(g)
            if touched is None:
                dense["g2"] = rows.dense(g2)
                return dense, sparse
            t = touched
            velocity = self._rmsprop_rule(t.gather(state[1]), t.sums(g2))
            sparse["touched"] = t.nd
            sparse["rows"] = [None, velocity]
            sparse["velocity"] = t.per_position(velocity)
        return dense, sparse

    def _touched_adam(self, touched: TouchedRows, old, g):
        """The new values of Adam's touched rows, from ``old`` (as of the last step)."""
        tf = self.tf
        rows = self._adam_rule(
            old,
            touched.sums(g),
            touched.sums(tf.square(g)),
            touched.per_slot(self._alpha()),
            touched.per_slot(self.lr_vector),
            touched.per_slot(self.wd_vector),
        )
        step = tf.fill((touched.n_slots, 1), self.iterations + 1)
        return {"touched": touched.nd, "rows": rows, "done": step}

    def _adam_rule(self, state, g, g2, alpha, lr, wd):
        """Adam's (and AdamW's) update of table, momentum and velocity values.

        ``g`` and ``g2`` are the densified gradient and squared gradient of
        the rows (zero for rows outside the batch); ``alpha``, ``lr`` and
        ``wd`` broadcast against the rows. The same expressions for the
        dense phase and for touched rows, so both round alike.
        """
        tf = self.tf
        s = self.settings
        w, m, v = state
        if self.use_wd:
            # Decoupled weight decay first, as Keras applies it: w -= w * wd * lr.
            w = w - w * wd * lr
        m_new = m + (g - m) * (1 - s["beta_1"])
        v_new = v + (g2 - v) * (1 - s["beta_2"])
        return [w - (m_new * alpha) / (tf.sqrt(v_new) + s["epsilon"]), m_new, v_new]

    def _rmsprop_rule(self, velocity, g2):
        """RMSprop's velocity update; ``g2`` is ``(1 - rho) * g**2`` densified."""
        return self.settings["rho"] * velocity + g2

    def _dense_update(self, state, dense: dict[str, Any]) -> None:
        """Update every row of one side's table and dense slots, as Keras does."""
        tf = self.tf
        s = self.settings
        if s["name"] in ("adam", "adamw"):
            alpha = tf.reshape(self._alpha(), (self.R, 1, 1))
            new = self._adam_rule(
                state,
                dense.get("g", 0.0),
                dense.get("g2", 0.0),
                alpha,
                self.lr,
                self.wd,
            )
            for var, value in zip(state, new, strict=True):
                var.assign(value)
            return
        if s["name"] == "rmsprop":
            state[1].assign(self._rmsprop_rule(state[1], dense.get("g2", 0.0)))
        if self.use_wd:
            var = state[0]
            var.assign(var - var * self.wd * self.lr)

    def _sparse_update(self, state, part: dict[str, Any]) -> None:
        """Scatter one side's per-position updates into its table, as Keras does."""
        tf = self.tf
        s = self.settings
        var = state[0]
        if "touched" in part:
            # The touched rows' new values over the dense phase's zero-gradient ones.
            for target, values in zip(state, part["rows"], strict=True):
                if values is not None:
                    target.scatter_nd_update(part["touched"], values)
        if s["name"] in ("adam", "adamw"):
            return
        rows = BatchRows(tf, part["index"], var.shape[1])
        g, lr = part["g"], part["lr"]
        if s["name"] == "sgd":
            var.scatter_nd_sub(rows.nd, g * lr)
        elif s["name"] == "rmsprop":
            velocity = part.get("velocity")
            if velocity is None:
                velocity = rows.gather(state[1])
            var.scatter_nd_sub(rows.nd, (lr * g) / tf.sqrt(velocity + s["epsilon"]))
        elif s["name"] == "adagrad":
            state[1].scatter_nd_add(rows.nd, tf.square(g))
            accumulator = rows.gather(state[1])
            var.scatter_nd_sub(rows.nd, (lr * g) / tf.sqrt(accumulator + s["epsilon"]))

    # -- evaluation and state ----------------------------------------------------------

    def _predict(self, users, items):
        """Return float64 predictions (R, n) for rows shared by every replica."""
        tf = self.tf
        wu = tf.gather(self.state["user"][0], users, axis=1)
        wi = tf.gather(self.state["item"][0], items, axis=1)
        wu, wi = tf.cast(wu, tf.float64), tf.cast(wi, tf.float64)
        d = self.dim
        pred = tf.reduce_sum(wu[..., :d] * wi[..., :d], axis=-1) + self.mu64
        if self.use_bias:
            pred = pred + wu[..., d] + wi[..., d]
        return pred

    def values(self) -> dict[str, np.ndarray]:
        """Return every table of every replica: (R, n, k) float32 copies."""
        self.flush()
        return {name: t.numpy() for name, t in self._tables().items()}

    def _split_tables(self):
        """Each side's embeddings and biases as tensors of their own.

        Sliced by TensorFlow's own kernels, not XLA (measured for 16
        MovieLens replicas: 7 ms, against 40 ms for NumPy's copies of the
        strided slices and 30 ms compiled).
        """
        out = {}
        for side in self.SIDES:
            out[f"{side}_embedding"] = self.state[side][0][..., : self.dim]
        if self.use_bias:
            for side in self.SIDES:
                out[f"{side}_bias"] = self.state[side][0][..., self.dim :]
        return out

    def stop(self, r: int) -> None:
        """Take replica ``r`` out: zero its tables and slots, weigh its loss 0."""
        tf = self.tf
        self.flush()
        for side in self.SIDES:
            for var in self.state[side]:
                zeros = tf.zeros((1, *var.shape[1:]), tf.float32)
                var.scatter_update(tf.IndexedSlices(zeros, tf.constant([r])))
        self.active.scatter_update(tf.IndexedSlices(tf.zeros((1,)), tf.constant([r])))


class Evaluation:
    """Train and test RMSE of every replica from the stacked tables, in float64.

    The same numbers as :func:`~embvar.training.fit.rmse` on each replica's
    tables, computed for all replicas at once. Ratings are predicted in
    chunks of one fixed size (the last padded with row 0), so the compiled
    prediction has a single shape, and in the order of their items: the
    item table is the larger, and a chunk then reads each of its rows from
    the cache (measured for 16 MovieLens replicas: 3.7 ms a chunk of 8,192
    ratings, against 9.3 ms in the data's order). The sum of squares is
    taken in another order than ``rmse``'s, so the two differ by rounding.
    """

    CHUNK = 1 << 13

    def __init__(self, model: ReplicaModel, data: PreparedData):
        self.model = model
        sets = [
            (data.train_users, data.train_items, data.train_ratings),
            (data.test_users, data.test_items, data.test_ratings),
        ]
        self.size = min(self.CHUNK, max(1, *(len(u) for u, _, _ in sets)))
        self.sets = []
        for users, items, ratings in sets:
            order = np.argsort(items, kind="stable")
            users, items, ratings = users[order], items[order], ratings[order]
            n = len(users)
            padded = -(-n // self.size) * self.size
            pad_u = np.zeros(padded, np.int32)
            pad_i = np.zeros(padded, np.int32)
            pad_u[:n], pad_i[:n] = users, items
            self.sets.append((n, pad_u, pad_i, ratings.astype(np.float64)))

    def rmse(self) -> tuple[np.ndarray, np.ndarray]:
        """Return (train, test) RMSE per replica, each (R,); NaN where not finite."""
        self.model.flush()
        out = []
        for n, users, items, ratings in self.sets:
            sq = np.zeros(self.model.R)
            for lo in range(0, n, self.size):
                hi = min(lo + self.size, n)
                pred = self.model.predict(
                    users[lo : lo + self.size], items[lo : lo + self.size]
                ).numpy()
                err = pred[:, : hi - lo] - ratings[lo:hi]
                sq += np.einsum("rn,rn->r", err, err)
            with np.errstate(invalid="ignore"):
                # An empty set has no RMSE (NaN), as for fit.rmse.
                out.append(np.sqrt(sq / n) if n else np.full(self.model.R, np.nan))
        return out[0], out[1]
