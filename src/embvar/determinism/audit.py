"""The determinism audit: is a run reproducible here, and if not, where does it part?

:func:`determinism_audit` trains one run (a study's RunSpec, or a user's
training function) several times, each in a fresh Python process, in each
cell of a matrix of settings:

- op determinism on or off (``tf.config.experimental.enable_op_determinism``);
- one intra-op thread or all of them (``tf.config.threading``);
- oneDNN on or off (``TF_ENABLE_ONEDNN_OPTS``, read when TensorFlow is
  imported);
- the GPU, with op determinism on and off, where TensorFlow sees one (the
  CPU cells hide it); without one, the GPU cells are skipped and the result
  says so.

Every variable of the model and of its optimizer is compared bit for bit
after every epoch: between the replicates of a cell (which should agree)
and between each cell and the baseline (TensorFlow's defaults here). Where
two replicates of a cell differ, two more runs record every step of the
first differing epoch, and the audit reports the first differing step,
which variables differ and by how much (largest absolute difference and
units in the last place). It then checks the training function for the
common pitfalls (:mod:`embvar.determinism.pitfalls`), and writes a verdict,
the time each setting costs (ratios measured in this audit) and the lines
of code that reproduce the settings that gave identical bits, to
``determinism.json``.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from embvar import __version__
from embvar.checks import check_float, check_int
from embvar.config import RunSpec, Study
from embvar.determinism.recorder import RunRecord, load_record
from embvar.determinism.records import compare_records, compare_steps
from embvar.determinism.target import AuditTarget, function_target, spec_target
from embvar.determinism.verdict import (
    add_time_ratios,
    audit_verdict,
    determinism_summary,
    factor_costs,
    print_audit,
    reproduction_recipe,
)
from embvar.determinism.worker import UNLOADABLE, launch
from embvar.errors import ConfigError
from embvar.manifest import diff_manifests

__all__ = [
    "AUDIT_NAME",
    "Cell",
    "DeterminismAudit",
    "cells_by_id",
    "default_cells",
    "determinism_audit",
    "determinism_summary",
    "print_audit",
    "read_determinism",
]

logger = logging.getLogger(__name__)

AUDIT_NAME = "determinism.json"
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Cell:
    """One combination of settings the audit trains under.

    Attributes
    ----------
    op_determinism : bool
    threads : int or None
        Intra-op threads; None is TensorFlow's default (one per core).
    onednn : bool or None
        ``TF_ENABLE_ONEDNN_OPTS``; None leaves the variable as it is.
    device : {"cpu", "gpu"}
    """

    op_determinism: bool
    threads: int | None = None
    onednn: bool | None = None
    device: Literal["cpu", "gpu"] = "cpu"

    @property
    def id(self) -> str:
        parts = [f"det-{'on' if self.op_determinism else 'off'}"]
        if self.device == "cpu":
            parts.append(f"threads-{self.threads or 'all'}")
            if self.onednn is not None:
                parts.append(f"onednn-{'on' if self.onednn else 'off'}")
        parts.append(self.device)
        return "_".join(parts)

    @property
    def label(self) -> str:
        words = [f"op determinism {'on' if self.op_determinism else 'off'}"]
        if self.device == "cpu":
            n = self.threads
            words.append("all threads" if not n else f"{n} thread{'s' * (n > 1)}")
            if self.onednn is not None:
                words.append(f"oneDNN {'on' if self.onednn else 'off'}")
        words.append(self.device.upper())
        return ", ".join(words)

    def settings(self) -> dict[str, Any]:
        return {
            "op_determinism": self.op_determinism,
            "threads": self.threads,
            "device": self.device,
        }

    def env(self) -> dict[str, str | None]:
        if self.onednn is None:
            return {}
        return {"TF_ENABLE_ONEDNN_OPTS": "1" if self.onednn else "0"}

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "label": self.label,
            "op_determinism": self.op_determinism,
            "threads": self.threads,
            "onednn": self.onednn,
            "device": self.device,
        }


def default_cells(onednn_default: bool | None = None) -> list[Cell]:
    """Return the CPU matrix, the baseline (TensorFlow's defaults) first.

    ``onednn_default`` is whether oneDNN is on by default here (it depends
    on the CPU); None asks TensorFlow in this process.
    """
    if onednn_default is None:
        onednn_default = _onednn_in_effect()
    cells = [
        Cell(det, threads, dnn)
        for det in (False, True)
        for threads in (None, 1)
        for dnn in (onednn_default, not onednn_default)
    ]
    return cells


def cells_by_id(cells: list[Cell | str]) -> list[Cell]:
    """Return the cells given, reading ids of the default and GPU cells.

    Raises
    ------
    ConfigError
        For an id that names no cell, or an empty list.
    """
    known = {c.id: c for c in default_cells()}
    known.update({c.id: c for c in (Cell(det, device="gpu") for det in (False, True))})
    if not cells:
        raise ConfigError("cells must list at least one cell; got none.")
    out = []
    for cell in cells:
        if isinstance(cell, Cell):
            out.append(cell)
        elif cell in known:
            out.append(known[cell])
        else:
            raise ConfigError(
                f"cell must be one of {', '.join(known)}; got cell={cell!r}."
            )
    return out


@dataclass
class DeterminismAudit:
    """The audit's result: the ``determinism.json`` document, its path, and
    the ``report.html`` drawn beside it (None where nothing was written)."""

    document: dict[str, Any]
    path: Path | None
    html_path: Path | None = None

    @property
    def verdict(self) -> dict[str, Any]:
        return self.document["verdict"]

    @property
    def recipe(self) -> dict[str, Any] | None:
        return self.document["recipe"]

    def cell(self, cell_id: str) -> dict[str, Any]:
        """Return the result of one cell by its id."""
        for cell in self.document["cells"]:
            if cell["id"] == cell_id:
                return cell
        ids = ", ".join(c["id"] for c in self.document["cells"])
        raise ConfigError(f"cell_id must be one of {ids}; got cell_id={cell_id!r}.")


def determinism_audit(
    source: str | Path | Study | RunSpec | AuditTarget | Callable[..., Any],
    run: str | None = None,
    *,
    quick: bool = False,
    directory: str | Path | None = None,
    replicates: int = 2,
    epochs: int | None = None,
    fraction: float | None = None,
    cells: list[Cell | str] | None = None,
    localize: bool = True,
    pitfalls: bool = True,
    keep_runs: bool = False,
    progress: Progress | None = None,
) -> DeterminismAudit:
    """Train one run repeatedly in fresh processes and compare it bit for bit.

    Parameters
    ----------
    source : str, Path, Study, RunSpec, AuditTarget or callable
        A study (built-in name, ``.toml`` path or Study) whose run ``run``
        is audited; one RunSpec; a user's training function
        ``train(recorder, seed)`` (a module-level function, or its reference
        ``"package.module:function"`` / ``"script.py:function"``; see
        :mod:`embvar.determinism.target`); or an AuditTarget.
    run : str, optional
        The run id (or a unique prefix) of the study run to audit; default
        the study's first planned run.
    quick : bool
        Apply the study's ``[quick]`` overrides.
    directory : str or Path, optional
        Where ``determinism.json`` goes: default the study's directory
        (``runs/<name>``); for a RunSpec or a function, nothing is written
        unless a directory is given.
    replicates : int
        Fresh processes per cell, >= 2.
    epochs, fraction : optional
        Override the spec's epochs / data fraction (a shorter audit; the
        audited run then has another run id, which the result names).
    cells : list of Cell or str, optional
        The settings to train under (cells, or their ids such as
        ``"det-on_threads-all_onednn-off_cpu"``), the first being the
        baseline; default :func:`default_cells`, plus the GPU cells where a
        GPU is visible.
    localize : bool
        Find the first differing step where a cell's replicates differ.
    pitfalls : bool
        Check the training function for the common pitfalls.
    keep_runs : bool
        Keep every run's records and arrays (``determinism-runs/``).
    progress : callable(str), optional
        Called with a line before each process starts.

    Returns
    -------
    DeterminismAudit

    Raises
    ------
    ConfigError
        On an unknown study or run id, or bad arguments.
    """
    check_int("replicates", replicates, 2, 100)
    target, study_dir, original_id = _resolve(source, run, quick, epochs, fraction)
    out_dir = Path(directory) if directory is not None else study_dir
    if out_dir is not None and keep_runs:
        work = out_dir / "determinism-runs"
        shutil.rmtree(work, ignore_errors=True)
    else:
        work = Path(tempfile.mkdtemp(prefix="embvar-determinism-"))
    say = progress or (lambda line: logger.info("%s", line))
    # The outermost folder this audit would create, to remove if it fails.
    new_dir = None
    for folder in [out_dir, *out_dir.parents] if out_dir is not None else []:
        if folder.exists():
            break
        new_dir = folder
    try:
        document = _audit(
            target,
            original_id,
            work,
            replicates,
            cells,
            localize,
            pitfalls,
            keep_runs,
            say,
        )
    except ConfigError:  # the function cannot be loaded: leave nothing behind
        shutil.rmtree(work, ignore_errors=True)
        if new_dir is not None:
            shutil.rmtree(new_dir, ignore_errors=True)
        raise
    finally:
        if not keep_runs or out_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    path = None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / AUDIT_NAME
        tmp = out_dir / f".tmp-{AUDIT_NAME}"
        tmp.write_text(
            json.dumps(_json_safe(document), indent=1, allow_nan=False),
            encoding="utf-8",
        )
        tmp.replace(path)
    return DeterminismAudit(document, path, _draw_page(out_dir) if path else None)


def _draw_page(directory: Path) -> Path | None:
    """Write the directory's ``report.html`` with the audit in it: the study's
    report with a determinism section where ``report.json`` exists, a page of
    the audit alone otherwise. A page that cannot be drawn leaves the JSON."""
    from embvar.errors import EmbvarError
    from embvar.report.html import rebuild_html

    try:
        return rebuild_html(directory)[1]
    except EmbvarError as exc:
        logger.warning("determinism.json written, report.html not: %s", exc)
        return None


def read_determinism(directory: str | Path) -> dict[str, Any] | None:
    """Return the ``determinism.json`` of a directory, or None if it has none."""
    path = Path(directory) / AUDIT_NAME
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        logger.warning("cannot read %s: %s", path, exc)
        return None


# -- the audit ----------------------------------------------------------------


def _resolve(source, run, quick, epochs, fraction):
    if isinstance(source, AuditTarget):
        return source, None, None
    if callable(source) and not isinstance(source, (str, Path, Study, RunSpec)):
        return function_target(source), None, None
    text = str(source) if isinstance(source, (str, Path)) else ""
    if text and ":" in text and not text.endswith(".toml"):
        return function_target(text), None, None
    study_dir = None
    if isinstance(source, RunSpec):
        spec = source
    else:
        from embvar.study import default_directory, open_study

        study, specs = open_study(source, quick=quick)
        study_dir = default_directory(study, quick)
        spec = _pick(specs, run)
    original = spec.run_id
    if epochs is not None:
        training = spec.training.model_copy(
            update={"epochs": check_int("epochs", epochs, 1, 1000)}
        )
        spec = spec.model_copy(update={"training": training})
    if fraction is not None:
        data = spec.data.model_copy(
            update={
                "fraction": check_float(
                    "fraction", fraction, 0.0, 1.0, low_inclusive=False
                )
            }
        )
        spec = spec.model_copy(update={"data": data})
    return spec_target(spec), study_dir, original


def _pick(specs: list[RunSpec], run: str | None) -> RunSpec:
    if run is None:
        return specs[0]
    hits = [s for s in specs if s.run_id.startswith(run)]
    if len(hits) != 1:
        shown = ", ".join(s.run_id for s in specs[:5])
        what = "matches no run" if not hits else f"matches {len(hits)} runs"
        raise ConfigError(
            f"run must be the id (or a unique prefix) of one planned run, such as "
            f"{shown}; got run={run!r}, which {what}."
        )
    return hits[0]


def _audit(
    target, original_id, work, replicates, cells, localize, pitfalls, keep_runs, say
):
    started = time.perf_counter()
    explicit = cells is not None
    cells = cells_by_id(cells) if explicit else default_cells()
    baseline = cells[0]
    records: dict[str, list[RunRecord]] = {c.id: [] for c in cells}
    gpu: dict[str, Any] = {"present": None, "note": ""}
    n_processes = 0

    # 1. Every cell, replicate after replicate (so that load on the machine
    #    falls evenly on the cells whose times are compared).
    #    A later replicate is compared with the first at once, and its
    #    arrays dropped unless the runs are kept.
    within: dict[str, list[dict]] = {c.id: [] for c in cells}
    for rep in range(replicates):
        i = 0
        while i < len(cells):
            cell = cells[i]
            i += 1
            if cell.device == "gpu" and gpu["present"] is False:
                continue
            say(f"{cell.label}: replicate {rep + 1} of {replicates}")
            record = _train(target, cell, work / cell.id / f"rep{rep}")
            if (record.error or "").startswith(UNLOADABLE):
                raise ConfigError(f"{record.error.rstrip('.')}; nothing was written.")
            records[cell.id].append(record)
            n_processes += 1
            if rep > 0:
                within[cell.id].append(compare_records(records[cell.id][0], record))
                if not keep_runs:
                    shutil.rmtree(record.directory / "arrays", ignore_errors=True)
            if gpu["present"] is None:
                gpu = _gpu_state(record)
                if gpu["present"] and not explicit:
                    extra = [Cell(det, device="gpu") for det in (False, True)]
                    cells.extend(extra)
                    records.update({c.id: [] for c in extra})
                    within.update({c.id: [] for c in extra})
    missing = [c for c in cells if c.device == "gpu" and not gpu["present"]]
    if missing:
        cells = [c for c in cells if c not in missing]
        gpu["note"] += " The GPU cells asked for were skipped."

    # 2. Within each cell, replicates against the first; each cell against
    #    the baseline; where replicates differ, the first differing step.
    results = []
    base = records[baseline.id][0]
    for cell in cells:
        runs = records[cell.id]
        states = {w["identical"] for w in within[cell.id]}
        result = {
            **cell.to_json(),
            "seconds": [r.seconds for r in runs],
            "errors": sorted({r.error for r in runs if r.error}),
            "replicates": within[cell.id],
            "reproducible": None if None in states else states == {True},
            "first_difference": next(
                (w for w in within[cell.id] if w["identical"] is False), None
            ),
            "vs_baseline": compare_records(base, runs[0]) if cell != baseline else None,
            "manifest_diff": diff_manifests(base.manifest, runs[0].manifest),
        }
        vs = result["vs_baseline"]
        result["same_as_baseline"] = True if vs is None else vs["identical"]
        first = result["first_difference"]
        if localize and first is not None:
            if first["first_epoch"] == 0:
                result["localized"] = {
                    "epoch": 0,
                    "note": "the initial values differ; see the pitfalls",
                }
            else:
                epoch = first["first_epoch"]
                say(f"{cell.label}: recording every step of epoch {epoch}")
                result["localized"] = _localize(
                    target, cell, first["first_epoch"], work / cell.id / "steps"
                )
                n_processes += 2
        results.append(result)
    add_time_ratios(results, baseline.id)

    # 3. The pitfalls, in processes of their own.
    pitfall_doc = None
    if pitfalls:
        from embvar.determinism.pitfalls import diagnose_pitfalls

        say("checking for the common pitfalls")
        pitfall_doc = diagnose_pitfalls(
            target, directory=work / "pitfalls", env=baseline.env()
        )
        n_processes += pitfall_doc["processes"]

    costs = factor_costs(results)
    verdict = audit_verdict(results, baseline.id, gpu, pitfall_doc, costs)
    recommended = next((c for c in cells if c.id == verdict["recommended"]), None)
    return {
        "embvar_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "target": {
            "label": target.label,
            "function": target.function,
            "run_id": target.run_id,
            "study_run_id": original_id,
            "seed": target.seed,
        },
        "replicates": replicates,
        "baseline": baseline.id,
        "manifest": base.manifest,
        "gpu": gpu,
        "cells": results,
        "classes": _classes(results, records),
        "costs": costs,
        "verdict": verdict,
        "recipe": None
        if recommended is None
        else reproduction_recipe(
            recommended.to_json(),
            builtin=target.function == "embvar.determinism.target:train_spec",
        ),
        "pitfalls": pitfall_doc,
        "processes": n_processes,
        "seconds": time.perf_counter() - started,
    }


def _train(target: AuditTarget, cell: Cell, folder: Path, **run: Any) -> RunRecord:
    request = {
        "target": target.to_json(),
        "settings": cell.settings(),
        "runs": [
            {"dir": str(folder), "seed": target.seed, "save_steps": "none", **run}
        ],
    }
    error = launch(
        request, folder.parent / f"{folder.name}-request.json", env=cell.env()
    )
    try:
        return load_record(folder)
    except Exception:  # the worker died before writing: record why
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "record.json").write_text(
            json.dumps(
                {"variables": {}, "epochs": {}, "error": error or "no record written"}
            )
        )
        return load_record(folder)


def _localize(target: AuditTarget, cell: Cell, epoch: int, folder: Path) -> dict:
    a = _train(target, cell, folder / "a", step_epoch=epoch, save_steps="all")
    b = _train(
        target,
        cell,
        folder / "b",
        step_epoch=epoch,
        save_steps="first_difference",
        reference=str(folder / "a" / "record.json"),
    )
    result = compare_steps(a, b)
    if result.get("identical") is None and "error" in result:
        return result
    if result["before"]["identical"] is False:
        result["note"] = (
            f"the step reruns already differ at epoch {result['before']['first_epoch']}"
        )
    elif result["first_step"] is None:
        result["note"] = (
            "the two step reruns agreed at every step of this epoch: "
            "the difference did not recur"
        )
    return result


def _gpu_state(record: RunRecord) -> dict[str, Any]:
    devices = (record.manifest.get("devices") or {}).get("physical", [])
    gpus = [d for d in devices if d.startswith("GPU")]
    if gpus:
        return {"present": True, "devices": gpus, "note": ""}
    if record.error and not devices:
        return {"present": None, "note": "unknown: the first run failed"}
    return {
        "present": False,
        "devices": [],
        "note": "No GPU is visible to TensorFlow here; the GPU cells were skipped.",
    }


def _classes(
    results: list[dict], records: dict[str, list[RunRecord]]
) -> list[list[str]]:
    """Cells whose first replicates agree bit for bit at every epoch."""
    groups: dict[str, list[str]] = {}
    for r in results:
        rec = records[r["id"]][0]
        if rec.error:
            continue
        key = json.dumps(rec.epochs, sort_keys=True)
        groups.setdefault(key, []).append(r["id"])
    return list(groups.values())


def _onednn_in_effect() -> bool:
    try:
        from tensorflow.python.util import _pywrap_util_port

        return bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):
        return False


def _json_safe(obj: Any) -> Any:
    import math

    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
