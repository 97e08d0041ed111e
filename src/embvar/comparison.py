"""Compare embeddings users already have: files, or a store of recorded runs.

``compare`` is the Python API behind ``embvar compare``. It reads two or
more embedding tables, each with the id of every row, lines their rows up
on the ids they share, and measures how they differ with the whole metric
suite, in the same ``report.json`` (and ``report.html``) a study writes:

- parameters: relative Frobenius distance, mean absolute difference (when
  the dimensions agree);
- geometry: Procrustes and angular shape distance, linear CKA, PIP loss,
  eigenspace overlap, k-NN overlap and Jaccard, similarity correlation;
- function, when the ids are words: WordSim353 and SimLex-999 Spearman
  correlations and analogy accuracy of each table, with the pairs and
  questions out of the vocabulary counted;
- per entity: the least and most stable entities, with their neighbours.

An input is a file in any format :mod:`embvar.formats` reads, an
:class:`~embvar.formats.Embeddings`, or a store directory written by
:class:`embvar.keras.EmbeddingRecorder` (or a study), whose finished runs
are compared table by table, runs with the same settings together.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from embvar import __version__
from embvar.errors import ConfigError, DataError
from embvar.formats import Embeddings, read_embeddings

__all__ = ["compare", "CompareOutcome", "default_compare_directory", "REPORT_NAME"]

logger = logging.getLogger(__name__)

REPORT_NAME = "report.json"


@dataclass
class CompareOutcome:
    """What ``compare`` found and where it wrote it."""

    report: dict[str, Any]
    report_path: Path | None = None
    html_path: Path | None = None


@dataclass
class _Item:
    """One table to compare and the group it belongs to."""

    name: str
    embeddings: Embeddings
    group: str
    label: str
    spec: dict[str, Any] | None = None


def is_store(path: str | Path) -> bool:
    """Return whether ``path`` is an embvar store directory."""
    return Path(path).is_dir() and (Path(path) / "index.sqlite").is_file()


def default_compare_directory(inputs: Sequence[str | Path]) -> Path:
    """Where ``embvar compare`` writes by default.

    The store itself for one store of recorded runs; ``runs/compare``
    otherwise (a study's own report is never overwritten).
    """
    if len(inputs) == 1 and _recorded_store(inputs[0]):
        return Path(inputs[0])
    return Path("runs") / "compare"


def compare(
    inputs: Sequence[str | Path | Embeddings],
    out: str | Path | None = None,
    *,
    format: str | None = None,
    layer: str | None = None,
    variable: str | None = None,
    names: Sequence[str] | None = None,
    k: int = 10,
    words: bool | None = None,
    html: bool = True,
    ids: str | None = None,
) -> CompareOutcome:
    """Compare two or more embedding tables matched on their ids.

    Parameters
    ----------
    inputs : sequence of path or Embeddings
        Embedding files (any format :func:`embvar.formats.read_embeddings`
        reads), tables already read, or store directories.
    out : str or Path, optional
        Folder for ``report.json`` and ``report.html``; default: nothing is
        written, except for a single store of recorded runs, whose folder
        receives the report.
    format : str, optional
        Force the format of every file (default: detected per file).
    layer, variable : str, optional
        The layer of Keras files, the variable of TensorFlow checkpoints.
    names : sequence of str, optional
        Display names of the file inputs (default: their file names).
    k : int, default=10
        Neighbours for the k-NN metrics.
    words : bool, optional
        Score the tables on the word benchmarks; default: when the ids
        are words (at least 10 WordSim353 pairs known).
    html : bool, default=True
        Also write ``report.html``.
    ids : "rows", optional
        ``"rows"``: a file that stores no ids (a ``.npy`` with no ids file
        beside it, a Keras file, a checkpoint) is matched row for row: its
        row ``r`` is the entity of row ``r`` of the first file that has ids
        (which must have as many rows), or, if no file has ids, row ``r`` of
        every file. Default: such a ``.npy`` is an error.

    Returns
    -------
    CompareOutcome
        The report (a dict, as written to ``report.json``) and the paths.

    Raises
    ------
    ConfigError
        If fewer than two tables are given.
    DataError
        If a file cannot be read, or two tables share no id.

    Examples
    --------
    >>> outcome = compare(["run0.npz", "run1.npz"], "cmp")  # doctest: +SKIP
    >>> outcome.report["summary"][0]  # doctest: +SKIP
    """
    if not inputs:
        raise ConfigError("inputs must name at least two embedding files; got none.")
    if names is not None and len(names) != len(inputs):
        raise ConfigError(
            f"names must give one name per input ({len(inputs)}); got {len(names)}."
        )
    if ids is not None and ids != "rows":
        raise ConfigError(
            f"ids must be 'rows' (match files without ids row for row); "
            f"got ids={ids!r}."
        )
    if out is None and len(inputs) == 1 and _recorded_store(inputs[0]):
        out = Path(inputs[0])  # type: ignore[arg-type]
    options = {"format": format, "layer": layer, "variable": variable}
    items = _read_inputs(inputs, names, options, rows=ids == "rows")
    if len(items) < 2:
        raise ConfigError(
            f"compare needs at least two embedding tables; got {len(items)} from "
            f"{[str(i) for i in inputs]}."
        )
    report = build_compare_report(items, k=k, words=words)
    outcome = CompareOutcome(report)
    if out is not None:
        outcome.report_path, outcome.html_path = _write(report, Path(out), html)
    return outcome


def build_compare_report(
    items: list[_Item], *, k: int = 10, words: bool | None = None
) -> dict[str, Any]:
    """Return the report document of a comparison (see :func:`compare`)."""
    from embvar.analysis.tables import align_tables, entity_summary, table_levels
    from embvar.report.document import to_json_safe

    by_group: dict[str, list[_Item]] = {}
    for item in items:
        by_group.setdefault(item.group, []).append(item)

    groups, coverage, files = [], {}, []
    entities = None
    skipped = []
    for key, members in by_group.items():
        if len(members) < 2:
            skipped.append(members[0].name)
            continue
        names = [m.name for m in members]
        tables, common, cover = align_tables(
            [m.embeddings.vectors for m in members],
            [m.embeddings.ids for m in members],
            names,
        )
        levels = table_levels(tables, names, k=k)
        levels.pop("neighbors")
        function: dict[str, Any] = {}
        use_words = words if words is not None else _words_auto(common)
        if use_words:
            from embvar.analysis.words import word_function

            function = word_function(tables, common.tolist())
        label = members[0].label
        groups.append(
            {
                "group": key,
                "label": label,
                "hyperparameters": {},
                "designs": [],
                "run_ids": names,
                "n_runs": len(members),
                "table": members[0].embeddings.table,
                "n_entities": int(len(common)),
                "coverage": cover,
                "parameters": levels["parameters"],
                "geometry": levels["geometry"],
                "function": function,
                "pairs": levels["pairs"],
            }
        )
        coverage[key] = {
            "n_common": int(len(common)),
            "per_file": [c["coverage"] for c in cover],
        }
        for m, c in zip(members, cover, strict=True):
            files.append(
                {
                    "name": m.name,
                    "path": m.embeddings.source,
                    "format": m.embeddings.format,
                    "table": m.embeddings.table,
                    "n_rows": m.embeddings.n_entities,
                    "dim": m.embeddings.dim,
                    "ids_from": m.embeddings.ids_from,
                    "n_matched": c["n_matched"],
                    "coverage": c["coverage"],
                    "group": label,
                }
            )
        if entities is None or len(members) > entities["n_runs"]:
            summary, _ = entity_summary(
                tables, names, common, group=label, table=groups[-1]["table"], k=k
            )
            if summary is not None:
                entities = {**summary, "n_runs": len(members)}
    if not groups:
        raise ConfigError(
            "compare needs two tables of the same kind to compare; every group has "
            f"one ({', '.join(skipped)})."
        )
    main = max(groups, key=lambda g: g["n_runs"])
    report: dict[str, Any] = {
        "embvar_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "kind": "compare",
        "title": f"Comparison of {len(files)} embedding tables",
        "study": {
            "name": "compare",
            "description": "Embedding tables compared on the ids they share.",
            "quick": False,
            "designs": [],
        },
        "compare": {
            "files": files,
            "coverage": coverage[main["group"]],
            "coverage_by_group": coverage,
            "skipped": skipped,
        },
        "runs": {
            "planned": len(items),
            "done": len(items),
            "diverged": [],
            "failed": [],
            "unfinished": [],
            "table": [_run_row(i) for i in items],
        },
        "groups": groups,
        "entities": entities,
    }
    report["summary"] = compare_sentences(report)
    return to_json_safe(report)


def compare_sentences(report: dict[str, Any]) -> list[str]:
    """Return a few plain sentences that say how much the tables differ."""
    out = []
    g = max(report["groups"], key=lambda x: x["n_runs"])
    shares = ", ".join(f"{c['name']} {100 * c['coverage']:.0f}%" for c in g["coverage"])
    out.append(
        f"{g['n_runs']} tables compared on the {g['n_entities']:,} entities they "
        f"share (share of each table's rows: {shares})."
    )
    geo = g["geometry"]
    knn = next(v for key, v in geo.items() if key.startswith("knn_overlap"))
    out.append(
        f"After the best rotation and scaling the Procrustes distance between two "
        f"tables averages {geo['procrustes']['mean']:.3f} (0 = the same shape, 1 = "
        f"unrelated), linear CKA {geo['cka']['mean']:.3f} (1 = the same), and an "
        f"entity keeps on average {100 * knn['mean']:.0f}% of its nearest neighbours."
    )
    for name, title in (("wordsim353", "WordSim353"), ("simlex999", "SimLex-999")):
        score = g["function"].get(name)
        if score and score.get("mean") is not None:
            out.append(
                f"{title} Spearman rho ranges from {score['min']:.3f} to "
                f"{score['max']:.3f} across the tables ({score['n_evaluated']} of "
                f"{score['n_total']} pairs in the shared vocabulary)."
            )
    e = report.get("entities")
    if e and e.get("least_stable"):
        words = ", ".join(
            f"{r['label']} ({100 * r['overlap']:.0f}%)" for r in e["least_stable"][:5]
        )
        out.append(f"Least stable neighbourhoods: {words}.")
    return out


def _run_row(item: _Item) -> dict[str, Any]:
    spec = item.spec or {}
    return {
        "run_id": item.name,
        "status": "done",
        "factors": spec.get("factors", {}),
        "designs": spec.get("designs", []),
        "seeds": spec.get("seeds", {}),
        "seconds": None,
        "source": item.embeddings.source,
    }


def _words_auto(ids: np.ndarray) -> bool:
    from embvar.analysis.words import looks_like_words

    return looks_like_words(ids)


def _read_inputs(
    inputs: Sequence[str | Path | Embeddings],
    names: Sequence[str] | None,
    options: dict[str, Any],
    *,
    rows: bool = False,
) -> list[_Item]:
    items: list[_Item] = []
    file_names = _display_names(inputs)
    for index, source in enumerate(inputs):
        name = names[index] if names is not None else file_names[index]
        if isinstance(source, Embeddings):
            items.append(_Item(name, source, "files", "files"))
        elif is_store(source):
            items.extend(_store_items(Path(source)))
        else:
            emb = read_embeddings(
                source, **options, **_rows_option(source, options, rows)
            )
            items.append(_Item(name, emb, "files", "files"))
    if rows:
        _match_rows_by_position(items)
    seen: set[str] = set()
    for item in items:
        if item.name in seen:
            raise ConfigError(
                f"two inputs are both named {item.name!r}; give distinct names with "
                "names=[...]."
            )
        seen.add(item.name)
    return items


def _rows_option(source: Any, options: dict[str, Any], rows: bool) -> dict[str, Any]:
    """``ids="rows"`` for a ``.npy`` with no ids file beside it, when asked."""
    from embvar.formats.detect import detect_format
    from embvar.formats.embeddings import sibling_ids_path

    if not rows:
        return {}
    fmt = options.get("format") or detect_format(source)
    if fmt == "npy" and sibling_ids_path(Path(source)) is None:
        return {"ids": "rows"}
    return {}


def _match_rows_by_position(items: list[_Item]) -> None:
    """Give the files without ids the ids of the first file that has them.

    Row ``r`` of a file read with row numbers for ids becomes the entity of
    row ``r`` of that file (``ids="rows"`` of :func:`compare`).
    """
    import dataclasses

    files = [i for i in items if i.group == "files"]
    named = next((i for i in files if i.embeddings.ids_from != "rows"), None)
    if named is None:
        return  # every file by row numbers: already matched by position
    n = named.embeddings.n_entities
    for item in files:
        emb = item.embeddings
        if emb.ids_from != "rows":
            continue
        if emb.n_entities != n:
            raise DataError(
                f"{item.name!r} stores no ids, so with ids='rows' its rows are "
                f"matched to those of {named.name!r}, which has {n} rows; it has "
                f"{emb.n_entities}. Write its ids, one per line, to an ids file "
                "beside it."
            )
        item.embeddings = dataclasses.replace(
            emb, ids=named.embeddings.ids, ids_from=f"rows of {named.name}"
        )


def _display_names(inputs: Sequence[Any]) -> list[str]:
    names = [
        str(getattr(i, "source", i)) if isinstance(i, Embeddings) else Path(i).name
        for i in inputs
    ]
    if len(set(names)) < len(names):
        names = [str(getattr(i, "source", i)) for i in inputs]
    return names


def _recorded_store(path: Any) -> bool:
    if isinstance(path, Embeddings) or not is_store(path):
        return False
    from embvar.store import Store

    with Store(path, create=False) as store:
        return store.get_meta("kind") == "recorded"


def _store_items(root: Path) -> list[_Item]:
    """Every table of every finished run of a store, grouped by settings."""
    from embvar.analysis.groups import group_label
    from embvar.formats.embeddings import make_embeddings
    from embvar.store import Store, load_array

    items = []
    with Store(root, create=False) as store:
        records = store.runs(status="done")
        if not records:
            raise DataError(
                f"the store {str(root)!r} has no finished runs to compare; train "
                "or record some first."
            )
        for r in records:
            tables = {
                name: table
                for name, table in store.load_snapshot(r.run_id).items()
                if table.shape[1] > 1  # bias columns are not embeddings
            }
            # The context table of a word model is the least interesting: last.
            order = sorted(tables, key=lambda t: (t == "context_embedding", t))
            for table in order:
                vectors = tables[table]
                ref = (r.spec.get("ids") or {}).get(table)
                study_ids = _study_ids(root, r.spec, table)
                if ref is not None:
                    ids = load_array(root / ref["path"], ref["sha256"])
                    origin = ref["path"]
                elif study_ids is not None and len(study_ids) == len(vectors):
                    ids, origin = study_ids, "study data"
                else:
                    ids, origin = np.arange(len(vectors)).astype(str), "rows"
                emb = make_embeddings(
                    vectors,
                    ids,
                    source=f"{root}:{r.run_id}",
                    format="store",
                    table=table,
                    ids_from=origin,
                )
                label = group_label(r.spec)
                several = len(tables) > 1
                items.append(
                    _Item(
                        f"{r.run_id}:{table}" if several else r.run_id,
                        emb,
                        f"{r.group_key}:{table}",
                        f"{label}, {table}" if several else label,
                        r.spec,
                    )
                )
    return items


def _study_ids(root: Path, spec: dict[str, Any], table: str) -> np.ndarray | None:
    """The ids a study saved with its data: words, or user and item ids."""
    from embvar.config import DataSpec
    from embvar.data.prepared import data_key
    from embvar.store import load_array

    if "data" not in spec or "seeds" not in spec:
        return None  # a recorded run
    data = DataSpec(**spec["data"])
    folder = root / "data" / data_key(data, spec["seeds"]["split"])
    name = {
        "word_embedding": "words.npy",
        "context_embedding": "words.npy",
        "user_embedding": "user_ids.npy",
        "item_embedding": "item_ids.npy",
    }.get(table)
    if name is None or not (folder / name).is_file():
        return None
    return load_array(folder / name).astype(str)


def _write(report: dict[str, Any], out: Path, html: bool) -> tuple[Path, Path | None]:
    from embvar.errors import StoreError

    try:
        out.mkdir(parents=True, exist_ok=True)
        path = out / REPORT_NAME
        tmp = out / f".tmp-{REPORT_NAME}"
        tmp.write_text(json.dumps(report, indent=1, allow_nan=False), encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        raise StoreError(f"cannot write the report into {str(out)!r}: {exc}.") from exc
    html_path = None
    if html:
        try:
            from embvar.report.html import write_html
        except ImportError:  # the HTML report is optional
            logger.info("embvar.report.html is not available; wrote report.json only")
        else:
            html_path = write_html(report, out / "report.html")
    return path, html_path
