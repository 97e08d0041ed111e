"""The determinism audit: fresh processes, bitwise verdicts, the planted step."""

import json
import sys

import audit_plants as plants
import pytest

from embvar.config import ModelSpec, parse_study, plan_runs
from embvar.determinism import audit as det
from embvar.determinism.audit import Cell, default_cells, determinism_audit
from embvar.determinism.recorder import Recorder, load_record
from embvar.determinism.records import compare_records
from embvar.determinism.target import function_target, spec_target, train_spec
from embvar.determinism.verdict import (
    add_time_ratios,
    audit_verdict,
    factor_costs,
    reproduction_recipe,
)
from embvar.errors import ConfigError

SMALL = {
    "name": "tiny",
    "root_seed": 3,
    "data": {"fraction": 0.05},
    "model": {"dim": 8},
    "training": {"epochs": 2, "learning_rate": 0.01, "batch_size": 512},
    "design": [{"factors": {"init": [0, 1]}}],
}


def test_cell_ids_labels_and_environment():
    cell = Cell(op_determinism=True, threads=1, onednn=False)
    assert cell.id == "det-on_threads-1_onednn-off_cpu"
    assert cell.label == "op determinism on, 1 thread, oneDNN off, CPU"
    assert cell.env() == {"TF_ENABLE_ONEDNN_OPTS": "0"}
    assert cell.settings() == {"op_determinism": True, "threads": 1, "device": "cpu"}
    gpu = Cell(op_determinism=False, device="gpu")
    assert gpu.id == "det-off_gpu" and gpu.env() == {}


def test_default_cells_baseline_first_and_full_matrix():
    cells = default_cells(onednn_default=False)
    assert len(cells) == len({c.id for c in cells}) == 8
    assert cells[0] == Cell(op_determinism=False, threads=None, onednn=False)
    assert {c.device for c in cells} == {"cpu"}


def test_cells_by_id_reads_ids_and_rejects_unknown():
    cells = det.cells_by_id(["det-on_threads-1_onednn-off_cpu", Cell(False)])
    assert cells == [Cell(True, 1, False), Cell(False)]
    assert det.cells_by_id(["det-off_gpu"]) == [Cell(False, device="gpu")]
    with pytest.raises(ConfigError, match="cell must be one of det-off_threads-all"):
        det.cells_by_id(["det-maybe"])


def _result(cell, seconds, reproducible=True, same=True, first=None):
    return {
        **cell.to_json(),
        "seconds": seconds,
        "errors": [],
        "reproducible": reproducible,
        "same_as_baseline": same,
        "first_difference": first,
        "vs_baseline": None,
    }


def test_factor_costs_known_ratios():
    # Op determinism doubles the time; one thread triples it; oneDNN: no cost.
    results = []
    for c in default_cells(onednn_default=False):
        t = 1.0 * (2 if c.op_determinism else 1) * (3 if c.threads == 1 else 1)
        results.append(_result(c, [t, t]))
    add_time_ratios(results, default_cells(onednn_default=False)[0].id)
    costs = factor_costs(results)
    assert costs["op_determinism_on"] == {"ratio": pytest.approx(2.0), "pairs": 4}
    assert costs["one_thread"] == {"ratio": pytest.approx(3.0), "pairs": 4}
    assert costs["onednn_on"]["ratio"] == pytest.approx(1.0)
    ratios = {r["id"]: r["time_ratio"] for r in results}
    assert ratios["det-on_threads-1_onednn-on_cpu"] == pytest.approx(6.0)


def test_verdict_recommends_cheapest_reproducible_with_op_determinism():
    base = Cell(False, None, False)
    cells = [base, Cell(True, None, False), Cell(True, 1, False)]
    first = {
        "first_epoch": 2,
        "variables": [
            {
                "path": "item_embedding/embeddings",
                "kind": "embedding",
                "max_abs": 1e-7,
                "max_ulp": 3,
            }
        ],
    }
    results = [
        _result(cells[0], [1.0], reproducible=False, first=first),
        _result(cells[1], [1.2]),
        _result(cells[2], [2.4]),
    ]
    results[0]["localized"] = {"first_step": 5}
    add_time_ratios(results, base.id)
    verdict = audit_verdict(results, base.id, {"note": "No GPU here."}, None)
    assert verdict["recommended"] == "det-on_threads-all_onednn-off_cpu"
    assert verdict["non_reproducible_cells"] == ["det-off_threads-all_onednn-off_cpu"]
    assert (
        "With op determinism off, all threads, oneDNN off, CPU, replicates differ "
        "from epoch 2, step 5 (largest difference 1e-07, 3 ULP, in "
        "item_embedding/embeddings)."
    ) in verdict["sentences"]
    assert verdict["sentences"][-1] == "No GPU here."


