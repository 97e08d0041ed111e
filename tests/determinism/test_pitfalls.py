"""Each pitfall behind "my seeded runs differ", planted and diagnosed.

The plants are in audit_plants.py. Process A's three runs are trained in
this process (``in_process=True``: the tracer reseeds the generators from
entropy first, as a fresh process has them); the checks that need another
process (the entity-to-row mapping) start one.
"""

import audit_plants as plants
import pytest

from embvar.determinism.pitfalls import PITFALLS, diagnose_pitfalls
from embvar.determinism.target import function_target


def _diagnose(train, **kwargs):
    kwargs.setdefault("cross_process", False)
    return diagnose_pitfalls(function_target(train), in_process=True, **kwargs)


def _pitfall(result, name):
    return next(p for p in result["pitfalls"] if p["name"] == name)


def test_diagnose_pitfalls_clean_run_finds_none():
    result = _diagnose(plants.train_clean)
    assert [p["name"] for p in result["pitfalls"]] == list(PITFALLS)
    assert result["found"] == []
    assert result["in_process"]["identical"] is True
    assert result["processes"] == 0
    assert _pitfall(result, "mapping_changes")["found"] is None


def test_diagnose_pitfalls_model_reused():
    result = _diagnose(plants.train_reused)
    assert result["found"] == ["model_reused"]
    pit = _pitfall(result, "model_reused")
    assert any("run 2 started from run 1's final weights" in e for e in pit["evidence"])
    assert "trained again" in pit["cause"] and "new model" in pit["fix"]
    assert result["in_process"]["identical"] is False


def test_diagnose_pitfalls_seed_after_build():
    result = _diagnose(plants.train_seed_after_build)
    assert result["found"] == ["seed_after_build"]
    pit = _pitfall(result, "seed_after_build")
    assert pit["where"][0].startswith(plants.__file__)
    assert "(build)" in pit["where"][0]
    assert any("identical with two different seeds" in e for e in pit["evidence"])
    assert "set_random_seed(seed) first" in pit["fix"]


def test_diagnose_pitfalls_unseeded_framework_generator():
    result = _diagnose(plants.train_unseeded)
    assert result["found"] == ["unseeded_generator"]
    pit = _pitfall(result, "unseeded_generator")
    assert "Python's random module" in pit["cause"]
    assert pit["where"][0].startswith(plants.__file__)


def test_diagnose_pitfalls_shared_initializer():
    result = _diagnose(plants.train_shared_initializer)
    assert result["found"] == ["shared_initializer"]
    evidence = _pitfall(result, "shared_initializer")["evidence"]
    assert (
        "one initializer object was given to layers item_embedding, user_embedding."
        in evidence
    )
    assert any("the first 120 values are identical bit for bit" in e for e in evidence)


def test_diagnose_pitfalls_unseeded_shuffle():
    result = _diagnose(plants.train_unseeded_shuffle)
    assert result["found"] == ["unseeded_shuffle"]
    pit = _pitfall(result, "unseeded_shuffle")
    assert "default_rng() without a seed" in pit["cause"]
    assert "(fit)" in pit["where"][0]


@pytest.mark.slow
def test_diagnose_pitfalls_vocabulary_from_a_set_changes_rows():
    result = _diagnose(plants.train_vocab_from_set, cross_process=True)
    assert result["found"] == ["mapping_changes"]
    assert result["processes"] == 1
    evidence = _pitfall(result, "mapping_changes")["evidence"][0]
    assert "the same 40 entities in another row order" in evidence
    # Initial tables do not depend on the rows' meaning; training does.
    assert result["cross_process"]["first_epoch"] == 1


@pytest.mark.slow
def test_diagnose_pitfalls_fresh_processes_clean_run():
    result = diagnose_pitfalls(function_target(plants.train_clean))
    assert result["processes"] == 2
    assert result["found"] == []
    assert result["cross_process"]["identical"] is True
    assert _pitfall(result, "mapping_changes")["found"] is False
