"""A small report document with every section the HTML report can draw.

The numbers are made up but shaped exactly as the study analysis, the
determinism audit and ``embvar compare`` write them, so the renderer can be
tested without training anything.
"""

from __future__ import annotations

import copy
from typing import Any

HOSTILE = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(2)>',
    "Tom & Jerry's </td></tr></table> $x^2$",
]


def _stat(mean: float, sd: float, lo: float, hi: float, n: int) -> dict[str, Any]:
    return {"n": n, "mean": mean, "sd": sd, "min": lo, "max": hi}


def _group(
    label: str,
    lr: float,
    runs: list[str],
    knn: list[float],
    proc: list[float],
    rmse: list[float],
) -> dict[str, Any]:
    pairs = []
    k = 0
    for i in range(len(runs)):
        for j in range(i + 1, len(runs)):
            pairs.append(
                {
                    "runs": [runs[i], runs[j]],
                    "procrustes": proc[k],
                    "knn_overlap@10": knn[k],
                    "topk_overlap@10": knn[k] + 0.1,
                    "relative_frobenius": 1.2 + 0.01 * k,
                }
            )
            k += 1

    def st(values: list[float]) -> dict[str, Any]:
        m = sum(values) / len(values)
        sd = (sum((v - m) ** 2 for v in values) / max(1, len(values) - 1)) ** 0.5
        return _stat(m, sd, min(values), max(values), len(values))

    return {
        "group": f"g{abs(hash(label)) % 10**6:06d}",
        "label": label,
        "hyperparameters": {"dim": 8, "optimizer": "adam", "learning_rate": lr},
        "designs": ["seeds"],
        "run_ids": runs,
        "n_runs": len(runs),
        "parameters": {
            "relative_frobenius": st([p["relative_frobenius"] for p in pairs])
        },
        "geometry": {"procrustes": st(proc), "knn_overlap@10": st(knn)},
        "function": {
            "test_rmse": {**st(rmse), "values": rmse},
            "topk_overlap@10": st([v + 0.1 for v in knn]),
        },
        "pairs": pairs,
    }


def _entity(row: int, label: str, freq: int, overlap: float) -> dict[str, Any]:
    return {
        "row": row,
        "id": str(100 + row),
        "label": label,
        "detail": "Drama",
        "frequency": freq,
        "overlap": overlap,
        "displacement": 0.5,
        "neighbors_a": [
            {"row": 1, "label": HOSTILE[0], "shared": True},
            {"row": 2, "label": "Heat", "shared": False},
        ],
        "neighbors_b": [
            {"row": 1, "label": HOSTILE[0], "shared": True},
            {"row": 3, "label": HOSTILE[1], "shared": False},
        ],
    }