def test_verdict_prefers_op_determinism_with_fewest_other_changes():
    base = Cell(False, None, False)
    cells = [base, Cell(True, None, False), Cell(True, 1, False)]
    results = [_result(c, [t]) for c, t in zip(cells, [1.0, 1.5, 1.1], strict=True)]
    add_time_ratios(results, base.id)
    costs = {
        "op_determinism_on": {"ratio": 1.5, "pairs": 1},
        "one_thread": {"ratio": None, "pairs": 0},
    }
    verdict = audit_verdict(results, base.id, {}, None, costs)
    assert verdict["recommended"] == "det-on_threads-all_onednn-off_cpu"
    assert verdict["sentences"][0] == (
        "All 3 settings gave bitwise-identical runs in separate processes here."
    )
    assert (
        "Training time with a setting over time without, measured in this "
        "audit: op determinism 1.50x."
    ) in verdict["sentences"]


def test_recipe_lists_the_settings_of_the_cell():
    recipe = reproduction_recipe(Cell(True, 1, False).to_json(), builtin=False)
    code = recipe["code"]
    assert 'os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"' in code
    assert "tf.config.threading.set_intra_op_parallelism_threads(1)" in code
    assert "tf.config.experimental.enable_op_determinism()" in code
    assert code.index("TF_ENABLE_ONEDNN_OPTS") < code.index("import tensorflow")
    assert "keras.utils.set_random_seed(seed)" in code
    plain = reproduction_recipe(Cell(False).to_json(), builtin=False)["code"]
    assert "enable_op_determinism" not in plain and "threading" not in plain


def test_determinism_audit_unknown_run_raises():
    with pytest.raises(ConfigError, match="run must be the id .* got run='zzz'"):
        determinism_audit(parse_study(SMALL), "zzz")


def test_determinism_audit_one_replicate_raises():
    with pytest.raises(ConfigError, match="replicates must be an integer in"):
        determinism_audit(plants.train_clean, replicates=1)


def test_function_target_nested_function_raises():
    def nested(recorder, seed):
        pass

    with pytest.raises(ConfigError, match="defined at the top level of a module"):
        function_target(nested)


def test_function_target_names_module_function():
    target = function_target(plants.train_clean)
    assert target.function == "audit_plants:train_clean"
    assert (target.seed, target.other_seed) == (0, 1)


@pytest.mark.parametrize(
    "reference, message",
    [
        ("no_such_module_xyz:train", "cannot import 'no_such_module_xyz'"),
        ("missing/train.py:train", "training script 'missing/train.py'"),
    ],
)
def test_function_target_missing_module_or_script_raises_at_once(reference, message):
    # Found before any process starts (an audit of nothing used to train
    # every cell, each run failing, and exit 0).
    with pytest.raises(ConfigError, match=message):
        function_target(reference)


def test_determinism_audit_unloadable_function_stops_after_one_process(tmp_path):
    script = tmp_path / "broken.py"
    script.write_text("def train(:\n")
    started = []
    with pytest.raises(ConfigError, match="cannot load the training function: Synt"):
        determinism_audit(
            f"{script}:train",
            directory=tmp_path / "out" / "audit",
            pitfalls=False,
            progress=started.append,
        )
    assert len(started) == 1
    assert not (tmp_path / "out").exists()


def test_cli_determinism_bad_run_exits_2(monkeypatch, capsys, tmp_path):
    from embvar import cli

    path = tmp_path / "tiny.toml"
    path.write_text('name = "tiny"\n[data]\nfraction = 0.05\n')
    monkeypatch.setattr(
        sys, "argv", ["embvar", "determinism", str(path), "--run", "zz"]
    )
    with pytest.raises(SystemExit) as exc:
        cli.main()
    assert exc.value.code == 2
    assert "embvar: error: run must be the id" in capsys.readouterr().err


