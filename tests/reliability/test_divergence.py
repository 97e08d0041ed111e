"""A run that blows up (learning rate far too high) is kept as diverged, not fatal."""

from __future__ import annotations

import json

import numpy as np
import pytest

from embvar.errors import NonFiniteError
from embvar.metrics import procrustes_distance
from embvar.store import Store
from embvar.study import run_study
from tests.reliability.conftest import study_text

# SGD at learning rate 100 overflows within two epochs on this data; at 1.0
# it trains. Two seeds each, beside the one default run of "seeds".
EXTRA = """
[[design]]
name = "lr"
replicates = 2
factors = { optimizer = ["sgd"], learning_rate = [1.0, 100.0] }
"""


@pytest.fixture(scope="module", params=["independent", "replicas"])
def diverging_study(tmp_path_factory, request):
    """The study trained by one Keras fit per run, and by the replica trainer."""
    from tests.reliability.conftest import write_ratings

    folder = tmp_path_factory.mktemp("diverge")
    ratings = write_ratings(folder / "ratings.csv")
    path = folder / "s.toml"
    path.write_text(
        study_text("diverge", ratings, init=1, order=1, epochs=2, extra=EXTRA)
    )
    outcome = run_study(path, folder / "out", trainer=request.param)
    return outcome, folder / "out"


def test_diverged_runs_stored_with_epoch_and_step(diverging_study):
    outcome, out = diverging_study
    assert not outcome.failed and len(outcome.trained) == 5  # the study went on
    with Store(out, create=False) as store:
        runs = store.runs()
        diverged = [r for r in runs if r.status == "diverged"]
        done = [r for r in runs if r.status == "done"]
        assert len(diverged) == 2 and len(done) == 3
        for r in diverged:
            assert r.spec["training"]["learning_rate"] == 100.0
            assert 1 <= r.diverged_epoch <= 2 and r.diverged_step >= 0
            # The last snapshot is where it blew up: it holds NaN or inf.
            tables = store.load_snapshot(r.run_id)
            assert not all(np.isfinite(t).all() for t in tables.values())
            history = store.history(r.run_id)
            assert history[-1]["epoch"] == r.diverged_epoch
        for r in done:
            assert r.diverged_epoch is None and r.diverged_step is None


def test_diverged_runs_left_out_of_geometry(diverging_study):
    outcome, _ = diverging_study
    report = outcome.report
    diverged_ids = {d["run_id"] for d in report["runs"]["diverged"]}
    for group in report["groups"]:
        assert not diverged_ids & set(group["run_ids"])
    labels = [g["label"] for g in report["groups"]]
    assert any("learning_rate=1.0" in label for label in labels)
    assert not any("learning_rate=100.0" in label for label in labels)


def test_report_counts_and_names_diverged_runs(diverging_study):
    _, out = diverging_study
    report = json.loads((out / "report.json").read_text())
    diverged = report["runs"]["diverged"]
    assert len(diverged) == 2
    for d in diverged:
        assert d["factors"]["learning_rate"] == 100.0
        assert d["epoch"] >= 1 and d["step"] >= 0
    text = " ".join(report["summary"])
    assert "3 of 5 planned runs finished, 2 diverged." in text
    for d in diverged:
        assert f"run {d['run_id']} (" in text
        assert f"at epoch {d['epoch']}, step {d['step']}" in text


def test_metrics_refuse_a_diverged_table(diverging_study):
    outcome, out = diverging_study
    bad = outcome.report["runs"]["diverged"][0]["run_id"]
    good = outcome.report["groups"][0]["run_ids"][0]
    with Store(out, create=False) as store:
        tables = store.load_snapshot(bad)
        name = next(n for n, t in tables.items() if not np.isfinite(t).all())
        good_table = store.load_snapshot(good)[name]
    with pytest.raises(NonFiniteError, match="must be finite; .* rows hold NaN or inf"):
        procrustes_distance(good_table, tables[name])
