"""Verdict rules and the article's claims on synthetic groups of runs."""

import numpy as np
import pytest

from embvar.analysis import article_claims as ac
from embvar.analysis.claims import (
    PRIMARY,
    Estimate,
    Group,
    claims_table,
    combine_verdicts,
    directional_verdict,
    instability,
    make_claim,
    make_part,
)
from embvar.analysis.distances import METRICS
from embvar.errors import DataError


def _group(label, overlap, rmse=1.0, n=4, curves=None, seed=0, spread=0.02):
    """n runs whose pairwise k-NN overlap is ``overlap`` (+ small noise)."""
    rng = np.random.default_rng(seed)
    M = {}
    for m in METRICS:
        base = overlap if m == PRIMARY else 1.0 - overlap
        A = base + spread * rng.normal(size=(n, n))
        A = (A + A.T) / 2
        np.fill_diagonal(A, 1.0 if m == PRIMARY else 0.0)
        M[m] = A
    return Group(
        label,
        [f"{label}-{i}" for i in range(n)],
        M,
        rmse + 0.001 * rng.normal(size=n),
        curves=curves or {},
    )


def _est(value, spread=0.01, n=500, seed=0):
    rng = np.random.default_rng(seed)
    return Estimate(value, value + spread * rng.normal(size=n))


@pytest.mark.parametrize(
    ("interval", "direction", "margin", "verdict"),
    [
        ([0.02, 0.05], "greater", 0.01, "supported"),
        ([0.005, 0.05], "greater", 0.01, "inconclusive"),
        ([-0.05, -0.02], "greater", 0.01, "contradicted"),
        ([-0.004, 0.006], "greater", 0.01, "contradicted"),
        ([-0.05, -0.02], "less", None, "supported"),
        ([-0.05, 0.02], "less", None, "inconclusive"),
        ([None, None], "less", None, "inconclusive"),
    ],
)
def test_directional_verdict_rules(interval, direction, margin, verdict):
    assert directional_verdict(interval, direction, margin=margin) == verdict


def test_directional_verdict_ratio_threshold():
    assert directional_verdict([0.6, 0.8], "less", threshold=1.0) == "supported"
    assert directional_verdict([1.1, 1.3], "less", threshold=1.0) == "contradicted"


def test_combine_verdicts():
    assert combine_verdicts(["supported", "supported"]) == "supported"
    assert combine_verdicts(["contradicted", "contradicted"]) == "contradicted"
    assert combine_verdicts(["supported", "contradicted"]) == "inconclusive"
    assert combine_verdicts([]) == "inconclusive"


def test_make_claim_reports_deciding_part():
    good = make_part("X1", "", "m", _est(0.1), "greater", margin=0.01)
    bad = make_part("X2", "", "m", _est(-0.1), "greater", margin=0.01)
    claim = make_claim("C1", [good, bad], designs=["d"])
    assert claim["verdict"] == "inconclusive"
    assert claim["decided_by"] == "X2" and claim["effect"] == pytest.approx(-0.1)
    assert claim["detail"].startswith("mixed:")


def test_instability_is_one_minus_overlap():
    g = _group("g", 0.3, spread=0.0)
    assert instability(g).value == pytest.approx(0.7)


def test_estimate_minus_and_over():
    a, b = _est(2.0, seed=1), _est(1.0, seed=2)
    assert a.minus(b).value == pytest.approx(1.0)
    assert a.over(b).value == pytest.approx(2.0)
    low, high = a.minus(b).interval()
    assert low < 1.0 < high


def test_c1_washes_out_partly_supported():
    claim = ac.c1(_est(0.6), _est(0.99, spread=0.001, seed=1))
    assert claim["verdict"] == "supported"
    assert [p["verdict"] for p in claim["parts"]] == ["supported", "supported"]


def test_c1_no_shrinking_contradicts_part():
    claim = ac.c1(_est(0.99, spread=0.001), _est(0.9, spread=0.001, seed=1))
    assert claim["parts"][1]["verdict"] == "contradicted"


def test_c1_missing_design_inconclusive():
    assert ac.c1(None, None)["verdict"] == "inconclusive"


def test_c5_order_difference_supported():
    claim = ac.c5(
        _est(0.5),
        perturbation={"ratio": 0.9},
        permanova_row={"p_value": 0.01, "share": 0.3},
    )
    assert claim["verdict"] == "supported"
    assert "one-ulp" in claim["parts"][0]["detail"]


def test_c6_growing_difference_contradicts_shrinking():
    claim = ac.c6(_est(0.6), _est(0.3, seed=1))
    assert claim["parts"][0]["verdict"] == "contradicted"
    assert claim["parts"][1]["verdict"] == "supported"
    assert claim["verdict"] == "inconclusive"


def test_c2_glorot_random_start_contradicts_determinism():
    base = _group("uniform", 0.3, spread=0.001)
    glorot = _group("glorot", 0.3, seed=1, spread=0.001)
    glorot.initial_identical = np.eye(4)
    curves = {"test_rmse": np.tile([1.05, 0.95, 0.9], (4, 1))}
    base.curves = glorot.curves = curves
    claim = ac.c2({"uniform": base, "glorot_uniform": glorot})
    parts = {p["id"]: p for p in claim["parts"]}
    assert parts["C2a1"]["verdict"] == "contradicted"
    assert parts["C2a2"]["verdict"] == "contradicted"  # same stability: no effect
    assert parts["C2a3"]["verdict"] == "contradicted"  # same speed
    assert claim["verdict"] == "contradicted"


