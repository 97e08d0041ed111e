import json
import subprocess
import sys

import numpy as np
import pytest

from embvar.comparison import compare
from embvar.errors import ConfigError, DataError
from embvar.formats import make_embeddings, write_embeddings

WORDS = [
    "king", "queen", "man", "woman", "paris", "france", "london", "england",
    "tiger", "cat", "dog", "car", "train", "money", "bank", "cash", "computer",
    "keyboard", "sun", "moon", "water", "food", "fruit", "apple", "love",
]  # fmt: skip


def _tables(n=40, dim=6, runs=3, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n, dim))
    return [base + 0.3 * rng.normal(size=(n, dim)) for _ in range(runs)]


def test_compare_permuted_rows_with_ids_matches_on_ids(tmp_path):
    X = _tables(runs=1)[0]
    ids = np.array([f"e{i}" for i in range(40)])
    perm = np.random.default_rng(1).permutation(40)
    write_embeddings(
        tmp_path / "a.npz", make_embeddings(X, ids, source="a", format="npz"), "npz"
    )
    Q, _ = np.linalg.qr(np.random.default_rng(2).normal(size=(6, 6)))
    write_embeddings(
        tmp_path / "b.npy",
        make_embeddings((X @ Q)[perm], ids[perm], source="b", format="npy"),
        "npy",
    )
    report = compare([tmp_path / "a.npz", tmp_path / "b.npy"]).report
    geo = report["groups"][0]["geometry"]
    # A rotated copy with its rows shuffled: the same space once matched on ids.
    assert geo["procrustes"]["mean"] == pytest.approx(0.0, abs=1e-6)
    assert geo["cka"]["mean"] == pytest.approx(1.0, abs=1e-6)
    assert geo["knn_overlap@10"]["mean"] == pytest.approx(1.0)
    assert report["compare"]["coverage"] == {"n_common": 40, "per_file": [1.0, 1.0]}
    # ...while the raw coordinates, compared row for row, differ.
    assert report["groups"][0]["parameters"]["relative_frobenius"]["mean"] > 0.5


def test_compare_report_page_says_what_was_measured(tmp_path):
    """Files are not a study's seed replicates: the page says what it compared."""
    ids = [f"e{i}" for i in range(40)]
    paths = []
    for r, T in enumerate(_tables(runs=3)):
        paths.append(tmp_path / f"t{r}.npz")
        write_embeddings(
            paths[-1], make_embeddings(T, ids, source="t", format="npz"), "npz"
        )
    compare(paths, tmp_path / "cmp")
    page = (tmp_path / "cmp" / "report.html").read_text(encoding="utf-8")
    assert "study&#39;s largest group" not in page and "study's largest" not in page
    assert (
        "Measured on the 3 tables compared (t0.npz, t1.npz, t2.npz), averaged over "
        "every pair, on the 40 entities they all share." in page
    )
    assert "nearest neighbours are the same in another of the tables" in page


def test_compare_ids_rows_matches_a_file_without_ids_by_position(tmp_path):
    X = _tables(runs=1)[0]
    ids = np.array([f"e{i}" for i in range(40)])
    perm = np.random.default_rng(1).permutation(40)
    write_embeddings(
        tmp_path / "a.npy",
        make_embeddings(X[perm], ids[perm], source="a", format="npy"),
        "npy",
    )
    np.save(tmp_path / "noids.npy", X[perm] + 1.0)  # same rows, no ids file
    paths = [tmp_path / "a.npy", tmp_path / "noids.npy"]
    with pytest.raises(DataError, match=r"pass --ids rows \(ids='rows'\)\.$"):
        compare(paths)
    report = compare(paths, ids="rows").report
    assert report["groups"][0]["n_entities"] == 40
    assert report["groups"][0]["geometry"]["procrustes"]["mean"] == pytest.approx(
        0.0, abs=1e-6
    )
    files = report["compare"]["files"]
    assert [f["ids_from"] for f in files][1] == "rows of a.npy"
    np.save(tmp_path / "short.npy", X[:10])
    with pytest.raises(DataError, match="which has 40 rows; it has 10"):
        compare([paths[0], tmp_path / "short.npy"], ids="rows")
    with pytest.raises(ConfigError, match="^ids must be 'rows'"):
        compare(paths, ids="position")


