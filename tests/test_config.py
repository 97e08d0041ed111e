import subprocess
import sys

import pytest

from embvar.config import load_study, parse_study, plan_runs
from embvar.errors import ConfigError

BASE = {
    "name": "t",
    "design": [{"name": "s", "factors": {"init": [0, 1], "order": [0, 1, 2]}}],
}


def test_plan_is_cross_product_of_factors():
    specs = plan_runs(parse_study(BASE))
    assert len(specs) == 6
    assert {(s.levels["init"], s.levels["order"]) for s in specs} == {
        (i, o) for i in (0, 1) for o in (0, 1, 2)
    }


def test_plan_varies_only_the_listed_sources():
    specs = plan_runs(parse_study(BASE))
    assert len({s.seeds["noise"] for s in specs}) == 1
    assert len({s.seeds["split"] for s in specs}) == 1
    assert len({s.group_key for s in specs}) == 1


def test_plan_replicates_reseed_every_unlisted_source():
    raw = {
        "name": "t",
        "design": [{"replicates": 3, "factors": {"optimizer": ["adam", "sgd"]}}],
    }
    specs = plan_runs(parse_study(raw))
    assert len(specs) == 6
    adam = [s for s in specs if s.training.optimizer == "adam"]
    assert (
        len({(s.seeds["init"], s.seeds["order"], s.seeds["noise"]) for s in adam}) == 3
    )
    assert len({s.seeds["split"] for s in specs}) == 1
    assert len({s.group_key for s in specs}) == 2


def test_plan_shared_run_trained_once():
    raw = {
        "name": "t",
        "design": [
            {"name": "a", "factors": {"init": [0, 1]}},
            {"name": "b", "factors": {"learning_rate": [0.001, 0.01]}},
        ],
    }
    specs = plan_runs(parse_study(raw))
    # init=0 at lr 0.001 is the same run in both designs.
    assert len(specs) == 3
    shared = [s for s in specs if len(s.designs) == 2]
    assert len(shared) == 1 and shared[0].designs == ("a", "b")


def test_run_id_stable_across_processes():
    spec = plan_runs(parse_study(BASE))[0]
    code = (
        "from embvar.config import parse_study, plan_runs; "
        f"print(plan_runs(parse_study({BASE!r}))[0].run_id)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "999"},
    )
    assert out.stdout.strip() == spec.run_id


def test_quick_overrides_training_and_design():
    raw = {
        **BASE,
        "quick": {
            "training": {"epochs": 1},
            "design": [{"name": "q", "factors": {"init": [0]}}],
        },
    }
    study = parse_study(raw, quick=True)
    assert study.training.epochs == 1
    assert [d.name for d in study.design] == ["q"]
    assert parse_study(raw).training.epochs == 10


def test_builtin_movielens_study_plans_at_least_25_runs():
    specs = plan_runs(load_study("movielens"))
    assert len(specs) >= 25
    assert len(plan_runs(load_study("movielens", quick=True))) < len(specs)


@pytest.mark.parametrize(
    "raw,message",
    [
        ({"name": "t", "colour": 1}, "unknown key 'colour' in the top level"),
        (
            {"name": "t", "model": {"dim": -3}},
            "model.dim must be greater than or equal to 1",
        ),
        (
            {"name": "t", "training": {"optimizer": "adamax"}},
            "training.optimizer must be",
        ),
        (
            {"name": "t", "training": {"epochs": "ten"}},
            "training.epochs must be a valid integer",
        ),
        (
            {"name": "t", "training": {"learning_rate": 0}},
            "training.learning_rate must be greater",
        ),
        (
            {"name": "t", "design": [{"factors": {"colour": [1]}}]},
            "design.0.factors unknown factor",
        ),
        (
            {"name": "t", "design": [{"factors": {"init": [-1]}}]},
            "design.0.factors seed factor",
        ),
        (
            {"name": "t", "design": [{"factors": {"init": []}}]},
            "design.0.factors factor 'init'",
        ),
        ({"name": "../evil"}, "name must match pattern"),
        (
            {"name": "t", "design": [{"factors": {"optimizer": ["nope"]}}]},
            "design 'main': optimizer",
        ),
        (
            {"name": "t", "model": {"initializer": "pretrained"}},
            "model.pretrained must name",
        ),
        ({}, "key 'name' is required"),
    ],
)
def test_parse_study_bad_input_one_line(raw, message):
    with pytest.raises(ConfigError) as info:
        parse_study(raw, origin="f.toml")
    text = str(info.value)
    assert message in text
    assert "\n" not in text


def test_load_study_missing_file_names_it(tmp_path):
    with pytest.raises(ConfigError, match="neither a built-in study"):
        load_study(tmp_path / "nope.toml")


