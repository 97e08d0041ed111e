"""Manifests: what a process ran on, and what differs between two."""

import json

import pytest

from embvar.errors import StoreError
from embvar.manifest import (
    ENV_VARIABLES,
    collect_manifest,
    diff_manifests,
    read_manifest,
    write_manifest,
)


def test_collect_manifest_without_tensorflow_has_machine_sections(monkeypatch):
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
    monkeypatch.delenv("PYTHONHASHSEED", raising=False)
    m = collect_manifest(tensorflow=False)
    assert set(m) == {"python", "packages", "platform", "cpu", "env", "process"}
    assert set(m["env"]) == set(ENV_VARIABLES)
    assert m["env"]["TF_ENABLE_ONEDNN_OPTS"] == "0"
    assert m["env"]["PYTHONHASHSEED"] is None
    assert m["packages"]["numpy"] and m["packages"]["tensorflow"]
    assert m["cpu"]["logical_cores"] >= 1
    assert m["python"]["str_hash_probe"] == hash("embvar manifest probe")


def test_collect_manifest_tensorflow_sections():
    m = collect_manifest()
    assert m["threads"]["intra_op"] >= 0
    assert m["tensorflow"]["op_determinism"] in (True, False)
    assert m["tensorflow"]["onednn"] in (True, False)
    assert any(d.startswith("CPU:") for d in m["devices"]["physical"])
    json.dumps(m)  # JSON-ready


def test_diff_manifests_known_answer():
    a = {
        "env": {"X": "0", "Y": None},
        "cpu": {"flags": ["avx", "avx2", "sse"]},
        "process": {"pid": 1},
        "packages": {"keras": "3.15"},
    }
    b = {
        "env": {"X": "1", "Y": None},
        "cpu": {"flags": ["avx", "avx512f", "sse"]},
        "process": {"pid": 2},
        "packages": {},
    }
    assert diff_manifests(a, b) == [
        {"key": "cpu.flags", "only_a": ["avx2"], "only_b": ["avx512f"]},
        {"key": "env.X", "a": "0", "b": "1"},
        {"key": "packages.keras", "a": "3.15", "b": None},
    ]


def test_diff_manifests_identical_is_empty_and_process_ignored():
    a = collect_manifest(tensorflow=False)
    b = json.loads(json.dumps(a))
    b["process"]["pid"] += 1
    assert diff_manifests(a, b) == []
    assert diff_manifests(a, b, ignore=()) == [
        {"key": "process.pid", "a": a["process"]["pid"], "b": b["process"]["pid"]}
    ]


def test_write_manifest_round_trip(tmp_path):
    m = collect_manifest(tensorflow=False)
    path = write_manifest(m, tmp_path / "sub" / "manifest.json")
    assert read_manifest(path) == json.loads(json.dumps(m))


def test_read_manifest_missing_file_raises(tmp_path):
    with pytest.raises(StoreError, match="cannot read manifest"):
        read_manifest(tmp_path / "none.json")


def test_read_manifest_not_an_object_raises(tmp_path):
    path = tmp_path / "list.json"
    path.write_text("[1, 2]")
    with pytest.raises(StoreError, match="must hold a JSON object; got list"):
        read_manifest(path)
