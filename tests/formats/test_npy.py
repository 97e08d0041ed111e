import numpy as np
import pytest

from embvar.errors import DataError
from embvar.formats import read_embeddings, write_embeddings


def test_npy_reads_ids_from_sibling_file(tmp_path, table):
    path = tmp_path / "run.npy"
    ids_path = write_embeddings(path, table, "npy")
    assert ids_path == path
    assert (tmp_path / "run.ids.txt").read_text().splitlines()[:2] == ["w0", "w1"]
    emb = read_embeddings(path)
    assert emb.format == "npy"
    assert emb.ids_from == str(tmp_path / "run.ids.txt")
    np.testing.assert_array_equal(emb.vectors, table.vectors)
    np.testing.assert_array_equal(emb.ids, table.ids)


def test_npy_ids_in_npy_file_accept_integers(tmp_path, table):
    np.save(tmp_path / "run.npy", table.vectors)
    np.save(tmp_path / "run.ids.npy", np.arange(100, 130))
    emb = read_embeddings(tmp_path / "run.npy")
    assert emb.ids[:2].tolist() == ["100", "101"]


def test_npy_without_ids_is_an_error_naming_the_file_to_write(tmp_path, table):
    np.save(tmp_path / "run.npy", table.vectors)
    with pytest.raises(DataError, match="stores no entity ids, and no ids file"):
        read_embeddings(tmp_path / "run.npy")
    emb = read_embeddings(tmp_path / "run.npy", ids="rows")
    assert emb.ids[:3].tolist() == ["0", "1", "2"] and emb.ids_from == "rows"


def test_npy_holding_a_pickle_is_rejected(tmp_path):
    np.save(tmp_path / "run.npy", np.array([{"a": 1}, None], dtype=object))
    (tmp_path / "run.ids.txt").write_text("a\nb\n")
    with pytest.raises(DataError, match="holds Python objects .a pickle."):
        read_embeddings(tmp_path / "run.npy")


def test_pickle_named_npy_is_rejected_before_parsing(tmp_path):
    import pickle

    (tmp_path / "run.npy").write_bytes(pickle.dumps({"x": 1}))
    with pytest.raises(DataError, match="is a Python pickle, and embvar never"):
        read_embeddings(tmp_path / "run.npy")


def test_named_format_that_does_not_fit_is_one_clean_sentence(tmp_path):
    """--format npy on a text file: the file once, one period, no --format advice."""
    path = tmp_path / "d.txt"
    path.write_text("hello\n")
    with pytest.raises(DataError) as npy:
        read_embeddings(path, format="npy")
    assert str(npy.value) == (
        f"the embeddings file {str(path)!r} is not a .npy file: it does not start "
        "with the NumPy magic."
    )
    with pytest.raises(DataError) as npz:
        read_embeddings(path, format="npz")
    assert str(npz.value) == (
        f"cannot read {str(path)!r} as a .npz file: it is not a zip archive."
    )


def test_npy_ids_count_must_match_rows(tmp_path, table):
    np.save(tmp_path / "run.npy", table.vectors)
    (tmp_path / "run.ids.txt").write_text("a\nb\n")
    with pytest.raises(DataError, match="must give one id per row .30 rows.; got 2"):
        read_embeddings(tmp_path / "run.npy")


def test_npy_repeated_ids_are_rejected(tmp_path, table):
    np.save(tmp_path / "run.npy", table.vectors[:3])
    (tmp_path / "run.ids.txt").write_text("a\nb\na\n")
    with pytest.raises(DataError, match="must be distinct; 1 ids repeat"):
        read_embeddings(tmp_path / "run.npy")


def test_npz_round_trip_keeps_ids_and_order(tmp_path, table):
    write_embeddings(tmp_path / "run.npz", table, "npz")
    emb = read_embeddings(tmp_path / "run.npz")
    assert emb.format == "npz" and emb.ids_from == "file"
    np.testing.assert_array_equal(emb.vectors, table.vectors)
    np.testing.assert_array_equal(emb.ids, table.ids)


def test_npz_with_object_ids_is_rejected(tmp_path, table):
    np.savez(
        tmp_path / "run.npz",
        embeddings=table.vectors,
        ids=np.array(table.ids.tolist(), dtype=object),
    )
    with pytest.raises(DataError, match="array of Python objects .a pickle."):
        read_embeddings(tmp_path / "run.npz")


def test_npz_missing_arrays_names_them(tmp_path, table):
    np.savez(tmp_path / "run.npz", vectors=table.vectors)
    with pytest.raises(DataError, match="must hold the arrays 'embeddings' and 'ids'"):
        read_embeddings(tmp_path / "run.npz")


def test_npy_non_finite_rows_are_counted(tmp_path, table):
    X = table.vectors.copy()
    X[[1, 5]] = np.nan
    np.savez(tmp_path / "run.npz", embeddings=X, ids=table.ids)
    with pytest.raises(DataError, match="2 of 30 rows hold NaN or inf"):
        read_embeddings(tmp_path / "run.npz")