def full_report() -> dict[str, Any]:
    """Return a report with data for every section."""
    runs = [
        "aaaa000000000001",
        "aaaa000000000002",
        "aaaa000000000003",
        "aaaa000000000004",
    ]
    g1 = _group(
        "defaults",
        0.01,
        runs,
        [0.30, 0.28, 0.9, 0.31, 0.27, 0.29],
        [0.7, 0.72, 0.2, 0.69, 0.71, 0.7],
        [0.91, 0.915, 0.912, 0.913],
    )
    g2 = _group(
        "learning_rate=0.1", 0.1, ["bbbb0001", "bbbb0002"], [0.1], [0.9], [0.95, 0.951]
    )
    g3 = _group(
        "learning_rate=0.001",
        0.001,
        ["cccc0001", "cccc0002"],
        [0.6],
        [0.4],
        [0.97, 0.975],
    )
    table = [
        {
            "run_id": r,
            "status": "done",
            "factors": {"init": i // 2, "order": i % 2},
            "designs": ["seeds"],
            "seeds": {
                "init": 11 + i // 2,
                "order": 21 + i % 2,
                "noise": 31,
                "split": 41,
            },
            "seconds": 1.5,
        }
        for i, r in enumerate(runs)
    ]
    bins = [
        {
            "label": lab,
            "lo": lo,
            "hi": hi,
            "n": n,
            "mean": m,
            "interval": [m - 0.02, m + 0.02],
        }
        for lab, lo, hi, n, m in (
            ("1", 1, 1, 3000, 0.1),
            ("2–3", 2, 3, 2000, 0.2),
            ("4–7", 4, 7, 1000, 0.35),
            ("8–15", 8, 15, 500, 0.5),
        )
    ]
    series = []
    for kind, label, start, end in (
        ("init", "init only", 0.99, 0.7),
        ("order", "order only", 0.0, 0.3),
        ("all", "every source", 0.99, 0.72),
        ("perturb", "perturbed twin", 0.0, 0.6),
    ):
        mean = [start + (end - start) * t / 3 for t in range(4)]
        series.append(
            {
                "group": label,
                "kind": kind,
                "metric": "procrustes",
                "epochs": [0, 1, 2, 3],
                "mean": mean,
                "lo": [m - 0.02 for m in mean],
                "hi": [m + 0.02 for m in mean],
                "n_pairs": 2,
                "higher_is_alike": False,
                "summary": {
                    "form": "distance",
                    "initial": start,
                    "reference": max(start, end),
                    "reference_epoch": 0,
                    "reference_kind": "initial" if start else "peak",
                    "final": end,
                    "remaining": 0.7,
                    "remaining_interval": [0.6, 0.8],
                    "epochs_to_half": None,
                    "last_change": 0.05,
                    "stopped": False,
                    "tolerance": 0.01,
                },
                "pairs": [[runs[0], runs[1]]],
            }
        )
    stat = {"mean": 0.3, "sd": 0.05, "interval": [0.25, 0.35]}
    report: dict[str, Any] = {
        "embvar_version": "0.1.0",
        "created": "2026-12-03T12:00:00Z",
        "study": {
            "name": "fixture",
            "description": f"A fixture {HOSTILE[1]}",
            "root_seed": 7,
            "quick": True,
            "designs": [
                {
                    "name": "seeds",
                    "replicates": 1,
                    "factors": {"init": [0, 1], "order": [0, 1]},
                }
            ],
        },
        "directory": "/tmp/fixture",
        "data": {
            "name": "MovieLens (fixture)",
            "n_users": 10,
            "n_items": 20,
            "n_train": 80,
            "n_test": 20,
        },
        "runs": {
            "planned": 8,
            "done": 8,
            "diverged": [
                {"run_id": "dddd0001", "epoch": 2, "step": 17, "factors": {"lr": 3.0}}
            ],
            "failed": [],
            "unfinished": [],
            "table": table,
        },
        "groups": [g1, g2, g3],
        "entities": {
            "group": "defaults",
            "table": "item_embedding",
            "k": 10,
            "n_entities": 20,
            "n_pairs": 6,
            "runs": runs[:2],
            "dropped": [],
            "frequent_threshold": 10,
            "n_frequent": 5,
            "mean_overlap": 0.3,
            "median_overlap": 0.28,
            "share_zero": 0.1,
            "histogram": {
                "edges": [i / 10 for i in range(11)],
                "counts": [2, 3, 5, 4, 2, 1, 1, 1, 1, 0],
            },
            "least_stable": [
                _entity(0, HOSTILE[0], 1, 0.0),
                _entity(1, HOSTILE[1], 2, 0.1),
            ],
            "least_stable_frequent": [_entity(4, HOSTILE[2], 40, 0.2)],
            "most_stable": [_entity(5, "Toy Story", 200, 0.9)],
        },
        "attribution": {
            "design": "seeds",
            "group": "defaults",
            "sources": ["init", "order"],
            "run_ids": runs,
            "levels": {"init": [0, 0, 1, 1], "order": [0, 1, 0, 1]},
            "scalar": [
                {
                    "outcome": "test_rmse",
                    "values": [0.91, 0.915, 0.912, 0.913],
                    "components": [
                        {
                            "source": "init",
                            "share": 0.7,
                            "interval": [0.4, 0.9],
                            "variance": 1e-5,
                        },
                        {
                            "source": "order",
                            "share": 0.2,
                            "interval": [0.0, 0.5],
                            "variance": 3e-6,
                        },
                        {
                            "source": "residual",
                            "share": 0.1,
                            "interval": [0.0, 0.3],
                            "variance": 1e-6,
                        },
                    ],
                }
            ],
            "distance": [
                {
                    "metric": "procrustes",
                    "by_source": [
                        {
                            "source": "init",
                            "mean": 0.7,
                            "interval": [0.68, 0.72],
                            "n_pairs": 2,
                        },
                        {
                            "source": "order",
                            "mean": 0.2,
                            "interval": [0.15, 0.25],
                            "n_pairs": 2,
                        },
                        {
                            "source": "all",
                            "mean": 0.71,
                            "interval": [0.69, 0.73],
                            "n_pairs": 2,
                        },
                    ],
                }
            ],
            "permanova": [
                {
                    "metric": "procrustes",
                    "form": "value",
                    "permutations": 999,
                    "n_runs": 4,
                    "rows": [
                        {
                            "source": "init",
                            "df": 1,
                            "ss": 0.9,
                            "pseudo_f": 60.0,
                            "share": 0.9,
                            "p_value": 0.5,
                        },
                        {
                            "source": "order",
                            "df": 1,
                            "ss": 0.05,
                            "pseudo_f": 1.2,
                            "share": 0.05,
                            "p_value": 0.5,
                        },
                        {"source": "residual", "df": 1, "ss": 0.05, "share": 0.05},
                        {"source": "total", "df": 3, "ss": 1.0, "share": 1.0},
                    ],
                }
            ],
            "perturbation": [
                {
                    "metric": "procrustes",
                    "form": "value",
                    "perturbed": 0.6,
                    "reseed": 0.71,
                    "ratio": 0.85,
                    "interval": [0.7, 0.95],
                    "n_twins": 1,
                    "runs": [[runs[0], "eeee0001"]],
                    "values": [0.6],
                }
            ],
        },
        "dynamics": {
            "design": "seeds",
            "group": "defaults",
            "epochs": [0, 1, 2, 3],
            "series": series,
        },
        "frequency": [
            {
                "entity": "item",
                "design": "seeds",
                "group": "defaults",
                "metric": "knn_overlap@10",
                "bins": bins,
                "spearman": {
                    "rho": 0.45,
                    "p_value": 1e-6,
                    "interval": [0.4, 0.5],
                    "n": 6500,
                },
                "n_pairs": 6,
            }
        ],
        "tradeoff": {
            "accuracy": "test_rmse",
            "stability": ["knn_overlap@10"],
            "levels": [
                {
                    "label": lab,
                    "design": "lr",
                    "n_runs": 2,
                    "test_rmse": {
                        "mean": rm,
                        "sd": 0.002,
                        "interval": [rm - 0.01, rm + 0.01],
                    },
                    "knn_overlap@10": {**stat, "mean": kn},
                    "non_dominated_by": {"knn_overlap@10": front},
                }
                for lab, rm, kn, front in (
                    ("lr=0.001", 0.97, 0.6, True),
                    ("lr=0.01", 0.91, 0.3, True),
                    ("lr=0.1", 0.95, 0.1, False),
                )
            ],
        },
        "claims": {
            "set": "article",
            "rules": "Supported if the 95% interval clears "
            "the margin on the predicted side.",
            "primary_metric": "procrustes",
            "claims": [
                {
                    "id": "C1",
                    "claim": "Random initialization makes runs differ.",
                    "verdict": "supported",
                    "metric": "procrustes",
                    "effect": 0.7,
                    "interval": [0.6, 0.8],
                    "detail": "init-only pairs",
                },
                {
                    "id": "C2",
                    "claim": "Glorot initialization is deterministic.",
                    "verdict": "contradicted",
                    "metric": "procrustes",
                    "effect": 0.69,
                    "interval": [0.6, 0.75],
                    "detail": "",
                },
                {
                    "id": "C7",
                    "claim": "Small data sets vary most.",
                    "verdict": "inconclusive",
                    "metric": None,
                    "effect": None,
                    "interval": [None, None],
                    "detail": "not measured: fraction",
                },
            ],
        },
        "article_examples": {
            "settings": {"vocab": 100, "dim": 10, "rows": 1000, "epochs": 3},
            "example3": {
                "as_written": {
                    "consecutive_mean_abs_difference": [0.07, 0.03, 0.02, 0.01]
                },
                "corrected": {
                    "consecutive_mean_abs_difference": [0.05, 0.05, 0.05, 0.05]
                },
            },
            "findings": ["Example 3 as written: each run starts where the last ended."],
        },
        "determinism": {
            "target": "run aaaa000000000001",
            "run_id": runs[0],
            "sentences": ["Op determinism on gave bitwise-identical runs here."],
            "reproducible_cells": ["det1"],
            "recommended": "det1",
            "gpu": {"present": False, "note": "No GPU is visible to TensorFlow here."},
            "cells": [
                {
                    "id": "base",
                    "label": "TensorFlow defaults",
                    "reproducible": False,
                    "same_as_baseline": True,
                    "time_ratio": 1.0,
                    "first_difference": {
                        "identical": False,
                        "first_epoch": 1,
                        "variables": [
                            {
                                "path": "item_embedding",
                                "kind": "embedding",
                                "max_abs": 1e-7,
                                "max_ulp": 3,
                            }
                        ],
                        "kinds": ["embedding"],
                    },
                },
                {
                    "id": "det1",
                    "label": "op determinism, 1 thread",
                    "reproducible": True,
                    "same_as_baseline": False,
                    "time_ratio": 1.4,
                    "first_difference": None,
                },
            ],
            "pitfalls_found": ["seed_after_build"],
            "recipe": "import tensorflow as tf\ntf.config.experimental."
            "enable_op_determinism()",
        },
        "manifest": [
            {
                "python": {"version": "3.11.2"},
                "packages": {"tensorflow": "2.21"},
                "env": {"PYTHONHASHSEED": None},
                "process": {"pid": 1},
            },
            {
                "python": {"version": "3.11.2"},
                "packages": {"tensorflow": "2.20"},
                "env": {"PYTHONHASHSEED": "0"},
                "process": {"pid": 2},
            },
        ],
        "compare": {
            "files": [
                {
                    "name": "a.npz",
                    "path": "/x/a.npz",
                    "format": "npz",
                    "n_rows": 20,
                    "dim": 8,
                },
                {
                    "name": HOSTILE[0],
                    "path": "/x/b.npz",
                    "format": "npz",
                    "n_rows": 18,
                    "dim": 8,
                },
            ],
            "coverage": {"n_common": 18, "per_file": [0.9, 1.0]},
        },
    }
    report["summary"] = [f"A sentence with a label {HOSTILE[0]}.", "Second sentence."]
    return report


def minimal_report() -> dict[str, Any]:
    """Return a report with one group and nothing else."""
    full = full_report()
    keep = (
        "embvar_version",
        "created",
        "study",
        "directory",
        "data",
        "runs",
        "summary",
    )
    out = {k: copy.deepcopy(full[k]) for k in keep}
    out["groups"] = [copy.deepcopy(full["groups"][0])]
    return out
