"""Watch what a training function seeds, draws and builds, for the pitfall check.

While installed, a :class:`Tracer` wraps the functions through which a
Keras program seeds and draws randomness, creates weights and trains:

- Python ``random``: ``seed`` and the module-level draws (``randint``,
  ``shuffle``, ...; Keras draws the seeds of unseeded initializers and
  layers with ``random.randint``);
- NumPy's global generator: ``numpy.random.seed`` and the legacy draws
  (``permutation``, ``shuffle``, ``rand``, ...); ``numpy.random.default_rng``
  called without a seed (the generator it returns is watched too);
- TensorFlow: ``tf.random.set_seed`` and every random op that gets no seed
  at all (neither a global nor an op seed), which is how ``fit(shuffle=True)``
  and ``Dataset.shuffle()`` draw when nothing was seeded;
- Keras: ``Layer.add_weight`` (which initializer, random or not) and
  ``Model.fit`` (is this model object one an earlier run trained?).

Events are counted per run, with the first line of the user's code that
led to each (the first stack frame outside Python's, NumPy's, TensorFlow's,
Keras's and this module's own files). ``uninstall`` restores every
function. Code that bound a function before the tracer was installed
(``from random import shuffle`` at import) is not seen; the audit installs
the tracer before it imports the training function.
"""

from __future__ import annotations

import os
import random
import sys
import weakref
from typing import Any

import numpy as np

__all__ = ["Tracer"]

_PY_DRAWS = (
    "random",
    "randint",
    "randrange",
    "choice",
    "choices",
    "shuffle",
    "sample",
    "uniform",
    "gauss",
    "normalvariate",
    "getrandbits",
)
_NP_DRAWS = (
    "rand",
    "randn",
    "random",
    "random_sample",
    "randint",
    "permutation",
    "shuffle",
    "choice",
    "normal",
    "uniform",
    "standard_normal",
    "binomial",
    "poisson",
    "integers",
)
_SHUFFLES = ("shuffle", "permutation", "permuted", "sample")
_NOT_RANDOM = (
    "zeros",
    "ones",
    "constant",
    "identity",
    "Zeros",
    "Ones",
    "Constant",
    "Identity",
)


def _library_dirs() -> tuple[str, ...]:
    import keras
    import tensorflow as tf

    dirs = [
        os.path.dirname(random.__file__),
        os.path.dirname(np.__file__),
        os.path.dirname(tf.__file__),
        os.path.dirname(keras.__file__),
        os.path.abspath(__file__),
    ]
    try:
        import tf_keras  # noqa: F401

        dirs.append(os.path.dirname(sys.modules["tf_keras"].__file__ or ""))
    except ImportError:
        pass
    return tuple(dirs)


