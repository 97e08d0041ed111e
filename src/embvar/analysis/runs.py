"""A study's finished runs, as the analysis reads them from the store.

:class:`StudyRuns` is the one place the analysis touches the store: it
lists finished runs by design and group, loads a run's tables at any epoch
(the last one kept in memory), its per-epoch history and the data it
trained on, and finds a perturbed run's unperturbed twin. Everything it
returns is plain NumPy, for the pure functions of the other modules.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from embvar.analysis.distances import RunEmbeddings, pairwise_matrix
from embvar.analysis.groups import group_label
from embvar.config import FACTOR_SECTIONS, RunSpec
from embvar.data.prepared import PreparedData
from embvar.seeds import SOURCES
from embvar.store import RunRecord, Store

__all__ = ["StudyRuns", "hyperparameter_values"]

DataFor = Callable[[dict[str, Any]], PreparedData]


def hyperparameter_values(spec: dict[str, Any]) -> dict[str, Any]:
    """Return the factor values of a run that are not seeds."""
    skip = (*SOURCES, "perturb", "replicate")
    return {k: v for k, v in spec["factors"].items() if k not in skip}


class StudyRuns:
    """The finished runs of one study directory.

    Parameters
    ----------
    store : Store
        The open study directory.
    data_for : callable(spec dict) -> PreparedData
        Returns the data a run trained on (cached by the caller).
    """

    def __init__(self, store: Store, data_for: DataFor):
        self.store = store
        self.data_for = data_for
        records = store.runs()
        self.done: list[RunRecord] = [r for r in records if r.status == "done"]
        self.diverged: list[RunRecord] = [r for r in records if r.status == "diverged"]
        self.by_id: dict[str, RunRecord] = {r.run_id: r for r in records}
        self._final: dict[str, RunEmbeddings] = {}
        self._history: dict[str, list[dict[str, Any]]] = {}
        study = store.get_meta("study") or {}
        self._factors: dict[str, list[str]] = {
            d["name"]: [k for k in d.get("factors", {}) if k in FACTOR_SECTIONS]
            for d in study.get("design", [])
        }

    # -- selecting runs ---------------------------------------------------------

    def in_design(
        self, name: str, *, include_diverged: bool = False
    ) -> list[RunRecord]:
        """Return the finished runs a design planned, in plan order."""
        pool = self.done + (self.diverged if include_diverged else [])
        chosen = {r.run_id for r in pool if name in r.spec["designs"]}
        return [r for r in self.by_id.values() if r.run_id in chosen]

    def designs(self) -> list[str]:
        """Return every design name of the finished runs, in plan order."""
        names: list[str] = []
        for r in self.by_id.values():
            for d in r.spec["designs"]:
                if d not in names:
                    names.append(d)
        return names

    def label(self, record: RunRecord, design: str | None = None) -> str:
        """Return the values of the design's hyperparameter factors for a run.

        Runs that several designs share are labelled by the factors of
        ``design`` (default: the first design that planned the run).
        """
        design = design or record.spec["designs"][0]
        names = self._factors.get(design)
        if names is None:
            return group_label(record.spec)
        parts = [f"{k}={record.spec[FACTOR_SECTIONS[k]][k]}" for k in names]
        if record.spec.get("perturb"):
            parts.append(f"perturb={record.spec['perturb']}")
        return ", ".join(parts) or "defaults"

    @staticmethod
    def groups(records: Sequence[RunRecord]) -> dict[str, list[RunRecord]]:
        """Return runs by group key (seed replicates), groups in plan order."""
        out: dict[str, list[RunRecord]] = {}
        for r in records:
            out.setdefault(r.group_key, []).append(r)
        return out

    @staticmethod
    def levels(
        records: Sequence[RunRecord], sources: Sequence[str]
    ) -> dict[str, np.ndarray]:
        """Return each seed source's level per run."""
        return {s: np.array([r.spec["levels"][s] for r in records]) for s in sources}

    @staticmethod
    def varied_sources(records: Sequence[RunRecord]) -> list[str]:
        """Return the seed sources whose level differs between ``records``."""
        return [s for s in SOURCES if len({r.spec["levels"][s] for r in records}) > 1]

    def twin(self, record: RunRecord) -> RunRecord | None:
        """Return the finished run identical to ``record`` but unperturbed."""
        spec = RunSpec.model_validate({**record.spec, "perturb": 0})
        twin = self.by_id.get(spec.run_id)
        return twin if twin is not None and twin.status == "done" else None

    # -- loading ----------------------------------------------------------------

    def data(self, record: RunRecord) -> PreparedData:
        return self.data_for(record.spec)

    def history(self, run_id: str) -> list[dict[str, Any]]:
        if run_id not in self._history:
            self._history[run_id] = self.store.history(run_id)
        return self._history[run_id]

    def test_rmse(self, run_id: str, epoch: int | None = None) -> float:
        """Return a run's test RMSE at ``epoch`` (default: its last)."""
        hist = self.history(run_id)
        if epoch is None:
            return float(hist[-1]["test_rmse"])
        by_epoch = {h["epoch"]: h["test_rmse"] for h in hist}
        value = by_epoch.get(epoch)
        return float("nan") if value is None else float(value)

    def epochs(self, run_id: str) -> list[int]:
        return self.store.epochs(run_id)

    def embeddings(
        self,
        record: RunRecord,
        epoch: int | None = None,
        *,
        query_rows: np.ndarray | None = None,
    ) -> RunEmbeddings:
        """Return a run's tables at ``epoch`` (default: its last, kept).

        ``query_rows`` measures the k-NN overlap on those items only (see
        :class:`~embvar.analysis.distances.RunEmbeddings`); such views are
        never kept.
        """
        keep = epoch is None and query_rows is None
        if keep and record.run_id in self._final:
            return self._final[record.run_id]
        data = self.data(record)
        out = RunEmbeddings(
            record.run_id,
            self.store.load_snapshot(record.run_id, epoch),
            mu=data.mu,
            test_pairs=(data.test_users, data.test_items),
            query_rows=query_rows,
        )
        if keep:
            self._final[record.run_id] = out
        return out

    def matrix(
        self, records: Sequence[RunRecord], metric: str, epoch: int | None = None
    ) -> np.ndarray:
        """Return ``metric`` between every pair of ``records`` at ``epoch``."""
        return pairwise_matrix([self.embeddings(r, epoch) for r in records], metric)

    def item_counts(self, record: RunRecord) -> np.ndarray:
        """Return how often each item occurs in the run's training data."""
        data = self.data(record)
        return np.bincount(data.train_items, minlength=data.interactions.n_items)

    def user_counts(self, record: RunRecord) -> np.ndarray:
        """Return how often each user occurs in the run's training data."""
        data = self.data(record)
        return np.bincount(data.train_users, minlength=data.interactions.n_users)
