"""What a run ran on: software versions, CPU, threads, settings, devices.

Bitwise reproducibility is promised by TensorFlow only on the same hardware
and software with the same settings. A manifest records each of those for
one process, and :func:`diff_manifests` lists what differs between two of
them, so a result that differs between two machines (or two processes) can
be explained by what differs in their manifests.

A manifest is a plain, JSON-ready dict of sections::

    python       version, implementation, hash randomization, a string-hash probe
    packages     tensorflow, keras, numpy (and the TF build: CUDA, cuDNN)
    platform     system, release, machine
    cpu          model, logical cores, cores this process may use, flags
    threads      TF intra-op and inter-op pool sizes
    tensorflow   op determinism, oneDNN in effect
    env          the environment variables that change results (None: unset)
    devices      physical and visible devices, GPU details
    process      pid and time (ignored by :func:`diff_manifests`)
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from embvar.errors import StoreError

__all__ = [
    "ENV_VARIABLES",
    "collect_manifest",
    "diff_manifests",
    "read_manifest",
    "write_manifest",
]

# Environment variables that can change what a run computes, or how.
ENV_VARIABLES = (
    "PYTHONHASHSEED",
    "TF_ENABLE_ONEDNN_OPTS",
    "TF_DETERMINISTIC_OPS",
    "TF_CUDNN_DETERMINISTIC",
    "CUDA_VISIBLE_DEVICES",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "TF_XLA_FLAGS",
    "XLA_FLAGS",
    "KERAS_BACKEND",
    "TF_USE_LEGACY_KERAS",
)

# Sections that differ between any two processes and explain nothing.
_VOLATILE = ("process",)


def collect_manifest(*, tensorflow: bool = True) -> dict[str, Any]:
    """Return the manifest of this process.

    Parameters
    ----------
    tensorflow : bool
        Include the TensorFlow sections (threads, op determinism, oneDNN,
        devices). This imports TensorFlow if it is not imported yet; pass
        False for a manifest of the interpreter and machine alone.

    Returns
    -------
    dict
        JSON-ready sections, described in the module docstring.
    """
    manifest: dict[str, Any] = {
        "python": {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
            "hash_randomization": bool(sys.flags.hash_randomization),
            # Equal probes in two processes mean equal string hashing, so
            # equal iteration order of sets and dicts keyed by strings.
            "str_hash_probe": hash("embvar manifest probe"),
        },
        "packages": {name: _version(name) for name in ("tensorflow", "keras", "numpy")},
        "platform": {
            "system": platform.system(),
            "release": platform.release(),
            "machine": platform.machine(),
        },
        "cpu": _cpu(),
        "env": {name: os.environ.get(name) for name in ENV_VARIABLES},
        "process": {
            "pid": os.getpid(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
    }
    if tensorflow:
        manifest.update(_tensorflow_sections())
    return manifest


def diff_manifests(
    a: dict[str, Any], b: dict[str, Any], *, ignore: tuple[str, ...] = _VOLATILE
) -> list[dict[str, Any]]:
    """Return what differs between two manifests, one entry per leaf.

    Parameters
    ----------
    a, b : dict
        Manifests from :func:`collect_manifest` (or read from JSON).
    ignore : tuple of str
        Top-level sections to leave out; by default ``process`` (pid and
        time differ between any two processes).

    Returns
    -------
    list of dict
        ``{"key": "env.TF_ENABLE_ONEDNN_OPTS", "a": "0", "b": "1"}`` for a
        differing value (``None`` where one side lacks the key), and
        ``{"key": "cpu.flags", "only_a": [...], "only_b": [...]}`` for
        lists of names. Sorted by key; empty when the manifests agree.

    Examples
    --------
    >>> diff_manifests({"env": {"X": "0"}}, {"env": {"X": "1"}})
    [{'key': 'env.X', 'a': '0', 'b': '1'}]
    """
    out: list[dict[str, Any]] = []
    _diff(a, b, "", out, set(ignore))
    return sorted(out, key=lambda d: d["key"])


def write_manifest(manifest: dict[str, Any], path: str | Path) -> Path:
    """Write a manifest to ``path`` as JSON, atomically; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".tmp-{path.name}"
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True), encoding="utf-8")
    tmp.replace(path)
    return path


