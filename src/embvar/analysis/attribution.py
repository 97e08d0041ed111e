"""Which source of randomness makes runs differ: attribution in crossed designs.

A crossed design trains one run per combination of seed levels (e.g. 4
init seeds x 4 order seeds), so every pair of runs differs in a known set
of sources. Three complementary views:

- :func:`variance_components`: for a number per run (test RMSE), the
  random-effects ANOVA of a balanced crossed design; each source's variance
  component and share, with bootstrap intervals over seed levels;
- :func:`source_distances`: for the embeddings, from the matrix of
  distances between runs (any metric), the mean distance between runs that
  differ in one source only, for each source, and in every source;
- :func:`permanova`: the distance-based partition of variation (Anderson
  2001) per source: pseudo-F, share of the variation and a permutation
  p-value, with permutations restricted to runs that share the other
  sources' levels;

and the perturbation control, :func:`perturbation_share`: the distance of a
run to its twin whose one initial weight moved by one ulp, as a share of a
full reseed's distance.

Every function takes NumPy arrays and returns plain dicts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from embvar.analysis.resampling import (
    DEFAULT_RESAMPLES,
    estimate,
    level_weights,
    mean_samples,
    percentile_interval,
    weighted_pair_mean,
)
from embvar.checks import check_int
from embvar.errors import DataError, ShapeMismatchError

__all__ = [
    "RESIDUAL",
    "variance_components",
    "source_distances",
    "pair_classes",
    "class_samples",
    "permanova",
    "perturbation_share",
]

#: The name of what no listed source explains (interactions and error).
RESIDUAL = "residual"


def _levels(levels: Mapping[str, Any], n: int) -> dict[str, np.ndarray]:
    if not levels:
        raise DataError("levels must name at least one source; got none.")
    out = {}
    for name, values in levels.items():
        a = np.asarray(values)
        if a.shape != (n,):
            raise ShapeMismatchError(
                f"levels[{name!r}] must have one level per run, shape ({n},); "
                f"got shape {a.shape}."
            )
        out[str(name)] = a
    return out


def _grid(y: np.ndarray, levels: dict[str, np.ndarray]) -> np.ndarray:
    """Return ``y`` as an array (L_1, ..., L_k, m) of a balanced full cross."""
    index = []
    shape = []
    for values in levels.values():
        uniq, inv = np.unique(values, return_inverse=True)
        index.append(inv)
        shape.append(len(uniq))
    cells = np.ravel_multi_index(index, shape)
    counts = np.bincount(cells, minlength=int(np.prod(shape)))
    if counts.min() != counts.max() or counts.min() == 0:
        raise DataError(
            "variance_components needs a balanced full cross of the sources "
            f"{list(levels)} (every combination of levels the same number of "
            f"times); got between {counts.min()} and {counts.max()} runs per "
            "combination."
        )
    m = int(counts[0])
    order = np.argsort(cells, kind="stable")
    return y[order].reshape(*shape, m)


def _anova(Y: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, int]:
    """Mean squares of each axis but the last, residual mean square and df."""
    k = Y.ndim - 1
    N = Y.size
    grand = Y.mean()
    ss_total = float(((Y - grand) ** 2).sum())
    ms = np.empty(k)
    df = np.empty(k, dtype=int)
    ss_main = 0.0
    for f in range(k):
        other = tuple(a for a in range(Y.ndim) if a != f)
        means = Y.mean(axis=other)
        ss = N / Y.shape[f] * float(((means - grand) ** 2).sum())
        df[f] = Y.shape[f] - 1
        ms[f] = ss / df[f] if df[f] > 0 else 0.0
        ss_main += ss
    df_res = N - 1 - int(df.sum())
    ms_res = max(ss_total - ss_main, 0.0) / df_res if df_res > 0 else float("nan")
    return ms, df, ms_res, df_res


def _components(Y: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    ms, _, ms_res, _ = _anova(Y)
    per_level = np.array([Y.size / Y.shape[f] for f in range(Y.ndim - 1)])
    raw = (ms - ms_res) / per_level
    return raw, np.maximum(raw, 0.0), ms_res


def variance_components(
    y: Any,
    levels: Mapping[str, Any],
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """Return each source's variance component of a number per run.

    Parameters
    ----------
    y : array-like of shape (n_runs,)
        One outcome per run, e.g. the final test RMSE.
    levels : mapping of str to array-like of shape (n_runs,)
        Each source's level per run; together a balanced full cross (every
        combination of levels equally often).
    n_resamples : int, default=2000
        Bootstrap resamples; each source's levels are resampled with
        replacement on their own and the ANOVA is refitted on the resampled
        cross.
    level : float, default=0.95
        Coverage of the intervals.
    seed : int, default=0
        Seed of the resampling.

    Returns
    -------
    dict
        ``components``: one entry per source, then ``"residual"``, each
        ``{"source", "variance", "variance_raw", "share", "interval",
        "df", "mean_square"}``. ``variance`` is the method-of-moments
        estimate truncated at 0 (``variance_raw`` before truncation);
        ``share`` is its share of the total of the truncated components;
        ``interval`` is the percentile interval of the share. Also
        ``n_runs``, ``levels`` (count per source), ``total_variance`` and
        ``resamples``.

    Raises
    ------
    DataError
        If the runs are not a balanced full cross, or leave no degrees of
        freedom for the residual (one source with one run per level).

    Notes
    -----
    Additive random-effects model ``y = mu + a_1 + ... + a_k + e`` with
    interactions pooled into ``e``. For source ``f`` with ``L_f`` levels,
    ``N`` runs, mean square ``MS_f`` and residual mean square ``MS_e``,
    ``E[MS_f] = sigma_e^2 + (N / L_f) sigma_f^2``, so
    ``sigma_f^2 = (MS_f - MS_e) / (N / L_f)`` and ``sigma_e^2 = MS_e``
    (Searle, Casella & McCulloch 1992, ch. 4). For two sources and one run
    per cell the residual is the interaction. The bootstrap over both
    sources' levels (McCullagh 2000, "Resampling and exchangeable arrays",
    Bernoulli 6) is conservative for crossed designs.

    Examples
    --------
    >>> import numpy as np
    >>> init = np.repeat(np.arange(4), 4); order = np.tile(np.arange(4), 4)
    >>> y = 1.0 * init + 0.001 * np.random.default_rng(0).normal(size=16)
    >>> out = variance_components(y, {"init": init, "order": order})
    >>> round(out["components"][0]["share"], 3)
    1.0
    """
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if not np.isfinite(y).all():
        raise DataError("y must be finite; drop diverged runs first.")
    lv = _levels(levels, y.size)
    n_resamples = check_int("n_resamples", n_resamples, 1)
    Y = _grid(y, lv)
    ms, df, ms_res, df_res = _anova(Y)
    if df_res < 1:
        raise DataError(
            "variance_components needs a residual: at least two crossed sources "
            f"or repeated runs per level; got sources {list(lv)} with "
            f"{Y.shape[:-1]} levels and {Y.shape[-1]} run(s) per combination."
        )
    raw, var, res = _components(Y)
    total = float(var.sum() + res)

    # Bootstrap: resample each source's levels (and the runs within a cell).
    rng = np.random.default_rng(seed)
    k = len(lv)
    boot = np.full((n_resamples, k + 1), np.nan)
    for b in range(n_resamples):
        idx = [rng.integers(0, n, n) for n in Y.shape]
        Yb = Y[np.ix_(*idx)]
        _, vb, rb = _components(Yb)
        tb = vb.sum() + rb
        if tb > 0:
            boot[b, :k] = vb / tb
            boot[b, k] = rb / tb

    names = list(lv)
    comps = []
    for f, name in enumerate(names):
        comps.append(
            {
                "source": name,
                "variance": float(var[f]),
                "variance_raw": float(raw[f]),
                "share": float(var[f] / total) if total > 0 else 0.0,
                "interval": percentile_interval(boot[:, f], level),
                "df": int(df[f]),
                "mean_square": float(ms[f]),
            }
        )
    comps.append(
        {
            "source": RESIDUAL,
            "variance": float(res),
            "variance_raw": float(res),
            "share": float(res / total) if total > 0 else 0.0,
            "interval": percentile_interval(boot[:, k], level),
            "df": int(df_res),
            "mean_square": float(ms_res),
        }
    )
    return {
        "n_runs": int(y.size),
        "levels": {name: int(Y.shape[f]) for f, name in enumerate(names)},
        "components": comps,
        "total_variance": total,
        "resamples": int(np.isfinite(boot[:, 0]).sum()),
        "model": "additive random effects, interactions pooled into the residual",
    }


def pair_classes(levels: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Return, per source and ``"all"``, the mask of pairs of runs it names.

    Parameters
    ----------
    levels : mapping of str to array-like of shape (n_runs,)

    Returns
    -------
    dict of str to ndarray of bool, shape (n_runs, n_runs)
        For a source: pairs that differ in that source and share every
        other source's level. ``"all"``: pairs that differ in every source.
        False on the diagonal.
    """
    first = next(iter(levels.values()))
    lv = _levels(levels, len(np.asarray(first)))
    differ = {s: v[:, None] != v[None, :] for s, v in lv.items()}
    out = {}
    for s in lv:
        mask = differ[s].copy()
        for t in lv:
            if t != s:
                mask &= ~differ[t]
        out[s] = mask
    out["all"] = np.logical_and.reduce(list(differ.values()))
    return out


