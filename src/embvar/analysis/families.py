"""The report of a study whose models are not the built-in factorization.

Word models (the Keras skip-gram, gensim's Word2Vec) and users' builders
snapshot tables by name; this module analyses each group of seed
replicates table by table (:mod:`embvar.analysis.tables`) and, for words,
adds the function level (:mod:`embvar.analysis.words`):

- ``groups``: per group and table, the parameter, geometry and function
  levels, with every pair of runs;
- ``families``: the model families side by side: for each, its main
  group's spread, and between families the k-NN overlap of runs of one
  family with runs of the other (how far apart the two implementations
  are, against how far apart their own seeds put them);
- ``entities`` (the main group) and ``entities_by_group``: the least stable
  entities, with their neighbours in two runs;
- ``frequency``: stability against training frequency per word group;
- ``summary``: sentences, naming the words whose neighbourhoods are least
  stable.

The document has the same top-level shape as a factorization study's, so
the terminal summary and the HTML report draw it the same way.
"""

from __future__ import annotations

import itertools
import logging
import time
from typing import Any

import numpy as np

from embvar import __version__
from embvar.analysis.groups import SEED_KEYS, group_label, group_runs
from embvar.analysis.tables import entity_summary, finite_stats, table_levels
from embvar.config import DataSpec, RunSpec, Study
from embvar.store import RunRecord, Store

__all__ = ["build_family_report", "WORD_TABLE", "family_name"]

logger = logging.getLogger(__name__)

#: The table a word model's analysis is about (the context table is not).
WORD_TABLE = "word_embedding"

_K = 10


def family_name(kind: str) -> str:
    """A reader's name for a model kind."""
    return {
        "skipgram": "Keras skip-gram",
        "word2vec": "gensim Word2Vec",
        "factorization": "factorization",
    }.get(kind, kind)


def build_family_report(store: Store, study: Study, specs: list[RunSpec]) -> dict:
    """Return the report document of a study of word models or custom builders."""
    from embvar.report.document import runs_section

    t0 = time.perf_counter()
    records = {r.run_id: r for r in store.runs()}
    planned = [records[s.run_id] for s in specs if s.run_id in records]
    first = planned[0].spec if planned else None
    context = _DataContext(store)

    groups: list[dict[str, Any]] = []
    entity_list: list[dict[str, Any]] = []
    frequency: list[dict[str, Any]] = []
    tables_by_group: dict[str, tuple[list[np.ndarray], list[str], Any]] = {}
    planned_ids = {r.run_id for r in planned}
    for members in group_runs(list(records.values())).values():
        members = [m for m in members if m.run_id in planned_ids]
        if len(members) < 2:
            continue
        for table in _tables_of(store, members[0]):
            entry, tables, overlap, neighbors = _group_entry(
                store, members, table, context
            )
            groups.append(entry)
            tables_by_group[entry["group"] + ":" + table] = (
                tables,
                [m.run_id for m in members],
                neighbors,
            )
            if entry.get("entities") is not None:
                entity_list.append(entry.pop("entities"))
            counts = context.counts(members[0].spec)
            if overlap is not None and counts is not None:
                frequency.append(_frequency(counts, overlap, entry["label"]))

    report: dict[str, Any] = {
        "embvar_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "study": {
            "name": study.name,
            "description": study.description,
            "root_seed": study.root_seed,
            "quick": bool(store.get_meta("quick", False)),
            "designs": [d.model_dump() for d in study.design],
        },
        "directory": str(store.root),
        "data": None if first is None else context.describe(first),
        "runs": runs_section(specs, planned),
        "groups": groups,
        "families": _families(groups, tables_by_group),
        "entities": max(entity_list, key=lambda e: e["n_pairs"])
        if entity_list
        else None,
        "entities_by_group": entity_list,
        "frequency": frequency or None,
    }
    report["summary"] = family_sentences(report)
    report["analysis_seconds"] = {"families": round(time.perf_counter() - t0, 2)}
    return report


class _DataContext:
    """Per data spec: the words, their counts, and the benchmark files."""

    def __init__(self, store: Store):
        self.store = store
        self._cache: dict[str, Any] = {}

    def data(self, spec: dict[str, Any]) -> Any:
        from embvar.data.prepared import data_key, prepare_data

        data_spec = DataSpec(**spec["data"])
        key = data_key(data_spec, spec["seeds"]["split"])
        if key not in self._cache:
            self._cache[key] = prepare_data(data_spec, spec["seeds"]["split"])
        return self._cache[key]

    def is_text(self, spec: dict[str, Any]) -> bool:
        return DataSpec(**spec["data"]).kind == "text"

    def words(self, spec: dict[str, Any]) -> np.ndarray | None:
        return self.data(spec).words if self.is_text(spec) else None

    def counts(self, spec: dict[str, Any]) -> np.ndarray | None:
        if self.is_text(spec):
            return self.data(spec).counts
        return None

    def benchmarks(self, spec: dict[str, Any]) -> Any:
        from embvar.analysis.words import default_benchmarks, stemmed_benchmarks

        if not DataSpec(**spec["data"]).stem_benchmarks:
            return default_benchmarks()
        folder = self.store.root / "data" / self.data(spec).key / "benchmarks"
        if "benchmarks" not in self._cache:
            self._cache["benchmarks"] = stemmed_benchmarks(folder)
        return self._cache["benchmarks"]

    def describe(self, spec: dict[str, Any]) -> dict[str, Any]:
        data = self.data(spec)
        if self.is_text(spec):
            return {
                "name": data.name,
                "kind": "text",
                "n_words": data.n_words,
                "n_tokens": data.n_tokens,
                "n_sentences": data.n_sentences,
                "min_count": DataSpec(**spec["data"]).min_count,
                "benchmarks_stemmed": DataSpec(**spec["data"]).stem_benchmarks,
            }
        inter = data.interactions
        return {
            "name": inter.name,
            "n_users": inter.n_users,
            "n_items": inter.n_items,
            "n_train": int(len(data.split.train)),
            "n_test": int(len(data.split.test)),
        }


