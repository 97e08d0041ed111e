"""Executors: where a study's runs are trained (this machine, or Ray)."""

from embvar.execution.base import Executor, executor_for, make_executor
from embvar.execution.local import LocalExecutor

__all__ = ["Executor", "LocalExecutor", "executor_for", "make_executor"]
