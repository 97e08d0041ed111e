"""Embedding Projector export: aligned tensors, metadata, config."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from embvar.errors import ConfigError, StoreError
from embvar.report.projector import CONFIG_NAME, align_to_first, export_projector
from tests.report.conftest import SCRAMBLED


def test_align_to_first_undoes_a_rotation():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(50, 4))
    Q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    aligned = align_to_first([X, X @ Q + 3.0])
    assert np.allclose(aligned[1], X - X.mean(axis=0), atol=1e-10)
    assert np.allclose(aligned[0], X - X.mean(axis=0))


def _read_tsv(path):
    return np.loadtxt(path, delimiter="\t", dtype=np.float64)


@pytest.fixture(scope="module")
def exported(planted_study, tmp_path_factory):
    out = tmp_path_factory.mktemp("projector")
    return export_projector(planted_study.directory, out), out


def test_export_projector_writes_aligned_runs(planted_study, exported):
    done, out = exported
    n = planted_study.data.interactions.n_items
    assert done.runs == planted_study.run_ids and (done.n_entities, done.dim) == (n, 8)
    first = _read_tsv(out / f"{done.runs[0]}.tsv")
    assert first.shape == (n, 8)
    keep = np.setdiff1d(np.arange(n), SCRAMBLED)
    for run_id in done.runs[1:]:
        other = _read_tsv(out / f"{run_id}.tsv")
        # Rotated copies land on the first run; the scrambled rows do not.
        assert np.abs(other[keep] - first[keep]).max() < 0.2
        assert np.abs(other[SCRAMBLED] - first[SCRAMBLED]).max() > 0.5
    stacked = _read_tsv(out / "all_runs.tsv")
    assert stacked.shape == (4 * n, 8)


def test_export_projector_metadata_has_header_and_one_row_per_entity(
    planted_study, exported
):
    done, out = exported
    lines = (out / "metadata.tsv").read_text(encoding="utf-8").splitlines()
    assert lines[0].split("\t") == [
        "id",
        "title",
        "genres",
        "frequency",
        "knn_overlap@10",
    ]
    assert len(lines) == done.n_entities + 1
    assert all(line.count("\t") == 4 for line in lines)
    titles = planted_study.data.interactions.item_labels["title"]
    assert lines[1].split("\t")[1] == str(titles[0])
    # Scrambled items have low stability, rotated ones keep all neighbours.
    stability = [float(line.split("\t")[4]) for line in lines[1:]]
    assert max(stability[i] for i in SCRAMBLED) < 0.5
    assert stability[len(SCRAMBLED)] == 1.0
    stacked = (out / "all_runs_metadata.tsv").read_text().splitlines()
    assert (
        stacked[0].startswith("run\tid\t") and len(stacked) == 4 * done.n_entities + 1
    )


def test_export_projector_config_names_every_tensor(exported):
    done, out = exported
    text = (out / CONFIG_NAME).read_text()
    blocks = re.findall(r"embeddings \{\n(.*?)\n\}", text, re.S)
    assert len(blocks) == 5
    for block in blocks:
        fields = dict(re.findall(r'^\s*(\w+): "([^"]*)"', block, re.M))
        shapes = [int(x) for x in re.findall(r"tensor_shape: (\d+)", block)]
        assert (out / fields["tensor_path"]).is_file()
        assert (out / fields["metadata_path"]).is_file()
        assert shapes[1] == 8 and shapes[0] in (done.n_entities, 4 * done.n_entities)
    config = json.loads((out / "projector_config.json").read_text())
    assert [e["tensorPath"] for e in config["embeddings"]][-1] == "all_runs.tsv"


def test_export_projector_fields_escaped():
    from embvar.report import projector

    assert projector._tsv_field("a\tb\nc") == "a b c"
    assert projector._pbtxt_string('x "y" \\') == '"x \\"y\\" \\\\"'


def test_export_projector_unknown_group_is_config_error(planted_study, tmp_path):
    with pytest.raises(ConfigError, match="^group must be one of"):
        export_projector(planted_study.directory, tmp_path / "p", group="nope")


def test_export_projector_unknown_table_is_config_error(planted_study, tmp_path):
    with pytest.raises(
        ConfigError, match="^table must be one of item_embedding, user_embedding"
    ):
        export_projector(planted_study.directory, tmp_path / "p", table="x")


def test_export_projector_not_a_study_is_store_error(tmp_path):
    with pytest.raises(StoreError, match="is not an embvar study directory"):
        export_projector(tmp_path)


def test_export_projector_reads_the_saved_data_not_the_source(
    planted_study, tmp_path, monkeypatch
):
    """Ids, titles and frequencies come from DIR/data/<key>/, from any cwd."""
    import embvar.data.prepared as prepared

    def no_source(*args, **kwargs):
        raise AssertionError("export read the original data source")

    monkeypatch.setattr(prepared, "prepare_data", no_source)
    monkeypatch.setattr(prepared, "load_source", no_source)
    monkeypatch.chdir(tmp_path)
    export_projector(planted_study.directory, tmp_path / "p")
    lines = (tmp_path / "p" / "metadata.tsv").read_text(encoding="utf-8").splitlines()
    inter = planted_study.data.interactions
    first = lines[1].split("\t")
    assert first[:2] == [str(inter.item_ids[0]), str(inter.item_labels["title"][0])]
    train = planted_study.data.split.train
    assert int(first[3]) == inter.item_frequency(train)[0]
