"""The replica step as one fused CPU kernel: every replica's batch in one pass.

The engine ``train_replicas`` uses on a CPU (``engine="kernel"``). It holds
the same stacked tables as :class:`~embvar.training.replica_step.ReplicaModel`
(one ``(R, n, k)`` array per side, the bias as the last column, and the
optimizer's slots likewise) and applies the same rules, Keras's arithmetic
for an embedding's sparse gradient, element by element:

- a row's gradient is summed over its batch positions in batch order for a
  dense slot (Adam's first moment), its squared gradient squared per
  position and then summed (Adam's second moment, RMSprop's velocity);
- SGD's, RMSprop's and Adagrad's table updates (and Adagrad's accumulator)
  stay per position, applied one position at a time in batch order;
- every row of a dense slot and of a table moved by one (Adam's moments and
  table, RMSprop's velocity) and every row under weight decay changes at
  every step, with a zero gradient outside the batch.

Compiled by Numba, an epoch is a loop over the replicas, run on all cores,
each replica on one thread through all of the epoch's steps (so the result
does not depend on the number of threads or on the other replicas, and a
replica's tables stay in the cache from one step to the next). A step is
the batch positions once, to compute the losses and each row's gradient in
a slot of its own, then the rows once for the update. An XLA step does the
same work in a dozen gathers, segment sums and scatters, each a pass of its
own over memory (measured on this 2-core machine, 16 MovieLens replicas
with Adam: 2.7 ms a step against 10-12 ms).

The float32 constants are those Keras computes: a Python float such as
``1 - beta_1`` rounded to float32 once, Adam's step size ``lr * sqrt(1 -
beta_2**t) / (1 - beta_1**t)`` from TensorFlow's float32 powers. Sums of
products (the dot product of a user and an item row, a batch's squared
errors) are taken in the kernel's order, so the tables match Keras's to
rounding, not bit for bit.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
from numba import njit, prange

from embvar.config import RunSpec
from embvar.data.prepared import PreparedData
from embvar.training.replica_step import SLOTS, optimizer_settings, stacked_table

__all__ = ["dot", "StackedTables", "KernelModel", "KernelEvaluation", "OPTIMIZER_CODES"]

# The kernel's optimizer codes (AdamW is Adam with its weight decay).
SGD, ADAM, RMSPROP, ADAGRAD = 0, 1, 2, 3
OPTIMIZER_CODES = {
    "sgd": SGD,
    "adam": ADAM,
    "adamw": ADAM,
    "rmsprop": RMSPROP,
    "adagrad": ADAGRAD,
}

KERNEL_OPTIONS = {"cache": True, "error_model": "numpy", "nogil": True}

# One parallel kernel at a time per process: Numba's fallback thread pool
# (``workqueue``, where neither OpenMP nor TBB is found) aborts the process
# when two threads launch parallel kernels at once.
LAUNCH_LOCK = threading.Lock()


@njit(parallel=True, **KERNEL_OPTIONS)
def _epoch(
    tables,
    users,
    items,
    ratings,
    counts,
    active,
    hyper,
    consts,
    adam_steps,
    opt,
    dim,
    use_wd,
    use_l2,
    means,
    stopped,
):
    """One epoch of every active replica, each on one thread, step after step.

    ``tables`` holds the six (R, n, k) arrays: the user table and its two
    slots, the item table and its two. ``users``, ``items`` and ``ratings``
    are the epoch's batches (R, steps, b), of which the first ``counts[s]``
    positions of step ``s`` are real. ``hyper`` (3, R) holds each replica's
    learning rate, weight decay and L2; ``consts`` (see
    :class:`KernelModel`) the optimizer's float32 constants;
    ``adam_steps`` (steps, 2) Adam's sqrt(1 - beta_2**t) and 1 - beta_1**t
    at each step.

    Writes each replica's running mean loss over the epoch to ``means``, as
    Keras's loss tracker keeps it (float32 sums of loss * batch and of
    batch). A replica whose mean stops being finite stops after that step,
    as the independent run's divergence guard stops it: ``stopped`` gets
    the step, and its tables stay as they are then (-1: not stopped).
    """
    R = users.shape[0]
    k = tables[0].shape[2]
    n_u = tables[0].shape[1]
    n_i = tables[3].shape[1]
    b = users.shape[2]
    for r in prange(R):
        stopped[r] = -1
        if active[r] == 0:
            means[r] = 0.0
            continue
        # Per replica: each position's gradient (user side, item side); each
        # touched row's slot, its summed gradient and squared gradient.
        grads = np.empty((2, b, k), np.float32)
        sums = np.empty((2, b, k), np.float32)
        squares = np.empty((2, b, k), np.float32)
        slot_u = np.full(n_u, -1, np.int32)
        slot_i = np.full(n_i, -1, np.int32)
        at = np.empty((2, b), np.int32)
        rows = np.empty((2, b), np.int32)
        total = np.float32(0.0)
        seen = np.float32(0.0)
        for s in range(users.shape[1]):
            loss = _replica_step(
                tables[0][r],
                tables[1][r],
                tables[2][r],
                tables[3][r],
                tables[4][r],
                tables[5][r],
                users[r, s],
                items[r, s],
                ratings[r, s],
                counts[s],
                hyper[:, r],
                consts,
                adam_steps[s],
                opt,
                dim,
                use_wd,
                use_l2,
                grads,
                sums,
                squares,
                slot_u,
                slot_i,
                at,
                rows,
            )
            total = total + loss * np.float32(counts[s])
            seen = seen + np.float32(counts[s])
            means[r] = total / seen
            if not np.isfinite(means[r]):
                stopped[r] = s
                break


@njit(**KERNEL_OPTIONS)
def _replica_step(
    w_u,
    a_u,
    b_u,
    w_i,
    a_i,
    b_i,
    users,
    items,
    ratings,
    count,
    hyper,
    consts,
    adam_step,
    opt,
    dim,
    use_wd,
    use_l2,
    grads,
    sums,
    squares,
    slot_u,
    slot_i,
    at,
    rows,
):
    """One step of one replica; return its loss.

    The batch's positions once, from the tables before the step: the loss,
    each position's gradient by its user and its item row, each touched
    row's slot. Then, for the dense slots, each touched row's gradient and
    squared gradient summed over its positions in batch order; every row
    that changes at every step; the per-position updates.
    """
    k = w_u.shape[1]
    mu = consts[0]
    lr, wd, l2 = hyper[0], hyper[1], hyper[2]
    size = np.float32(count)
    d_loss = np.float32(1.0) / size
    d_norm = l2 / size
    squared = 0.0
    norms = 0.0
    n_u = 0
    n_i = 0
    for j in range(count):
        u = users[j]
        i = items[j]
        if slot_u[u] < 0:
            slot_u[u] = n_u
            rows[0, n_u] = u
            n_u += 1
        if slot_i[i] < 0:
            slot_i[i] = n_i
            rows[1, n_i] = i
            n_i += 1
        at[0, j] = slot_u[u]
        at[1, j] = slot_i[i]
        wu = w_u[u]
        wi = w_i[i]
        score = dot(wu, wi, dim) + mu
        for c in range(dim, k):
            score = score + wu[c] + wi[c]
        error = ratings[j] - score
        squared += np.float64(error * error)
        # d(loss) / d(score), as automatic differentiation takes it.
        d_score = -(d_loss * (error * np.float32(2.0)))
        g_u = grads[0, j]
        g_i = grads[1, j]
        for c in range(dim):
            g_u[c] = d_score * wi[c]
            g_i[c] = d_score * wu[c]
        for c in range(dim, k):
            g_u[c] = d_score
            g_i[c] = d_score
        if use_l2:
            norms += np.float64(dot(wu, wu, dim) + dot(wi, wi, dim))
            for c in range(dim):
                g_u[c] = g_u[c] + (d_norm * wu[c] + d_norm * wu[c])
                g_i[c] = g_i[c] + (d_norm * wi[c] + d_norm * wi[c])
    loss = np.float32(squared) / size
    if use_l2:
        loss = loss + l2 * (np.float32(norms) / size)
    if opt == ADAM or opt == RMSPROP:
        scale = consts[5] if opt == RMSPROP else np.float32(1.0)
        side_sums(grads[0], at[0], count, n_u, sums[0], squares[0], scale)
        side_sums(grads[1], at[1], count, n_i, sums[1], squares[1], scale)
    # Every row: weight decay, and the dense slots with a zero gradient
    # outside the batch.
    alpha = (lr * adam_step[0]) / adam_step[1]
    update_rows(
        w_u, a_u, b_u, slot_u, sums[0], squares[0], lr, wd, alpha, consts, opt, use_wd
    )
    update_rows(
        w_i, a_i, b_i, slot_i, sums[1], squares[1], lr, wd, alpha, consts, opt, use_wd
    )
    # The per-position updates, one position at a time.
    if opt != ADAM:
        update_positions(w_u, a_u, users, grads[0], count, lr, consts, opt)
        update_positions(w_i, a_i, items, grads[1], count, lr, consts, opt)
    for s in range(n_u):
        slot_u[rows[0, s]] = -1
    for s in range(n_i):
        slot_i[rows[1, s]] = -1
    return loss


@njit(fastmath={"reassoc"}, **KERNEL_OPTIONS)
def dot(a, b, n):
    """The float32 dot product of ``a[:n]`` and ``b[:n]``.

    Summed in whatever order the compiler vectorises it, the one float
    operation here allowed to reassociate (the order is fixed when the
    kernel is compiled, so a machine gives the same bits every time). Summed
    one term after the other, each addition waits on the last: an epoch of
    4 text8 skip-gram replicas took 3.3 s against 2.8 s (the factorization's
    32-term dot products: no difference measured).
    """
    total = np.float32(0.0)
    for c in range(n):
        total += a[c] * b[c]
    return total


@njit(**KERNEL_OPTIONS)
def side_sums(grads, at, count, n, sums, squares, scale):
    """Each of ``n`` touched rows' gradient and squared gradient (times ``scale``).

    ``grads`` holds the gradient of each of ``count`` positions, ``at`` each
    position's slot; the sums run in position order.
    """
    sums[:n] = 0.0
    squares[:n] = 0.0
    for j in range(count):
        s = at[j]
        g = grads[j]
        for c in range(g.shape[0]):
            sums[s, c] += g[c]
            squares[s, c] += scale * (g[c] * g[c])


@njit(**KERNEL_OPTIONS)
def update_rows(w, a, b, slot, sums, squares, lr, wd, alpha, consts, opt, use_wd):
    """Update every row of one replica's side that changes at every step."""
    if opt != ADAM and opt != RMSPROP and not use_wd:
        return
    n, k = w.shape
    c1, c2, eps, rho = consts[1], consts[2], consts[3], consts[4]
    zero = np.float32(0.0)
    for row in range(n):
        s = slot[row]
        wr = w[row]
        if use_wd:
            for c in range(k):
                wr[c] = wr[c] - wr[c] * wd * lr
        if opt == ADAM:
            _adam(
                wr,
                a[row],
                b[row],
                sums[max(s, 0)],
                squares[max(s, 0)],
                s >= 0,
                alpha,
                c1,
                c2,
                eps,
            )
        elif opt == RMSPROP:
            ar = a[row]
            if s >= 0:
                sq = squares[s]
                for c in range(k):
                    ar[c] = rho * ar[c] + sq[c]
            else:
                for c in range(k):
                    ar[c] = rho * ar[c] + zero


