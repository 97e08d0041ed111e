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
their densified sums (reads only); the dense update of every row; the
per-position scatters. The same arithmetic, element by element, as the
Keras step; only the order of some sums may differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from embvar.config import RunSpec
from embvar.data.prepared import PreparedData
from embvar.errors import ShapeMismatchError, TrainingError
from embvar.models.factorization import make_optimizer

__all__ = ["ReplicaModel", "Evaluation", "optimizer_settings", "SLOTS"]

# Optimizer state tables per model table, and their initial values.
SLOTS: dict[str, tuple[tuple[str, str], ...]] = {
    "sgd": (),
    "adam": (("momentum", "zeros"), ("velocity", "zeros")),
    "adamw": (("momentum", "zeros"), ("velocity", "zeros")),
    "rmsprop": (("velocity", "zeros"),),
    "adagrad": (("accumulator", "initial_accumulator_value"),),
}

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
        most of the memory traffic), and the work on the batch rows and the
        evaluation (worth its compile time only for large groups).
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
    ):
        import tensorflow as tf

        self.tf = tf
        self.R = len(initial)
        self.dim = initial[0]["user_embedding"].shape[1]
        self.use_bias = "user_bias" in initial[0]
        self.settings = optimizer_settings(specs)
        slots = SLOTS[self.settings["name"]]
        self.state = {}
        for side in self.SIDES:
            tables = [
                np.concatenate(
                    [t[f"{side}_embedding"]]
                    + ([t[f"{side}_bias"]] if self.use_bias else []),
                    axis=1,
                )
                for t in initial
            ]
            w = np.stack(tables).astype(np.float32)
            fills = [
                0.0 if init == "zeros" else self.settings[init] for _, init in slots
            ]
            self.state[side] = [tf.Variable(w, name=f"{side}_table")] + [
                tf.Variable(np.full_like(w, fill), name=f"{side}_{name}")
                for (name, _), fill in zip(slots, fills, strict=True)
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
        name = self.settings["name"]
        self.has_dense = self.use_wd or name not in ("sgd", "adagrad")
        self.has_sparse = name not in ("adam", "adamw")
        self.predict = tf.function(
            self._predict, jit_compile=jit_batch, autograph=False
        )

    # -- one step ------------------------------------------------------------------

    def step(self, users, items, ratings, count: int):
        """One optimizer step of every replica; return each replica's loss (R,).

        Parameters
        ----------
        users, items : ndarray of shape (R, b), int32
            The batch of every replica; positions from ``count`` on are
            padding (a short last batch padded to ``b``, so that the step has
            one shape) and weigh nothing.
        ratings : ndarray of shape (R, b), float32
        count : int
            The batch's real size.
        """
        tf = self.tf
        count = tf.constant(count, tf.int32)
        losses, dense, sparse = self._rows_phase(users, items, ratings, count)
        if self.has_dense:
            self._dense_phase(dense)
        if self.has_sparse:
            self._sparse_phase(sparse)
        return losses

    def _rows(self, users, items, ratings, count):
        """Losses and gradients; what the dense and the sparse updates need."""
        tf = self.tf
        index = {"user": users, "item": items}
        batch = {
            side: BatchRows(tf, index[side], self.state[side][0].shape[1])
            for side in self.SIDES
        }
        w = {side: batch[side].gather(self.state[side][0]) for side in self.SIDES}
        with tf.GradientTape() as tape:
            tape.watch(list(w.values()))
            losses = self._losses(w, ratings, count)
            # The sum keeps each replica's gradient its own; stopped ones weigh 0.
            total = tf.reduce_sum(losses * self.active)
        grads = tape.gradient(total, [w[side] for side in self.SIDES])
        dense, sparse = {}, {}
        for side, g in zip(self.SIDES, grads, strict=True):
            dense[side], sparse[side] = self._gradient_parts(batch[side], g)
            sparse[side]["index"] = index[side]
        return losses, dense, sparse

    def _losses(self, w, ratings, count):
        """Each replica's loss (R,): Keras's batch MSE plus the L2 penalty.

        Means are taken over the first ``count`` positions; padding adds
        exact zeros to the sums and gets a zero gradient.
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
        losses = tf.reduce_sum(tf.square(ratings - score) * real, axis=-1) / size
        if self.use_l2:
            norms = tf.reduce_sum(u * u, axis=-1) + tf.reduce_sum(v * v, axis=-1)
            losses = losses + self.l2 * (tf.reduce_sum(norms * real, axis=-1) / size)
        return losses

    def _dense(self, dense):
        """Update every row of both sides' tables and dense slots."""
        for side in self.SIDES:
            self._dense_update(self.state[side], dense[side])
        self.iterations.assign_add(1)  # Adam's step count, read above

    def _sparse(self, sparse):
        """Scatter each side's per-position updates (the last part of the step)."""
        for side in self.SIDES:
            self._sparse_update(self.state[side], sparse[side])

    # -- the update rules, as Keras applies them to an embedding's sparse gradient --

    def _alpha(self):
        """Adam's step size per replica, (R,), at this step."""
        tf = self.tf
        s = self.settings
        local_step = tf.cast(self.iterations + 1, tf.float32)
        beta_1_power = tf.pow(tf.constant(s["beta_1"], tf.float32), local_step)
        beta_2_power = tf.pow(tf.constant(s["beta_2"], tf.float32), local_step)
        return self.lr_vector * tf.sqrt(1 - beta_2_power) / (1 - beta_1_power)

    def _gradient_parts(self, rows: BatchRows, g):
        """Split one side's gradient into Keras's dense and per-position parts.

        ``g`` (R*b, k) is the gradient of each batch position's row. Keras
        receives an embedding's gradient as ``IndexedSlices`` (one row per
        batch position, repeated rows included) and its sparse-aware ops
        decide what is summed: a gradient subtracted from a dense slot is
        densified (repeats summed), a squared gradient is squared per
        position and then densified (``sum_i g_i**2``), a product with the
        learning rate stays per position and is scattered into the table one
        position at a time.

        Returns
        -------
        dense : dict of str to Tensor
            Dense (R, n, k) sums for the slots that decay every row.
        sparse : dict of str to Tensor
            Per-position values for the scatters.
        """
        tf = self.tf
        s = self.settings
        dense: dict[str, Any] = {}
        sparse: dict[str, Any] = {"g": g, "lr": rows.per_position(self.lr_vector)}
        if s["name"] in ("adam", "adamw"):
            dense["g"] = rows.dense(g)
            dense["g2"] = rows.dense(tf.square(g))
        elif s["name"] == "rmsprop":
            dense["g2"] = rows.dense((1 - s["rho"]) * tf.square(g))
        return dense, sparse

    def _dense_update(self, state, dense: dict[str, Any]) -> None:
        """Update every row of one side's table and dense slots, as Keras does."""
        tf = self.tf
        s = self.settings
        var = state[0]
        w = var
        if self.use_wd:
            # Decoupled weight decay first, as Keras applies it: w -= w * wd * lr.
            w = w - w * self.wd * self.lr
        if s["name"] in ("adam", "adamw"):
            beta_1, beta_2, eps = s["beta_1"], s["beta_2"], s["epsilon"]
            alpha = tf.reshape(self._alpha(), (self.R, 1, 1))
            m, v = state[1], state[2]
            m_new = m + (dense["g"] - m) * (1 - beta_1)
            v_new = v + (dense["g2"] - v) * (1 - beta_2)
            var.assign(w - (m_new * alpha) / (tf.sqrt(v_new) + eps))
            m.assign(m_new)
            v.assign(v_new)
            return
        if s["name"] == "rmsprop":
            state[1].assign(s["rho"] * state[1] + dense["g2"])
        if self.use_wd:
            var.assign(w)

    def _sparse_update(self, state, part: dict[str, Any]) -> None:
        """Scatter one side's per-position updates into its table, as Keras does."""
        tf = self.tf
        s = self.settings
        var = state[0]
        rows = BatchRows(tf, part["index"], var.shape[1])
        g, lr = part["g"], part["lr"]
        if s["name"] == "sgd":
            var.scatter_nd_sub(rows.nd, g * lr)
        elif s["name"] == "rmsprop":
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
        out = {}
        tables = {side: self.state[side][0].numpy() for side in self.SIDES}
        for side in self.SIDES:
            out[f"{side}_embedding"] = np.array(tables[side][..., : self.dim])
        if self.use_bias:
            for side in self.SIDES:
                out[f"{side}_bias"] = np.array(tables[side][..., self.dim :])
        return out

    def stop(self, r: int) -> None:
        """Take replica ``r`` out: zero its tables and slots, weigh its loss 0."""
        tf = self.tf
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
    prediction has a single shape.
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
            n = len(users)
            padded = -(-n // self.size) * self.size
            pad_u = np.zeros(padded, np.int32)
            pad_i = np.zeros(padded, np.int32)
            pad_u[:n], pad_i[:n] = users, items
            self.sets.append((n, pad_u, pad_i, ratings.astype(np.float64)))

    def rmse(self) -> tuple[np.ndarray, np.ndarray]:
        """Return (train, test) RMSE per replica, each (R,); NaN where not finite."""
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
                out.append(np.sqrt(sq / max(1, n)))
        return out[0], out[1]
