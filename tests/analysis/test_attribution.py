"""Attribution in crossed designs: known answers and planted effects."""

import numpy as np
import pytest
from scipy import stats

from embvar.analysis.attribution import (
    RESIDUAL,
    class_samples,
    pair_classes,
    permanova,
    perturbation_share,
    source_distances,
    variance_components,
)
from embvar.errors import DataError, ShapeMismatchError
from tests.analysis.conftest import crossed_levels, distances, planted_points


def _share(out, source):
    return next(c for c in out["components"] if c["source"] == source)


def test_variance_components_two_by_two_known_answer():
    # y = [[1, 2], [3, 4]] (init rows, order columns): MS_init = 4, MS_order = 1,
    # no residual, so sigma2_init = 4 / 2 = 2 and sigma2_order = 1 / 2 = 0.5.
    levels = crossed_levels(2, 2)
    out = variance_components([1.0, 2.0, 3.0, 4.0], levels, n_resamples=50)
    assert _share(out, "init")["variance"] == pytest.approx(2.0)
    assert _share(out, "order")["variance"] == pytest.approx(0.5)
    assert _share(out, RESIDUAL)["variance"] == pytest.approx(0.0, abs=1e-12)
    assert _share(out, "init")["share"] == pytest.approx(0.8)
    assert _share(out, "order")["share"] == pytest.approx(0.2)


def test_variance_components_planted_source_gets_almost_all(rng):
    levels = crossed_levels(5, 5)
    y = 1.0 * rng.normal(size=5)[levels["init"]] + 0.001 * rng.normal(size=25)
    out = variance_components(y, levels, n_resamples=300)
    assert _share(out, "init")["share"] > 0.99
    assert _share(out, "order")["share"] < 0.01
    assert _share(out, "order")["interval"][0] == 0.0


@pytest.mark.parametrize("seed", range(10))
def test_variance_components_no_effect_source_interval_contains_zero(seed):
    rng = np.random.default_rng(seed)
    levels = crossed_levels(4, 4)
    y = rng.normal(size=4)[levels["init"]] + 0.3 * rng.normal(size=16)
    out = variance_components(y, levels, n_resamples=300, seed=seed)
    low, high = _share(out, "order")["interval"]
    assert low <= 0.0 <= high


def test_variance_components_order_independent_of_run_order(rng):
    levels = crossed_levels(3, 4)
    y = rng.normal(size=12)
    perm = rng.permutation(12)
    a = variance_components(y, levels, n_resamples=20)
    b = variance_components(
        y[perm], {k: v[perm] for k, v in levels.items()}, n_resamples=20
    )
    assert [c["variance"] for c in a["components"]] == pytest.approx(
        [c["variance"] for c in b["components"]]
    )


def test_variance_components_unbalanced_design_rejected():
    levels = {"init": np.array([0, 0, 1]), "order": np.array([0, 1, 0])}
    with pytest.raises(DataError, match="variance_components needs a balanced full"):
        variance_components([1.0, 2.0, 3.0], levels)


def test_variance_components_without_residual_rejected():
    with pytest.raises(DataError, match="variance_components needs a residual"):
        variance_components([1.0, 2.0, 3.0], {"init": np.arange(3)})


def test_variance_components_wrong_length_levels_rejected():
    with pytest.raises(ShapeMismatchError, match=r"levels\['init'\] must have one"):
        variance_components([1.0, 2.0], {"init": np.arange(3)})


def test_pair_classes_two_sources_known_masks():
    levels = crossed_levels(2, 2)  # runs (0,0), (0,1), (1,0), (1,1)
    masks = pair_classes(levels)
    assert np.argwhere(np.triu(masks["init"])).tolist() == [[0, 2], [1, 3]]
    assert np.argwhere(np.triu(masks["order"])).tolist() == [[0, 1], [2, 3]]
    assert np.argwhere(np.triu(masks["all"])).tolist() == [[0, 3], [1, 2]]


def test_source_distances_additive_distances_known_means():
    levels = crossed_levels(3, 3)
    d_init = levels["init"][:, None] != levels["init"][None, :]
    d_order = levels["order"][:, None] != levels["order"][None, :]
    D = 1.0 * d_init + 0.1 * d_order
    out = {e["source"]: e for e in source_distances(D, levels, n_resamples=100)}
    assert out["init"]["mean"] == pytest.approx(1.0)
    assert out["order"]["mean"] == pytest.approx(0.1)
    assert out["all"]["mean"] == pytest.approx(1.1)
    assert out["init"]["interval"] == pytest.approx([1.0, 1.0])
    assert out["init"]["n_pairs"] == 9 and out["all"]["n_pairs"] == 18


def test_source_distances_lists_pairs_by_run_id():
    levels = crossed_levels(2, 2)
    out = source_distances(
        np.ones((4, 4)), levels, run_ids=list("abcd"), n_resamples=10
    )
    init = next(e for e in out if e["source"] == "init")
    assert init["pairs"] == [["a", "c"], ["b", "d"]]


def test_class_samples_same_seed_paired():
    levels = crossed_levels(3, 3)
    D = np.random.default_rng(0).random((9, 9))
    D = D + D.T
    a = class_samples(D, levels, n_resamples=50, seed=3)["init"][1]
    b = class_samples(2 * D, levels, n_resamples=50, seed=3)["init"][1]
    assert np.allclose(b, 2 * a, equal_nan=True)