@njit(inline="always", **KERNEL_OPTIONS)
def _adam(w, m, v, g, g2, touched, alpha, c1, c2, eps):
    """Adam's update of one row; a row outside the batch has a zero gradient.

    The two cases have loops of their own, without a branch per element,
    so that the compiler vectorises both.
    """
    if touched:
        for c in range(w.shape[0]):
            m_new = m[c] + (g[c] - m[c]) * c1
            v_new = v[c] + (g2[c] - v[c]) * c2
            m[c] = m_new
            v[c] = v_new
            w[c] = w[c] - (m_new * alpha) / (np.sqrt(v_new) + eps)
    else:
        zero = np.float32(0.0)
        for c in range(w.shape[0]):
            m_new = m[c] + (zero - m[c]) * c1
            v_new = v[c] + (zero - v[c]) * c2
            m[c] = m_new
            v[c] = v_new
            w[c] = w[c] - (m_new * alpha) / (np.sqrt(v_new) + eps)


@njit(**KERNEL_OPTIONS)
def update_positions(w, a, index, grads, count, lr, consts, opt):
    """SGD's, RMSprop's and Adagrad's per-position updates of one replica's side."""
    k = w.shape[1]
    eps = consts[3]
    if opt == ADAGRAD:
        for j in range(count):
            row = index[j]
            for c in range(k):
                a[row, c] = a[row, c] + grads[j, c] * grads[j, c]
    for j in range(count):
        row = index[j]
        for c in range(k):
            g = grads[j, c]
            if opt == SGD:
                w[row, c] = w[row, c] - g * lr
            else:
                w[row, c] = w[row, c] - (lr * g) / np.sqrt(a[row, c] + eps)


