"""Executors: where a study's runs are trained."""

from embvar.execution.local import LocalExecutor

__all__ = ["LocalExecutor"]
