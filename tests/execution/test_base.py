"""The executor interface: choosing an executor, [execution], Ray missing."""

from __future__ import annotations

import subprocess
import sys

import pytest

from embvar.config import ExecutionSpec, parse_study, plan_runs
from embvar.errors import ConfigError, DependencyError
from embvar.execution import LocalExecutor, executor_for, make_executor
from embvar.execution.base import Executor
from embvar.report.progress import StudyProgress

STUDY = {
    "name": "s",
    "design": [{"name": "seeds", "factors": {"init": [0, 1], "order": [0, 1]}}],
}


def test_execution_table_parsed_with_memory_units():
    study = parse_study(
        {
            **STUDY,
            "execution": {
                "executor": "ray",
                "address": "auto",
                "cpus": 2,
                "gpus": 0.5,
                "memory": "2GiB",
                "max_retries": 1,
            },
        }
    )
    assert study.execution == ExecutionSpec(
        executor="ray",
        address="auto",
        cpus=2.0,
        gpus=0.5,
        memory=2 * 2**30,
        max_retries=1,
    )
    assert ExecutionSpec(memory="512MB").memory == 512 * 10**6
    assert ExecutionSpec(memory=1000).memory == 1000


def test_execution_table_not_in_run_ids():
    plain = [s.run_id for s in plan_runs(parse_study(STUDY))]
    ray = [
        s.run_id
        for s in plan_runs(
            parse_study(
                {**STUDY, "execution": {"executor": "ray", "cpus": 4, "memory": "1GB"}}
            )
        )
    ]
    assert plain == ray and len(set(plain)) == 4


@pytest.mark.parametrize(
    "table,message",
    [
        ({"executor": "slurm"}, "execution.executor"),
        ({"cpus": 0}, "execution.cpus"),
        ({"memory": "2 parsecs"}, "execution.memory"),
        ({"max_retries": -1}, "execution.max_retries"),
    ],
)
def test_execution_table_bad_value_one_line_config_error(table, message):
    with pytest.raises(ConfigError, match=message) as info:
        parse_study({**STUDY, "execution": table})
    assert "\n" not in str(info.value)


def test_executor_for_arguments_override_study_file():
    local = parse_study(STUDY).execution
    chosen = executor_for(local, None, workers=3)
    assert isinstance(chosen, LocalExecutor) and chosen.workers == 3
    mine = LocalExecutor(workers=2)
    assert executor_for(local, mine) is mine
    with pytest.raises(ConfigError, match="address is for executor='ray'"):
        executor_for(local, "local", address="auto")
    with pytest.raises(
        ConfigError, match="executor must be one of local, ray; got 'dask'"
    ):
        make_executor("dask")
    with pytest.raises(ConfigError, match="got int"):
        make_executor(3)  # type: ignore[arg-type]


def test_local_executor_satisfies_protocol():
    assert isinstance(LocalExecutor(), Executor)


def test_executor_ray_without_ray_installed_dependency_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    ray_study = parse_study({**STUDY, "execution": {"executor": "ray"}}).execution
    with pytest.raises(DependencyError, match=r"pip install 'embvar\[ray\]'"):
        executor_for(ray_study)
    with pytest.raises(DependencyError, match="needs Ray"):
        make_executor("ray", address="auto")


def test_cli_executor_ray_without_ray_one_line_exit_2(small_study_file, tmp_path):
    code = (
        "import sys; sys.modules['ray'] = None; from embvar.cli import main; "
        f"sys.argv = ['embvar', 'study', {str(small_study_file)!r}, '--executor', "
        f"'ray', '--dir', {str(tmp_path / 'out')!r}]; main()"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("embvar: error: executor='ray' needs Ray")
    assert "pip install 'embvar[ray]'" in lines[-1]
    assert not (tmp_path / "out").exists()  # nothing written


def test_progress_counts_pending_running_done():
    bar = StudyProgress(total=3, enabled=False)
    assert bar.counts() == {"pending": 3, "running": 0, "done": 0}
    bar.event(("start", "a", 0, 0))
    bar.event(("start", "b", 0, 0))
    bar.event(("epoch", "a", 1, 2))
    assert bar.counts() == {"pending": 1, "running": 2, "done": 0}
    bar.finished("a")
    assert bar.counts() == {"pending": 1, "running": 1, "done": 1}
    bar.finished("b")
    bar.finished("c")  # finished without a start event (a failure before it)
    assert bar.counts() == {"pending": 0, "running": 0, "done": 3}
