"""A user's own Keras training, recorded with EmbeddingRecorder."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from embvar.comparison import compare
from embvar.errors import ConfigError
from embvar.keras import EmbeddingRecorder
from embvar.store import Store

ITEMS = [f"movie-{i:02d}" for i in range(60)]
SETTINGS = {"learning_rate": 0.02, "dim": 8}


def _data():
    rng = np.random.default_rng(0)
    users = rng.integers(0, 40, 3000).astype("int32")
    items = rng.integers(0, 60, 3000).astype("int32")
    ratings = (rng.normal(size=3000) + (items % 5)).astype("float32")
    return users, items, ratings


def _user_model():
    """Written the way a user would: their own layer names and scoring."""
    u_in = keras.Input((), dtype="int32")
    i_in = keras.Input((), dtype="int32")
    u = keras.layers.Embedding(40, 8, name="user_vectors")(u_in)
    v = keras.layers.Embedding(60, 8, name="item_vectors")(i_in)
    score = keras.layers.Dot(axes=1)([u, v])
    return keras.Model([u_in, i_in], score)


def _train(seed, recorder=None, epochs=3):
    users, items, ratings = _data()
    keras.utils.set_random_seed(seed)
    model = _user_model()
    model.compile(
        optimizer=keras.optimizers.Adam(SETTINGS["learning_rate"]), loss="mse"
    )
    order = np.random.default_rng(seed)
    for _ in range(epochs):  # the user's own loop, one fit per epoch
        perm = order.permutation(len(users))
        model.fit(
            [users[perm], items[perm]],
            ratings[perm],
            batch_size=128,
            epochs=1,
            shuffle=False,
            verbose=0,
            callbacks=[recorder] if recorder is not None else [],
        )
    return model


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """Three runs recorded into a store, each also exported to files."""
    root = tmp_path_factory.mktemp("user")
    store = root / "store"
    models, run_ids = [], []
    for seed in range(3):
        recorder = EmbeddingRecorder(
            store,
            ["item_vectors", "user_vectors"],
            epochs=[0, 3],
            ids={"item_vectors": ITEMS},
            seeds={"init": seed, "order": seed},
            settings=SETTINGS,
        )
        model = _train(seed, recorder)
        models.append(model)
        run_ids.append(recorder.run_id)
        table = model.get_layer("item_vectors").embeddings.numpy()
        np.savez(root / f"run{seed}.npz", embeddings=table, ids=np.array(ITEMS))
        model.save(root / f"run{seed}.keras")
        (root / f"run{seed}.ids.txt").write_text("".join(i + "\n" for i in ITEMS))
        tf.train.Checkpoint(model=model).write(str(root / f"ckpt{seed}" / "ckpt"))
        (root / f"ckpt{seed}" / "ckpt.ids.txt").write_text(
            "".join(i + "\n" for i in ITEMS)
        )
    return root, store, models, run_ids


def _item_group(report):
    return next(g for g in report["groups"] if g["table"] == "item_vectors")


def _metrics(group):
    keys = [*group["parameters"], *group["geometry"]]
    return [[p[k] for k in keys] for p in group["pairs"]]


def test_recorded_store_gives_the_same_metrics_as_compare_on_exported_files(recorded):
    root, store, _, run_ids = recorded
    from_store = compare([store])
    assert from_store.report_path == store / "report.json"  # a recorded store
    group = _item_group(from_store.report)
    assert group["run_ids"] == [f"{r}:item_vectors" for r in run_ids]
    npz = compare([root / f"run{s}.npz" for s in range(3)]).report["groups"][0]
    keras_files = compare(
        [root / f"run{s}.keras" for s in range(3)], layer="item_vectors"
    ).report["groups"][0]
    checkpoints = compare(
        [root / f"ckpt{s}" for s in range(3)], variable="item_vectors"
    ).report["groups"][0]
    expected = _metrics(group)
    for other in (npz, keras_files, checkpoints):
        assert other["n_entities"] == 60
        np.testing.assert_allclose(_metrics(other), expected, rtol=1e-12)


def test_recorder_snapshots_the_chosen_epochs_with_seeds_and_settings(recorded):
    _, store, models, run_ids = recorded
    with Store(store, create=False) as s:
        assert s.get_meta("kind") == "recorded"
        records = {r.run_id: r for r in s.runs()}
        first = records[run_ids[0]]
        assert first.status == "done"
        assert first.spec["seeds"] == {"init": 0, "order": 0}
        assert first.spec["factors"] == SETTINGS
        assert first.spec["keras"]["optimizer"]["class"] == "Adam"
        assert len({r.group_key for r in records.values()}) == 1
        assert s.epochs(run_ids[0]) == [0, 3]
        assert [h["epoch"] for h in s.history(run_ids[0])] == [0, 1, 2, 3]
        final = s.load_snapshot(run_ids[0])
        np.testing.assert_array_equal(
            final["item_vectors"],
            models[0].get_layer("item_vectors").embeddings.numpy(),
        )
        initial = s.load_snapshot(run_ids[0], 0)["item_vectors"]
        assert not np.allclose(initial, final["item_vectors"])


def test_recorder_does_not_change_the_training(tmp_path):
    plain = _train(7, epochs=2).get_layer("item_vectors").embeddings.numpy()
    recorder = EmbeddingRecorder(tmp_path, "item_vectors", seeds={"init": 7})
    watched = _train(7, recorder, epochs=2).get_layer("item_vectors").embeddings.numpy()
    np.testing.assert_array_equal(plain, watched)


def test_recording_the_same_run_again_replaces_it(tmp_path):
    ids = []
    for _ in range(2):
        recorder = EmbeddingRecorder(
            tmp_path, "item_vectors", seeds={"init": 1}, epochs=[1]
        )
        _train(1, recorder, epochs=1)
        ids.append(recorder.run_id)
    assert ids[0] == ids[1]
    with Store(tmp_path, create=False) as s:
        assert [r.run_id for r in s.runs()] == [ids[0]]


def test_recorder_errors_name_the_problem(tmp_path):
    with pytest.raises(ConfigError, match="layers must name layers of the model"):
        _train(0, EmbeddingRecorder(tmp_path, "items", seeds=0), epochs=1)
    with pytest.raises(ConfigError, match="must give one id per row .60.; got 2"):
        _train(
            0,
            EmbeddingRecorder(tmp_path, "item_vectors", ids=["a", "b"], seeds=0),
            epochs=1,
        )
    with pytest.raises(ConfigError, match="seeds must be an int or a mapping"):
        EmbeddingRecorder(tmp_path, "item_vectors", seeds="zero")


def test_recorded_store_exports_for_the_projector(recorded, tmp_path):
    """Tables with the ids the recorder stored, or row numbers; no titles."""
    from embvar.report.projector import export_projector

    _, store, _, run_ids = recorded
    done = export_projector(store, tmp_path / "items", table="item_vectors")
    assert sorted(done.runs) == sorted(run_ids) and done.n_entities == 60
    lines = (tmp_path / "items" / "metadata.tsv").read_text().splitlines()
    assert lines[0] == "id\tknn_overlap@10"
    assert [line.split("\t")[0] for line in lines[1:]] == ITEMS
    export_projector(store, tmp_path / "users", table="user_vectors")
    lines = (tmp_path / "users" / "metadata.tsv").read_text().splitlines()
    assert [line.split("\t")[0] for line in lines[1:]] == [str(i) for i in range(40)]
