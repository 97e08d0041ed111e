"""The article's examples as written measure continued training, not seeds."""

import pytest

from embvar.analysis.article import (
    example2_as_written,
    example2_corrected,
    example3_as_written,
    example3_corrected,
    example_data,
)


@pytest.fixture(scope="module")
def data():
    return example_data(0)


def test_example3_as_written_each_run_continues_the_last(data):
    out = example3_as_written(*data, epochs=2, seeds=[0, 1, 2])
    assert out["start_equals_previous_end"] == [0.0, 0.0]
    assert any("input_length" in w for w in out["warnings"])


def test_example3_corrected_runs_start_apart(data):
    out = example3_corrected(*data, epochs=2, seeds=[0, 1, 2])
    assert out["initial_pairwise_mean_abs_difference"] > 0.01
    assert len(out["consecutive_mean_abs_difference"]) == 2


def test_example2_as_written_prints_the_low_rate_continuation(data):
    written = example2_as_written(*data, epochs=2)
    fixed = example2_corrected(*data, epochs=2, seeds=[0])
    # As written, the printed difference is what 2 epochs at lr=1e-4 moved the
    # weights; from the same start, the two rates end far further apart.
    assert written["difference_printed"] < 0.01
    assert fixed["difference_same_seed"] > 100 * written["difference_printed"]
    assert fixed["moved"]["0.0001"] < 0.01 < fixed["moved"]["1.0"]