@njit(parallel=True, **KERNEL_OPTIONS)
def _squared_errors(w_u, w_i, users, items, ratings, mu, dim):
    """Each replica's sum of squared errors over some ratings, in float64."""
    R = w_u.shape[0]
    k = w_u.shape[2]
    out = np.zeros(R)
    for r in prange(R):
        total = 0.0
        for j in range(users.shape[0]):
            wu = w_u[r, users[j]]
            wi = w_i[r, items[j]]
            pred = 0.0
            for c in range(dim):
                pred += np.float64(wu[c]) * np.float64(wi[c])
            pred += mu
            for c in range(dim, k):
                pred += np.float64(wu[c])
                pred += np.float64(wi[c])
            err = pred - ratings[j]
            total += err * err
        out[r] = total
    return out


class StackedTables:
    """Each side's table and optimizer slots, stacked over ``R`` replicas.

    What both kernel models share: per side (``SIDES``) a list of three
    float32 arrays ``(R, n, k)``, the table and two optimizer slots (an
    unused slot is one row, never read); each replica's learning rate and
    weight decay; Keras's float32 constants; Adam's powers of beta.

    Parameters
    ----------
    tables : mapping of str to ndarray
        Per side, the stacked initial table (R, n, k).
    specs : sequence of RunSpec
        The replicas' runs (optimizer, learning rate, weight decay).
    mu : float
        The model's constant offset (0 where it has none).
    """

    SIDES: tuple[str, ...] = ()

    def __init__(
        self, tables: dict[str, np.ndarray], specs: Sequence[RunSpec], mu: float = 0.0
    ):
        self.R = len(specs)
        s = self.settings = optimizer_settings(specs)
        self.opt = OPTIMIZER_CODES[s["name"]]
        slot_kinds = SLOTS[s["name"]]
        self.state: dict[str, list[np.ndarray]] = {}
        for side in self.SIDES:
            w = np.ascontiguousarray(tables[side], np.float32)
            slots = [
                np.full_like(w, 0.0 if init == "zeros" else s[init])
                for _, init in slot_kinds
            ]
            while len(slots) < 2:
                slots.append(np.zeros((self.R, 1, w.shape[2]), np.float32))
            self.state[side] = [w, *slots]
        self.lr = s["learning_rate"]
        self.wd = s["weight_decay"]
        self.use_wd = bool(np.any(self.wd > 0))
        self.active = np.ones(self.R, np.float32)
        # Keras's constants, Python floats rounded to float32 once: mu,
        # 1 - beta_1, 1 - beta_2, epsilon, rho, 1 - rho.
        beta_1, beta_2 = s.get("beta_1", 0.0), s.get("beta_2", 0.0)
        rho = s.get("rho", 0.0)
        self._beta = (beta_1, beta_2)
        self.consts = np.array(
            [mu, 1 - beta_1, 1 - beta_2, s.get("epsilon", 0.0), rho, 1 - rho],
            np.float32,
        )
        self.batch = specs[0].training.batch_size
        self._powers = np.zeros((0, 2), np.float32)

    def adam_powers(self, last: int) -> np.ndarray:
        """Adam's sqrt(1 - beta_2**t) and 1 - beta_1**t for t = 0 .. ``last``.

        Row ``t`` for step ``t`` (counted from 1; row 0 unused), computed by
        TensorFlow's ``pow`` on scalars, as Keras computes them: NumPy's
        float32 power rounds differently in about a quarter of the steps,
        and so does TensorFlow's on a vector. Kept and extended as steps
        are taken. Zeros for other optimizers.
        """
        done = len(self._powers)
        if last < done:
            return self._powers
        grown = np.zeros((max(last + 1, 2 * done), 2), np.float32)
        grown[:done] = self._powers
        if self.opt == ADAM:
            import tensorflow as tf

            bases = [tf.constant(b, tf.float32) for b in self._beta]
            for t in range(max(done, 1), len(grown)):
                step = tf.constant(t, tf.float32)
                power_1, power_2 = (tf.pow(b, step).numpy() for b in bases)
                grown[t] = np.sqrt(np.float32(1) - power_2), np.float32(1) - power_1
        self._powers = grown
        return grown

    def stop(self, r: int) -> None:
        """Take replica ``r`` out: zero its tables and slots; epochs skip it."""
        for side in self.SIDES:
            for array in self.state[side]:
                array[r] = 0.0
        self.active[r] = 0.0


