"""The shipped text8 study, end to end, in its quick form."""

import json

import numpy as np
import pytest

from embvar.study import run_study


@pytest.mark.slow
def test_text8_quick_study_compares_both_families_and_names_unstable_words(tmp_path):
    outcome = run_study("text8", tmp_path / "t8", quick=True)
    assert not outcome.failed and len(outcome.trained) == outcome.planned == 6
    report = json.loads((tmp_path / "t8" / "report.json").read_text())
    families = {g["kind"] for g in report["groups"]}
    assert families == {"skipgram", "word2vec"}
    for g in report["groups"]:
        assert g["table"] == "word_embedding" and g["n_entities"] == 7978
        ws = g["function"]["wordsim353"]
        assert ws["n_evaluated"] > 200  # stemmed benchmark words are found
        assert len(ws["values"]) == g["n_runs"] == 2
    between = report["families"]["between"][0]
    assert 0 <= between["knn_overlap@10"]["mean"] < 1
    # The least stable words, named in the entities section and the summary.
    (folder,) = (tmp_path / "t8" / "data").iterdir()
    vocabulary = set(np.load(folder / "words.npy").tolist())
    least = report["entities"]["least_stable_frequent"]
    assert least and all(row["label"] in vocabulary for row in least)
    assert least[0]["label"] in " ".join(report["summary"])
    assert report["frequency"][0]["spearman"]["rho"] is not None
    page = (tmp_path / "t8" / "report.html").read_text()
    # The header describes a corpus, not users and items.
    assert "7,978 words kept" in page and " users, " not in page
