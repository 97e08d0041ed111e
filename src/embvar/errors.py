"""Exceptions raised by embvar.

Every error embvar raises on purpose derives from :class:`EmbvarError`, so a
caller (and the command line) can tell a problem with the user's input or
environment apart from a bug. Each also subclasses the builtin that fits the
condition, so ``except ValueError`` keeps working for code that does not know
embvar.

The command line turns any :class:`EmbvarError` into one line on stderr and
exit code 2.
"""

from __future__ import annotations

__all__ = [
    "EmbvarError",
    "ConfigError",
    "DataError",
    "ShapeMismatchError",
    "NonFiniteError",
    "StoreError",
    "StoreVersionError",
    "TrainingError",
    "DependencyError",
]


class EmbvarError(Exception):
    """Base class of every error embvar raises on purpose."""


class ConfigError(EmbvarError, ValueError):
    """A study file or a setting is malformed or out of range."""


class DataError(EmbvarError, ValueError):
    """A data set or an embeddings file cannot be used as given."""


class ShapeMismatchError(DataError):
    """Two arrays that must agree in shape or ids do not."""


class NonFiniteError(DataError):
    """An array holds NaN or infinite values where finite ones are needed."""


class StoreError(EmbvarError, RuntimeError):
    """The run store cannot be read or written."""


class StoreVersionError(StoreError):
    """The store was written by an incompatible version of embvar."""


class TrainingError(EmbvarError, RuntimeError):
    """Training a run failed for a reason the user can act on."""


class DependencyError(EmbvarError, ImportError):
    """An optional dependency is needed but not installed."""
