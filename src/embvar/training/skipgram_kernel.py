"""The skip-gram model's replica step as one fused CPU kernel.

The same scheme as :mod:`embvar.training.replica_kernel` for the built-in
skip-gram model (:mod:`embvar.models.skipgram`): each replica's word table
``W`` and context table ``C`` (n_words, dim) and their optimizer slots,
stacked over the replicas; each thread takes its replicas through an
epoch's steps. A batch row is a centre word ``w`` and its candidate
contexts ``c_0 .. c_K`` (the true one first, then ``K`` negatives), with the
logits ``s_q = W[w] . C[c_q]`` and Keras's binary cross-entropy from
logits, averaged over the ``1 + K`` terms and then over the batch.

The loss and its gradient are written out as TensorFlow computes them: the
loss of a logit ``s`` with label ``z`` is ``max(s, 0) - s * z + log1p(exp(-|s|))``
(``tf.nn.sigmoid_cross_entropy_with_logits``), and its gradient is what
automatic differentiation takes from that formula, not ``sigmoid(s) - z``
(the two differ in the last bits). Keras receives ``W``'s gradient as one
row per batch position and ``C``'s as one row per (position, candidate),
in that order, and the optimizer's rules are those of the factorization's
kernel (:func:`~embvar.training.replica_kernel.update_rows` and
:func:`~embvar.training.replica_kernel.update_positions`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import njit, prange

from embvar.config import RunSpec
from embvar.training.replica_kernel import (
    ADAM,
    KERNEL_OPTIONS,
    LAUNCH_LOCK,
    RMSPROP,
    StackedTables,
    dot,
    side_sums,
    update_positions,
    update_rows,
)

__all__ = ["SkipgramKernelModel"]


@njit(parallel=True, **KERNEL_OPTIONS)
def _epoch(
    tables,
    targets,
    contexts,
    counts,
    active,
    hyper,
    consts,
    adam_steps,
    opt,
    use_wd,
    means,
):
    """One epoch of every active replica, each on one thread, step after step.

    ``tables`` holds the six (R, n_words, dim) arrays: the word table and
    its two slots, the context table and its two. ``targets`` (R, steps, b)
    and ``contexts`` (R, steps, b, 1 + K) are the epoch's batches; the
    first ``counts[r, s]`` rows of replica ``r``'s step ``s`` are real, and
    a replica's epoch ends at its first empty step. ``hyper`` (2, R) holds
    each replica's learning rate and weight decay. Writes each replica's
    mean loss over the epoch to ``means``, as Keras's loss tracker keeps it.
    """
    R, steps, b = targets.shape
    width = contexts.shape[3]
    dim = tables[0].shape[2]
    n = tables[0].shape[1]
    for r in prange(R):
        if active[r] == 0:
            means[r] = 0.0
            continue
        # Per position gradients only where the optimizer updates per
        # position; Adam sums them into their rows' slots as they come. A
        # batch touches at most n rows of a table.
        per_position = opt != ADAM
        grads_w = np.empty((b if per_position else 1, dim), np.float32)
        grads_c = np.empty((b * width if per_position else 1, dim), np.float32)
        sums_w = np.empty((min(b, n), dim), np.float32)
        squares_w = np.empty((min(b, n), dim), np.float32)
        sums_c = np.empty((min(b * width, n), dim), np.float32)
        squares_c = np.empty((min(b * width, n), dim), np.float32)
        slot_w = np.full(n, -1, np.int32)
        slot_c = np.full(n, -1, np.int32)
        at_w = np.empty(b, np.int32)
        at_c = np.empty(b * width, np.int32)
        rows_w = np.empty(b, np.int32)
        rows_c = np.empty(b * width, np.int32)
        total = np.float32(0.0)
        seen = np.float32(0.0)
        for s in range(steps):
            count = counts[r, s]
            if count == 0:
                break
            loss = _replica_step(
                tables[0][r],
                tables[1][r],
                tables[2][r],
                tables[3][r],
                tables[4][r],
                tables[5][r],
                targets[r, s],
                contexts[r, s],
                count,
                hyper[:, r],
                consts,
                adam_steps[r, s],
                opt,
                use_wd,
                grads_w,
                grads_c,
                sums_w,
                squares_w,
                sums_c,
                squares_c,
                slot_w,
                slot_c,
                at_w,
                at_c,
                rows_w,
                rows_c,
            )
            total = total + loss * np.float32(count)
            seen = seen + np.float32(count)
        means[r] = total / seen


@njit(**KERNEL_OPTIONS)
def _replica_step(
    w,
    a_w,
    b_w,
    c,
    a_c,
    b_c,
    targets,
    contexts,
    count,
    hyper,
    consts,
    adam_step,
    opt,
    use_wd,
    grads_w,
    grads_c,
    sums_w,
    squares_w,
    sums_c,
    squares_c,
    slot_w,
    slot_c,
    at_w,
    at_c,
    rows_w,
    rows_c,
):
    """One step of one replica; return its loss."""
    dim = w.shape[1]
    width = contexts.shape[1]
    lr, wd = hyper[0], hyper[1]
    # d(loss) / d(term): the batch mean's 1 / count, then the mean over the
    # 1 + K terms of a row.
    up = (np.float32(1.0) / np.float32(count)) / np.float32(width)
    zero = np.float32(0.0)
    one = np.float32(1.0)
    total = np.float32(0.0)
    n_w = 0
    n_c = 0
    # Adam: each position's gradient goes straight into its row's sums, in
    # position order (the order side_sums takes), without a pass of its own.
    direct = opt == ADAM
    for j in range(count):
        t = targets[j]
        if slot_w[t] < 0:
            slot_w[t] = n_w
            rows_w[n_w] = t
            if direct:
                sums_w[n_w] = 0.0
                squares_w[n_w] = 0.0
            n_w += 1
        at_w[j] = slot_w[t]
        wt = w[t]
        g_w = grads_w[0 if direct else j]
        g_w[:] = 0.0
        row_loss = np.float32(0.0)
        for q in range(width):
            ctx = contexts[j, q]
            p = j * width + q
            if slot_c[ctx] < 0:
                slot_c[ctx] = n_c
                rows_c[n_c] = ctx
                if direct:
                    sums_c[n_c] = 0.0
                    squares_c[n_c] = 0.0
                n_c += 1
            at_c[p] = slot_c[ctx]
            cq = c[ctx]
            logit = dot(wt, cq, dim)
            label = one if q == 0 else zero
            # TensorFlow's sigmoid_cross_entropy_with_logits and its gradient.
            positive = logit >= zero
            relu = logit if positive else zero
            e = np.exp(-logit if positive else logit)
            row_loss += (relu - logit * label) + np.log1p(e)
            g_log = (up * (one / (one + e))) * e
            d_logit = ((up if positive else zero) - up * label) + (
                -g_log if positive else g_log
            )
            for d in range(dim):
                g_w[d] += d_logit * cq[d]
            if direct:
                sc, qc = sums_c[at_c[p]], squares_c[at_c[p]]
                for d in range(dim):
                    g = d_logit * wt[d]
                    sc[d] += g
                    qc[d] += g * g
            else:
                g_c = grads_c[p]
                for d in range(dim):
                    g_c[d] = d_logit * wt[d]
        if direct:
            sw, qw = sums_w[at_w[j]], squares_w[at_w[j]]
            for d in range(dim):
                sw[d] += g_w[d]
                qw[d] += g_w[d] * g_w[d]
        total += row_loss / np.float32(width)
    loss = total / np.float32(count)
    positions = count * width
    if opt == RMSPROP:
        side_sums(grads_w, at_w, count, n_w, sums_w, squares_w, consts[5])
        side_sums(grads_c, at_c, positions, n_c, sums_c, squares_c, consts[5])
    alpha = (lr * adam_step[0]) / adam_step[1]
    update_rows(
        w, a_w, b_w, slot_w, sums_w, squares_w, lr, wd, alpha, consts, opt, use_wd
    )
    update_rows(
        c, a_c, b_c, slot_c, sums_c, squares_c, lr, wd, alpha, consts, opt, use_wd
    )
    if opt != ADAM:
        update_positions(w, a_w, targets, grads_w, count, lr, consts, opt)
        update_positions(
            c, a_c, contexts.reshape(-1), grads_c, positions, lr, consts, opt
        )
    for s in range(n_w):
        slot_w[rows_w[s]] = -1
    for s in range(n_c):
        slot_c[rows_c[s]] = -1
    return loss


class SkipgramKernelModel(StackedTables):
    """The skip-gram model's stacked tables and the fused step of one group.

    Parameters
    ----------
    initial : list of dict of str to ndarray
        Each replica's initial ``word_embedding`` and ``context_embedding``.
    specs : sequence of RunSpec
        The replicas' runs (optimizer, learning rate, weight decay).
    """

    SIDES = ("word", "context")

    def __init__(self, initial: list[dict[str, np.ndarray]], specs: Sequence[RunSpec]):
        tables = {
            side: np.stack([t[f"{side}_embedding"] for t in initial])
            for side in self.SIDES
        }
        super().__init__(tables, specs)
        self.steps_done = np.zeros(self.R, np.int64)  # per replica: Adam's count

    def run_epoch(
        self, targets: list[np.ndarray], contexts: list[np.ndarray]
    ) -> np.ndarray:
        """Train every active replica through its epoch's rows, in order.

        Parameters
        ----------
        targets : list of ndarray of shape (rows_r,)
            Per replica, the epoch's centre words (inactive ones: empty).
        contexts : list of ndarray of shape (rows_r, 1 + K)
            Per replica, each row's true context and negatives.

        Returns
        -------
        ndarray of shape (R,), float32
            Each replica's mean loss over the epoch, as Keras's loss tracker
            keeps it.
        """
        b = self.batch
        width = contexts[0].shape[1]
        steps = max(-(-len(t) // b) for t in targets)
        batch_t = np.zeros((self.R, steps * b), np.int32)
        batch_c = np.zeros((self.R, steps * b, width), np.int32)
        counts = np.zeros((self.R, steps), np.int64)
        for r, (t, ctx) in enumerate(zip(targets, contexts, strict=True)):
            batch_t[r, : len(t)] = t
            batch_c[r, : len(t)] = ctx
            full, rest = divmod(len(t), b)
            counts[r, :full] = b
            if rest:
                counts[r, full] = rest
        means = np.zeros(self.R, np.float32)
        powers = self.adam_powers(int(self.steps_done.max()) + steps)
        index = self.steps_done[:, None] + 1 + np.arange(steps)
        adam = np.ascontiguousarray(powers[index])
        self.steps_done += (counts > 0).sum(axis=1)
        hyper = np.stack([self.lr, self.wd]).astype(np.float32)
        with LAUNCH_LOCK:
            _epoch(
                (*self.state["word"], *self.state["context"]),
                batch_t.reshape(self.R, steps, b),
                batch_c.reshape(self.R, steps, b, width),
                counts,
                self.active,
                hyper,
                self.consts,
                adam,
                self.opt,
                self.use_wd,
                means,
            )
        return means

    def values(self) -> dict[str, np.ndarray]:
        """Return both tables of every replica: (R, n_words, dim) float32 copies."""
        return {f"{side}_embedding": self.state[side][0].copy() for side in self.SIDES}
