"""Compare two recorded runs bit for bit, epoch by epoch or step by step."""

from __future__ import annotations

from typing import Any

from embvar.determinism.bitwise import array_difference
from embvar.determinism.recorder import RunRecord

__all__ = ["compare_records", "compare_steps", "KINDS"]

# The kinds of variable a record holds, in the order reports list them.
KINDS = ("embedding", "weight", "optimizer", "rng")


def compare_records(a: RunRecord, b: RunRecord) -> dict[str, Any]:
    """Return where two runs part, comparing every variable after every epoch.

    Returns
    -------
    dict
        ``identical``: True if every epoch both recorded agrees bit for bit,
        None if either run failed (``error`` says why); ``epochs``: how many
        epochs were compared; ``first_epoch``: the first that differs (0 is
        the initial state); ``differing_epochs``; ``variables``: at the first
        differing epoch, one entry per differing variable (``path``,
        ``kind``, ``n_differ``, ``size``, ``max_abs``, ``max_ulp``);
        ``kinds``: the kinds of variable that differ there; ``missing``:
        epochs only one run recorded.
    """
    failed = _failure(a, b)
    if failed:
        return failed
    common = sorted(set(a.epochs) & set(b.epochs))
    differing = [e for e in common if a.epochs[e] != b.epochs[e]]
    missing = sorted(set(a.epochs) ^ set(b.epochs))
    out: dict[str, Any] = {
        "identical": not differing and not missing and bool(common),
        "epochs": len(common),
        "first_epoch": differing[0] if differing else None,
        "differing_epochs": differing,
        "missing": missing,
    }
    if differing:
        first = differing[0]
        out.update(
            _variables(
                a,
                b,
                a.epochs[first],
                b.epochs[first],
                a.arrays("epoch", first),
                b.arrays("epoch", first),
            )
        )
    return out


def compare_steps(a: RunRecord, b: RunRecord) -> dict[str, Any]:
    """Return the first step of the audited epoch at which two runs part.

    Both runs must have recorded the steps of the same epoch
    (``step_epoch``). The earlier epochs are compared too: if they already
    differ, the step comparison does not apply and ``before`` says where.

    Returns
    -------
    dict
        ``epoch``; ``before``: :func:`compare_records` over the epochs before
        it; ``steps``: how many steps were compared; ``first_step`` (0-based,
        the batch index of that epoch) or None; ``variables`` and ``kinds``
        at that step, as in :func:`compare_records`.
    """
    failed = _failure(a, b)
    if failed:
        return failed
    epoch = int(a.data.get("step_epoch") or 0)
    earlier_a = {e: d for e, d in a.epochs.items() if e < epoch}
    earlier_b = {e: d for e, d in b.epochs.items() if e < epoch}
    before = [
        e
        for e in sorted(set(earlier_a) & set(earlier_b))
        if earlier_a[e] != earlier_b[e]
    ]
    common = sorted(set(a.steps) & set(b.steps))
    differing = [s for s in common if a.steps[s] != b.steps[s]]
    out: dict[str, Any] = {
        "epoch": epoch,
        "before": {
            "identical": not before,
            "first_epoch": before[0] if before else None,
        },
        "steps": len(common),
        "first_step": differing[0] if differing else None,
    }
    if differing:
        step = differing[0]
        out.update(
            _variables(
                a,
                b,
                a.steps[step],
                b.steps[step],
                a.arrays("step", step),
                b.arrays("step", step),
            )
        )
    else:
        after = a.epochs.get(epoch) == b.epochs.get(epoch)
        out["epoch_end_identical"] = bool(after)
    return out


def _variables(a: RunRecord, b: RunRecord, da: dict, db: dict, va, vb) -> dict:
    paths = [p for p in a.variables if p in da or p in db]
    paths += [p for p in b.variables if p not in a.variables]
    rows = []
    for path in paths:
        if da.get(path) == db.get(path):
            continue
        meta = a.variables.get(path) or b.variables.get(path) or {}
        row: dict[str, Any] = {
            "path": path,
            "kind": meta.get("kind", "weight"),
            "shape": meta.get("shape"),
        }
        if path not in da or path not in db:
            row["only_in"] = "a" if path in da else "b"
        elif va is not None and vb is not None and path in va and path in vb:
            diff = array_difference(va[path], vb[path])
            diff.pop("identical", None)
            row.update(diff)
        else:
            row["note"] = "values not saved; digests differ"
        rows.append(row)
    kinds = sorted(
        {r["kind"] for r in rows},
        key=lambda k: KINDS.index(k) if k in KINDS else len(KINDS),
    )
    return {"variables": rows, "kinds": kinds}


def _failure(a: RunRecord, b: RunRecord) -> dict[str, Any] | None:
    errors = [e for e in (a.error, b.error) if e]
    if errors:
        return {"identical": None, "error": errors[0]}
    return None
