"""Skip-gram replica groups: the same runs as independent Keras fits, to rounding."""

from __future__ import annotations

import numpy as np
import pytest

from embvar.config import parse_study, plan_runs
from embvar.data.prepared import prepare_data
from embvar.errors import ConfigError
from embvar.execution.task import group_task, run_task, task_results
from embvar.training.keras_run import train_keras_run
from embvar.training.replicas import group_runs, train_replicas

# The bound: replica r's tables within 1e-5 of its independent run.
RTOL = 1e-5
EPOCHS = 3


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory):
    """40 sentences of 20 words over a 30-word vocabulary."""
    rng = np.random.default_rng(1)
    words = [f"w{i}" for i in range(30)]
    path = tmp_path_factory.mktemp("text") / "corpus.txt"
    path.write_text("\n".join(" ".join(rng.choice(words, 20)) for _ in range(40)))
    return str(path)


def _specs(source, optimizer="adam", designs=None, training=None):
    raw = {
        "name": "skipgram-replicas",
        "root_seed": 5,
        "data": {"source": source, "kind": "text", "min_count": 1},
        "model": {
            "kind": "skipgram",
            "dim": 4,
            "negatives": 2,
            "window": 2,
            # Subsampling makes the replicas' epochs differ in length.
            "subsample": 0.05,
        },
        "training": {
            "optimizer": optimizer,
            "learning_rate": 0.05,
            "batch_size": 64,
            "epochs": EPOCHS,
            **(training or {}),
        },
        "design": designs
        or [
            {"name": "seeds", "factors": {"init": [0], "order": [0], "noise": [0]}},
            {
                "name": "mixed",
                "factors": {
                    "learning_rate": [0.01],
                    "weight_decay": [0.01],
                    "init": [1],
                    "order": [1],
                    "noise": [1],
                    # The perturbation control moves one initial word weight.
                    "perturb": [3],
                },
            },
        ],
    }
    specs = plan_runs(parse_study(raw))
    return specs, prepare_data(specs[0].data, specs[0].seeds["split"])


def _relative(a, b):
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def _assert_same_run(replica, independent):
    assert replica.run_id == independent.run_id
    assert (replica.status, replica.diverged) == (
        independent.status,
        independent.diverged,
    )
    assert sorted(replica.snapshots) == sorted(independent.snapshots)
    for name, table in independent.snapshots[0].items():
        # The same initial tables, bit for bit.
        np.testing.assert_array_equal(replica.snapshots[0][name], table)
    last = max(independent.snapshots)
    for epoch in sorted({1, last}):
        for name, table in independent.snapshots[epoch].items():
            got = replica.snapshots[epoch][name]
            assert got.dtype == np.float32 and got.shape == table.shape
            assert _relative(got, table) <= RTOL, (epoch, name, _relative(got, table))
    assert [h["epoch"] for h in replica.history] == [
        h["epoch"] for h in independent.history
    ]
    np.testing.assert_allclose(
        [h["loss"] for h in replica.history[1:]],
        [h["loss"] for h in independent.history[1:]],
        rtol=RTOL,
    )


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw", "rmsprop", "adagrad"])
def test_skipgram_replicas_every_optimizer_match_independent_runs(
    corpus_file, optimizer
):
    specs, data = _specs(corpus_file, optimizer)
    assert [s.training.learning_rate for s in specs] == [0.05, 0.01]
    replicas = train_replicas(specs, data)
    for spec, replica in zip(specs, replicas, strict=True):
        independent = train_keras_run(spec, data)
        _assert_same_run(replica, independent)
        # Training moved both tables (the agreement above is not vacuous; SGD
        # at these rates moves the word table by about 1e-4 of its norm).
        for name in ("word_embedding", "context_embedding"):
            moved = _relative(
                replica.snapshots[EPOCHS][name], replica.snapshots[0][name]
            )
            assert moved > 1e-6, (name, moved)


def test_skipgram_replica_bitwise_the_same_alone_in_a_group_and_on_one_thread(
    corpus_file,
):
    import numba

    specs, data = _specs(corpus_file, "adamw")
    together = train_replicas(specs, data)
    alone = train_replicas(specs[1:], data)
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one_thread = train_replicas(specs, data)
    finally:
        numba.set_num_threads(threads)
    pairs = [(together[1], alone[0])] + list(zip(together, one_thread, strict=True))
    for a, b in pairs:
        for epoch, tables in a.snapshots.items():
            for name, table in tables.items():
                np.testing.assert_array_equal(b.snapshots[epoch][name], table)
        assert [h["loss"] for h in a.history] == pytest.approx(
            [h["loss"] for h in b.history], rel=0, abs=0, nan_ok=True
        )


def test_skipgram_diverging_replica_stops_where_its_run_stops(corpus_file):
    # At SGD's largest learning rate the word and context rows of negative
    # pairs push each other apart, and grow by about half at every step.
    specs, data = _specs(
        corpus_file,
        "sgd",
        designs=[{"name": "lr", "factors": {"learning_rate": [0.05, 100.0]}}],
        training={"epochs": 10},
    )
    seen = []
    replicas = train_replicas(specs, data, on_result=lambda r: seen.append(r.run_id))
    independent = [train_keras_run(spec, data) for spec in specs]
    assert [r.status for r in independent] == ["done", "diverged"]
    assert seen == [specs[1].run_id, specs[0].run_id]
    _assert_same_run(replicas[0], independent[0])
    bad, expected = replicas[1], independent[1]
    assert (bad.status, bad.diverged) == ("diverged", expected.diverged)
    assert sorted(bad.snapshots) == sorted(expected.snapshots)
    assert [h["epoch"] for h in bad.history] == [h["epoch"] for h in expected.history]


def test_skipgram_runs_grouped_and_trained_through_a_task(corpus_file):
    specs, data = _specs(corpus_file, "adam")
    groups = group_runs(specs)
    assert [len(g) for g in groups] == [2]
    task_id, payload = group_task(groups[0])
    results = dict(task_results(task_id, payload, run_task(payload)))
    for spec in specs:
        _assert_same_run(results[spec.run_id], train_keras_run(spec, data))


def test_skipgram_replicas_refuse_the_graph_engine(corpus_file):
    specs, data = _specs(corpus_file, "adam")
    with pytest.raises(ConfigError, match="kernel only; got engine='graph'"):
        train_replicas(specs, data, engine="graph")
    with pytest.raises(ConfigError, match="kernel only; got engine='auto', jit"):
        train_replicas(specs, data, jit_compile=True)