def read_manifest(path: str | Path) -> dict[str, Any]:
    """Return a manifest written by :func:`write_manifest`.

    Raises
    ------
    StoreError
        If the file cannot be read or is not a JSON object.
    """
    path = Path(path)
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StoreError(f"cannot read manifest {str(path)!r}: {exc}.") from exc
    if not isinstance(manifest, dict):
        raise StoreError(
            f"manifest {str(path)!r} must hold a JSON object; "
            f"got {type(manifest).__name__}."
        )
    return manifest


def _diff(a: Any, b: Any, key: str, out: list, ignore: set[str]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for name in sorted(set(a) | set(b)):
            if not key and name in ignore:
                continue
            sub = f"{key}.{name}" if key else str(name)
            _diff(a.get(name), b.get(name), sub, out, ignore)
        return
    if isinstance(a, list) and isinstance(b, list) and a != b:
        if all(isinstance(v, str) for v in a + b):
            only_a = sorted(set(a) - set(b))
            only_b = sorted(set(b) - set(a))
            if only_a or only_b:
                out.append({"key": key, "only_a": only_a, "only_b": only_b})
                return
        out.append({"key": key, "a": a, "b": b})
        return
    if a != b:
        out.append({"key": key, "a": a, "b": b})


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        # tensorflow-cpu and tensorflow[and-cuda] install under other names.
        for alias in (f"{name}-cpu", f"{name}-gpu", f"{name}-macos"):
            try:
                return metadata.version(alias)
            except metadata.PackageNotFoundError:
                continue
    return None


def _cpu() -> dict[str, Any]:
    model: str | None = platform.processor() or None
    flags: list[str] = []
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                field, _, value = line.partition(":")
                field = field.strip()
                if field == "model name" and model in (None, "", "x86_64"):
                    model = value.strip()
                elif field in ("flags", "Features") and not flags:
                    flags = sorted(value.split())
                if model and flags:
                    break
    except OSError:
        pass
    usable: int | None
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count()
    return {
        "model": model,
        "logical_cores": os.cpu_count(),
        "usable_cores": usable,
        "flags": flags,
    }


def _tensorflow_sections() -> dict[str, Any]:
    import tensorflow as tf

    try:
        from tensorflow.python.framework import config as tf_config

        op_determinism = bool(tf_config.is_op_determinism_enabled())
    except (ImportError, AttributeError):
        op_determinism = None
    try:
        from tensorflow.python.util import _pywrap_util_port

        onednn = bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):
        onednn = None
    build = dict(tf.sysconfig.get_build_info())
    physical = tf.config.list_physical_devices()
    visible = tf.config.get_visible_devices()
    gpus = []
    for device in tf.config.list_physical_devices("GPU"):
        try:
            details = tf.config.experimental.get_device_details(device)
        except (ValueError, RuntimeError):
            details = {}
        gpus.append({"name": device.name, **{k: str(v) for k, v in details.items()}})
    return {
        "threads": {
            # 0 means TensorFlow picks: one per usable core.
            "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
        },
        "tensorflow": {
            "op_determinism": op_determinism,
            "onednn": onednn,
            "cuda_build": bool(build.get("is_cuda_build", False)),
            "cuda_version": build.get("cuda_version"),
            "cudnn_version": build.get("cudnn_version"),
        },
        "devices": {
            "physical": [f"{d.device_type}:{d.name}" for d in physical],
            "visible": [f"{d.device_type}:{d.name}" for d in visible],
            "gpus": gpus,
        },
    }
