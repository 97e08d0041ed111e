import numpy as np
import pytest

from embvar.errors import ConfigError, DataError
from embvar.formats import (
    FORMAT_NAMES,
    FORMATS,
    detect_format,
    read_embeddings,
    write_embeddings,
)


def test_formats_catalogue_lists_every_detected_format():
    assert tuple(FORMATS) == FORMAT_NAMES


def test_content_decides_over_a_misleading_extension(tmp_path, table):
    write_embeddings(tmp_path / "emb.npz", table, "npz")
    (tmp_path / "emb.npz").rename(tmp_path / "emb.txt")
    assert detect_format(tmp_path / "emb.txt") == "npz"
    np.save(tmp_path / "table.bin", table.vectors)
    assert detect_format(tmp_path / "table.bin.npy") == "npy"


def test_forced_format_is_used_and_checked(tmp_path, table):
    write_embeddings(tmp_path / "v.tsv", table, "projector")
    emb = read_embeddings(tmp_path / "v.tsv", format="projector")
    assert emb.n_entities == 30
    with pytest.raises(ConfigError, match="format must be one of"):
        read_embeddings(tmp_path / "v.tsv", format="csv")
    with pytest.raises(DataError, match="cannot read .* as a .npz file"):
        read_embeddings(tmp_path / "v.tsv", format="npz")


def test_option_that_does_not_apply_to_the_format_is_rejected(tmp_path, table):
    write_embeddings(tmp_path / "e.npz", table, "npz")
    with pytest.raises(ConfigError, match="layer applies to the keras format"):
        read_embeddings(tmp_path / "e.npz", layer="x")


def test_unknown_content_asks_for_a_format(tmp_path):
    (tmp_path / "notes.txt").write_text("hello world\nthis is prose\n")
    with pytest.raises(DataError, match="cannot tell the format .*--format"):
        detect_format(tmp_path / "notes.txt")
    with pytest.raises(DataError, match="no embeddings file at"):
        detect_format(tmp_path / "missing.npy")