class Tracer:
    """Counts seeds, draws, weights and fits, run by run.

    Parameters
    ----------
    fresh : bool
        At install, reseed Python ``random``, NumPy's global generator and
        TensorFlow's global seed from entropy and forget Keras's global
        seed, as a freshly started process has them (use it to trace runs in
        a process that has already seeded things). False leaves them as
        they are (a fresh worker process).
    """

    def __init__(self, fresh: bool = True):
        self.fresh = fresh
        self.seeded = {"python": False, "numpy": False, "tensorflow": False}
        self.run = -1
        self._events: dict[tuple, dict[str, Any]] = {}
        self._seq = 0
        self._saved: list[tuple[Any, str, Any, bool]] = []
        self._fitted: list[weakref.WeakSet] = []
        self._dirs: tuple[str, ...] = ()
        self._keras_dir = ""

    # -- installing ----------------------------------------------------------

    def install(self) -> Tracer:
        """Wrap the watched functions; return self."""
        import keras
        import tensorflow as tf
        from tensorflow.python.framework import random_seed

        self._dirs = _library_dirs()
        self._keras_dir = self._dirs[3]
        if self.fresh:
            random.seed()
            np.random.seed(None)
            tf.random.set_seed(None)
            try:
                from keras.src.backend.common import global_state

                global_state.set_global_attribute("global_random_seed", None)
                global_state.set_global_attribute("global_seed_generator", None)
            except ImportError:
                pass
        self._wrap(random, "seed", self._seed_wrapper("python"))
        for name in _PY_DRAWS:
            self._wrap(random, name, self._draw_wrapper("python", name))
        self._wrap(np.random, "seed", self._seed_wrapper("numpy"))
        for name in _NP_DRAWS:
            if hasattr(np.random, name):
                self._wrap(np.random, name, self._draw_wrapper("numpy", name))
        self._wrap(np.random, "default_rng", self._default_rng)
        self._wrap(tf.random, "set_seed", self._seed_wrapper("tensorflow"))
        self._wrap(random_seed, "set_seed", self._seed_wrapper("tensorflow"))
        self._wrap(random_seed, "get_seed", self._get_seed)
        self._wrap(keras.layers.Layer, "add_weight", self._add_weight)
        self._wrap(keras.Model, "fit", self._fit)
        return self

    def uninstall(self) -> None:
        """Restore every wrapped function."""
        for owner, name, original, own in reversed(self._saved):
            if own:
                setattr(owner, name, original)
            else:
                delattr(owner, name)
        self._saved.clear()

    def __enter__(self) -> Tracer:
        return self.install()

    def __exit__(self, *exc) -> None:
        self.uninstall()

    # -- runs ------------------------------------------------------------------

    def begin_run(self, index: int) -> None:
        """Start counting the events of run ``index``."""
        self.run = index
        self._events = {}
        self._seq = 0
        self._fitted.append(weakref.WeakSet())

    def end_run(self) -> dict[str, Any]:
        """Return the run's events: a JSON-ready summary.

        Returns
        -------
        dict
            ``events``: one entry per (kind, generator, call, where) with its
            ``count`` and ``first`` (order of first occurrence in the run);
            ``seeded``: which generators were seeded in this process by the
            end of the run.
        """
        events = sorted(self._events.values(), key=lambda e: e["first"])
        return {"events": events, "seeded": dict(self.seeded)}

    # -- wrappers ----------------------------------------------------------------

    def _wrap(self, owner: Any, name: str, make: Any) -> None:
        own = name in vars(owner)
        original = vars(owner)[name] if own else getattr(owner, name)
        self._saved.append((owner, name, original, own))
        setattr(owner, name, make(original))

    def _event(self, kind: str, generator: str, call: str, **extra: Any) -> None:
        if self.run < 0:
            return
        where, via_keras = self._where()
        key = (kind, generator, call, where, tuple(sorted(extra.items())))
        event = self._events.get(key)
        if event is None:
            self._events[key] = {
                "kind": kind,
                "generator": generator,
                "call": call,
                "where": where,
                "via_keras": via_keras,
                "count": 1,
                "first": self._seq,
                **extra,
            }
        else:
            event["count"] += 1
        self._seq += 1

    def _where(self) -> tuple[str, bool]:
        frame: Any = sys._getframe(2)
        via_keras = False
        while frame is not None:
            filename = frame.f_code.co_filename
            if filename.startswith(self._keras_dir):
                via_keras = True
            if not filename.startswith(self._dirs) and not filename.startswith("<"):
                return (
                    f"{filename}:{frame.f_lineno} ({frame.f_code.co_name})",
                    via_keras,
                )
            frame = frame.f_back
        return "?", via_keras

    def _seed_wrapper(self, generator: str):
        def make(original):
            def seed(*args, **kwargs):
                value = args[0] if args else kwargs.get("seed", kwargs.get("a"))
                result = original(*args, **kwargs)
                self.seeded[generator] = value is not None
                self._event("seed", generator, "seed", value=_plain(value))
                return result

            return seed

        return make

    def _draw_wrapper(self, generator: str, name: str):
        def make(original):
            def draw(*args, **kwargs):
                kind = "shuffle" if name in _SHUFFLES else "draw"
                self._event(kind, generator, name, seeded=self.seeded[generator])
                return original(*args, **kwargs)

            return draw

        return make

    def _default_rng(self, original):
        def default_rng(seed=None, *args, **kwargs):
            rng = original(seed, *args, **kwargs)
            if seed is None:
                self._event("unseeded_generator", "numpy_generator", "default_rng")
                return _WatchedGenerator(rng, self)
            return rng

        return default_rng

    def _get_seed(self, original):
        def get_seed(op_seed):
            seeds = original(op_seed)
            if seeds == (None, None):
                shuffle = any("shuffle" in f.function for f in _stack_names())
                self._event(
                    "shuffle" if shuffle else "draw",
                    "tensorflow",
                    "random op",
                    seeded=False,
                )
            return seeds

        return get_seed

    def _add_weight(self, original):
        tracer = self

        def add_weight(layer, *args, **kwargs):
            initializer = kwargs.get("initializer", args[1] if len(args) > 1 else None)
            name = kwargs.get("name") or "?"
            tracer._weight(layer, name, initializer)
            return original(layer, *args, **kwargs)

        return add_weight

    def _weight(self, layer: Any, name: str, initializer: Any) -> None:
        label = (
            initializer if isinstance(initializer, str) else type(initializer).__name__
        )
        if initializer is None or label in _NOT_RANDOM or label.lower() in _NOT_RANDOM:
            is_random: bool | None = False
        elif isinstance(initializer, str) or _is_random_initializer(initializer):
            is_random = True
        else:
            is_random = None  # a function: cannot tell
        seed = getattr(initializer, "seed", None)
        self._event(
            "weight",
            "keras",
            "add_weight",
            layer=getattr(layer, "name", "?"),
            variable=str(name),
            initializer=label,
            random=is_random,
            initializer_id=None
            if isinstance(initializer, str) or initializer is None
            else id(initializer),
            initializer_seed=seed if isinstance(seed, int) else None,
        )

    def _fit(self, original):
        tracer = self

        def fit(model, *args, **kwargs):
            earlier = [i for i, seen in enumerate(tracer._fitted[:-1]) if model in seen]
            if tracer._fitted:
                tracer._fitted[-1].add(model)
            tracer._event(
                "fit",
                "keras",
                "fit",
                shuffle=_plain(kwargs.get("shuffle", True)),
                model=getattr(model, "name", "?"),
                trained_in_run=earlier[0] if earlier else None,
            )
            return original(model, *args, **kwargs)

        return fit


class _WatchedGenerator:
    """A NumPy Generator created without a seed, whose draws are counted."""

    def __init__(self, rng: np.random.Generator, tracer: Tracer):
        self._rng = rng
        self._tracer = tracer

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._rng, name)
        if not callable(value):
            return value
        tracer = self._tracer

        def call(*args, **kwargs):
            kind = "shuffle" if name in _SHUFFLES else "draw"
            tracer._event(kind, "numpy_generator", name, seeded=False)
            return value(*args, **kwargs)

        return call


class _Frame:
    __slots__ = ("function",)

    def __init__(self, function: str):
        self.function = function


def _stack_names() -> list[_Frame]:
    out = []
    frame: Any = sys._getframe(2)
    while frame is not None:
        out.append(_Frame(frame.f_code.co_name))
        frame = frame.f_back
    return out


def _is_random_initializer(initializer: Any) -> bool:
    try:
        from keras.src.initializers.random_initializers import RandomInitializer
    except ImportError:
        return False
    return isinstance(initializer, RandomInitializer)


def _plain(value: Any) -> Any:
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, np.integer):
        return int(value)
    return repr(value)[:40]