def source_distances(
    D: Any,
    levels: Mapping[str, Any],
    *,
    run_ids: list[str] | None = None,
    n_resamples: int = DEFAULT_RESAMPLES,
    level: float = 0.95,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Return the mean distance between runs that differ in one source only.

    Parameters
    ----------
    D : array-like of shape (n_runs, n_runs)
        Symmetric values per pair of runs (a distance, or a similarity such
        as the k-NN overlap: means are taken as they are).
    levels : mapping of str to array-like of shape (n_runs,)
        Each source's level per run.
    run_ids : list of str, optional
        Names of the runs, to list the pairs behind each mean.
    n_resamples, level, seed
        Bootstrap over each source's levels (see :func:`level_weights`).

    Returns
    -------
    list of dict
        One entry per source, then ``"all"``: ``{"source", "mean",
        "interval", "n_pairs", "pairs"}``; ``mean`` is None where no pair
        differs that way.
    """
    D = np.asarray(D, dtype=np.float64)
    n = D.shape[0]
    if D.shape != (n, n):
        raise ShapeMismatchError(
            f"D must be a square matrix of shape (n_runs, n_runs); got {D.shape}."
        )
    out = []
    for name, (value, samples, i, j) in class_samples(
        D, levels, n_resamples=n_resamples, seed=seed
    ).items():
        entry = {"source": name, **estimate(value, samples, level), "n_pairs": len(i)}
        if run_ids is not None:
            entry["pairs"] = [
                [run_ids[a], run_ids[b]] for a, b in zip(i, j, strict=True)
            ]
        out.append(entry)
    return out


def class_samples(
    D: Any,
    levels: Mapping[str, Any],
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> dict[str, tuple[float, np.ndarray, np.ndarray, np.ndarray]]:
    """Return, per class of :func:`pair_classes`, its mean and resamples.

    Returns
    -------
    dict of str to (mean, samples, rows, cols)
        ``samples`` of shape (n_resamples,) from resampling each source's
        levels; ``rows, cols`` index the class's pairs (``rows < cols``).
    """
    D = np.asarray(D, dtype=np.float64)
    classes = pair_classes(levels)
    W = level_weights(
        levels, check_int("n_resamples", n_resamples, 1), np.random.default_rng(seed)
    )
    out = {}
    for name, mask in classes.items():
        i, j = np.nonzero(np.triu(mask, 1))
        value = float(D[i, j].mean()) if len(i) else float("nan")
        samples = weighted_pair_mean(D, mask, W) if len(i) else np.empty(0)
        out[name] = (value, samples, i, j)
    return out


def _design_matrix(columns: list[np.ndarray], n: int) -> np.ndarray:
    parts = [np.ones((n, 1))]
    for values in columns:
        uniq, inv = np.unique(values, return_inverse=True)
        dummies = np.zeros((n, len(uniq)))
        dummies[np.arange(n), inv] = 1.0
        parts.append(dummies[:, 1:])
    return np.hstack(parts)


def _hat_trace(X: np.ndarray, G: np.ndarray) -> tuple[float, int]:
    """Return ``tr(H G)`` for the projection H onto X's columns, and rank."""
    Q, R = np.linalg.qr(X)
    keep = np.abs(np.diag(R)) > 1e-10 * max(1.0, np.abs(R).max())
    Q = Q[:, keep]
    return float(np.einsum("ij,ij->", Q, G @ Q)), int(keep.sum())


def _permanova_f(
    G: np.ndarray, columns: list[np.ndarray], reduced: tuple[float, int]
) -> tuple[float, ...]:
    n = G.shape[0]
    full, rank_full = _hat_trace(_design_matrix(columns, n), G)
    reduced_ss, rank_red = reduced
    ss_total = float(np.trace(G))
    ss_f = full - reduced_ss
    ss_res = ss_total - full
    df_f = rank_full - rank_red
    df_res = n - rank_full
    if df_f <= 0 or df_res <= 0 or ss_res <= 0:
        return ss_f, float("nan"), df_f, df_res, ss_res
    return ss_f, (ss_f / df_f) / (ss_res / df_res), df_f, df_res, ss_res


def permanova(
    D: Any,
    levels: Mapping[str, Any],
    *,
    n_permutations: int = 999,
    seed: int = 0,
) -> dict[str, Any]:
    """Return the distance-based partition of variation between runs by source.

    Parameters
    ----------
    D : array-like of shape (n_runs, n_runs)
        Symmetric distances between runs, zero on the diagonal.
    levels : mapping of str to array-like of shape (n_runs,)
        Each source's level per run.
    n_permutations : int, default=999
        Permutations per source.
    seed : int, default=0
        Seed of the permutations.

    Returns
    -------
    dict
        ``{"permutations", "n_runs", "rows"}``; ``rows`` has one entry per
        source ``{"source", "df", "ss", "pseudo_f", "share", "p_value"}``,
        then ``"residual"`` and ``"total"`` (``df``, ``ss``, ``share``).

    Notes
    -----
    With ``A = -D^2 / 2`` and the centring matrix ``J = I - 11^T / n``,
    ``G = J A J`` (Gower's centred matrix); the total sum of squares is
    ``tr(G)`` and a linear model with hat matrix ``H`` explains
    ``tr(H G)`` (McArdle & Anderson 2001, Ecology 82). The model is
    additive in every source; a source's sum of squares is what the full
    model explains beyond the model without it, and
    ``F = (SS_f / df_f) / (SS_res / df_res)``. The p-value is
    ``(1 + #{F* >= F}) / (1 + n_permutations)`` over relabellings that
    permute the source's levels among runs sharing every other source's
    levels (restricted permutations, exact under the null of no effect
    of the source; Anderson & ter Braak 2003, J. Stat. Comput. Simul. 73),
    or among all runs where no runs share the other levels. ``share`` is
    ``SS_f / SS_total`` (R²). The sums of squares are of squared distances,
    so a share is a share of the mean squared distance between runs, not
    of a variance of one number.

    References
    ----------
    Anderson (2001), "A new method for non-parametric multivariate analysis
    of variance", Austral Ecology 26.
    """
    D = np.asarray(D, dtype=np.float64)
    n = D.shape[0]
    if D.ndim != 2 or D.shape != (n, n):
        raise ShapeMismatchError(
            f"D must be a square matrix of shape (n_runs, n_runs); got {D.shape}."
        )
    if not np.isfinite(D).all():
        raise DataError("D must be finite; drop diverged runs first.")
    lv = _levels(levels, n)
    n_permutations = check_int("n_permutations", n_permutations, 1)
    J = np.eye(n) - 1.0 / n
    G = J @ (-0.5 * D * D) @ J
    ss_total = float(np.trace(G))
    names = list(lv)
    columns = [lv[s] for s in names]
    rng = np.random.default_rng(seed)
    balanced = _is_full_cross(columns)
    rows = []
    ss_res = df_res = None
    for f, name in enumerate(names):
        others = [c for i, c in enumerate(columns) if i != f]
        reduced = _hat_trace(_design_matrix(others, n), G)
        ss_f, F, df_f, df_res, ss_res = _permanova_f(G, columns, reduced)
        strata = _strata(others, n)
        # In a balanced full cross, permuting within strata keeps the design
        # orthogonal, so each relabelling's F has a closed form.
        fast = balanced and len(strata) > 1
        hits = 0
        done = 0
        if np.isfinite(F) and fast:
            Fp = _balanced_f(
                G,
                _permutations(columns[f], strata, n_permutations, rng),
                ss_total - ss_f - ss_res,
                df_f,
                df_res,
                ss_total,
            )
            done = n_permutations
            hits = int(np.sum(Fp >= F - 1e-12 * abs(F)))
        elif np.isfinite(F):
            for labels in _permutations(columns[f], strata, n_permutations, rng):
                permuted = list(columns)
                permuted[f] = labels
                Fp1 = _permanova_f(G, permuted, reduced)[1]
                done += 1
                hits += bool(np.isfinite(Fp1) and Fp1 >= F - 1e-12 * abs(F))
        rows.append(
            {
                "source": name,
                "df": int(df_f),
                "ss": ss_f,
                "pseudo_f": float(F) if np.isfinite(F) else None,
                "share": ss_f / ss_total if ss_total > 0 else None,
                "p_value": (1 + hits) / (1 + done) if done else None,
            }
        )
    rows.append(
        {
            "source": RESIDUAL,
            "df": int(df_res),
            "ss": ss_res,
            "share": ss_res / ss_total if ss_total > 0 else None,
        }
    )
    rows.append({"source": "total", "df": n - 1, "ss": ss_total, "share": 1.0})
    return {
        "permutations": n_permutations,
        "n_runs": n,
        "rows": rows,
        "restricted": True,
    }


def _is_full_cross(columns: list[np.ndarray]) -> bool:
    index = [np.unique(c, return_inverse=True) for c in columns]
    shape = [len(u) for u, _ in index]
    cells = np.ravel_multi_index([inv for _, inv in index], shape)
    counts = np.bincount(cells, minlength=int(np.prod(shape)))
    return bool(counts.min() == counts.max() and counts.min() > 0)


def _balanced_f(
    G: np.ndarray,
    labels: np.ndarray,
    ss_others: float,
    df_f: int,
    df_res: int,
    ss_total: float,
) -> np.ndarray:
    """F of one source per row of ``labels``, in an orthogonal design.

    ``labels`` has shape (n_permutations, n_runs); the source's sum of
    squares is ``sum_l (1 / n_l) 1_l^T G 1_l`` over its levels ``l``.
    """
    uniq, inv = np.unique(labels, return_inverse=True)
    inv = inv.reshape(labels.shape)
    Z = np.zeros((*labels.shape, len(uniq)))
    np.put_along_axis(Z, inv[..., None], 1.0, axis=2)
    ss_f = np.einsum("pil,ij,pjl->p", Z, G, Z) / (labels.shape[1] / len(uniq))
    ss_res = ss_total - ss_others - ss_f
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ss_res > 0, (ss_f / df_f) / (ss_res / df_res), np.inf)


