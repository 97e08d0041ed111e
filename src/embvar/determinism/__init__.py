"""The determinism audit: is a run reproducible here, and if not, where does it part?

:mod:`~embvar.determinism.audit` trains one run in fresh processes
(:mod:`~embvar.determinism.worker`) under a matrix of settings;
:mod:`~embvar.determinism.target` says what is trained and
:mod:`~embvar.determinism.recorder` snapshots every variable per epoch and
step; :mod:`~embvar.determinism.records` and :mod:`~embvar.determinism.bitwise`
compare them bit for bit; :mod:`~embvar.determinism.pitfalls` (with
:mod:`~embvar.determinism.tracer`) diagnoses the usual mistakes; and
:mod:`~embvar.determinism.verdict` turns the cells into a verdict, costs and
a recipe.
"""

from embvar.determinism.audit import (
    Cell,
    DeterminismAudit,
    determinism_audit,
    read_determinism,
)

__all__ = ["Cell", "DeterminismAudit", "determinism_audit", "read_determinism"]