def _tables_of(store: Store, record: RunRecord) -> list[str]:
    names = sorted(store.load_snapshot(record.run_id, verify=False))
    if record.spec["model"].get("kind") in ("skipgram", "word2vec"):
        return [WORD_TABLE]
    return names


def _hyperparameters(spec: dict[str, Any]) -> dict[str, Any]:
    model, training = spec["model"], spec["training"]
    out = {
        "kind": model.get("kind", "factorization"),
        "dim": model.get("dim"),
        "epochs": training.get("epochs"),
        "learning_rate": training.get("learning_rate"),
    }
    if out["kind"] in ("skipgram", "word2vec"):
        out.update(
            window=model.get("window", 5),
            negatives=model.get("negatives", 5),
            subsample=model.get("subsample", 1e-3),
        )
    if out["kind"] == "word2vec":
        out["workers"] = model.get("workers", 1)
    else:
        out.update(
            optimizer=training.get("optimizer"), batch_size=training.get("batch_size")
        )
    for key, value in spec.get("factors", {}).items():
        if key not in SEED_KEYS:
            out.setdefault(key, value)
    return out


def _label(spec: dict[str, Any], table: str, several_tables: bool) -> str:
    # The family's name, then the other factor values.
    kind = spec["model"].get("kind", "factorization")
    others = {k: v for k, v in spec.get("factors", {}).items() if k != "kind"}
    label = group_label({**spec, "factors": others})
    name = family_name(kind)
    label = name if label == "defaults" else f"{name}, {label}"
    if spec.get("repeat") is not None:
        label += ", same seeds trained again"
    return f"{label} [{table}]" if several_tables else label


def _group_entry(
    store: Store, members: list[RunRecord], table: str, context: _DataContext
) -> tuple[dict[str, Any], list[np.ndarray], np.ndarray | None, Any]:
    from embvar.analysis.words import word_function

    spec = members[0].spec
    names = [m.run_id for m in members]
    tables = [store.load_snapshot(m.run_id)[table] for m in members]
    several = len(_tables_of(store, members[0])) > 1
    label = _label(spec, table, several)
    levels = table_levels(tables, names, k=_K)
    neighbors = levels.pop("neighbors")

    # Function: word benchmarks, or test RMSE from the history.
    words = context.words(spec)
    if words is not None:
        function = word_function(tables, words.tolist(), context.benchmarks(spec))
    else:
        rmse = [store.history(m.run_id)[-1]["test_rmse"] for m in members]
        function = {}
        if any(v is not None for v in rmse):
            function["test_rmse"] = {**finite_stats(rmse), "values": rmse}

    ids = words if words is not None else np.arange(len(tables[0])).astype(str)
    entities, overlap = entity_summary(
        tables,
        names,
        ids,
        frequency=context.counts(spec),
        group=label,
        table=table,
        k=_K,
        neighbors=neighbors,
    )
    entry = {
        "group": members[0].group_key,
        "label": label,
        "kind": spec["model"].get("kind", "factorization"),
        "family": family_name(spec["model"].get("kind", "factorization")),
        "repeats": spec.get("repeat") is not None,
        "table": table,
        "hyperparameters": _hyperparameters(spec),
        "designs": sorted({d for m in members for d in m.spec["designs"]}),
        "run_ids": names,
        "n_runs": len(members),
        "n_entities": int(len(tables[0])),
        "parameters": levels["parameters"],
        "geometry": levels["geometry"],
        "function": function,
        "pairs": levels["pairs"],
        "entities": entities,
        "seconds": finite_stats([m.seconds for m in members]),
    }
    return entry, tables, overlap, neighbors


def _frequency(counts: np.ndarray, overlap: np.ndarray, label: str) -> dict[str, Any]:
    from embvar.analysis.frequency import stability_by_frequency

    out = stability_by_frequency(
        counts, overlap, metric=f"knn_overlap@{_K}", n_resamples=200
    )
    return {**out, "group": label}


