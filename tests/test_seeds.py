import subprocess
import sys

import pytest

from embvar.errors import ConfigError
from embvar.seeds import SOURCES, source_seed, source_seeds


def test_source_seed_same_inputs_same_seed():
    assert source_seed(3, "init", 2) == source_seed(3, "init", 2)


def test_source_seed_sources_and_levels_independent():
    seeds = {source_seed(0, s, level) for s in SOURCES for level in range(50)}
    assert len(seeds) == len(SOURCES) * 50


def test_source_seed_fits_in_31_bits():
    for level in range(100):
        assert 0 <= source_seed(123, "order", level) < 2**31


def test_source_seed_stable_across_processes():
    code = "from embvar.seeds import source_seed; print(source_seed(11, 'noise', 4))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "123"},
    )
    assert int(out.stdout) == source_seed(11, "noise", 4)


def test_source_seeds_missing_levels_default_to_zero():
    seeds = source_seeds(5, {"init": 3})
    assert seeds["init"] == source_seed(5, "init", 3)
    assert seeds["order"] == source_seed(5, "order", 0)


@pytest.mark.parametrize("source,level", [("weights", 0), ("init", -1), ("init", 1.5)])
def test_source_seed_bad_input_rejected(source, level):
    with pytest.raises(ConfigError, match="must be"):
        source_seed(0, source, level)
