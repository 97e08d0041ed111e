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

Compiled by Numba, a step is a loop over the replicas, run on all cores
(each replica on one thread, so the result does not depend on the number of
threads or on the other replicas): the batch positions once, to compute the
losses and gather each row's gradient into a slot of its own, then the rows
once for the update. An XLA step does the same work in a dozen gathers,
segment sums and scatters, each a pass of its own over memory (measured on
this 2-core machine, 16 MovieLens replicas with Adam: 2 ms a step against
10-12 ms).

The float32 constants are those Keras computes: a Python float such as
``1 - beta_1`` rounded to float32 once, Adam's step size ``lr * sqrt(1 -
beta_2**t) / (1 - beta_1**t)`` from float32 powers. Sums of products (the
dot product of a user and an item row, a batch's squared errors) are taken
in the kernel's order, so the tables match Keras's to rounding, not bit for
bit.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import njit, prange

from embvar.config import RunSpec
from embvar.data.prepared import PreparedData
from embvar.training.replica_step import SLOTS, optimizer_settings

__all__ = ["KernelModel", "KernelEvaluation", "OPTIMIZER_CODES"]

# The kernel's optimizer codes (AdamW is Adam with its weight decay).
SGD, ADAM, RMSPROP, ADAGRAD = 0, 1, 2, 3
OPTIMIZER_CODES = {
    "sgd": SGD,
    "adam": ADAM,
    "adamw": ADAM,
    "rmsprop": RMSPROP,
    "adagrad": ADAGRAD,
}

_KERNEL = {"parallel": True, "cache": True, "error_model": "numpy", "nogil": True}


@njit(**_KERNEL)
def _step(
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
    active,
    lr,
    wd,
    l2,
    consts,
    opt,
    dim,
    use_wd,
    use_l2,
    scratch,
    slot_u,
    slot_i,
    losses,
):
    """One step of every active replica; writes each replica's loss to ``losses``.

    ``w_*`` are the tables (R, n, k); ``a_*`` and ``b_*`` the slots (Adam's
    moments; RMSprop's velocity and Adagrad's accumulator in ``a_*``).
    ``users``, ``items`` and ``ratings`` are the batch (R, b); only the first
    ``count`` positions are real. ``consts`` holds, as float32: mu,
    1 - beta_1, 1 - beta_2, epsilon, rho, 1 - rho, and Adam's sqrt(1 -
    beta_2**t) and 1 - beta_1**t at this step. ``scratch`` (R, 6, b, k)
    holds per replica the two sides' per-position gradients and their
    slots' sums of gradients and squared gradients; ``slot_u`` and
    ``slot_i`` (R, n) are -1 outside a step.
    """
    R = w_u.shape[0]
    k = w_u.shape[2]
    mu = consts[0]
    size = np.float32(count)
    for r in prange(R):
        if active[r] == 0:
            losses[r] = 0.0
            continue
        pos_u, pos_i = scratch[r, 0], scratch[r, 1]
        sum_u, sum_i = scratch[r, 2], scratch[r, 3]
        sq_u, sq_i = scratch[r, 4], scratch[r, 5]
        rows_u = np.empty(count, np.int32)
        rows_i = np.empty(count, np.int32)
        at_u = np.empty(count, np.int32)
        at_i = np.empty(count, np.int32)
        n_u = 0
        n_i = 0
        d_loss = active[r] / size
        d_norm = (active[r] * l2[r]) / size
        squares = 0.0
        norms = 0.0
        # The batch: losses and gradients, from the tables before the step.
        for j in range(count):
            u = users[r, j]
            i = items[r, j]
            if slot_u[r, u] < 0:
                slot_u[r, u] = n_u
                rows_u[n_u] = u
                sum_u[n_u, :] = 0.0
                sq_u[n_u, :] = 0.0
                n_u += 1
            if slot_i[r, i] < 0:
                slot_i[r, i] = n_i
                rows_i[n_i] = i
                sum_i[n_i, :] = 0.0
                sq_i[n_i, :] = 0.0
                n_i += 1
            at_u[j] = slot_u[r, u]
            at_i[j] = slot_i[r, i]
            wu = w_u[r, u]
            wi = w_i[r, i]
            dot = np.float32(0.0)
            for c in range(dim):
                dot += wu[c] * wi[c]
            score = dot + mu
            for c in range(dim, k):
                score = score + wu[c] + wi[c]
            error = ratings[r, j] - score
            squares += np.float64(error * error)
            d_score = -(d_loss * (error * np.float32(2.0)))
            if use_l2:
                norm = np.float32(0.0)
                for c in range(dim):
                    norm += wu[c] * wu[c]
                norm_i = np.float32(0.0)
                for c in range(dim):
                    norm_i += wi[c] * wi[c]
                norms += np.float64(norm + norm_i)
            for c in range(k):
                if c < dim:
                    g = d_score * wi[c]
                    h = d_score * wu[c]
                    if use_l2:
                        g = g + (d_norm * wu[c] + d_norm * wu[c])
                        h = h + (d_norm * wi[c] + d_norm * wi[c])
                else:
                    g = d_score
                    h = d_score
                pos_u[j, c] = g
                pos_i[j, c] = h
        loss = np.float32(squares) / size
        if use_l2:
            loss = loss + l2[r] * (np.float32(norms) / size)
        losses[r] = loss
        # Each touched row's gradient summed over its positions, in batch order.
        if opt == ADAM or opt == RMSPROP:
            scale = consts[5] if opt == RMSPROP else np.float32(1.0)
            for j in range(count):
                su, si = at_u[j], at_i[j]
                for c in range(k):
                    g = pos_u[j, c]
                    h = pos_i[j, c]
                    sum_u[su, c] += g
                    sum_i[si, c] += h
                    if opt == RMSPROP:
                        sq_u[su, c] += scale * (g * g)
                        sq_i[si, c] += scale * (h * h)
                    else:
                        sq_u[su, c] += g * g
                        sq_i[si, c] += h * h
        # Every row: weight decay, and the dense slots with a zero gradient
        # outside the batch.
        _rows(
            w_u[r],
            a_u[r],
            b_u[r],
            slot_u[r],
            sum_u,
            sq_u,
            lr[r],
            wd[r],
            consts,
            opt,
            use_wd,
        )
        _rows(
            w_i[r],
            a_i[r],
            b_i[r],
            slot_i[r],
            sum_i,
            sq_i,
            lr[r],
            wd[r],
            consts,
            opt,
            use_wd,
        )
        # The per-position updates, one position at a time.
        if opt != ADAM:
            _positions(w_u[r], a_u[r], users[r], pos_u, count, lr[r], consts, opt)
            _positions(w_i[r], a_i[r], items[r], pos_i, count, lr[r], consts, opt)
        for s in range(n_u):
            slot_u[r, rows_u[s]] = -1
        for s in range(n_i):
            slot_i[r, rows_i[s]] = -1


@njit(cache=True, error_model="numpy", nogil=True)
def _rows(w, a, b, slot, sums, squares, lr, wd, consts, opt, use_wd):
    """Update every row of one replica's side that changes at every step."""
    if opt != ADAM and opt != RMSPROP and not use_wd:
        return
    n, k = w.shape
    c1, c2, eps, rho = consts[1], consts[2], consts[3], consts[4]
    alpha = (lr * consts[6]) / consts[7]
    for row in range(n):
        s = slot[row]
        if use_wd:
            for c in range(k):
                w[row, c] = w[row, c] - w[row, c] * wd * lr
        if opt == ADAM:
            for c in range(k):
                g = sums[s, c] if s >= 0 else np.float32(0.0)
                g2 = squares[s, c] if s >= 0 else np.float32(0.0)
                m = a[row, c] + (g - a[row, c]) * c1
                v = b[row, c] + (g2 - b[row, c]) * c2
                a[row, c] = m
                b[row, c] = v
                w[row, c] = w[row, c] - (m * alpha) / (np.sqrt(v) + eps)
        elif opt == RMSPROP:
            for c in range(k):
                g2 = squares[s, c] if s >= 0 else np.float32(0.0)
                a[row, c] = rho * a[row, c] + g2


@njit(cache=True, error_model="numpy", nogil=True)
def _positions(w, a, index, grads, count, lr, consts, opt):
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


@njit(parallel=True, cache=True, error_model="numpy", nogil=True)
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


class KernelModel:
    """Stacked tables, optimizer slots and the fused step of one replica group.

    The interface ``train_replicas`` drives, as for
    :class:`~embvar.training.replica_step.ReplicaModel`: :meth:`start_epoch`,
    :meth:`step`, :meth:`values`, :meth:`stop`.

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
        self.R = len(initial)
        self.dim = initial[0]["user_embedding"].shape[1]
        self.use_bias = "user_bias" in initial[0]
        s = self.settings = optimizer_settings(specs)
        self.opt = OPTIMIZER_CODES[s["name"]]
        slot_kinds = SLOTS[s["name"]]
        self.state: dict[str, list[np.ndarray]] = {}
        for side in self.SIDES:
            w = np.stack(
                [
                    np.concatenate(
                        [t[f"{side}_embedding"]]
                        + ([t[f"{side}_bias"]] if self.use_bias else []),
                        axis=1,
                    )
                    for t in initial
                ]
            ).astype(np.float32)
            slots = [
                np.full_like(w, 0.0 if init == "zeros" else s[init])
                for _, init in slot_kinds
            ]
            # Unused slots: one row, never read.
            while len(slots) < 2:
                slots.append(np.zeros((self.R, 1, w.shape[2]), np.float32))
            self.state[side] = [w, *slots]
        self.lr = s["learning_rate"]
        self.wd = s["weight_decay"]
        self.use_wd = bool(np.any(self.wd > 0))
        self.l2 = np.array([spec.model.l2 for spec in specs], np.float32)
        self.use_l2 = bool(np.any(self.l2 > 0))
        self.active = np.ones(self.R, np.float32)
        # Keras's constants: Python floats rounded to float32 once.
        beta_1, beta_2 = s.get("beta_1", 0.0), s.get("beta_2", 0.0)
        rho = s.get("rho", 0.0)
        self._beta = (np.float32(beta_1), np.float32(beta_2))
        self.consts = np.array(
            [mu, 1 - beta_1, 1 - beta_2, s.get("epsilon", 0.0), rho, 1 - rho, 0, 1],
            np.float32,
        )
        self.mu = float(mu)
        self.batch = specs[0].training.batch_size
        k = self.state["user"][0].shape[2]
        self._scratch = np.zeros((self.R, 6, self.batch, k), np.float32)
        self._slot = {
            side: np.full((self.R, self.state[side][0].shape[1]), -1, np.int32)
            for side in self.SIDES
        }
        self._losses = np.zeros(self.R, np.float32)
        self._steps = 0

    def start_epoch(self, users, items, ratings) -> None:
        """Hold one epoch's batches of every replica, (R, steps * b) each."""
        b = self.batch
        steps = users.shape[1] // b

        def by_step(x, dtype):
            x = np.asarray(x, dtype).reshape(self.R, steps, b)
            return np.ascontiguousarray(x.transpose(1, 0, 2))

        self._epoch = (
            by_step(users, np.int32),
            by_step(items, np.int32),
            by_step(ratings, np.float32),
        )

    def step(self, i: int, count: int) -> np.ndarray:
        """Step ``i`` of the epoch for every replica; return each replica's loss (R,).

        ``count`` is the batch's real size (the rest of a short last batch
        is padding, which the kernel skips).
        """
        self._steps += 1
        if self.opt == ADAM:
            t = np.float32(self._steps)
            beta_1, beta_2 = self._beta
            self.consts[6] = np.sqrt(np.float32(1) - beta_2**t)
            self.consts[7] = np.float32(1) - beta_1**t
        users, items, ratings = (x[i] for x in self._epoch)
        (w_u, a_u, b_u), (w_i, a_i, b_i) = (self.state[s] for s in self.SIDES)
        _step(
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
            self.active,
            self.lr,
            self.wd,
            self.l2,
            self.consts,
            self.opt,
            self.dim,
            self.use_wd,
            self.use_l2,
            self._scratch,
            self._slot["user"],
            self._slot["item"],
            self._losses,
        )
        return self._losses.copy()

    def values(self) -> dict[str, np.ndarray]:
        """Return every table of every replica: (R, n, k) float32 copies."""
        out = {}
        for side in self.SIDES:
            out[f"{side}_embedding"] = self.state[side][0][..., : self.dim].copy()
        if self.use_bias:
            for side in self.SIDES:
                out[f"{side}_bias"] = self.state[side][0][..., self.dim :].copy()
        return out

    def stop(self, r: int) -> None:
        """Take replica ``r`` out: zero its tables and slots; the step skips it."""
        for side in self.SIDES:
            for array in self.state[side]:
                array[r] = 0.0
        self.active[r] = 0.0


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
            sq = _squared_errors(w_u, w_i, users, items, ratings, model.mu, model.dim)
            with np.errstate(invalid="ignore"):
                out.append(np.sqrt(sq / len(users)))
        return out[0], out[1]
