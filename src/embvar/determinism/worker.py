"""The fresh process the determinism audit trains in.

Run as ``python -m embvar.determinism.worker REQUEST.json``. The request
names the settings of one audit cell, the training function and the runs
to train in this process; each run's :class:`~embvar.determinism.recorder.Recorder`
writes its ``record.json``. Environment variables that TensorFlow reads at
import (``TF_ENABLE_ONEDNN_OPTS``, ``PYTHONHASHSEED``) are set by the parent
when it starts the process; the rest is applied here, in this order, before
any TensorFlow op runs:

1. the intra-op thread pool size (``tf.config.threading``);
2. op determinism (``tf.config.experimental.enable_op_determinism``);
3. the devices: on a CPU cell, GPUs are hidden from TensorFlow;
4. the pitfall tracer, if asked, before the training function is imported.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import traceback
from pathlib import Path
from typing import Any

__all__ = ["apply_settings", "launch", "main", "resolve_function", "train_runs"]

#: How a run's error begins when the training function could not be loaded:
#: the audit stops at the first such run (every other would fail the same).
UNLOADABLE = "cannot load the training function: "

# Seconds one worker process may take before the audit gives up on it.
DEFAULT_TIMEOUT = 1800

logger = logging.getLogger(__name__)


def apply_settings(settings: dict[str, Any]) -> None:
    """Apply a cell's thread, determinism and device settings to TensorFlow."""
    import tensorflow as tf

    threads = settings.get("threads")
    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(int(threads))
    if settings.get("op_determinism"):
        tf.config.experimental.enable_op_determinism()
    gpus = tf.config.list_physical_devices("GPU")
    if settings.get("device", "cpu") == "cpu" and gpus:
        tf.config.set_visible_devices([], "GPU")
    if settings.get("device") == "gpu" and not gpus:
        from embvar.errors import ConfigError

        raise ConfigError("device must be a visible GPU for a GPU cell; got no GPU.")


def resolve_function(reference: str):
    """Return the function ``"package.module:name"`` or ``"path/file.py:name"``.

    Importing it runs the module's top-level code, as ``import`` does.
    """
    import importlib
    import importlib.util

    from embvar.errors import ConfigError

    module_name, sep, name = reference.rpartition(":")
    if not sep or not module_name or not name:
        raise ConfigError(
            "the training function must be given as 'package.module:function' "
            f"or 'path/to/file.py:function'; got {reference!r}."
        )
    try:
        if module_name.endswith(".py"):
            path = Path(module_name)
            spec = importlib.util.spec_from_file_location(f"_audited_{path.stem}", path)
            if spec is None or spec.loader is None or not path.is_file():
                raise ConfigError(f"training script {module_name!r} does not exist.")
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"cannot import {module_name!r} for the training function "
            f"{reference!r}: {exc}."
        ) from exc
    function = getattr(module, name, None)
    if not callable(function):
        raise ConfigError(
            f"{module_name!r} has no function {name!r}; got "
            f"{type(function).__name__ if function is not None else 'nothing'}."
        )
    return function


def train_runs(request: dict[str, Any], *, tracer: Any = None) -> list[Path]:
    """Train every run the request lists, in this process; return record paths."""
    from embvar.determinism.recorder import Recorder
    from embvar.manifest import collect_manifest

    target = request["target"]
    kwargs = target.get("kwargs", {})
    try:
        function = resolve_function(target["function"])
    except Exception as exc:  # every run records why it could not start
        from embvar.errors import ConfigError

        why = (
            str(exc) if isinstance(exc, ConfigError) else f"{type(exc).__name__}: {exc}"
        )
        failure = UNLOADABLE + " ".join(why.split())
        return [
            Recorder(run["dir"]).close(0.0, error=failure, manifest=collect_manifest())
            for run in request["runs"]
        ]
    written = []
    for index, run in enumerate(request["runs"]):
        reference = None
        if run.get("reference"):
            raw = json.loads(Path(run["reference"]).read_text(encoding="utf-8"))
            reference = {int(k): v for k, v in raw.get("steps", {}).items()}
        recorder = Recorder(
            run["dir"],
            step_epoch=run.get("step_epoch"),
            save_steps=run.get("save_steps", "all"),
            reference=reference,
        )
        if tracer is not None:
            tracer.begin_run(index)
        error = None
        t0 = time.perf_counter()
        try:
            function(recorder, run.get("seed"), **kwargs)
        except Exception as exc:  # recorded as the run's failure
            error = f"{type(exc).__name__}: {exc}"
            logger.debug("run failed:\n%s", traceback.format_exc())
        seconds = time.perf_counter() - t0
        if tracer is not None:
            recorder.trace = tracer.end_run()
        written.append(
            recorder.close(
                seconds,
                error=error,
                manifest=collect_manifest(),
                extra={
                    "settings": request.get("settings", {}),
                    "seed": run.get("seed"),
                },
            )
        )
    return written


def launch(
    request: dict[str, Any],
    path: Path,
    *,
    env: dict[str, str | None] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> str | None:
    """Train a request in a fresh Python process; return an error or None.

    Parameters
    ----------
    request : dict
        ``settings``, ``target``, ``runs`` (and ``trace``), as
        :func:`train_runs` reads them.
    path : Path
        Where to write the request file.
    env : dict, optional
        Environment variables to set (a None value unsets one) on top of
        this process's environment. ``PYTHONPATH`` is extended with this
        process's ``sys.path``, so the worker imports what this process can.
    timeout : float
        Seconds before the worker is killed.

    Returns
    -------
    str or None
        The end of the worker's stderr if it failed, else None. A run the
        training function failed in is not a failure here: its record says so.
    """
    import os
    import subprocess

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(request), encoding="utf-8")
    child = dict(os.environ)
    child.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    paths = [p for p in sys.path if p] + [child.get("PYTHONPATH", "")]
    child["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    for name, value in (env or {}).items():
        if value is None:
            child.pop(name, None)
        else:
            child[name] = value
    command = [sys.executable, "-m", "embvar.determinism.worker", str(path)]
    try:
        done = subprocess.run(
            command,
            env=child,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"the worker process ran past {timeout:.0f} s and was stopped"
    except OSError as exc:
        return f"cannot start a worker process ({command[0]}): {exc}"
    if done.returncode != 0:
        tail = (done.stderr or "").strip().splitlines()[-5:]
        return f"worker exited with code {done.returncode}: " + " | ".join(tail)
    return None


def main(argv: list[str] | None = None) -> int:
    """Entry point of the worker process."""
    argv = sys.argv[1:] if argv is None else argv
    request = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    apply_settings(request.get("settings", {}))
    tracer = None
    if request.get("trace"):
        from embvar.determinism.tracer import Tracer

        tracer = Tracer(fresh=False)
        tracer.install()
    try:
        train_runs(request, tracer=tracer)
    finally:
        if tracer is not None:
            tracer.uninstall()
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    sys.exit(main())
