import numpy as np
import pytest

from embvar.errors import DataError
from embvar.formats import detect_format, read_embeddings, write_embeddings


def test_projector_vectors_pair_with_metadata_tsv(tmp_path, table):
    write_embeddings(tmp_path / "vectors.tsv", table, "projector")
    assert (tmp_path / "metadata.tsv").read_text().splitlines()[0] == "w0"
    assert detect_format(tmp_path / "vectors.tsv") == "projector"
    emb = read_embeddings(tmp_path / "vectors.tsv")
    assert emb.ids_from == str(tmp_path / "metadata.tsv")
    np.testing.assert_array_equal(emb.ids, table.ids)
    np.testing.assert_allclose(emb.vectors, table.vectors, rtol=1e-6)


def test_projector_metadata_with_header_uses_first_or_named_column(tmp_path):
    (tmp_path / "emb.tsv").write_text("1\t2\n3\t4\n5\t6\n")
    (tmp_path / "emb_metadata.tsv").write_text(
        "title\tword\nA film\tcat\nB film\tdog\nC film\tcow\n"
    )
    assert read_embeddings(tmp_path / "emb.tsv").ids.tolist() == [
        "A film",
        "B film",
        "C film",
    ]
    from embvar.formats.projector import read_projector

    emb = read_projector(tmp_path / "emb.tsv", id_column="word")
    assert emb.ids.tolist() == ["cat", "dog", "cow"]


def test_projector_without_metadata_is_an_error(tmp_path):
    (tmp_path / "emb.tsv").write_text("1\t2\n3\t4\n")
    with pytest.raises(DataError, match="none was found"):
        read_embeddings(tmp_path / "emb.tsv")


def test_projector_metadata_must_count_the_rows(tmp_path):
    (tmp_path / "vectors.tsv").write_text("1\t2\n3\t4\n5\t6\n")
    (tmp_path / "metadata.tsv").write_text("a\nb\n")
    with pytest.raises(DataError, match="must have one line per vector .3.; got 2"):
        read_embeddings(tmp_path / "vectors.tsv")


def test_projector_ragged_line_is_named(tmp_path):
    (tmp_path / "vectors.tsv").write_text("1\t2\n3\t4\t5\n")
    (tmp_path / "metadata.tsv").write_text("a\nb\n")
    with pytest.raises(DataError, match="line 2 must hold 2 values"):
        read_embeddings(tmp_path / "vectors.tsv", format="projector")
