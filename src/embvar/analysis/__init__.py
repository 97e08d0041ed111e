"""Analysis of a study's runs: which source makes them differ, over training,
per entity, at what cost in accuracy, and verdicts on claims.

The functions exported here are pure (NumPy arrays and dicts in, dicts
out); :mod:`embvar.analysis.runs` reads a study directory into such arrays
and :mod:`embvar.analysis.sections` assembles the ``report.json`` sections.
"""

from embvar.analysis.attribution import (
    pair_classes,
    permanova,
    perturbation_share,
    source_distances,
    variance_components,
)
from embvar.analysis.claims import (
    claims_table,
    combine_verdicts,
    directional_verdict,
)
from embvar.analysis.dynamics import trajectory
from embvar.analysis.frequency import (
    aligned_displacement,
    entity_overlap,
    stability_by_frequency,
)
from embvar.analysis.resampling import pair_mean_samples, percentile_interval
from embvar.analysis.tradeoff import level_summary, mark_fronts, non_dominated

__all__ = [
    "aligned_displacement",
    "claims_table",
    "combine_verdicts",
    "directional_verdict",
    "entity_overlap",
    "level_summary",
    "mark_fronts",
    "non_dominated",
    "pair_classes",
    "pair_mean_samples",
    "percentile_interval",
    "permanova",
    "perturbation_share",
    "source_distances",
    "stability_by_frequency",
    "trajectory",
    "variance_components",
]
