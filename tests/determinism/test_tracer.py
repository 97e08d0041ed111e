"""The tracer: what a run seeded, drew, built and trained, and where."""

import random

import keras
import numpy as np
import tensorflow as tf

from embvar.determinism.tracer import Tracer


def _events(tracer, kind=None):
    return [e for e in tracer.end_run()["events"] if kind is None or e["kind"] == kind]


def test_tracer_uninstall_restores_every_function():
    before = (
        random.seed,
        random.shuffle,
        np.random.seed,
        np.random.permutation,
        np.random.default_rng,
        tf.random.set_seed,
        "fit" in vars(keras.Model),
        keras.layers.Layer.add_weight,
    )
    with Tracer(fresh=True):
        assert random.shuffle is not before[1]
    after = (
        random.seed,
        random.shuffle,
        np.random.seed,
        np.random.permutation,
        np.random.default_rng,
        tf.random.set_seed,
        "fit" in vars(keras.Model),
        keras.layers.Layer.add_weight,
    )
    assert after == before


def test_tracer_unseeded_then_seeded_numpy_draws():
    with Tracer(fresh=True) as tracer:
        tracer.begin_run(0)
        np.random.permutation(5)
        np.random.seed(3)
        np.random.permutation(5)
        events = _events(tracer, "shuffle")
    assert [(e["generator"], e["seeded"]) for e in events] == [
        ("numpy", False),
        ("numpy", True),
    ]
    assert events[0]["where"].startswith(__file__)


def test_tracer_unseeded_default_rng_is_watched():
    with Tracer(fresh=True) as tracer:
        tracer.begin_run(0)
        rng = np.random.default_rng()
        rng.permutation(4)
        rng.normal(size=2)
        np.random.default_rng(7).permutation(4)  # seeded: not watched
        events = _events(tracer)
    assert [(e["kind"], e["call"]) for e in events] == [
        ("unseeded_generator", "default_rng"),
        ("shuffle", "permutation"),
        ("draw", "normal"),
    ]


def test_tracer_keras_initializer_seed_drawn_from_python_random():
    with Tracer(fresh=True) as tracer:
        tracer.begin_run(0)
        keras.initializers.RandomUniform()
        keras.utils.set_random_seed(1)
        keras.initializers.RandomUniform()
        events = _events(tracer)
    draws = [e for e in events if e["kind"] == "draw"]
    assert [(d["generator"], d["seeded"], d["via_keras"]) for d in draws] == [
        ("python", False, True),
        ("python", True, True),
    ]
    seeds = [e["generator"] for e in events if e["kind"] == "seed"]
    assert seeds == ["python", "numpy", "tensorflow"]


def test_tracer_tf_shuffle_without_any_seed():
    with Tracer(fresh=True) as tracer:
        tracer.begin_run(0)
        list(tf.data.Dataset.range(4).shuffle(4))
        tf.random.set_seed(5)
        list(tf.data.Dataset.range(4).shuffle(4))
        events = _events(tracer, "shuffle")
    assert [(e["generator"], e["seeded"]) for e in events] == [("tensorflow", False)]


def test_tracer_weights_and_reused_model_across_runs():
    x, y = np.arange(8) % 4, np.ones(8, np.float32)
    with Tracer(fresh=True) as tracer:
        tracer.begin_run(0)
        inputs = keras.Input(shape=(), dtype="int32")
        out = keras.layers.Embedding(4, 2, name="emb")(inputs)
        model = keras.Model(inputs, keras.layers.Dense(1, name="d")(out))
        model.compile("sgd", "mse")
        model.fit(x, y, verbose=0, shuffle=False)
        first = tracer.end_run()["events"]
        tracer.begin_run(1)
        model.fit(x, y, verbose=0, shuffle=False)
        second = tracer.end_run()["events"]
    weights = {
        (e["layer"], e["variable"]): e["random"] for e in first if e["kind"] == "weight"
    }
    assert weights == {
        ("emb", "embeddings"): True,
        ("d", "kernel"): True,
        ("d", "bias"): False,
    }
    fits = [e for e in second if e["kind"] == "fit"]
    assert fits[0]["trained_in_run"] == 0
