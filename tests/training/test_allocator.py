"""The allocator tuning changes how memory is reused, never what is computed."""

import os
import subprocess
import sys

import pytest

from embvar.training.allocator import tune_allocator

# Train two replicas of a small study and print a digest of their tables.
TRAIN = """
import hashlib, sys
from embvar.config import parse_study, plan_runs
from embvar.data.prepared import prepare_data
from embvar.training.allocator import tune_allocator
from embvar.training.replicas import train_replicas
import tomllib
from tests.conftest import SMALL_STUDY
specs = plan_runs(parse_study(tomllib.loads(SMALL_STUDY)))[:2]
data = prepare_data(specs[0].data, specs[0].seeds["split"])
results = train_replicas(specs, data)
h = hashlib.sha256()
for r in results:
    for epoch in sorted(r.snapshots):
        for name in sorted(r.snapshots[epoch]):
            h.update(r.snapshots[epoch][name].tobytes())
print(tune_allocator(), h.hexdigest())
"""


def test_tune_allocator_is_idempotent():
    first = tune_allocator()
    assert tune_allocator() is first
    glibc = os.path.exists("/lib/x86_64-linux-gnu/libc.so.6")
    if sys.platform.startswith("linux") and glibc:
        assert first is True  # glibc offers mallopt


@pytest.mark.slow
def test_training_bitwise_identical_with_and_without_tuning():
    out = {}
    for setting in ("1", "0"):
        env = {**os.environ, "EMBVAR_MALLOC_TUNING": setting}
        env["TF_CPP_MIN_LOG_LEVEL"] = "3"
        proc = subprocess.run(
            [sys.executable, "-c", TRAIN],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        tuned, digest = proc.stdout.split()[-2:]
        out[setting] = (tuned, digest)
    assert out["0"][0] == "False"
    assert out["1"][1] == out["0"][1]
