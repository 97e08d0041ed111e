"""One root seed per study, one independent seed per source of randomness.

A run's randomness comes from four sources, each seeded on its own so that a
study can vary one while holding the others fixed:

``init``
    The initial values of every weight. Set (Python ``random``, NumPy's
    global generator and the TensorFlow/Keras backend) immediately before the
    model is built.
``order``
    The order of the training examples. The runner draws one permutation per
    epoch from its own ``numpy.random.Generator`` and calls ``fit`` with
    ``shuffle=False``.
``noise``
    Anything drawn while training: dropout masks, negative samples. The
    global seeds are reset to this value right after the build, and the
    ``SeedGenerator`` of every random layer (which Keras 3 seeds when the
    layer is created, i.e. from the init seed) is reseeded from it (see
    :mod:`embvar.training.keras_run`). The built-in factorization draws
    nothing while training, so for it this source changes nothing.
``split``
    The train/test split of the data, shared by every run of a study unless
    the study varies it.

A source's seed is derived from the root seed and the source's *level* (the
integer the study file gives, 0, 1, 2, ...) through
``numpy.random.SeedSequence(root, spawn_key=(source_index, level))``: the
streams of different sources, and of different levels of one source, are
statistically independent, and the same (root, source, level) always gives
the same seed, on every machine and in every process.
"""

from __future__ import annotations

import functools
from typing import Literal

import numpy as np

from embvar.checks import check_choice, check_int

__all__ = ["SOURCES", "Source", "source_seed", "source_seeds", "order_generator"]

Source = Literal["init", "order", "noise", "split"]

SOURCES: tuple[str, ...] = ("init", "order", "noise", "split")

# Seeds handed to Keras/TensorFlow must fit in 32 bits.
_SEED_BITS = 31


# A study of 10,000 runs asks for the same few hundred seeds 40,000 times.
@functools.lru_cache(maxsize=1 << 16, typed=True)
def source_seed(root: int, source: str, level: int) -> int:
    """Return the seed of one source of randomness at one level.

    Parameters
    ----------
    root : int
        The study's root seed, >= 0.
    source : {"init", "order", "noise", "split"}
        The source of randomness.
    level : int
        The source's level as the study file gives it, >= 0.

    Returns
    -------
    int
        A seed in [0, 2**31), a pure function of (root, source, level).

    Examples
    --------
    >>> source_seed(0, "init", 1) == source_seed(0, "init", 1)
    True
    >>> source_seed(0, "init", 1) != source_seed(0, "order", 1)
    True
    """
    check_int("root_seed", root, 0)
    check_choice("source", source, SOURCES)
    check_int(f"{source} seed level", level, 0)
    sequence = np.random.SeedSequence(root, spawn_key=(SOURCES.index(source), level))
    return int(sequence.generate_state(1, dtype=np.uint32)[0] >> (32 - _SEED_BITS))


def source_seeds(root: int, levels: dict[str, int]) -> dict[str, int]:
    """Return the seed of every source, given each source's level.

    Sources missing from ``levels`` take level 0.
    """
    unknown = set(levels) - set(SOURCES)
    if unknown:
        raise check_choice("seed source", sorted(unknown)[0], SOURCES)
    return {s: source_seed(root, s, levels.get(s, 0)) for s in SOURCES}


def order_generator(seed: int) -> np.random.Generator:
    """Return the generator the runner draws each epoch's permutation from."""
    return np.random.default_rng(np.random.SeedSequence(seed))