def test_permanova_one_way_sums_of_squares_match_anderson_formula(rng):
    # For a balanced design, SS_among = SS_T - SS_W with
    # SS_T = (1/N) sum_{i<j} d_ij^2, SS_W = sum_g (1/n_g) sum_{i<j in g} d_ij^2.
    levels = crossed_levels(4, 3)
    D = distances(planted_points(rng, levels, {"init": 1.0, "order": 0.5}, 0.3))
    out = permanova(D, levels, n_permutations=9)
    n = 12
    iu = np.triu_indices(n, 1)
    ss_t = (D[iu] ** 2).sum() / n
    g = levels["init"]
    ss_w = sum(
        (D[np.ix_(g == k, g == k)][np.triu_indices(3, 1)] ** 2).sum() / 3
        for k in range(4)
    )
    rows = {r["source"]: r for r in out["rows"]}
    assert rows["total"]["ss"] == pytest.approx(ss_t)
    assert rows["init"]["ss"] == pytest.approx(ss_t - ss_w)
    assert rows["init"]["df"] == 3 and rows[RESIDUAL]["df"] == 6


def test_permanova_planted_effect_found(rng):
    levels = crossed_levels(4, 4)
    D = distances(planted_points(rng, levels, {"init": 1.0}, 0.1))
    rows = {r["source"]: r for r in permanova(D, levels, n_permutations=199)["rows"]}
    assert rows["init"]["p_value"] <= 0.01
    assert rows["init"]["share"] > 0.8
    assert rows["init"]["pseudo_f"] > rows["order"]["pseudo_f"]


def test_permanova_general_path_matches_balanced_path(rng, monkeypatch):
    import embvar.analysis.attribution as attribution

    levels = crossed_levels(3, 3)
    D = distances(planted_points(rng, levels, {"init": 0.3, "order": 0.3}, 0.5))
    fast = permanova(D, levels, n_permutations=99, seed=4)
    monkeypatch.setattr(attribution, "_is_full_cross", lambda columns: False)
    slow = permanova(D, levels, n_permutations=99, seed=4)
    assert [r.get("p_value") for r in fast["rows"]] == [
        r.get("p_value") for r in slow["rows"]
    ]
    assert [r["ss"] for r in fast["rows"]] == pytest.approx(
        [r["ss"] for r in slow["rows"]]
    )


def test_permanova_non_finite_rejected():
    D = np.zeros((4, 4))
    D[0, 1] = np.nan
    with pytest.raises(DataError, match="D must be finite"):
        permanova(D, crossed_levels(2, 2))


@pytest.mark.slow
def test_permanova_p_value_uniform_under_null():
    # No effect of init (order has one): over many independent designs the
    # p-value of init must be uniform on (0, 1].
    p = []
    for seed in range(400):
        rng = np.random.default_rng(1000 + seed)
        levels = crossed_levels(4, 4)
        D = distances(planted_points(rng, levels, {"order": 1.0}, 0.5))
        rows = permanova(D, levels, n_permutations=199, seed=seed)["rows"]
        p.append(next(r for r in rows if r["source"] == "init")["p_value"])
    p = np.array(p)
    assert stats.kstest(p, "uniform").pvalue > 0.001
    # The share below 0.05 is within a binomial 99.9% range of 5%.
    low, high = stats.binom.interval(0.999, len(p), 0.05)
    assert low <= np.sum(p <= 0.05) <= high


def test_perturbation_share_known_ratio():
    out = perturbation_share([0.2, 0.4], 0.6, np.full(100, 0.6), n_resamples=200)
    assert out["ratio"] == pytest.approx(0.5)
    assert out["interval"][0] >= 0.2 / 0.6 - 1e-9
    assert out["interval"][1] <= 0.4 / 0.6 + 1e-9
    assert out["n_twins"] == 2


def test_perturbation_share_without_reseed_gives_none():
    out = perturbation_share([0.2], float("nan"), [])
    assert out["ratio"] is None and out["interval"] == [None, None]


def test_attribution_three_sources_no_effect_noise():
    # init x order x noise, 3 levels each; noise has no effect on anything.
    rng = np.random.default_rng(5)
    grid = np.array(
        np.meshgrid(np.arange(3), np.arange(3), np.arange(3), indexing="ij")
    ).reshape(3, -1)
    levels = {"init": grid[0], "order": grid[1], "noise": grid[2]}
    y = 1.0 * rng.normal(size=3)[grid[0]] + 0.3 * rng.normal(size=3)[grid[1]]
    y = y + 0.01 * rng.normal(size=27)
    out = variance_components(y, levels, n_resamples=300)
    assert _share(out, "noise")["interval"][0] == 0.0
    assert _share(out, "init")["share"] > _share(out, "order")["share"] > 0.01
    D = distances(planted_points(rng, levels, {"init": 1.0, "order": 0.3}, 0.05))
    rows = {r["source"]: r for r in permanova(D, levels, n_permutations=99)["rows"]}
    assert rows["init"]["p_value"] <= 0.02 and rows["order"]["p_value"] <= 0.02
    assert rows["noise"]["share"] < 0.01
