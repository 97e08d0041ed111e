"""Shared fixtures: small studies that train in seconds."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SMALL_STUDY = """
name = "small"
root_seed = 7
[data]
fraction = 0.2
[model]
dim = 8
[training]
epochs = 2
learning_rate = 0.01
batch_size = 2048
[[design]]
name = "seeds"
factors = { init = [0, 1], order = [0, 1] }
"""


@pytest.fixture
def small_study_file(tmp_path: Path) -> Path:
    path = tmp_path / "small.toml"
    path.write_text(SMALL_STUDY)
    return path