def test_c2_pretrained_more_stable_supported():
    base = _group("uniform", 0.3)
    pre = _group("pretrained", 0.6, seed=1)
    pre.initial_identical = np.ones((4, 4))
    base.curves = {"test_rmse": np.tile([1.05, 0.95], (4, 1))}
    pre.curves = {"test_rmse": np.tile([1.05, 0.90], (4, 1))}
    claim = ac.c2({"uniform": base, "pretrained": pre})
    assert claim["verdict"] == "supported"


def test_c3_high_rate_unstable_low_rate_slow():
    def curves(train, test):
        return {
            "train_rmse": np.tile(train, (4, 1)),
            "test_rmse": np.tile(test, (4, 1)),
        }

    groups = {
        1e-4: _group(
            "lr=1e-4",
            0.3,
            rmse=1.02,
            curves=curves([1.05, 1.04, 1.03, 1.02], [1.05, 1.04, 1.03, 1.02]),
        ),
        1e-3: _group(
            "lr=1e-3",
            0.3,
            rmse=0.88,
            seed=1,
            curves=curves([1.05, 0.95, 0.90, 0.88], [1.05, 0.95, 0.9, 0.88]),
        ),
        1.0: _group(
            "lr=1",
            0.05,
            rmse=1.9,
            seed=2,
            curves=curves([1.05, 3.0, 2.0, 4.0], [1.05, 3.0, 2.0, 4.0]),
        ),
    }
    claim = ac.c3(groups)
    parts = {p["id"]: p["verdict"] for p in claim["parts"]}
    assert parts == {
        "C3a": "supported",
        "C3b": "supported",
        "C3c": "supported",
        "C3d": "contradicted",
    }
    assert "tuned rate" in claim["detail"]


def test_c3_too_few_rates_inconclusive():
    assert ac.c3({1e-3: _group("a", 0.3)})["verdict"] == "inconclusive"


def test_c4_adamw_more_stable_at_every_fraction():
    groups = {}
    for i, f in enumerate((0.1, 1.0)):
        groups[("sgd", f)] = _group(f"sgd {f}", 0.1, seed=i)
        groups[("adamw", f)] = _group(f"adamw {f}", 0.4, seed=10 + i)
    claim = ac.c4(groups)
    assert claim["verdict"] == "supported" and len(claim["parts"]) == 2


def test_c7_more_variation_small_data_and_high_dim():
    claim = ac.c7(
        {0.1: _group("f=0.1", 0.1), 1.0: _group("f=1", 0.4, seed=1)},
        {8: _group("d=8", 0.5, seed=2), 128: _group("d=128", 0.2, seed=3)},
    )
    assert [p["verdict"] for p in claim["parts"]] == ["supported", "supported"]


def test_oscillations_counts_rises_after_epoch_one():
    curve = np.array([[9.0, 1.0, 2.0, 1.5, 3.0]])
    assert ac.oscillations(curve).tolist() == [2.0]


def test_claims_table_rows_claims_then_parts():
    part = make_part("C5a", "s", "m", _est(0.2), "greater", margin=0.01)
    report = {"claims": {"claims": [make_claim("C5", [part], designs=["seeds"])]}}
    rows = claims_table(report)
    assert [r["id"] for r in rows] == ["C5", "C5a"]
    assert rows[0]["verdict"] == "supported"


def test_claims_table_rows_keep_every_field_of_the_report():
    """--json is the whole record: why a claim is inconclusive, which part decided."""
    from embvar.analysis.claims import missing_claim, not_measured_reason

    part = make_part("C5a", "s", "m", _est(0.2), "greater", margin=0.01)
    claim = make_claim("C5", [part], designs=["seeds"])
    missing = missing_claim("C1", ["crossed"], "no crossed init x order design")
    rows = claims_table({"claims": {"claims": [claim, missing]}})
    c5, c5a, c1 = rows
    assert {k: c5[k] for k in ("decided_by", "effect_definition", "designs")} == {
        k: claim[k] for k in ("decided_by", "effect_definition", "designs")
    }
    assert "parts" not in c5 and c5["statement"] == claim["claim"]
    assert c5a["part_of"] == "C5" and c5a["rule"] == part["rule"]
    assert c5a["runs"] == part["runs"] and c5a["detail"] == part["detail"]
    assert c1["detail"] == "not measured: no crossed init x order design"
    assert not_measured_reason(c1) == "no crossed init x order design"
    assert not_measured_reason(c5) is None


def test_cli_claims_shows_why_a_claim_was_not_measured(tmp_path):
    import json

    from typer.testing import CliRunner

    from embvar.analysis.claims import missing_claim
    from embvar.cli import app

    claims = [missing_claim("C1", ["crossed"], "no crossed init x order design")]
    (tmp_path / "report.json").write_text(json.dumps({"claims": {"claims": claims}}))
    runner = CliRunner()
    table = runner.invoke(app, ["claims", str(tmp_path)], env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    assert "not measured: no crossed init x order design" in table.output
    done = runner.invoke(app, ["claims", str(tmp_path), "--json"])
    (row,) = json.loads(done.output)
    assert row["detail"] == claims[0]["detail"] and row["designs"] == ["crossed"]
    assert row["decided_by"] is None and "effect_definition" in row


def test_claims_table_without_claims_rejected():
    with pytest.raises(DataError, match="the report holds no claims"):
        claims_table({"groups": []})


def test_cli_claims_without_claims_one_line_error(tmp_path):
    import json
    import subprocess
    import sys

    (tmp_path / "report.json").write_text(json.dumps({"groups": []}))
    done = subprocess.run(
        [sys.executable, "-m", "embvar.cli", "claims", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("embvar: error: the report holds no claims")