def test_load_study_malformed_toml(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("name = [unclosed\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_study(path)


# -- model families, text data, repeats ---------------------------------------

TEXT = {"source": "text8", "kind": "text"}


def test_factorization_run_ids_do_not_depend_on_the_word_model_options():
    # The ids embvar gave these runs before text data and word models existed.
    specs = plan_runs(parse_study(BASE))
    assert (specs[0].run_id, specs[0].group_key) == ("0bb5374c3cbd476a", "223ba8ce3cb1")
    assert specs[5].run_id == "ea9a5683a6e0c7b9"
    dumped = specs[0].model_dump()
    assert "window" not in dumped["model"] and "kind" not in dumped["data"]


def test_model_kind_is_a_factor_and_word_options_enter_the_identity():
    raw = {
        "name": "w",
        "data": TEXT,
        "model": {"kind": "skipgram"},
        "design": [{"factors": {"kind": ["skipgram", "word2vec"], "window": [2, 5]}}],
    }
    specs = plan_runs(parse_study(raw))
    assert len({s.run_id for s in specs}) == 4
    assert {(s.model.kind, s.model.window) for s in specs} == {
        (k, w) for k in ("skipgram", "word2vec") for w in (2, 5)
    }
    assert len({s.group_key for s in specs}) == 4


def test_repeats_share_seeds_and_form_their_own_group():
    raw = {
        "name": "w",
        "data": TEXT,
        "model": {"kind": "word2vec"},
        "design": [
            {"name": "seeds", "replicates": 2},
            {"name": "again", "factors": {"repeat": [0, 1]}},
        ],
    }
    specs = plan_runs(parse_study(raw))
    seeds = [s for s in specs if s.designs == ("seeds",)]
    again = [s for s in specs if s.designs == ("again",)]
    assert len(seeds) == 2 and len(again) == 2  # a repeat 0 is a run of its own
    assert again[0].seeds == again[1].seeds == seeds[0].seeds
    assert again[0].run_id != again[1].run_id != seeds[0].run_id
    assert again[0].group_key == again[1].group_key != seeds[0].group_key


@pytest.mark.parametrize(
    ("data", "model", "message"),
    [
        ({}, {"kind": "skipgram"}, "trains on data.kind = 'text'"),
        (TEXT, {"kind": "factorization"}, "trains on data.kind = 'interactions'"),
        ({"source": "text8"}, {"kind": "mod:build"}, "set data.kind = 'text'"),
        (
            TEXT,
            {"kind": "skipgram", "workers": 2},
            "applies to model.kind = 'word2vec'",
        ),
        (TEXT, {"kind": "word2vec", "initializer": "normal"}, "draws its own uniform"),
        (TEXT, {"kind": "glove"}, "must be one of 'factorization', 'skipgram'"),
        (TEXT, {"kind": "m:b", "fit": "train_epoch"}, "must name a training hook"),
    ],
)
def test_model_family_mismatches_are_one_line_errors(data, model, message):
    raw = {"name": "w", "data": data, "model": model, "design": [{"name": "d"}]}
    with pytest.raises(ConfigError, match=message):
        parse_study(raw)


def test_text8_study_plans_both_families():
    specs = plan_runs(load_study("text8"))
    kinds = {s.model.kind for s in specs}
    assert kinds == {"skipgram", "word2vec"}
    assert {s.model.workers for s in specs} == {1, 2}
    quick = plan_runs(load_study("text8", quick=True))
    assert len(quick) < len(specs)


def test_plan_seed_offset_moves_replicate_levels():
    raw = {"name": "t", "design": [{"replicates": 2, "seed_offset": 100}]}
    specs = plan_runs(parse_study(raw))
    assert [s.levels["init"] for s in specs] == [100, 101]
    assert [s.levels["order"] for s in specs] == [100, 101]
    assert all(s.levels["split"] == 0 for s in specs)


def test_load_study_resolves_paths_against_the_study_files_folder(
    tmp_path, monkeypatch
):
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "ratings.csv").write_text("user,item,rating\n1,1,5\n")
    (folder / "init.npy").write_bytes(b"")
    (folder / "study.toml").write_text(
        'name = "mine"\n[data]\nsource = "ratings.csv"\n'
        '[model]\ninitializer = "pretrained"\npretrained = "init.npy"\n'
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    study = load_study("../project/study.toml")
    assert study.data.source == str((folder / "ratings.csv").resolve())
    assert study.model.pretrained == str((folder / "init.npy").resolve())


def test_load_study_leaves_builtin_names_and_missing_paths_as_written(tmp_path):
    path = tmp_path / "study.toml"
    path.write_text('name = "mine"\n[data]\nsource = "movielens"\n')
    assert load_study(path).data.source == "movielens"
    path.write_text('name = "mine"\n[data]\nsource = "missing.csv"\n')
    assert load_study(path).data.source == "missing.csv"
