"""Known answers for the words and numbers around the report's figures and tables."""

from __future__ import annotations

import copy
import html
import re

from embvar.report.html import build_sections, render_html
from tests.report.fixture import full_report, minimal_report


def _with(keys: list[str]) -> dict:
    """The minimal report plus some of the full report's keys."""
    full = full_report()
    report = minimal_report()
    for k in keys:
        report[k] = copy.deepcopy(full[k])
    return report


def _section(report: dict, sid: str):
    return next(s for s in build_sections(report) if s.id == sid)


def _text(page: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


def _dynamics_row(report: dict, label: str) -> str:
    page = render_html(report)
    table = page[page.index("left of the start") :]
    table = table[: table.index("</table>")]
    row = next(r for r in re.findall(r"<tr>(.*?)</tr>", table, re.S) if label in r)
    return _text(row)


def test_dynamics_share_of_an_earlier_peak_is_shown():
    report = _with(["dynamics"])
    order = next(s for s in report["dynamics"]["series"] if s["kind"] == "order")
    order["summary"].update(
        initial=0.0,
        reference_kind="peak",
        reference_epoch=1,
        remaining=0.83,
        remaining_interval=[0.82, 0.84],
        epochs_to_half=2,
    )
    row = _dynamics_row(report, "order only")
    assert "83% of the peak" in row
    assert "[82%, 84%]" in row
    assert "most apart at epoch 1" in row
    assert "then grew" not in row


def test_dynamics_peak_at_last_epoch_says_grew():
    report = _with(["dynamics"])
    order = next(s for s in report["dynamics"]["series"] if s["kind"] == "order")
    order["summary"].update(
        initial=0.0, reference_kind="peak", reference_epoch=3, remaining=1.0
    )
    row = _dynamics_row(report, "order only")
    assert "grew" in row and "most apart at the last epoch" in row
    assert "100%" not in row


def test_dynamics_header_names_half_of_the_change():
    page = render_html(_with(["dynamics"]))
    assert "epochs to half of the change" in page
    assert ">epochs to half<" not in page


def test_methods_procrustes_says_d_is_reported_and_what_it_means():
    page = _text(render_html(minimal_report()))
    assert "reported: d (not d²)" in page
    # The plain reading's arithmetic: 1 - 0.857² = 0.2655.
    assert "d = 0.857 means only 1 − 0.857² ≈ 27% is shared" in page
    assert round(100 * (1 - 0.857**2)) == 27


def test_methods_relative_displacement_is_the_plotted_quantity():
    from embvar.report.methods import metric_info

    info = metric_info("relative_displacement")
    assert info.name == "relative displacement"
    assert (info.low, info.high) == (0.0, 2.0)
    assert "own length" in info.formula
    assert metric_info("displacement").name != info.name


def _caption(report: dict, sid: str, i: int = 0) -> str:
    return _section(report, sid).figures[i].caption


def test_levels_caption_names_parameters_only_when_measured():
    report = minimal_report()
    assert "parameters" in report["groups"][0]
    caption = _caption(report, "levels")
    assert "from the raw coordinates (parameters) through" in caption
    assert "Not measured" not in caption
    page = render_html(report)
    assert "Not measured in this report" not in page
    assert ">relative Frobenius distance<" in page

    del report["groups"][0]["parameters"]
    caption = _caption(report, "levels")
    assert "raw coordinates" not in caption
    assert "Not measured here: parameters." in caption
    assert "Not measured in this report: parameters." in render_html(report)


def test_dynamics_caption_perturbation_only_when_the_data_has_it():
    report = _with(["dynamics"])
    caption = _caption(report, "dynamics")
    assert "one-ulp" in caption  # the fixture has a perturbed twin
    report["dynamics"]["series"] = [
        s for s in report["dynamics"]["series"] if s["kind"] != "perturb"
    ]
    caption = _caption(report, "dynamics")
    assert "one-ulp" not in caption and "dashed" not in caption
    assert "(initial values or data order) or in every source" in caption
    assert "noise" not in caption
    assert "towards 'same' (0 for distances, 1 for overlaps)" in caption
    assert "a falling line" not in caption


def test_attribution_lead_names_only_the_sources_varied():
    report = _with(["attribution"])
    assert report["attribution"]["sources"] == ["init", "order"]
    lead = _section(report, "attribution").lead
    assert "(here initial values and data order)" in lead
    assert "noise" not in lead


def test_frequency_labels_match_the_pairs_kind_and_other_figures():
    report = _with(["frequency"])
    entry = report["frequency"][0]
    entry["pairs_kind"] = "all"
    displaced = copy.deepcopy(entry)
    displaced.update(metric="relative_displacement", pairs_kind="init")
    report["frequency"].append(displaced)
    caption = _caption(report, "frequency")
    assert "differ in 'every source' or 'init only'" in caption
    assert "every seed" not in caption
    assert "in units of the vector's own length" in caption
    assert "every seed differs" not in render_html(report)


def test_permanova_p_value_at_its_floor_and_pseudo_f_note():
    from embvar.report.sections.analysis import _p_text

    assert _p_text(0.001, 999) == "≤ 0.001"
    assert _p_text(0.002, 999) == "0.002"
    assert _p_text(1 / 10000, 9999) == "≤ 0.0001"
    assert _p_text(None, 999) == "–"
    report = _with(["attribution"])
    report["attribution"]["permanova"][0]["rows"][0]["p_value"] = 0.001
    page = _text(render_html(report))
    assert "≤ 0.001" in page
    assert "never F tables" in page


def test_runs_table_seconds_labelled_when_replica_groups_share_time():
    report = minimal_report()
    for row in report["runs"]["table"]:
        row["seconds"] = 3.4963
    page = _text(render_html(report))
    assert "seconds per run; replica groups share their time" in page
    for i, row in enumerate(report["runs"]["table"]):
        row["seconds"] = 1.0 + i / 7
    page = _text(render_html(report))
    assert "replica groups share" not in page


def test_sd_in_fixed_point_never_exponent():
    from embvar.report.sections._common import fmt_pm, fmt_sd

    assert fmt_sd(3.42e-04) == "0.00034"
    assert fmt_sd(3.23e-05) == "0.000032"
    assert fmt_sd(0.222) == "0.222"
    assert fmt_sd(0.0) == "0.000"
    assert fmt_sd(3.228e-05, 4) == "0.000032"
    stat = {"n": 3, "mean": 0.15512, "sd": 3.42e-04, "min": 0.155, "max": 0.156}
    assert fmt_pm(stat) == "0.155\u00a0±\u00a00.00034"
    assert fmt_pm({**stat, "n": 1}) == "0.155"
    report = minimal_report()
    report["groups"][0]["geometry"]["knn_overlap@10"] = stat
    page = render_html(report)
    assert "0.155\u00a0±\u00a00.00034" in page
    assert "e-04" not in page


def test_description_crosses_with_times_sign():
    report = minimal_report()
    report["study"]["description"] = (
        "MF: init x order seeds, optimizer x learning rate."
    )
    page = render_html(report)
    assert "init × order seeds, optimizer × learning rate." in page


def test_tradeoff_caption_and_legend_share_one_definition():
    from embvar.report import figures as fg

    report = _with(["tradeoff"])
    caption = _caption(report, "tradeoff")
    assert f"Filled points: {fg.FRONT_LABELS[0]}" in caption
    assert "x scales differ" not in caption  # one design
    assert "beats it" not in render_html(report)
    for lv in report["tradeoff"]["levels"]:
        lv["factors"] = {"optimizer": "adam", "learning_rate": lv["label"][3:]}
    extra = copy.deepcopy(report["tradeoff"]["levels"][:2])
    for lv in extra:
        lv["design"] = "sgd"
    report["tradeoff"]["levels"] += extra
    section = _section(report, "tradeoff")
    assert "x scales differ between rows" in section.figures[0].caption


def test_tradeoff_point_labels_only_what_varies_in_the_design():
    from embvar.report.sections.analysis import _level_names

    members = [
        {
            "label": "optimizer=adam, learning_rate=0.001",
            "factors": {"optimizer": "adam", "learning_rate": 0.001},
        },
        {
            "label": "optimizer=adam, learning_rate=0.01",
            "factors": {"optimizer": "adam", "learning_rate": 0.01},
        },
    ]
    names, common = _level_names(members)
    assert sorted(names.values()) == ["learning_rate=0.001", "learning_rate=0.01"]
    assert common == "optimizer=adam"
    assert _level_names([{"label": "x"}, {"label": "y"}]) == ({}, "")


def test_dynamics_coinciding_lines_are_said_and_drawn_dotted():
    from embvar.report import figures as fg
    from embvar.report.sections.analysis import _coinciding

    a = fg.Series("init only", [0, 1, 2], [1.0, 0.9, 0.86])
    b = fg.Series("every source", [0, 1, 2], [1.0, 0.901, 0.861])
    c = fg.Series("order only", [0, 1, 2], [0.0, 0.1, 0.2])
    assert [(x.label, y.label) for x, y in _coinciding([a, c, b])] == [
        ("init only", "every source")
    ]
    report = _with(["dynamics"])
    series = report["dynamics"]["series"]
    init = next(s for s in series if s["kind"] == "init")
    every = next(s for s in series if s["kind"] == "all")
    every["mean"] = list(init["mean"])
    caption = _caption(report, "dynamics")
    assert (
        "The lines 'init only' and 'every source' lie on top of each other in the "
        "Procrustes distance panel" in caption
    )
    every["mean"] = [m + 0.2 for m in init["mean"]]
    assert "lie on top" not in _caption(report, "dynamics")


def test_seeds_paragraph_mentions_perturb_only_when_used():
    report = minimal_report()
    page = _text(render_html(report))
    assert "init seeds the initial values" in page
    assert "and split the train/test split." in page
    assert "perturb" not in page
    report["attribution"] = {"perturbation": [{"metric": "procrustes"}]}
    page = _text(render_html(report))
    assert "and perturb moves one initial weight by one unit in the last place" in page


def test_summary_cards_use_reseeded_pairs_where_the_group_has_them():
    report = full_report()
    summary = _section(report, "summary")
    before = {c["path"]: c["value"] for c in summary.data["cards"]}
    gi = next(
        i
        for i, g in enumerate(report["groups"])
        if any(p.startswith(f"groups[{i}].geometry") for p in before)
    )
    g = report["groups"][gi]
    knn = next(k for k in g["geometry"] if k.startswith("knn_overlap"))
    g["reseeded"] = {
        "n_pairs": 3,
        "geometry": {knn: {**g["geometry"][knn], "mean": 0.24}},
    }
    cards = {c["path"]: c for c in _section(report, "summary").data["cards"]}
    card = cards[f"groups[{gi}].reseeded.geometry.{knn}.mean"]
    assert card["value"] == "24%" and "new seeds" in card["text"]
    # Without reseeded pairs the card reads every pair, as before.
    g["reseeded"] = {"n_pairs": 0}
    again = {c["path"]: c["value"] for c in _section(report, "summary").data["cards"]}
    assert again == before
