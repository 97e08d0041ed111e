"""Replica groups (fused kernel, XLA graph): the independent fits, to rounding."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from embvar.config import parse_study, plan_runs
from embvar.data.prepared import prepare_data
from embvar.errors import ConfigError, ShapeMismatchError, TrainingError
from embvar.execution.task import (
    group_task,
    make_tasks,
    run_task,
    task_results,
    task_run_ids,
)
from embvar.models.factorization import build_factorization
from embvar.store import Store
from embvar.study import run_study
from embvar.training.fit import perturb_weight, snapshot, train_run
from embvar.training.replicas import (
    GroupResult,
    group_runs,
    initial_tables,
    replica_bytes,
    train_replicas,
)

# The bound: replica r's tables within 1e-5 of its independent run.
RTOL = 1e-5
EPOCHS = 3


@pytest.fixture(scope="module")
def ratings_file(tmp_path_factory):
    """A small explicit-rating table: 40 users, 25 items, 600 ratings."""
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("data") / "ratings.tsv"
    pairs = rng.choice(40 * 25, size=600, replace=False)
    users, items = pairs // 25, pairs % 25
    noise = rng.normal(0, 1, 600)
    ratings = np.clip(np.round(3 + (users % 5 - items % 5) / 2 + noise), 1, 5)
    lines = ["user\titem\trating"] + [
        f"u{u}\ti{i}\t{r:.0f}" for u, i, r in zip(users, items, ratings, strict=True)
    ]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _study(
    source,
    *,
    optimizer="adam",
    factors=None,
    training=None,
    model=None,
    designs=None,
    name="replicas",
):
    raw = {
        "name": name,
        "root_seed": 3,
        "data": {"source": source, "test_fraction": 0.2},
        "model": {"dim": 4, **(model or {})},
        "training": {
            "optimizer": optimizer,
            "learning_rate": 0.05,
            "batch_size": 64,
            "epochs": EPOCHS,
            **(training or {}),
        },
        "design": designs
        or [{"name": "seeds", "factors": factors or {"init": [0, 1], "order": [0, 1]}}],
    }
    return parse_study(raw)


def _relative(a, b):
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def _assert_same_run(replica, independent):
    """Every table at epoch 1 and the last, and the history, match to rounding."""
    assert replica.run_id == independent.run_id
    assert replica.status == independent.status
    assert replica.diverged == independent.diverged
    assert sorted(replica.snapshots) == sorted(independent.snapshots)
    last = max(independent.snapshots)
    for epoch in sorted({0, 1, last}):
        for name, table in independent.snapshots[epoch].items():
            got = replica.snapshots[epoch][name]
            assert got.shape == table.shape and got.dtype == np.float32
            assert _relative(got, table) <= RTOL, (epoch, name, _relative(got, table))
    assert len(replica.history) == len(independent.history)
    for mine, theirs in zip(replica.history, independent.history, strict=True):
        assert mine["epoch"] == theirs["epoch"]
        for key in ("loss", "train_rmse", "test_rmse"):
            np.testing.assert_allclose(mine[key], theirs[key], rtol=RTOL)


@pytest.mark.parametrize("initializer", ["uniform", "glorot_uniform", "normal"])
def test_initial_tables_bitwise_equal_to_built_model(ratings_file, initializer):
    study = _study(
        ratings_file,
        model={"initializer": initializer},
        factors={"init": [0, 1], "perturb": [0, 5]},
    )
    specs = plan_runs(study)
    data = prepare_data(specs[0].data, specs[0].seeds["split"])
    inter = data.interactions
    for spec in specs:
        keras.backend.clear_session()
        keras.utils.set_random_seed(spec.seeds["init"])
        model = build_factorization(
            inter.n_users, inter.n_items, spec.model, mu=data.mu
        )
        if spec.perturb:
            perturb_weight(model, spec.perturb)
        expected = snapshot(model)
        got = initial_tables(spec, inter.n_users, inter.n_items)
        assert sorted(got) == sorted(expected)
        for name, table in expected.items():
            assert np.array_equal(got[name], table), (spec.levels, spec.perturb, name)


_INDEPENDENT: dict[str, object] = {}


def _independent(spec):
    """The run trained on its own by ``train_run`` (once per module)."""
    if spec.run_id not in _INDEPENDENT:
        data = prepare_data(spec.data, spec.seeds["split"])
        _INDEPENDENT[spec.run_id] = train_run(spec, data)
    return _INDEPENDENT[spec.run_id]


def _mixed_group(source, optimizer):
    """Two runs of one shape: their own seeds, learning rate, decay and L2."""
    study = _study(
        source,
        optimizer=optimizer,
        designs=[
            {"name": "seeds", "factors": {"init": [0], "order": [0]}},
            {
                "name": "mixed",
                "factors": {
                    "learning_rate": [0.005],
                    "weight_decay": [0.01],
                    "l2": [0.1],
                    "init": [2],
                    "order": [2],
                },
            },
        ],
    )
    return plan_runs(study)


@pytest.mark.parametrize("engine", ["kernel", "graph"])
@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw", "rmsprop", "adagrad"])
def test_train_replicas_every_optimizer_matches_independent_runs(
    ratings_file, optimizer, engine
):
    specs = _mixed_group(ratings_file, optimizer)
    assert [s.training.learning_rate for s in specs] == [0.05, 0.005]
    assert [s.training.weight_decay for s in specs] == [0.0, 0.01]
    assert [s.model.l2 for s in specs] == [0.0, 0.1]
    data = prepare_data(specs[0].data, specs[0].seeds["split"])
    replicas = train_replicas(specs, data, engine=engine)
    for spec, replica in zip(specs, replicas, strict=True):
        _assert_same_run(replica, _independent(spec))


@pytest.mark.slow
def test_train_replicas_fully_compiled_step_matches_independent_runs(ratings_file):
    # Small groups compile only part of the step; force XLA on all of it.
    specs = _mixed_group(ratings_file, "adam")
    data = prepare_data(specs[0].data, specs[0].seeds["split"])
    replicas = train_replicas(specs, data, jit_compile=True)
    for spec, replica in zip(specs, replicas, strict=True):
        _assert_same_run(replica, _independent(spec))


@pytest.mark.parametrize(
    ("optimizer", "decay_period", "jit_compile"),
    [("adam", 1, True), ("adam", 3, None), ("adamw", 5, True), ("rmsprop", 1, None)],
)
def test_train_replicas_touched_rows_match_independent_runs(
    ratings_file, optimizer, decay_period, jit_compile
):
    # Both sides' touched rows updated on their own, Adam's zero-gradient
    # steps deferred: flushes fall inside epochs (8 steps each) and at their ends.
    specs = _mixed_group(ratings_file, optimizer)
    data = prepare_data(specs[0].data, specs[0].seeds["split"])
    # jit_compile=None: a group this small compiles only the batch work.
    replicas = train_replicas(
        specs,
        data,
        jit_compile=jit_compile,
        touched_rows=True,
        decay_period=decay_period,
    )
    for spec, replica in zip(specs, replicas, strict=True):
        _assert_same_run(replica, _independent(spec))


@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
def test_deferred_steps_bitwise_independent_of_when_flushes_fall(
    ratings_file, monkeypatch, optimizer
):
    # A row takes its deferred Adam steps when a batch touches it or at a
    # flush; flushing after every step (as a snapshot or a stopped replica
    # would) must give the same bits. jit_compile=None: the dense update of
    # a group this small is not compiled, the batch work is (a helper found
    # 1-ulp differences while the flush was compiled as the dense update).
    from embvar.training.replica_step import ReplicaModel

    specs = _mixed_group(ratings_file, optimizer)
    data = prepare_data(specs[0].data, specs[0].seeds["split"])
    options = {"touched_rows": True, "decay_period": 3, "jit_compile": None}
    expected = train_replicas(specs, data, **options)
    step = ReplicaModel.step

    def step_then_flush(self, i, count):
        losses = step(self, i, count)
        self.flush()
        return losses

    monkeypatch.setattr(ReplicaModel, "step", step_then_flush)
    got = train_replicas(specs, data, **options)
    for a, b in zip(expected, got, strict=True):
        assert sorted(a.snapshots) == sorted(b.snapshots)
        for epoch, tables in a.snapshots.items():
            for name, table in tables.items():
                np.testing.assert_array_equal(b.snapshots[epoch][name], table)


def test_touched_rows_slots_hold_distinct_rows_in_order():
    # Two replicas, three rows each; positions (replica, row):
    # (0,2) (0,0) (0,2) | (1,1) (1,1) (1,0) -> stacked rows 2 0 2 4 4 3.
    import tensorflow as tf

    from embvar.training.replica_step import TouchedRows, distinct_rows, touched_index

    index = np.array([[2, 0, 2], [1, 1, 0]], np.int32)
    slot, rows = touched_index(index, 3)
    assert rows.tolist() == [0, 2, 3, 4] and distinct_rows(index, 3) == 4
    assert slot.tolist() == [1, 0, 1, 3, 3, 2]
    # Two unused slots point one past the stacked table (6 rows).
    padded = tf.constant(np.r_[rows, 6, 6].astype(np.int32))
    touched = TouchedRows(tf, tf.constant(slot), padded, 2, 3)
    assert touched.nd.numpy().tolist() == [
        [0, 0],
        [0, 2],
        [1, 0],
        [1, 1],
        [2, 0],
        [2, 0],
    ]
    values = tf.constant([[1.0], [2.0], [3.0], [4.0], [5.0], [6.0]])
    assert touched.sums(values).numpy().ravel().tolist() == [2, 4, 6, 9, 0, 0]
    state = tf.reshape(tf.range(6, dtype=tf.float32), (2, 3, 1))
    assert touched.gather(state).numpy().ravel().tolist() == [0, 2, 3, 4, 5, 5]
    assert touched.per_slot(tf.constant([10.0, 20.0])).numpy().ravel().tolist() == [
        10,
        10,
        20,
        20,
        20,
        20,
    ]
    per_position = touched.per_position(touched.sums(values)).numpy().ravel()
    assert per_position.tolist() == [4, 2, 4, 9, 9, 6]


def test_touched_rows_need_a_compiled_step(ratings_file):
    specs = _mixed_group(ratings_file, "adam")
    data = prepare_data(specs[0].data, specs[0].seeds["split"])
    with pytest.raises(ConfigError, match="got jit_compile=False"):
        train_replicas(specs, data, jit_compile=False, touched_rows=True)
    for bad in (0, 65, 2.5, True):
        with pytest.raises(ConfigError, match=f"got decay_period={bad!r}"):
            train_replicas(specs, data, decay_period=bad)
    with pytest.raises(ConfigError, match="touched_rows must be True, False or None"):
        train_replicas(specs, data, touched_rows="yes")
    with pytest.raises(ConfigError, match="got jit_compile='no'"):
        train_replicas(specs, data, jit_compile="no")


def test_engine_checked_and_graph_options_refused_with_the_kernel(ratings_file):
    specs = _mixed_group(ratings_file, "adam")
    data = prepare_data(specs[0].data, specs[0].seeds["split"])
    with pytest.raises(ConfigError, match="engine must be one of .*got engine='xla'"):
        train_replicas(specs, data, engine="xla")
    for option in (
        {"jit_compile": True},
        {"touched_rows": False},
        {"decay_period": 2},
        {"decay_period": 4},  # the graph's default, named
    ):
        ((name, value),) = option.items()
        with pytest.raises(
            ConfigError,
            match=f"{name} applies to engine='graph' only; got {name}={value!r}",
        ):
            train_replicas(specs, data, engine="kernel", **option)


def _bitwise_equal(a, b) -> None:
    assert sorted(a.snapshots) == sorted(b.snapshots)
    for epoch, tables in a.snapshots.items():
        for name, table in tables.items():
            np.testing.assert_array_equal(b.snapshots[epoch][name], table)
    for mine, theirs in zip(a.history, b.history, strict=True):
        for key in ("loss", "train_rmse", "test_rmse"):
            assert mine[key] == theirs[key] or (
                np.isnan(mine[key]) and np.isnan(theirs[key])
            )


@pytest.mark.parametrize("optimizer", ["sgd", "adamw", "rmsprop", "adagrad"])
def test_kernel_replica_bitwise_the_same_alone_in_any_group_and_thread_count(
    ratings_file, optimizer
):
    # Each replica runs on one thread, on its own slice: its tables must not
    # depend on which other runs share its group, nor on how many threads run.
    import numba

    specs = _mixed_group(ratings_file, optimizer)
    data = prepare_data(specs[0].data, specs[0].seeds["split"])
    together = train_replicas(specs, data, engine="kernel")
    alone = train_replicas(specs[1:], data, engine="kernel")
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one_thread = train_replicas(specs, data, engine="kernel")
    finally:
        numba.set_num_threads(threads)
    _bitwise_equal(together[1], alone[0])
    for a, b in zip(together, one_thread, strict=True):
        _bitwise_equal(a, b)


@pytest.mark.parametrize("engine", ["kernel", "graph"])
def test_train_replicas_diverging_replica_stops_alone(ratings_file, engine):
    # One replica's learning rate makes SGD blow up; it must stop where its
    # independent run stops, and leave the other replica as it would be.
    study = _study(
        ratings_file, optimizer="sgd", factors={"learning_rate": [0.05, 100.0]}
    )
    specs = plan_runs(study)
    data = prepare_data(specs[0].data, specs[0].seeds["split"])
    seen = []
    replicas = train_replicas(
        specs, data, engine=engine, on_result=lambda r: seen.append(r.run_id)
    )
    independent = [_independent(spec) for spec in specs]
    assert [r.status for r in independent] == ["done", "diverged"]
    assert seen == [specs[1].run_id, specs[0].run_id]  # the diverged one first
    _assert_same_run(replicas[0], independent[0])
    bad, expected = replicas[1], independent[1]
    assert bad.status == "diverged" and bad.diverged == expected.diverged
    assert sorted(bad.snapshots) == sorted(expected.snapshots)
    assert [h["epoch"] for h in bad.history] == [h["epoch"] for h in expected.history]


def test_group_runs_auto_groups_shared_shapes_in_plan_order(ratings_file):
    study = _study(
        ratings_file,
        designs=[
            {"name": "seeds", "factors": {"init": [0, 1]}},
            {"name": "opt", "factors": {"optimizer": ["sgd", "adam"], "dim": [4, 6]}},
        ],
    )
    specs = plan_runs(study)
    groups = group_runs(specs)
    shapes = [[(s.training.optimizer, s.model.dim) for s in g] for g in groups]
    # The opt design's adam/4 run is the seeds design's init 0 run.
    assert shapes == [[("adam", 4)] * 2, [("sgd", 4)], [("sgd", 6)], [("adam", 6)]]
    assert group_runs(specs, trainer="independent") == [[s] for s in specs]
    tasks = make_tasks(specs)
    assert [task_run_ids(*t) for t in tasks] == [[s.run_id for s in g] for g in groups]
    assert tasks[0][0] == f"2x{groups[0][0].run_id}"
    assert tasks[1] == (groups[1][0].run_id, groups[1][0].model_dump_json())
    forced = make_tasks(specs, trainer="replicas")
    assert all(t[0].startswith("1x") for t in forced[1:])


def test_group_runs_memory_budget_cuts_near_equal_chunks(ratings_file):
    study = _study(ratings_file, designs=[{"name": "s", "replicates": 7}])
    specs = plan_runs(study)
    data = prepare_data(specs[0].data, specs[0].seeds["split"])
    inter = data.interactions
    n = len(data.split.train) + len(data.split.test)
    one = replica_bytes(specs[0], inter.n_users, inter.n_items, n)
    # (users + items) * (dim + bias) float32 params, in 6 tensors (table, m, v,
    # three temporaries), plus 40 bytes per rating.
    assert one == 4 * (inter.n_users + inter.n_items) * 5 * 6 + 40 * n
    groups = group_runs(specs, prepared={data.key: data}, memory_budget=3 * one)
    assert [len(g) for g in groups] == [3, 2, 2]
    assert [s for g in groups for s in g] == specs
    assert len(group_runs(specs, prepared={data.key: data}, memory_budget=1)) == 7


def test_group_runs_auto_keeps_repeats_alone(ratings_file):
    study = _study(
        ratings_file, designs=[{"name": "det", "factors": {"repeat": [0, 1]}}]
    )
    specs = plan_runs(study)
    assert group_runs(specs) == [[specs[0]], [specs[1]]]
    assert group_runs(specs, trainer="replicas") == [specs]


def test_group_runs_forced_replicas_rejects_custom_model(ratings_file):
    study = _study(ratings_file, model={"kind": "mypackage.models:build"})
    with pytest.raises(
        ConfigError, match=r"replicas trainer \(--trainer replicas\) needs runs"
    ):
        group_runs(plan_runs(study), trainer="replicas")
    assert len(group_runs(plan_runs(study))) == 4


def test_run_study_forced_replicas_refused_before_the_directory_exists(
    ratings_file, tmp_path, monkeypatch
):
    # Checked with the other inputs: no directory, no runs left claimed.
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "models"))
    study = _study(
        ratings_file, model={"kind": "embvar_test_builders:build_recommender"}
    )
    with pytest.raises(ConfigError, match="--trainer auto"):
        run_study(study, tmp_path / "forced", trainer="replicas")
    assert not (tmp_path / "forced").exists()


def test_group_runs_unknown_trainer_names_choices(ratings_file):
    with pytest.raises(ConfigError, match="trainer must be one of 'auto', 'replicas'"):
        group_runs(plan_runs(_study(ratings_file)), trainer="fast")


def test_train_replicas_mixed_shapes_rejected(ratings_file):
    study = _study(ratings_file, factors={"dim": [4, 6]})
    specs = plan_runs(study)
    data = prepare_data(specs[0].data, specs[0].seeds["split"])
    with pytest.raises(
        ShapeMismatchError, match="train_replicas needs runs of one built-in model"
    ):
        train_replicas(specs, data)
    with pytest.raises(ShapeMismatchError, match="pretrained must give one entry"):
        train_replicas(specs[:1], data, pretrained=[None, None])


def test_task_results_group_fans_out(ratings_file):
    specs = plan_runs(_study(ratings_file))
    task_id, payload = group_task(specs)
    ids = [s.run_id for s in specs]
    assert task_run_ids(task_id, payload) == ids
    error = RuntimeError("boom")
    assert task_results(task_id, payload, error) == [(i, error) for i in ids]
    partial = task_results(task_id, payload, GroupResult([]))
    assert [type(r) for _, r in partial] == [TrainingError] * len(ids)
    assert task_results("abc", "{}", 5) == [("abc", 5)]
    with pytest.raises(TrainingError, match="Keras callbacks need the independent"):
        run_task(payload, callbacks=[keras.callbacks.Callback()])


def _stored(directory, run_ids):
    with Store(directory, create=False) as store:
        return {
            rid: (
                {e: store.load_snapshot(rid, e) for e in store.epochs(rid)},
                store.history(rid),
            )
            for rid in run_ids
        }


def _two_groups(source):
    return _study(source, factors={"optimizer": ["adam", "sgd"], "init": [0, 1]})


@pytest.mark.slow
def test_run_study_replicas_store_what_independent_runs_store(ratings_file, tmp_path):
    study = _two_groups(ratings_file)
    ids = [s.run_id for s in plan_runs(study)]
    a = run_study(study, tmp_path / "replicas", trainer="replicas", analyze=False)
    b = run_study(study, tmp_path / "independent", trainer="independent", analyze=False)
    assert sorted(a.trained) == sorted(b.trained) == sorted(ids)
    got, expected = (
        _stored(tmp_path / "replicas", ids),
        _stored(tmp_path / "independent", ids),
    )
    for rid in ids:
        assert (
            sorted(got[rid][0]) == sorted(expected[rid][0]) == list(range(EPOCHS + 1))
        )
        for epoch, tables in expected[rid][0].items():
            for name, table in tables.items():
                assert _relative(got[rid][0][epoch][name], table) <= RTOL
        for mine, theirs in zip(got[rid][1], expected[rid][1], strict=True):
            for key in ("train_rmse", "test_rmse"):
                np.testing.assert_allclose(mine[key], theirs[key], rtol=RTOL)
    with pytest.raises(ConfigError, match="trainer must be one of"):
        run_study(study, tmp_path / "bad", trainer="fast")
    assert not (tmp_path / "bad").exists()


class _Interrupting:
    """A local executor that is stopped (Ctrl-C) after ``after`` results."""

    name = "interrupting"

    def __init__(self, after):
        from embvar.execution.local import LocalExecutor

        self.after, self.inner = after, LocalExecutor()

    def run(self, tasks, on_result, on_progress=None):
        calls = []

        def stop_after(event):
            if self.after == 0 and event[0] == "epoch" and event[2] == 2:
                raise KeyboardInterrupt  # killed in the middle of the group
            if on_progress:
                on_progress(event)

        def result(task_id, res):
            on_result(task_id, res)
            calls.append(task_id)
            if len(calls) == self.after:
                raise KeyboardInterrupt

        self.inner.run(tasks, result, stop_after)


def _assert_stored_like_independent(directory, study):
    specs = plan_runs(study)
    got = _stored(directory, [s.run_id for s in specs])
    for spec in specs:
        for name, table in _independent(spec).snapshots[EPOCHS].items():
            assert _relative(got[spec.run_id][0][EPOCHS][name], table) <= RTOL


@pytest.mark.slow
def test_run_study_killed_inside_group_retrains_the_group(ratings_file, tmp_path):
    study = _two_groups(ratings_file)
    ids = [s.run_id for s in plan_runs(study)]
    with pytest.raises(KeyboardInterrupt):
        run_study(study, tmp_path, executor=_Interrupting(0), analyze=False)
    with Store(tmp_path, create=False) as store:
        assert store.finished_ids() == set()
        assert {r.status for r in store.runs()} == {"pending"}
    again = run_study(study, tmp_path, analyze=False)
    assert sorted(again.trained) == sorted(ids) and again.skipped == 0
    _assert_stored_like_independent(tmp_path, study)


@pytest.mark.slow
def test_run_study_killed_between_groups_resumes_the_rest(ratings_file, tmp_path):
    study = _two_groups(ratings_file)
    specs = plan_runs(study)
    assert len(make_tasks(specs)) == 2
    with pytest.raises(KeyboardInterrupt):
        run_study(study, tmp_path, executor=_Interrupting(1), analyze=False)
    first = {s.run_id for s in specs if s.training.optimizer == "adam"}
    with Store(tmp_path, create=False) as store:
        assert store.finished_ids() == first
    again = run_study(study, tmp_path, analyze=False)
    assert again.skipped == 2
    assert sorted(again.trained) == sorted({s.run_id for s in specs} - first)
    _assert_stored_like_independent(tmp_path, study)


@pytest.mark.parametrize("size", [None, 7, 120, 121, "kernel"])
def test_evaluation_matches_fit_rmse_on_every_replica(ratings_file, size, monkeypatch):
    # Random tables with biases of every scale; the graph's evaluation in
    # chunks of 7 ratings, of 120 (the test set exactly one chunk), of 121
    # (one longer than the test set) and the default; the kernel's.
    from types import SimpleNamespace

    from embvar.training.fit import rmse
    from embvar.training.replica_step import Evaluation, ReplicaModel

    specs = plan_runs(_study(ratings_file, factors={"init": [0, 1, 2]}))
    data = prepare_data(specs[0].data, specs[0].seeds["split"])
    inter = data.interactions
    rng = np.random.default_rng(5)
    tables = [
        {
            "user_embedding": rng.normal(0, 1, (inter.n_users, 4)).astype(np.float32),
            "item_embedding": rng.normal(0, 1, (inter.n_items, 4)).astype(np.float32),
            "user_bias": rng.normal(0, 3, (inter.n_users, 1)).astype(np.float32),
            "item_bias": rng.normal(0, 3, (inter.n_items, 1)).astype(np.float32),
        }
        for _ in specs
    ]
    if size == "kernel":
        from embvar.training.replica_kernel import KernelEvaluation, KernelModel

        Evaluation, ReplicaModel = KernelEvaluation, KernelModel  # noqa: N806
    elif size is not None:
        monkeypatch.setattr(Evaluation, "CHUNK", size)
    model = ReplicaModel(tables, specs, data.mu)
    train, test = Evaluation(model, data).rmse()
    for r, t in enumerate(tables):
        expected = [
            rmse(t, data.train_users, data.train_items, data.train_ratings, data.mu),
            rmse(t, data.test_users, data.test_items, data.test_ratings, data.mu),
        ]
        np.testing.assert_allclose([train[r], test[r]], expected, rtol=1e-13)
    # An empty set has no RMSE, on both paths.
    empty = np.zeros(0, np.int32)
    none = SimpleNamespace(
        train_users=data.train_users,
        train_items=data.train_items,
        train_ratings=data.train_ratings,
        test_users=empty,
        test_items=empty,
        test_ratings=np.zeros(0),
    )
    with np.errstate(invalid="ignore"), pytest.warns(RuntimeWarning):
        assert np.isnan(rmse(tables[0], empty, empty, np.zeros(0), data.mu))
    assert np.isnan(Evaluation(model, none).rmse()[1]).all()
