"""The recorder hook and the comparison of recorded runs, in this process."""

import json

import audit_plants as plants
import numpy as np
import pytest

from embvar.determinism.recorder import Recorder, collect_state, load_record
from embvar.determinism.records import compare_records, compare_steps
from embvar.errors import StoreError, TrainingError


def _record(folder, train, seed, **kwargs):
    recorder = Recorder(folder, **kwargs)
    train(recorder, seed)
    recorder.close(1.0)
    return load_record(folder)


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """Two runs with seed 0 (every step of epoch 2 recorded; the second saves
    only the step whose digests differ from a doctored reference) and one
    with seed 1."""
    root = tmp_path_factory.mktemp("clean")
    a = _record(root / "a", plants.train_clean, 0, step_epoch=2)
    reference = {k: dict(v) for k, v in a.steps.items()}
    reference[5]["user_embedding/embeddings"] = "doctored"
    b = _record(
        root / "b",
        plants.train_clean,
        0,
        step_epoch=2,
        save_steps="first_difference",
        reference=reference,
    )
    c = _record(root / "c", plants.train_clean, 1)
    return a, b, c


def test_recorder_keras_callback_records_every_epoch_and_kind(clean):
    record = clean[0]
    assert sorted(record.epochs) == [0, 1, 2, 3]
    kinds = {v["kind"] for v in record.variables.values()}
    assert kinds == {"embedding", "optimizer"}
    assert record.variables["item_embedding/embeddings"]["shape"] == [40, 4]
    # Keras builds the optimizer at the first step: no slots at epoch 0,
    # then Adam's step counter at 8 per epoch.
    assert "adam/iteration" not in record.arrays("epoch", 0)
    assert int(record.arrays("epoch", 2)["adam/iteration"]) == 16
    assert record.data["ids"]["item_embedding"]["n"] == 40


def test_recorder_steps_of_one_epoch_end_at_the_epoch_state(clean):
    record = clean[0]
    assert sorted(record.steps) == list(range(8))
    assert record.data["saved_steps"] == list(range(8))
    # The state after the epoch's last step is the state at the epoch's end.
    assert record.steps[7] == record.epochs[2]
    assert record.steps[0] != record.epochs[1]
    assert int(record.arrays("step", 3)["adam/iteration"]) == 8 + 4


def test_recorder_first_difference_saves_only_that_step(clean):
    assert clean[1].data["saved_steps"] == [5]
    assert clean[1].arrays("step", 4) is None


def test_recorder_step_budget_limits_saved_steps(tmp_path):
    # One step snapshot of this model is 4 tables of (30 + 40) x 4 float32 and
    # two scalars: 2 * (480 + 640) * 2 + 12 bytes = 4492 bytes.
    record = _record(
        tmp_path / "a", plants.train_clean, 0, step_epoch=1, step_budget=3 * 4492
    )
    assert record.data["saved_steps"] == [0, 1, 2]
    assert len(record.steps) == 8


def test_recorder_entity_ids_order_and_members(tmp_path):
    rec = Recorder(tmp_path)
    rec.entity_ids("t", ["b", "a", "c"])
    rec.entity_ids("u", ["a", "b", "c"])
    assert rec.ids["t"]["members"] == rec.ids["u"]["members"]
    assert rec.ids["t"]["order"] != rec.ids["u"]["order"]


def test_recorder_end_epoch_before_start_raises(tmp_path):
    rec = Recorder(tmp_path)
    with pytest.raises(
        TrainingError, match=r"recorder.end_epoch\(\) was called before"
    ):
        rec.end_epoch({"w": np.zeros(2)})


def test_recorder_record_snapshots_for_training_outside_keras(tmp_path):
    rec = Recorder(tmp_path)
    rec.record_snapshots(
        {
            0: {"word_embedding": np.zeros((3, 2), np.float32)},
            1: {"word_embedding": np.ones((3, 2), np.float32)},
        }
    )
    rec.close(0.5)
    record = load_record(tmp_path)
    assert sorted(record.epochs) == [0, 1]
    assert record.variables["word_embedding"]["kind"] == "embedding"


def test_collect_state_rejects_other_objects():
    with pytest.raises(
        TrainingError, match="must be a keras.Model or a dict of arrays"
    ):
        collect_state(42)


def test_load_record_missing_raises(tmp_path):
    with pytest.raises(StoreError, match="no readable run record"):
        load_record(tmp_path)


def test_compare_records_same_seed_identical_other_seed_from_epoch_zero(clean):
    a, b, c = clean
    same = compare_records(a, b)
    assert same["identical"] is True and same["epochs"] == 4
    other = compare_records(a, c)
    assert other["identical"] is False
    assert other["first_epoch"] == 0
    assert other["differing_epochs"] == [0, 1, 2, 3]
    paths = {v["path"] for v in other["variables"]}
    assert paths == {"user_embedding/embeddings", "item_embedding/embeddings"}
    row = other["variables"][0]
    assert row["n_differ"] == row["size"] and row["max_abs"] > 0


def test_compare_steps_finds_the_planted_step_in_process(tmp_path):
    # The same process, two runs: the planted batch comes from an unseeded
    # generator, so the two runs part exactly at epoch 2, step 3.
    a = _record(
        tmp_path / "a", plants.train_planted_order, 0, step_epoch=plants.PLANTED_EPOCH
    )
    b = _record(
        tmp_path / "b", plants.train_planted_order, 0, step_epoch=plants.PLANTED_EPOCH
    )
    assert compare_records(a, b)["first_epoch"] == plants.PLANTED_EPOCH
    steps = compare_steps(a, b)
    assert steps["before"]["identical"] is True
    assert steps["first_step"] == plants.PLANTED_STEP
    assert set(steps["kinds"]) == {"embedding", "optimizer"}
    emb = next(
        v for v in steps["variables"] if v["path"] == "item_embedding/embeddings"
    )
    assert 0 < emb["max_abs"] < 1 and emb["max_ulp"] > 0


def test_compare_records_failed_run_is_not_a_verdict(clean, tmp_path):
    a = clean[0]
    rec = Recorder(tmp_path / "f")
    rec.close(0.0, error="ValueError: boom")
    out = compare_records(a, load_record(tmp_path / "f"))
    assert out == {"identical": None, "error": "ValueError: boom"}
    json.dumps(out)
