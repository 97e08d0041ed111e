import sys
from pathlib import Path

import numpy as np
import pytest

from embvar.config import parse_study, plan_runs
from embvar.errors import ConfigError, TrainingError
from embvar.execution.task import run_task

sys.path.insert(0, str(Path(__file__).parents[1] / "models"))
import embvar_test_builders as builders  # noqa: E402


@pytest.fixture
def ratings_file(tmp_path):
    rng = np.random.default_rng(0)
    n = 1200
    pairs = rng.choice(30 * 50, n, replace=False)  # each (user, item) once
    users, items = pairs // 50, pairs % 50
    rating = np.clip(np.round(3 + (items % 3) - (users % 2) + rng.normal(size=n)), 1, 5)
    path = tmp_path / "ratings.csv"
    lines = ["user,item,rating"] + [
        f"u{u},i{i},{r}" for u, i, r in zip(users, items, rating, strict=True)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def corpus_file(tmp_path):
    rng = np.random.default_rng(1)
    words = [f"w{i}" for i in range(30)]
    path = tmp_path / "c.txt"
    path.write_text("\n".join(" ".join(rng.choice(words, 20)) for _ in range(40)))
    return path


def _specs(data, model, factors, epochs=1):
    raw = {
        "name": "c",
        "data": data,
        "model": model,
        "training": {"epochs": epochs, "batch_size": 256, "learning_rate": 0.01},
        "design": [{"name": "d", "factors": factors}],
    }
    return plan_runs(parse_study(raw))


def _custom(ratings_file, factors, epochs=1, **model):
    data = {"source": str(ratings_file), "test_fraction": 0.2}
    model = {
        "kind": "embvar_test_builders:build_recommender",
        "dim": 4,
        "params": {"dropout": 0.3},
        **model,
    }
    return _specs(data, model, factors, epochs)


def test_custom_builder_gets_its_params_and_is_seeded_like_builtins(ratings_file):
    builders.CALLS.clear()
    base, again = _custom(ratings_file, {"repeat": [0, 1]})
    noise = _custom(ratings_file, {"noise": [1]})[0]
    init = _custom(ratings_file, {"init": [1]})[0]
    runs = [run_task(s.model_dump_json()) for s in (base, again, noise, init)]
    params = builders.CALLS[0]
    assert (params["n_users"], params["n_items"], params["dim"]) == (30, 50, 4)
    assert params["dropout"] == 0.3 and params["optimizer"] == "adam"
    assert set(runs[0].snapshots[1]) == {"items", "users"}
    # Same seeds: identical; noise (dropout) only: same start, other end;
    # init: another start.
    a, b, n, i = (r.snapshots for r in runs)
    np.testing.assert_array_equal(a[1]["items"], b[1]["items"])
    np.testing.assert_array_equal(a[0]["items"], n[0]["items"])
    assert not np.allclose(a[1]["items"], n[1]["items"])
    assert not np.allclose(a[0]["items"], i[0]["items"])
    assert np.isfinite(runs[0].history[-1]["test_rmse"])


def test_custom_training_hook_gets_each_epoch_in_the_runners_order(ratings_file):
    builders.CALLS.clear()
    spec = _custom(
        ratings_file, {"order": [0]}, epochs=2, fit="embvar_test_builders:fit_counting"
    )[0]
    result = run_task(spec.model_dump_json())
    hooks = [c for c in builders.CALLS if "hook_epoch" in c]
    assert [h["hook_epoch"] for h in hooks] == [1, 2]
    assert hooks[0]["rows"] == 960  # the training split
    assert result.history[1]["loss"] > 0


def test_custom_builder_errors_are_named(ratings_file):
    bad = _custom(ratings_file, {"init": [0]}, kind="embvar_test_builders:build_wrong")
    with pytest.raises(TrainingError, match="must return .keras.Model, .layer"):
        run_task(bad[0].model_dump_json())
    bad = _custom(
        ratings_file, {"init": [0]}, kind="embvar_test_builders:build_unnamed_table"
    )
    with pytest.raises(TrainingError, match="the model has no layer 'nope'"):
        run_task(bad[0].model_dump_json())
    bad = _custom(ratings_file, {"init": [0]}, kind="no_such_module_xyz:build")
    with pytest.raises(ConfigError, match="cannot import 'no_such_module_xyz'"):
        run_task(bad[0].model_dump_json())


def test_skipgram_run_is_reproducible_and_seeded_per_source(corpus_file):
    data = {"source": str(corpus_file), "kind": "text", "min_count": 1}
    model = {"kind": "skipgram", "dim": 4, "negatives": 2, "window": 2}
    base, again = _specs(data, model, {"repeat": [0, 1]})
    noise = _specs(data, model, {"noise": [1]})[0]
    runs = [run_task(s.model_dump_json()).snapshots for s in (base, again, noise)]
    np.testing.assert_array_equal(
        runs[0][1]["word_embedding"], runs[1][1]["word_embedding"]
    )
    np.testing.assert_array_equal(
        runs[0][0]["word_embedding"], runs[2][0]["word_embedding"]
    )
    assert not np.allclose(runs[0][1]["word_embedding"], runs[2][1]["word_embedding"])