class KernelModel(StackedTables):
    """The factorization's stacked tables and the fused step of one replica group.

    ``train_replicas`` drives it one epoch at a time (:meth:`run_epoch`):
    each thread takes its replicas through all of the epoch's steps, one
    replica after the other, so a replica's tables stay in the cache from
    one step to the next (measured: 2.7 ms a step for 16 MovieLens replicas
    with Adam, against 3.3-3.5 ms one step of every replica at a time).

    Parameters
    ----------
    initial : list of dict of str to ndarray
        Each replica's initial tables.
    specs : sequence of RunSpec
        The replicas' runs (optimizer, learning rate, weight decay, L2).
    mu : float
        The training mean, the model's constant offset.
    """

    SIDES = ("user", "item")

    def __init__(
        self, initial: list[dict[str, np.ndarray]], specs: Sequence[RunSpec], mu: float
    ):
        self.dim = initial[0]["user_embedding"].shape[1]
        self.use_bias = "user_bias" in initial[0]
        tables = {side: stacked_table(initial, side) for side in self.SIDES}
        super().__init__(tables, specs, mu)
        self.l2 = np.array([spec.model.l2 for spec in specs], np.float32)
        self.use_l2 = bool(np.any(self.l2 > 0))
        self.mu = float(mu)
        self.steps_done = 0  # Adam's step count, the same for every replica

    def run_epoch(
        self, users, items, ratings, counts: Sequence[int]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Train every active replica through one epoch's batches.

        Parameters
        ----------
        users, items : ndarray of shape (R, steps * b), int32
            The epoch's batches of every replica, one after the other; a
            short last batch is padded to ``b``.
        ratings : ndarray of shape (R, steps * b), float32
        counts : sequence of int
            Each step's real batch size.

        Returns
        -------
        means : ndarray of shape (R,), float32
            Each replica's mean loss over the steps it took, as Keras's
            loss tracker keeps it.
        stopped : ndarray of shape (R,), int
            The step after which a replica's mean loss stopped being finite
            (its tables stay as they were then), or -1.
        """
        steps = len(counts)
        shape = (self.R, steps, self.batch)
        done = self.steps_done
        adam_steps = self.adam_powers(done + steps)[done + 1 : done + steps + 1]
        hyper = np.stack([self.lr, self.wd, self.l2]).astype(np.float32)
        means = np.zeros(self.R, np.float32)
        stopped = np.full(self.R, -1, np.int64)
        with LAUNCH_LOCK:
            _epoch(
                (*self.state["user"], *self.state["item"]),
                np.ascontiguousarray(users, np.int32).reshape(shape),
                np.ascontiguousarray(items, np.int32).reshape(shape),
                np.ascontiguousarray(ratings, np.float32).reshape(shape),
                np.asarray(counts, np.int64),
                self.active,
                hyper,
                self.consts,
                adam_steps,
                self.opt,
                self.dim,
                self.use_wd,
                self.use_l2,
                means,
                stopped,
            )
        self.steps_done += steps
        return means, stopped

    def values(self) -> dict[str, np.ndarray]:
        """Return every table of every replica: (R, n, k) float32 copies."""
        out = {}
        for side in self.SIDES:
            out[f"{side}_embedding"] = self.state[side][0][..., : self.dim].copy()
        if self.use_bias:
            for side in self.SIDES:
                out[f"{side}_bias"] = self.state[side][0][..., self.dim :].copy()
        return out


class KernelEvaluation:
    """Train and test RMSE of every replica from the stacked tables, in float64.

    The same numbers as :func:`~embvar.training.fit.rmse` on each replica's
    tables, to rounding (the dot products are summed in another order).
    """

    def __init__(self, model: KernelModel, data: PreparedData):
        self.model = model
        self.sets = []
        for users, items, ratings in (
            (data.train_users, data.train_items, data.train_ratings),
            (data.test_users, data.test_items, data.test_ratings),
        ):
            # In the order of the items, the larger table: fewer cache misses.
            order = np.argsort(items, kind="stable")
            self.sets.append(
                (
                    np.ascontiguousarray(users[order], np.int32),
                    np.ascontiguousarray(items[order], np.int32),
                    np.ascontiguousarray(ratings[order], np.float64),
                )
            )

    def rmse(self) -> tuple[np.ndarray, np.ndarray]:
        """Return (train, test) RMSE per replica, each (R,); NaN where not finite."""
        model = self.model
        w_u, w_i = model.state["user"][0], model.state["item"][0]
        out = []
        for users, items, ratings in self.sets:
            if not len(users):
                # An empty set has no RMSE (NaN), as for fit.rmse.
                out.append(np.full(model.R, np.nan))
                continue
            with LAUNCH_LOCK:
                sq = _squared_errors(
                    w_u, w_i, users, items, ratings, model.mu, model.dim
                )
            with np.errstate(invalid="ignore"):
                out.append(np.sqrt(sq / len(users)))
        return out[0], out[1]