def test_determinism_summary_and_read(tmp_path):
    assert det.read_determinism(tmp_path) is None
    doc = {
        "target": {"label": "x", "run_id": "r"},
        "created": "now",
        "verdict": {
            "sentences": ["s"],
            "reproducible_cells": ["c"],
            "recommended": "c",
        },
        "gpu": {"present": False},
        "cells": [{"id": "c", "label": "C", "reproducible": True}],
        "pitfalls": {"found": []},
        "recipe": {"code": "import os"},
    }
    (tmp_path / "determinism.json").write_text(json.dumps(doc))
    summary = det.determinism_summary(det.read_determinism(tmp_path))
    assert summary["recommended"] == "c" and summary["recipe"] == "import os"
    assert summary["cells"][0]["reproducible"] is True


@pytest.mark.skipif(
    "fit" not in ModelSpec.model_fields, reason="study builders not in this checkout"
)
def test_train_spec_records_a_study_builder_model(tmp_path):
    raw = {**SMALL, "model": {"kind": "audit_plants:build_custom", "dim": 4}}
    spec = plan_runs(parse_study(raw))[0]
    records = []
    for name in ("a", "b"):
        recorder = Recorder(tmp_path / name)
        train_spec(recorder, None, spec.model_dump_json())
        recorder.close(1.0)
        records.append(load_record(tmp_path / name))
    a = records[0]
    assert sorted(a.epochs) == [0, 1, 2]
    # The builder's two tables, no bias tables: the builder's model, not the
    # built-in factorization, was recorded, with its optimizer state.
    embeddings = {p for p, v in a.variables.items() if v["kind"] == "embedding"}
    assert embeddings == {"user_embedding/embeddings", "item_embedding/embeddings"}
    assert any(v["kind"] == "optimizer" for v in a.variables.values())
    assert compare_records(*records)["identical"] is True


@pytest.mark.slow
def test_determinism_audit_same_spec_bitwise_identical_in_two_processes(tmp_path):
    spec = plan_runs(parse_study(SMALL))[0]
    cell = Cell(op_determinism=True)
    audit = determinism_audit(spec, cells=[cell], pitfalls=False, directory=tmp_path)
    result = audit.cell(cell.id)
    assert result["reproducible"] is True
    assert result["replicates"][0]["identical"] is True
    assert result["replicates"][0]["epochs"] == 3  # epoch 0 and two epochs
    assert audit.verdict["reproducible_cells"] == [cell.id]
    assert audit.document["target"]["run_id"] == spec_target(spec).run_id
    assert audit.document["gpu"]["present"] is False  # this machine has none
    assert audit.recipe["cell"] == cell.id
    written = json.loads((tmp_path / "determinism.json").read_text())
    assert written["verdict"] == audit.verdict
    # The audit draws its own page beside the JSON (no report.json here).
    assert audit.html_path == tmp_path / "report.html"
    page = audit.html_path.read_text()
    assert "determinism.json" in page and cell.label in page
    # Both processes ran with op determinism on, and said so.
    manifest = audit.document["manifest"]
    assert manifest["tensorflow"]["op_determinism"] is True


@pytest.mark.slow
def test_determinism_audit_planted_order_found_at_its_epoch_and_step():
    cell = Cell(op_determinism=True)
    audit = determinism_audit(plants.train_planted_order, cells=[cell], pitfalls=False)
    result = audit.cell(cell.id)
    assert result["reproducible"] is False
    assert result["first_difference"]["first_epoch"] == plants.PLANTED_EPOCH
    located = result["localized"]
    assert located["epoch"] == plants.PLANTED_EPOCH
    assert located["before"]["identical"] is True
    assert located["first_step"] == plants.PLANTED_STEP
    assert "embedding" in located["kinds"]
    assert all(v["max_abs"] > 0 for v in located["variables"])
    assert audit.verdict["recommended"] is None
    assert audit.document["processes"] == 4
