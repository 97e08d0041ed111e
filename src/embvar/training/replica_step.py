"""The compiled step of a replica group: stacked tables, Keras's update rules.

The trainer in :mod:`embvar.training.replicas` drives this: ``ReplicaModel``
holds every table of ``R`` runs as one variable of shape ``(R, n, k)``,
the optimizer's slots likewise, and trains all replicas one batch at a
time with the arithmetic Keras applies to each run on its own.

Keras receives an embedding's gradient as ``IndexedSlices``, one row per
batch position with repeated rows repeated, and its sparse-aware ops decide
what gets summed. Measured on Keras 3.15, the rules are:

- a gradient subtracted from a dense slot (Adam's first moment) is
  densified: the positions of one row are summed, ``sum_i g_i``;
- a squared gradient is squared per position and then summed:
  Adam's second moment and RMSprop's and Adagrad's accumulators grow by
  ``sum_i g_i**2``, not ``(sum_i g_i)**2``;
- a gradient times the learning rate (SGD, RMSprop, Adagrad) stays per
  position and is scattered into the table one position at a time;
- every row of a dense slot (Adam's moments, RMSprop's velocity) and of a
  table moved by a dense slot decays at every step, in the batch or not.

A step here is three compiled functions: the batch rows' new values,
computed from their old values (reads only); the dense update of every row
as if its gradient were zero; the scatter of the batch rows' new values
over it. The result is the same arithmetic, row by row, as the Keras step.
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
    """The table rows one batch touches, for every replica at once.

    Positions are flattened replica-major: position ``r * b + j`` is batch
    position ``j`` of replica ``r``.
    """

    def __init__(self, tf: Any, index: Any, n_rows: int):
        self.tf = tf
        R, b = index.shape
        self.R, self.b, self.n_rows = R, b, n_rows
        replica = tf.repeat(tf.range(R, dtype=index.dtype), b)
        self.nd = tf.stack([replica, tf.reshape(index, [-1])], axis=1)
        self._flat = replica * n_rows + tf.reshape(index, [-1])
        self._index = index
        self._first: Any = None

    @property
    def first(self):
        """For each position, the position that represents its row (R*b,)."""
        if self._first is None:
            tf = self.tf
            n = self.R * self.b
            slots = tf.tensor_scatter_nd_update(
                tf.zeros([self.R * self.n_rows], self._flat.dtype),
                self._flat[:, None],
                tf.range(n, dtype=self._flat.dtype),
            )
            self._first = tf.gather(slots, self._flat)
        return self._first

    def summed(self, values):
        """Per position, the sum of ``values`` over every position of its row."""
        tf = self.tf
        total = tf.math.unsorted_segment_sum(values, self.first, self.R * self.b)
        return tf.gather(total, self.first)

    def gather(self, table):
        """Per position, its row of a stacked table (R, n, k) -> (R*b, k)."""
        tf = self.tf
        flat = tf.reshape(table, (self.R * self.n_rows, table.shape[-1]))
        return tf.gather(flat, self._flat)

    def per_position(self, vector):
        """A per-replica vector (R,) repeated for each position -> (R*b, 1)."""
        return self.tf.repeat(vector, self.b)[:, None]


class ReplicaModel:
    """Stacked tables, optimizer slots and the compiled step of one group.

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

    # The batch column that indexes each table.
    INDEX = {
        "user_embedding": "users",
        "user_bias": "users",
        "item_embedding": "items",
        "item_bias": "items",
    }

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
        self.names = list(initial[0])
        self.R = len(initial)
        self.settings = optimizer_settings(specs)
        self.tables = {
            name: tf.Variable(np.stack([t[name] for t in initial]), name=name)
            for name in self.names
        }
        self.slots: dict[str, list[Any]] = {}
        for name in self.names:
            shape = self.tables[name].shape
            self.slots[name] = []
            for slot, init in SLOTS[self.settings["name"]]:
                fill = 0.0 if init == "zeros" else self.settings[init]
                self.slots[name].append(
                    tf.Variable(
                        tf.fill(shape, tf.constant(fill, tf.float32)),
                        name=f"{name}_{slot}",
                    )
                )
        self.iterations = tf.Variable(0, dtype=tf.int64, name="iterations")
        self.mu = tf.constant(mu, tf.float32)
        self.mu64 = tf.constant(mu, tf.float64)
        self.lr_vector = tf.constant(self.settings["learning_rate"])
        self.lr = tf.reshape(self.lr_vector, (self.R, 1, 1))
        self.wd = tf.constant(self.settings["weight_decay"].reshape(self.R, 1, 1))
        self.use_wd = bool(np.any(self.settings["weight_decay"] > 0))
        l2 = np.array([s.model.l2 for s in specs], np.float32)
        self.l2 = tf.constant(l2)
        self.use_l2 = bool(np.any(l2 > 0))
        self.active = tf.Variable(np.ones(self.R, np.float32), name="active")
        # Three compiled functions per step: the batch rows' new values (reads
        # only), the dense update of every row, the scatter of the batch rows.
        # Compiled together, XLA keeps a copy of each table for the reads or
        # fuses the scatter with the dense update into one serial loop.
        self._rows_phase = tf.function(
            self._rows, jit_compile=jit_batch, autograph=False
        )
        self._dense_phase = tf.function(
            self._dense, jit_compile=jit_dense, autograph=False
        )
        self._sparse_phase = tf.function(
            self._sparse, jit_compile=jit_batch, autograph=False
        )
        self.has_dense = self.use_wd or self.settings["name"] not in ("sgd", "adagrad")
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
        losses, payload = self._rows_phase(users, items, ratings, count)
        if self.has_dense:
            self._dense_phase()
        self._sparse_phase(payload)
        return losses

    def _rows(self, users, items, ratings, count):
        """Losses, gradients, and the batch rows' new values; writes nothing."""
        tf = self.tf
        index = {"users": users, "items": items}
        n_rows = {self.INDEX[name]: self.tables[name].shape[1] for name in self.names}
        batch = {key: BatchRows(tf, idx, n_rows[key]) for key, idx in index.items()}
        shape = users.shape
        rows = {
            name: tf.reshape(
                batch[self.INDEX[name]].gather(self.tables[name]),
                (*shape, self.tables[name].shape[-1]),
            )
            for name in self.names
        }
        with tf.GradientTape() as tape:
            tape.watch(list(rows.values()))
            losses = self._losses(rows, ratings, count)
            # The sum keeps each replica's gradient its own; stopped ones weigh 0.
            total = tf.reduce_sum(losses * self.active)
        grads = tape.gradient(total, [rows[name] for name in self.names])
        payload = {}
        for name, grad in zip(self.names, grads, strict=True):
            rows_of = batch[self.INDEX[name]]
            g = tf.reshape(grad, (-1, grad.shape[-1]))
            payload[name] = self._batch_update(name, rows_of, g)
            payload[name]["index"] = index[self.INDEX[name]]
        return losses, payload

    def _dense(self):
        """Update every row of every table and slot as if its gradient were zero."""
        for name in self.names:
            self._dense_update(name)

    def _sparse(self, payload):
        """Scatter every table's batch rows (the last part of the step)."""
        for name, part in payload.items():
            self._sparse_update(name, part)
        self.iterations.assign_add(1)

    def _losses(self, rows, ratings, count):
        """Each replica's loss (R,): Keras's batch MSE plus the L2 penalty.

        Means are taken over the first ``count`` positions; padding adds
        exact zeros to the sums and gets a zero gradient.
        """
        tf = self.tf
        size = tf.cast(count, tf.float32)
        real = tf.cast(tf.range(ratings.shape[-1]) < count, tf.float32)
        u, v = rows["user_embedding"], rows["item_embedding"]
        # The same order of additions as FactorizationScore: dot + mu + b_u + b_i.
        score = tf.reduce_sum(u * v, axis=-1) + self.mu
        if "user_bias" in rows:
            score = (
                score
                + tf.squeeze(rows["user_bias"], -1)
                + tf.squeeze(rows["item_bias"], -1)
            )
        losses = tf.reduce_sum(tf.square(ratings - score) * real, axis=-1) / size
        if self.use_l2:
            norms = tf.reduce_sum(u * u, axis=-1) + tf.reduce_sum(v * v, axis=-1)
            losses = losses + self.l2 * (tf.reduce_sum(norms * real, axis=-1) / size)
        return losses

    # -- the update rules, as Keras applies them to an embedding's sparse gradient --

    def _alpha(self):
        """Adam's step size per replica, (R,), at this step."""
        tf = self.tf
        s = self.settings
        local_step = tf.cast(self.iterations + 1, tf.float32)
        beta_1_power = tf.pow(tf.constant(s["beta_1"], tf.float32), local_step)
        beta_2_power = tf.pow(tf.constant(s["beta_2"], tf.float32), local_step)
        return self.lr_vector * tf.sqrt(1 - beta_2_power) / (1 - beta_1_power)

    def _batch_update(self, name: str, rows: BatchRows, g) -> dict[str, Any]:
        """Return the new values of one table's batch rows, from their old values.

        Keras receives an embedding's gradient as ``IndexedSlices`` (one row
        per batch position, repeated rows included) and its sparse-aware ops
        decide what is summed: a gradient subtracted from a dense slot is
        densified (repeats summed), a squared gradient is squared per
        position and then summed, a product with the learning rate stays per
        position and is scattered into the table one position at a time.
        """
        tf = self.tf
        s = self.settings
        var, slots = self.tables[name], self.slots[name]
        lr = rows.per_position(self.lr_vector)
        part: dict[str, Any] = {}
        if s["name"] == "sgd":
            part["step"] = g * lr
        elif s["name"] in ("adam", "adamw"):
            m, v = slots
            beta_1, beta_2, eps = s["beta_1"], s["beta_2"], s["epsilon"]
            w_b = rows.gather(var)
            if self.use_wd:
                # The decoupled weight decay Keras applies first: w -= w * wd * lr.
                w_b = w_b - w_b * rows.per_position(self.wd[:, 0, 0]) * lr
            m_b = rows.gather(m)
            v_b = rows.gather(v)
            m_b = m_b + (rows.summed(g) - m_b) * (1 - beta_1)
            v_b = v_b + (rows.summed(tf.square(g)) - v_b) * (1 - beta_2)
            alpha = rows.per_position(self._alpha())
            part["m"] = m_b
            part["v"] = v_b
            part["w"] = w_b - (m_b * alpha) / (tf.sqrt(v_b) + eps)
        elif s["name"] == "rmsprop":
            (velocity,) = slots
            rho, eps = s["rho"], s["epsilon"]
            vel_b = rho * rows.gather(velocity) + rows.summed((1 - rho) * tf.square(g))
            part["velocity"] = vel_b
            part["step"] = (lr * g) / tf.sqrt(vel_b + eps)
        else:  # adagrad: its accumulator is scattered first, then read back
            part["g"] = g
            part["lr"] = lr
        return part

    def _dense_update(self, name: str) -> None:
        """Update every row of one table and its slots with a zero gradient.

        The batch rows get these values too, and are then overwritten by
        :meth:`_sparse_update` with the values :meth:`_batch_update` made.
        """
        tf = self.tf
        s = self.settings
        var, slots = self.tables[name], self.slots[name]
        if self.use_wd:
            # Decoupled weight decay first, as Keras applies it: w -= w * wd * lr.
            var.assign_sub(var * self.wd * self.lr)
        if s["name"] in ("adam", "adamw"):
            m, v = slots
            beta_1, beta_2, eps = s["beta_1"], s["beta_2"], s["epsilon"]
            alpha = tf.reshape(self._alpha(), (self.R, 1, 1))
            m_all = m + (0.0 - m) * (1 - beta_1)
            v_all = v + (0.0 - v) * (1 - beta_2)
            var.assign_sub((m_all * alpha) / (tf.sqrt(v_all) + eps))
            m.assign(m_all)
            v.assign(v_all)
        elif s["name"] == "rmsprop":
            (velocity,) = slots
            velocity.assign(s["rho"] * velocity)

    def _sparse_update(self, name: str, part: dict[str, Any]) -> None:
        """Write one table's batch rows: the scatters Keras makes."""
        tf = self.tf
        s = self.settings
        var, slots = self.tables[name], self.slots[name]
        index = part["index"]
        rows = BatchRows(tf, index, var.shape[1])
        if s["name"] == "sgd":
            var.scatter_nd_sub(rows.nd, part["step"])
        elif s["name"] in ("adam", "adamw"):
            m, v = slots
            m.scatter_nd_update(rows.nd, part["m"])
            v.scatter_nd_update(rows.nd, part["v"])
            var.scatter_nd_update(rows.nd, part["w"])
        elif s["name"] == "rmsprop":
            (velocity,) = slots
            velocity.scatter_nd_update(rows.nd, part["velocity"])
            var.scatter_nd_sub(rows.nd, part["step"])
        else:
            (accumulator,) = slots
            g = part["g"]
            accumulator.scatter_nd_add(rows.nd, tf.square(g))
            acc_b = rows.gather(accumulator)
            var.scatter_nd_sub(
                rows.nd, (part["lr"] * g) / tf.sqrt(acc_b + s["epsilon"])
            )

    # -- evaluation and state ----------------------------------------------------------

    def _predict(self, users, items):
        """Return float64 predictions (R, n) for rows shared by every replica."""
        tf = self.tf
        t = self.tables
        u = tf.cast(tf.gather(t["user_embedding"], users, axis=1), tf.float64)
        v = tf.cast(tf.gather(t["item_embedding"], items, axis=1), tf.float64)
        pred = tf.reduce_sum(u * v, axis=-1) + self.mu64
        if "user_bias" in t:
            bu = tf.cast(tf.gather(t["user_bias"], users, axis=1), tf.float64)
            bi = tf.cast(tf.gather(t["item_bias"], items, axis=1), tf.float64)
            pred = pred + bu[..., 0] + bi[..., 0]
        return pred

    def values(self) -> dict[str, np.ndarray]:
        """Return every stacked table, (R, n, k) float32 copies."""
        return {
            n: np.array(self.tables[n].numpy(), dtype=np.float32) for n in self.names
        }

    def stop(self, r: int) -> None:
        """Take replica ``r`` out: zero its tables and slots, weigh its loss 0."""
        tf = self.tf
        for name in self.names:
            for var in (self.tables[name], *self.slots[name]):
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