def test_cli_compare_ids_rows(tmp_path):
    from typer.testing import CliRunner

    from embvar.cli import app

    for name in ("p", "q"):
        np.save(tmp_path / f"{name}.npy", _tables(runs=1)[0])
    done = CliRunner().invoke(
        app,
        ["compare", str(tmp_path / "p.npy"), str(tmp_path / "q.npy"),
         "--ids", "rows", "--out", str(tmp_path / "cmp")],
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "2 tables compared on the 40 entities" in done.output


def test_compare_differing_vocabularies_reports_coverage(tmp_path):
    tables = _tables()
    ids = np.array([f"e{i}" for i in range(40)])
    keep = [slice(0, 40), slice(0, 30), slice(10, 40)]
    paths = []
    for r, (T, rows) in enumerate(zip(tables, keep, strict=True)):
        paths.append(tmp_path / f"r{r}.npz")
        write_embeddings(
            paths[-1],
            make_embeddings(T[rows], ids[rows], source="t", format="npz"),
            "npz",
        )
    report = compare(paths, tmp_path / "out").report
    g = report["groups"][0]
    assert g["n_entities"] == 20  # e10..e29, in every file
    assert [c["coverage"] for c in g["coverage"]] == [0.5, 20 / 30, 20 / 30]
    assert report["compare"]["files"][1]["n_rows"] == 30
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    assert saved["groups"][0]["n_entities"] == 20
    # The matched tables are what is compared: the same as comparing by hand.
    from embvar.metrics import procrustes_distance

    expected = procrustes_distance(
        tables[1][10:30].astype(np.float32), tables[2][10:30].astype(np.float32)
    )
    pair = next(p for p in g["pairs"] if p["runs"] == ["r1.npz", "r2.npz"])
    assert pair["procrustes"] == pytest.approx(expected, rel=1e-6)


def test_compare_without_shared_ids_is_a_data_error(tmp_path):
    T = _tables(runs=2)
    for r, prefix in enumerate("ab"):
        ids = [f"{prefix}{i}" for i in range(40)]
        write_embeddings(
            tmp_path / f"{prefix}.npz",
            make_embeddings(T[r], ids, source="t", format="npz"),
            "npz",
        )
    with pytest.raises(DataError, match="share no entity id"):
        compare([tmp_path / "a.npz", tmp_path / "b.npz"])


def test_compare_needs_two_tables(tmp_path):
    write_embeddings(
        tmp_path / "a.npz",
        make_embeddings(
            _tables(runs=1)[0], [str(i) for i in range(40)], source="t", format="npz"
        ),
        "npz",
    )
    with pytest.raises(ConfigError, match="needs at least two embedding tables"):
        compare([tmp_path / "a.npz"])


def test_compare_word_tables_get_benchmark_scores(tmp_path):
    rng = np.random.default_rng(0)
    tables = [rng.normal(size=(len(WORDS), 8)) for _ in range(2)]
    embs = [
        make_embeddings(T, WORDS, source=f"w{i}", format="npz")
        for i, T in enumerate(tables)
    ]
    g = compare(embs, names=["w0", "w1"]).report["groups"][0]
    ws = g["function"]["wordsim353"]
    assert ws["n"] == 2 and ws["n_evaluated"] > 0
    assert ws["n_evaluated"] + ws["n_oov"] == ws["n_total"] == 353
    from embvar.metrics import word_similarity

    rho = word_similarity(tables[1], WORDS, "wordsim353").spearman
    assert ws["values"][1] == pytest.approx(rho)


def test_compare_different_dimensions_skip_the_parameter_level(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 4))
    Y = np.hstack([X, np.zeros((30, 2))])  # the same space, padded
    ids = [str(i) for i in range(30)]
    embs = [
        make_embeddings(X, ids, source="x", format="npz"),
        make_embeddings(Y, ids, source="y", format="npz"),
    ]
    g = compare(embs, names=["x", "y"]).report["groups"][0]
    assert g["parameters"] == {}
    assert g["geometry"]["procrustes"]["mean"] == pytest.approx(0.0, abs=1e-6)


def test_cli_compare_writes_the_report_and_fails_cleanly(tmp_path):
    T = _tables(runs=2)
    ids = [f"e{i}" for i in range(40)]
    for r in range(2):
        write_embeddings(
            tmp_path / f"r{r}.npz",
            make_embeddings(T[r], ids, source="t", format="npz"),
            "npz",
        )
    cmd = [
        sys.executable,
        "-m",
        "embvar.cli",
        "compare",
        str(tmp_path / "r0.npz"),
        str(tmp_path / "r1.npz"),
        "--out",
        str(tmp_path / "cmp"),
        "--json",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["summary"][0].startswith("2 tables compared")
    assert (tmp_path / "cmp" / "report.json").is_file()
    bad = subprocess.run(
        cmd[:4] + [str(tmp_path / "nothing.npz")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 2
    assert bad.stderr.startswith("embvar: error: no embeddings file at")


def test_compare_a_study_directory_uses_the_studys_ids(tmp_path, small_study_file):
    from embvar.study import run_study

    outcome = run_study(small_study_file, tmp_path / "s", analyze=False)
    assert len(outcome.trained) == 4
    report = compare([tmp_path / "s"]).report
    tables = {g["table"] for g in report["groups"]}
    assert tables == {"item_embedding", "user_embedding"}  # biases left out
    files = report["compare"]["files"]
    assert {f["ids_from"] for f in files} == {"study data"}
    item = next(g for g in report["groups"] if g["table"] == "item_embedding")
    assert item["n_runs"] == 4 and item["n_entities"] == files[0]["n_rows"]
