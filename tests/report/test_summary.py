"""Generated sentences, the terminal summary and the machine-readable summary."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console

from embvar.report.summary import summary_sentences
from embvar.report.terminal import print_summary, summary_json
from tests.report.fixture import full_report, minimal_report


def test_summary_sentences_answer_first_runs_last():
    sentences = summary_sentences(full_report())
    assert sentences[0].startswith("With the default settings, 4 runs that differ only")
    assert "keeps on average 39% of its 10 nearest neighbours" in sentences[0]
    assert "Procrustes distance between two runs averages 0.620" in sentences[0]
    # The bookkeeping comes after everything else.
    assert "8 of 8 planned runs finished, 1 diverged." in sentences[-2:]


def test_summary_sentences_why_from_attribution():
    text = " ".join(summary_sentences(full_report()))
    # init-only pairs 0.70 of every-source pairs 0.71: ratio 0.99 >= 0.9.
    assert (
        "runs that differ in every seed are 0.710 apart (Procrustes distance), "
        "runs that differ in the init seed alone 0.700 and the order seed alone "
        "0.200: the init seed alone makes nearly all of the difference."
    ) in text
    # The init share's interval [0.4, 0.9] excludes 0; order's does not.
    assert (
        "The init seed accounts for 70% of the variance of test RMSE (95% "
        "interval 40%–90%), a share of a small spread" in text
    )
    assert "ends 85% as far away as a new seed" in text


def test_summary_sentences_frequency_claims_and_determinism():
    text = " ".join(summary_sentences(full_report()))
    assert (
        "Rare items are less stable: k-NN overlap@10 rises with training "
        "frequency (moderate rank correlation, Spearman ρ = 0.45)." in text
    )
    assert (
        "Of the reference article's 3 claims tested here: 1 supported, "
        "1 contradicted, 1 inconclusive."
    ) in text
    assert "Op determinism on gave bitwise-identical runs here." in text


def test_summary_sentences_minimal_report_has_no_why():
    text = " ".join(summary_sentences(minimal_report()))
    assert "Where the difference comes from" not in text
    assert "claims" not in text


def test_summary_sentences_no_groups():
    report = minimal_report()
    report["groups"] = []
    assert summary_sentences(report)[0].startswith("No group has two finished runs")


def test_print_summary_prints_json_sentences_and_both_paths():
    out = io.StringIO()
    report = minimal_report()
    print_summary(
        report, Console(file=out, width=200), "d/report.json", "d/report.html"
    )
    text = out.getvalue()
    assert "fixture: variation between seed replicates" in text
    assert report["summary"][1] in text
    assert "Report written to d/report.json and d/report.html" in text


def test_print_summary_report_without_groups_prints_sentences_only():
    out = io.StringIO()
    print_summary({"summary": ["Audit verdict."]}, Console(file=out, width=120))
    assert out.getvalue().strip() == "Audit verdict."


def test_summary_json_is_machine_readable():
    doc = summary_json(full_report(), "d/report.json", "d/report.html")
    json.dumps(doc, allow_nan=False)
    assert doc["report"] == "d/report.json" and doc["html"] == "d/report.html"
    assert all("pairs" not in g for g in doc["groups"])
    assert doc["claims"]["claims"][0]["verdict"] == "supported"
    assert doc["least_stable"][0]["label"] == "<script>alert(1)</script>"
    assert set(doc) >= {"summary", "groups", "report", "html"}


def test_summary_sentences_full_reseed_overlap_named_beside_group_mean():
    report = full_report()
    report["attribution"]["distance"].append(
        {
            "metric": "knn_overlap@10",
            "by_source": [
                {"source": "init", "mean": 0.02},
                {"source": "all", "mean": 0.013},
            ],
        }
    )
    text = " ".join(summary_sentences(report))
    assert (
        "Between two runs that differ in every seed, an item keeps 1% of its 10 "
        "nearest neighbours" in text
    )


@pytest.mark.parametrize(
    "rho,interval,expected",
    [
        (0.45, [0.4, 0.5], "Rare items are less stable: k-NN overlap@10 rises"),
        (-0.35, [-0.4, -0.3], "Rare items are not less stable here: k-NN"),
        (-0.03, [-0.05, -0.01], "Frequency hardly matters for items here"),
        (0.02, [-0.01, 0.05], "shows no clear relation to training frequency"),
    ],
)
def test_frequency_reading_names_direction_and_strength(rho, interval, expected):
    from embvar.report.sections.analysis import frequency_reading

    entry = {
        "entity": "item",
        "metric": "knn_overlap@10",
        "spearman": {"rho": rho, "interval": interval},
    }
    assert expected in frequency_reading(entry)


def test_summary_sentences_tiny_perturbation_is_not_rounded_to_zero():
    report = full_report()
    for entry in report["attribution"]["perturbation"]:
        entry["ratio"] = 1.2e-7
    text = " ".join(summary_sentences(report))
    assert "ends only 1.2e-07 times as far away as a new seed" in text


def _reseeded(knn: float, proc: float, n_pairs: int = 2) -> dict:
    def st(m: float) -> dict:
        return {"n": n_pairs, "mean": m if n_pairs else None, "sd": 0.01}

    return {
        "sources": ["init", "order"],
        "n_pairs": n_pairs,
        "geometry": {"procrustes": st(proc), "knn_overlap@10": st(knn)},
        "function": {"topk_overlap@10": st(knn + 0.05)},
        "parameters": {"relative_frobenius": st(1.3)},
    }


def test_summary_headline_uses_reseeded_pairs():
    report = full_report()
    report["groups"][0]["reseeded"] = _reseeded(0.24, 0.857)
    sentences = summary_sentences(report)
    assert sentences[0] == (
        "With the default settings, two runs trained with new seeds (the 2 pairs "
        "of its 4 runs that differ in both the init and the order seed) learn "
        "different item embeddings: an item keeps on average 24% of its 10 "
        "nearest neighbours from one run to another, and after the best rotation "
        "and scaling the Procrustes distance between two runs averages 0.857 (0 = "
        "the same shape, 1 = no shared structure)."
    )
    assert sentences[1].startswith(
        "What the model does: a user keeps 29% of their top-10 recommendations"
    )
    text = " ".join(sentences)
    # The headline already counts only full reseeds: no correction sentence.
    assert "the group's average above also counts" not in text
    # Across settings: defaults at its reseeded 24%, the others (groups
    # without a ``reseeded`` entry, as older reports) at their means.
    assert (
        "Across settings, neighbourhoods are most stable with learning_rate=0.001 "
        "(60% kept) and least with learning_rate=0.1 (10% kept)." in text
    )
    report["groups"][2]["reseeded"] = _reseeded(0.05, 0.95)
    text = " ".join(summary_sentences(report))
    assert (
        "Across settings, neighbourhoods between runs that differ in every seed "
        "are most stable with the default settings (24% kept) and least with "
        "learning_rate=0.001 (5% kept)." in text
    )


def test_summary_headline_falls_back_to_all_pairs_and_says_so():
    report = full_report()
    for g in report["groups"]:
        g["reseeded"] = _reseeded(0.0, 0.0, n_pairs=0)
    sentences = summary_sentences(report)
    assert sentences[0].startswith(
        "With the default settings, 4 runs that differ only in their seeds (over "
        "all 6 pairs: no pair differs in every seed) learn different item "
        "embeddings: an item keeps on average 39%"
    )
    assert "least with learning_rate=0.1 (10% kept, all pairs)." in " ".join(sentences)


def _moved(mean: float) -> dict:
    return {
        "table": "item_embedding",
        "metric": "relative_frobenius",
        "from_epoch": 0,
        "values": [mean, mean],
        "n": 2,
        "mean": mean,
        "threshold": 0.5,
        "barely_moved": mean < 0.5,
    }


def test_summary_groups_that_barely_moved_are_named_not_ranked():
    report = full_report()
    report["groups"][0]["training_movement"] = _moved(1.4)
    report["groups"][1]["training_movement"] = _moved(0.06)  # learning_rate=0.1
    report["groups"][2]["training_movement"] = _moved(1.2)
    text = " ".join(summary_sentences(report))
    assert (
        "With learning_rate=0.1, the item embeddings barely moved from their "
        "random initial values (training moved the tables by 6%; under 50% counts "
        "as barely), so their neighbourhoods say they are untrained, not that "
        "they are unstable; they are left out of the comparison of settings."
    ) in text
    # Least stable among the trained settings: the defaults' 39%, not 10%.
    assert (
        "most stable with learning_rate=0.001 (60% kept) and least with the "
        "default settings (39% kept)." in text
    )


def test_summary_main_group_that_barely_moved_is_called_untrained():
    report = full_report()
    report["groups"][0]["training_movement"] = _moved(0.06)
    first = summary_sentences(report)[0]
    assert first.startswith(
        "With the default settings, the item embeddings barely left their random "
        "initial values: training moved each run's item table by 6% on average"
    )
    assert "(Procrustes distance 0.620)" in first
    assert "untrained, not unstable" in first
    assert "keeps on average" not in first


def test_summary_order_alone_beside_its_small_permanova_share():
    report = full_report()
    report["attribution"]["distance"].append(
        {
            "metric": "knn_overlap@10",
            "by_source": [
                {"source": "init", "mean": 0.24},
                {"source": "order", "mean": 0.73},
                {"source": "all", "mean": 0.24},
            ],
        }
    )
    text = " ".join(summary_sentences(report))
    # Order-only pairs 0.20 >= 10% of every-source 0.71; PERMANOVA share 5%.
    assert (
        "Yet the order seed alone (init seed fixed) still leaves runs 0.200 "
        "apart (Procrustes distance; an item keeps 73% of its 10 nearest "
        "neighbours). PERMANOVA gives the order seed only 5.0% of the variation "
        "because its effect is not additive across init seeds (a new order seed "
        "moves each init seed's run its own way), so it is counted as "
        "interaction, in the residual (5.0%)."
    ) in text


def test_summary_no_order_sentence_where_permanova_gives_it_a_share():
    report = full_report()
    rows = report["attribution"]["permanova"][0]["rows"]
    rows[1]["share"] = 0.3
    assert "Yet the order seed" not in " ".join(summary_sentences(report))


def test_summary_rmse_share_names_the_small_spread():
    text = " ".join(summary_sentences(full_report()))
    # values 0.91, 0.915, 0.912, 0.913: mean 0.9125, sd 0.00208.
    assert (
        "The init seed accounts for 70% of the variance of test RMSE (95% "
        "interval 40%–90%), a share of a small spread: test RMSE has an sd of "
        "0.0021 around its mean 0.9125 across these runs."
    ) in text


@pytest.mark.parametrize(
    "change,expected",
    [
        ({}, False),
        ({"diverged": [{"run_id": "d1", "epoch": 1, "step": 2}]}, True),
        ({"failed": [{"run_id": "f1", "error": "boom"}]}, True),
        ({"done": 7, "unfinished": ["u1"]}, True),
    ],
)
def test_summary_runs_line_only_when_something_is_missing(change, expected):
    report = full_report()
    report["runs"].update(
        {"planned": 8, "done": 8, "diverged": [], "failed": [], "unfinished": []}
    )
    report["runs"].update(change)
    text = " ".join(summary_sentences(report))
    assert ("planned runs finished" in text) is expected


def _function_series(stopped: bool, kind: str = "all", change: float = 0.12):
    return {
        "group": "every source",
        "kind": kind,
        "metric": "prediction_disagreement",
        "epochs": [0, 1, 2, 3],
        "n_pairs": 2,
        "summary": {"last_change": change, "stopped": stopped, "tolerance": 0.01},
    }


def test_summary_says_when_function_metrics_still_change():
    report = full_report()
    report["dynamics"]["series"] += [
        _function_series(False, "order", 0.3),
        _function_series(False),
    ]
    text = " ".join(summary_sentences(report))
    # Every-source pairs are preferred over a larger order-only change.
    assert (
        "Training had not converged: in the last epoch the prediction "
        "disagreement between runs that differ in every seed still changed by "
        "12% (more than 1%), so the function-level figures depend on the epoch "
        "budget (3 epochs here)."
    ) in text


def test_summary_no_convergence_sentence_when_function_metrics_stopped():
    report = full_report()
    # The fixture's geometry series are still changing: not function level.
    report["dynamics"]["series"].append(_function_series(True, change=0.001))
    assert "had not converged" not in " ".join(summary_sentences(report))


def test_summary_many_unmoved_groups_are_counted_not_listed():
    report = full_report()
    groups = report["groups"]
    extra = [dict(groups[1], label=f"setting {i}") for i in range(4)]
    report["groups"] = groups + extra
    means = [1.4, 0.06, 1.2, 0.1, 0.2, 0.3, 0.4]
    for g, mean in zip(report["groups"], means, strict=True):
        g["training_movement"] = _moved(mean)
    text = " ".join(summary_sentences(report))
    assert "In 5 of the 7 settings, the item embeddings barely moved" in text
    assert "by 6% to 40%" in text and "setting 3" not in text


def test_summary_perturbation_of_exactly_zero_is_said_plainly():
    report = full_report()
    for entry in report["attribution"]["perturbation"]:
        entry["ratio"] = 0.0
    text = " ".join(summary_sentences(report))
    assert "leaves no difference a distance can measure" in text
