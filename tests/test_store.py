import json
import sqlite3

import numpy as np
import pytest

from embvar.config import parse_study, plan_runs
from embvar.errors import DataError, StoreError, StoreVersionError
from embvar.store import Store, load_array, save_array
from embvar.training.fit import RunResult


def _spec():
    return plan_runs(parse_study({"name": "s"}))[0]


def _result(run_id, value=1.0):
    tables = {"item_embedding": np.full((4, 2), value, np.float32)}
    return RunResult(
        run_id=run_id,
        snapshots={0: tables, 1: tables},
        history=[
            {
                "epoch": 0,
                "loss": float("nan"),
                "train_rmse": 1.0,
                "test_rmse": 1.1,
                "seconds": 0.0,
            },
            {
                "epoch": 1,
                "loss": 0.5,
                "train_rmse": 0.9,
                "test_rmse": 1.0,
                "seconds": 0.1,
            },
        ],
    )


def test_store_save_and_load_roundtrip(tmp_path):
    spec = _spec()
    with Store(tmp_path) as store:
        store.register([spec])
        assert store.claim(spec.run_id, "me")
        store.save_run(_result(spec.run_id, 2.5))
        assert store.finished_ids() == {spec.run_id}
        tables = store.load_snapshot(spec.run_id)
        assert np.array_equal(
            tables["item_embedding"], np.full((4, 2), 2.5, np.float32)
        )
        assert store.history(spec.run_id)[1]["test_rmse"] == 1.0
        assert store.epochs(spec.run_id) == [0, 1]


def test_store_index_uses_wal(tmp_path):
    Store(tmp_path).close()
    db = sqlite3.connect(tmp_path / "index.sqlite")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_store_claim_held_by_other_owner_refused(tmp_path):
    spec = _spec()
    with Store(tmp_path) as store:
        store.register([spec])
        assert store.claim(spec.run_id, "a")
        assert not store.claim(spec.run_id, "b")
        store.release(spec.run_id)
        assert store.claim(spec.run_id, "b")


def test_store_expired_claim_taken_over(tmp_path):
    spec = _spec()
    with Store(tmp_path) as store:
        store.register([spec])
        assert store.claim(spec.run_id, "dead", lease_s=-1)
        assert store.claim(spec.run_id, "alive")


def test_store_changed_file_fails_checksum(tmp_path):
    spec = _spec()
    with Store(tmp_path) as store:
        store.register([spec])
        store.claim(spec.run_id, "me")
        store.save_run(_result(spec.run_id))
        path = next((tmp_path / "snapshots" / spec.run_id).glob("0001-*.npy"))
        np.save(path, np.zeros((4, 2), np.float32))
        with pytest.raises(StoreError, match="does not match the checksum"):
            store.load_snapshot(spec.run_id)


def test_store_register_twice_keeps_one_row(tmp_path):
    spec = _spec()
    with Store(tmp_path) as store:
        store.register([spec])
        store.register([spec])
        assert len(store.runs()) == 1


def test_store_incompatible_schema_refused(tmp_path):
    Store(tmp_path).close()
    db = sqlite3.connect(tmp_path / "index.sqlite")
    db.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    db.commit()
    db.close()
    with pytest.raises(StoreVersionError, match="schema version 99"):
        Store(tmp_path)


def test_store_missing_directory_refused_when_not_creating(tmp_path):
    with pytest.raises(StoreError, match="not an embvar study directory"):
        Store(tmp_path / "nothing", create=False)


def test_load_array_refuses_pickles(tmp_path):
    path = tmp_path / "evil.npy"
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="not a plain .npy array"):
        load_array(path)


def test_save_array_atomic_leaves_no_temporary(tmp_path):
    digest = save_array(tmp_path / "a.npy", np.arange(3, dtype=np.float32))
    assert [p.name for p in tmp_path.iterdir()] == ["a.npy"]
    assert len(digest) == 64
    assert (
        json.dumps(load_array(tmp_path / "a.npy", digest).tolist()) == "[0.0, 1.0, 2.0]"
    )
