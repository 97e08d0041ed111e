"""The documented maxima: accepted at the limit, one clear error above it."""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest

from embvar.config import MAX_RUNS, load_study, plan_runs
from embvar.errors import ConfigError
from embvar.limits import MAX_TABLE_VALUES, check_table_size
from embvar.store import load_array, save_array
from embvar.study import check_inputs, prepare_all
from tests.reliability.conftest import EMBVAR, SUBPROCESS_ENV


def test_table_at_the_limit_accepted_one_above_refused():
    check_table_size("item_embedding", MAX_TABLE_VALUES // 64, 64)
    with pytest.raises(ConfigError) as err:
        check_table_size("item_embedding", MAX_TABLE_VALUES // 64 + 1, 64)
    message = str(err.value)
    assert message.startswith(
        "item_embedding would hold 1,048,577 rows x dim 64 = 67,108,928 values"
    )
    assert "the most one table may hold is 67,108,864" in message


def _wide_study(tmp_path, n_items: int):
    # Two users, n_items items: the item table is n_items x 4096.
    rows = ["user,item,rating"] + [f"{i % 2},{i},3" for i in range(n_items)]
    ratings = tmp_path / f"wide{n_items}.csv"
    ratings.write_text("\n".join(rows) + "\n")
    path = tmp_path / f"wide{n_items}.toml"
    path.write_text(
        f'name = "wide"\n[data]\nsource = "{ratings}"\n[model]\ndim = 4096\n'
    )
    return path


def test_study_at_the_table_limit_passes_the_checks(tmp_path):
    specs = plan_runs(load_study(_wide_study(tmp_path, MAX_TABLE_VALUES // 4096)))
    check_inputs(specs, prepare_all(specs))


def test_study_above_the_table_limit_refused_before_writing(tmp_path):
    study = _wide_study(tmp_path, MAX_TABLE_VALUES // 4096 + 1)
    out = tmp_path / "out"
    proc = subprocess.run(
        [*EMBVAR, "study", str(study), "--dir", str(out)],
        env=SUBPROCESS_ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert "item_embedding would hold 16,385 rows x dim 4096" in lines[0]
    assert "Lower model.dim" in lines[0]
    assert not out.exists()


@pytest.mark.slow
def test_store_writes_and_reads_a_table_at_the_limit_without_copies(tmp_path):
    table = np.ones((MAX_TABLE_VALUES // 64, 64), np.float32)  # 256 MiB
    size = table.nbytes
    tracemalloc.start()
    try:
        digest = save_array(tmp_path / "t.npy", table)
        _, peak_save = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        loaded = load_array(tmp_path / "t.npy", digest)
        _, peak_load = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Writing streams the table (and hashes it in 1 MiB chunks): no copy.
    assert peak_save < 16 << 20, peak_save
    # Reading allocates the table once, and nothing of its size more.
    assert size <= peak_load < size + (16 << 20), peak_load
    assert loaded.shape == table.shape and loaded[-1, -1] == 1.0


PLAN_AT_LIMIT = """
import json
from embvar.config import MAX_RUNS, parse_study, plan_runs
from embvar.errors import ConfigError
from embvar.store import Store
side = int(MAX_RUNS ** 0.5)
study = {{"name": "many", "design": [{{"factors": {{
    "init": list(range(side)), "order": list(range(MAX_RUNS // side))}}}}]}}
specs = plan_runs(parse_study(study))
with Store({out!r}) as store:
    store.register(specs)
    registered = len(store.runs())
try:
    study["design"][0]["factors"]["order"].append(MAX_RUNS)
    plan_runs(parse_study(study))
    above = "accepted"
except ConfigError as exc:
    above = str(exc)
# VmHWM: this process's peak, not the parent's (ru_maxrss survives exec).
status = open("/proc/self/status").read()
peak_mib = int(status.split("VmHWM:")[1].split()[0]) / 1024
print(json.dumps({{"planned": len(specs), "registered": registered,
                  "above": above, "peak_mib": peak_mib}}))
"""


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_study_at_the_run_limit_plans_and_registers_in_bounded_memory(tmp_path):
    code = PLAN_AT_LIMIT.format(out=str(tmp_path / "out"))
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env=SUBPROCESS_ENV,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["planned"] == got["registered"] == MAX_RUNS
    assert got["above"].startswith(f"study 'many' plans more than {MAX_RUNS} runs")
    # The interpreter, NumPy, pydantic and 10,000 specs (about 150 MiB measured).
    assert got["peak_mib"] < 400, got