def _families(
    groups: list[dict[str, Any]],
    tables: dict[str, tuple[list[np.ndarray], list[str], Any]],
) -> dict[str, Any] | None:
    """Each family's main group, and the k-NN overlap between families."""
    from embvar.metrics import neighbor_overlap

    main: dict[str, dict[str, Any]] = {}
    for g in groups:
        if g["table"] not in (WORD_TABLE,) and g["kind"] in ("skipgram", "word2vec"):
            continue
        best = main.get(g["kind"])
        if best is None or g["n_runs"] > best["n_runs"]:
            main[g["kind"]] = g
    if not main:
        return None
    knn_key = f"knn_overlap@{_K}"
    within = [
        {
            "kind": kind,
            "family": g["family"],
            "label": g["label"],
            "n_runs": g["n_runs"],
            "procrustes": g["geometry"]["procrustes"],
            knn_key: g["geometry"][knn_key],
            "cka": g["geometry"]["cka"],
            **{k: v for k, v in g["function"].items()},
            "seconds": g.get("seconds"),
        }
        for kind, g in main.items()
    ]
    between = []
    for (_, ga), (_, gb) in itertools.combinations(main.items(), 2):
        ta, ra, na = tables[ga["group"] + ":" + ga["table"]]
        tb, rb, nb = tables[gb["group"] + ":" + gb["table"]]
        if ta[0].shape[0] != tb[0].shape[0]:
            continue
        # The same words, row for row (both tables are in vocabulary order).
        values = [
            float(neighbor_overlap(na.indices[i], nb.indices[j]).mean())
            for i in range(len(ta))
            for j in range(len(tb))
        ]
        between.append(
            {
                "families": [ga["family"], gb["family"]],
                "groups": [ga["label"], gb["label"]],
                knn_key: finite_stats(values),
                "pairs": [
                    {"runs": [ra[i], rb[j]], knn_key: values[i * len(tb) + j]}
                    for i in range(len(ta))
                    for j in range(len(tb))
                ],
            }
        )
    return {"within": within, "between": between}


def family_sentences(report: dict[str, Any]) -> list[str]:
    """A few sentences on how much each family's embeddings vary, and where."""
    runs = report["runs"]
    out = [
        f"{runs['done']} of {runs['planned']} planned runs finished"
        + (f", {len(runs['diverged'])} diverged" if runs["diverged"] else "")
        + (f", {len(runs['failed'])} failed" if runs["failed"] else "")
        + "."
    ]
    groups = report.get("groups") or []
    if not groups:
        out.append("No group has two finished runs yet, so nothing can be compared.")
        return out
    knn_key = f"knn_overlap@{_K}"
    for g in groups:
        geo = g["geometry"]
        knn, proc = geo[knn_key], geo["procrustes"]
        if knn["mean"] is None:
            continue
        runs = (
            "runs with the same seeds"
            if g.get("repeats")
            else "runs that differ only in their seeds"
        )
        text = (
            f"{g['label']}: {g['n_runs']} {runs} keep on average "
            f"{100 * knn['mean']:.0f}% of a word's {_K} nearest neighbours "
            f"(Procrustes distance {proc['mean']:.3f})"
        )
        if proc["mean"] is not None and proc["mean"] < 1e-6:
            text = (
                f"{g['label']}: {g['n_runs']} runs with the same seeds gave identical "
                "tables: this setting is deterministic"
            )
        ws = g["function"].get("wordsim353")
        if ws and ws.get("mean") is not None:
            text += (
                f"; WordSim353 rho {ws['mean']:.3f} ± {ws['sd']:.3f} "
                f"({ws['n_evaluated']} pairs)"
            )
        rmse = g["function"].get("test_rmse")
        if rmse and rmse.get("mean") is not None:
            text += f"; test RMSE {rmse['mean']:.4f} ± {rmse['sd']:.4f}"
        out.append(text + ".")
    fam = report.get("families") or {}
    for b in fam.get("between") or []:
        m = b[knn_key]["mean"]
        if m is not None:
            out.append(
                f"Between the families ({' vs '.join(b['families'])}) a word keeps "
                f"{100 * m:.0f}% of its neighbours: that is how far apart the two "
                "implementations put the same words."
            )
    for e in report.get("entities_by_group") or []:
        rows = e.get("least_stable_frequent") or e.get("least_stable") or []
        if rows:
            words = ", ".join(
                f"{r['label']} ({100 * r['overlap']:.0f}%)" for r in rows[:6]
            )
            where = (
                f"among the words seen at least {e['frequent_threshold']} times"
                if e.get("least_stable_frequent")
                else "overall"
            )
            out.append(
                f"Least stable neighbourhoods in {e['group']}, {where}: {words}."
            )
    for f in report.get("frequency") or []:
        rho = (f.get("spearman") or {}).get("rho")
        if rho is None:
            continue
        if abs(rho) < 0.1:
            trend = "barely depends on how often it occurs"
        else:
            trend = "rises with its count" if rho > 0 else "falls with its count"
        out.append(
            f"In {f['group']}, a word's neighbour stability {trend} (Spearman rho "
            f"{rho:.2f} between count and k-NN overlap, words seen at least "
            f"{_min_count(report)} times)."
        )
    return out


def _min_count(report: dict[str, Any]) -> Any:
    return (report.get("data") or {}).get("min_count", 1)