def _strata(others: list[np.ndarray], n: int) -> list[np.ndarray]:
    """Groups of runs sharing every other source's level (or all runs)."""
    if not others:
        return [np.arange(n)]
    keys = np.stack([np.unique(c, return_inverse=True)[1] for c in others], axis=1)
    _, group = np.unique(keys, axis=0, return_inverse=True)
    strata = [np.flatnonzero(group == g) for g in np.unique(group)]
    if max(len(s) for s in strata) < 2:
        return [np.arange(n)]
    return strata


def _permutations(
    values: np.ndarray, strata: list[np.ndarray], n: int, rng: np.random.Generator
) -> np.ndarray:
    """Return ``n`` relabellings of ``values``, each permuted within strata."""
    out = np.repeat(values[None, :], n, axis=0)
    for s in strata:
        order = np.argsort(rng.random((n, len(s))), axis=1)
        out[:, s] = values[s][order]
    return out


def perturbation_share(
    perturbed: Any,
    reseed: float,
    reseed_samples: Any,
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """Return a one-ulp perturbation's distance as a share of a full reseed's.

    Parameters
    ----------
    perturbed : array-like of shape (n_twins,)
        Per perturbed run, its distance to its unperturbed twin.
    reseed : float
        The mean distance between runs that differ in every seed source.
    reseed_samples : array-like of shape (m,)
        Bootstrap resamples of ``reseed`` (e.g. from :func:`source_distances`
        machinery); paired at random with resamples of the twins.
    n_resamples, level, seed
        Bootstrap over the twins.

    Returns
    -------
    dict
        ``{"perturbed", "reseed", "ratio", "interval", "n_twins"}``. A ratio
        near 1 means training is chaotic: a change of one ulp in one weight
        ends as far away as a new seed.
    """
    p = np.asarray(perturbed, dtype=np.float64).reshape(-1)
    r = np.asarray(reseed_samples, dtype=np.float64).reshape(-1)
    r = r[np.isfinite(r)]
    if p.size == 0 or r.size == 0 or not np.isfinite(reseed) or reseed == 0:
        return {
            "perturbed": float(p.mean()) if p.size else None,
            "reseed": float(reseed) if np.isfinite(reseed) else None,
            "ratio": None,
            "interval": [None, None],
            "n_twins": int(p.size),
        }
    ps = mean_samples(p, n_resamples, seed)
    rs = np.random.default_rng(seed + 1).choice(r, size=ps.size, replace=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = ps / rs
    return {
        "perturbed": float(p.mean()),
        "reseed": float(reseed),
        "ratio": float(p.mean() / reseed),
        "interval": percentile_interval(ratios, level),
        "n_twins": int(p.size),
    }
