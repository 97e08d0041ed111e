import numpy as np
import pytest
from gensim.models import KeyedVectors

from embvar.errors import DataError
from embvar.formats import detect_format, read_embeddings, write_embeddings


def _gensim_file(path, binary):
    rng = np.random.default_rng(1)
    kv = KeyedVectors(5)
    words = ["king", "queen", "man", "woman", "paris", "été"]
    kv.add_vectors(words, rng.normal(size=(6, 5)).astype(np.float32))
    kv.save_word2vec_format(str(path), binary=binary)
    return kv


def test_word2vec_binary_written_by_gensim_is_read_exactly(tmp_path):
    kv = _gensim_file(tmp_path / "vectors.txt", binary=True)  # misleading suffix
    assert detect_format(tmp_path / "vectors.txt") == "word2vec-binary"
    emb = read_embeddings(tmp_path / "vectors.txt")
    assert emb.format == "word2vec-binary"
    assert emb.ids.tolist() == kv.index_to_key
    np.testing.assert_array_equal(emb.vectors, kv.vectors)


def test_word2vec_text_written_by_gensim_is_read(tmp_path):
    kv = _gensim_file(tmp_path / "vectors.bin", binary=False)  # misleading suffix
    assert detect_format(tmp_path / "vectors.bin") == "word2vec"
    emb = read_embeddings(tmp_path / "vectors.bin")
    assert emb.ids.tolist() == kv.index_to_key
    np.testing.assert_allclose(emb.vectors, kv.vectors, rtol=1e-6)


def test_glove_text_without_header_is_read(tmp_path):
    (tmp_path / "glove.txt").write_text("the 0.1 0.2 0.3\ncat -1 0 2.5\ndog 4 5 6\n")
    assert detect_format(tmp_path / "glove.txt") == "word2vec"
    emb = read_embeddings(tmp_path / "glove.txt")
    assert emb.ids.tolist() == ["the", "cat", "dog"]
    np.testing.assert_allclose(emb.vectors[1], [-1, 0, 2.5])


def test_word2vec_round_trip_through_our_writer(tmp_path, table):
    for fmt in ("word2vec", "word2vec-binary"):
        write_embeddings(tmp_path / fmt, table, fmt)
        emb = read_embeddings(tmp_path / fmt, format=fmt)
        np.testing.assert_array_equal(emb.ids, table.ids)
        np.testing.assert_allclose(emb.vectors, table.vectors, rtol=1e-6)


def test_word2vec_writer_refuses_ids_with_spaces(tmp_path, table):
    from embvar.formats import make_embeddings

    bad = make_embeddings(table.vectors[:2], ["a b", "c"], source="t", format="npz")
    with pytest.raises(DataError, match="cannot store ids that are empty or hold"):
        write_embeddings(tmp_path / "x.txt", bad, "word2vec")


def test_truncated_word2vec_file_is_a_data_error(tmp_path):
    (tmp_path / "bad.txt").write_text("3 4\nthe 0.1 0.2 0.3 0.4\ncat 1\n")
    with pytest.raises(DataError, match="is not a valid word2vec text file"):
        read_embeddings(tmp_path / "bad.txt")
