"""Stability metrics: how much two (or K) runs' embeddings differ.

Three levels, from the raw coordinates to what the model does:

- parameters: :func:`relative_frobenius`, :func:`mean_abs_difference`;
- geometry: :func:`procrustes_distance`, :func:`angular_shape_distance`,
  :func:`linear_cka`, :func:`knn_overlap`, :func:`spearman_pairwise_similarity`,
  :func:`eigenspace_overlap`, :func:`pip_loss`,
  :func:`eigenspace_instability`, and for K runs
  :func:`generalized_procrustes` and :func:`pairwise_metrics`;
- function: :func:`topk_overlap`, :func:`churn_top1`,
  :func:`prediction_disagreement` (recommenders), :func:`word_similarity`,
  :func:`analogy_accuracy` (words).

Every function takes NumPy arrays of shape (n_entities, dim) whose rows are
the same entities in the same order; :func:`match_ids` lines up two runs
whose rows carry ids, and :func:`entity_stability_table` reports stability
per entity.
"""

from embvar.metrics.cka import linear_cka
from embvar.metrics.consensus import (
    GeneralizedProcrustesResult,
    generalized_procrustes,
)
from embvar.metrics.entities import ENTITY_COLUMNS, entity_stability_table
from embvar.metrics.ids import IdMatch, match_ids
from embvar.metrics.neighbors import (
    AUTO_EXACT_MAX_ROWS,
    NeighborSets,
    knn_indices,
    knn_overlap,
    knn_recall,
    neighbor_overlap,
    neighbor_sets,
)
from embvar.metrics.pairwise import (
    PAIRWISE_METRICS,
    CrossProducts,
    cross_products,
    pairwise_metrics,
)
from embvar.metrics.parameters import mean_abs_difference, relative_frobenius
from embvar.metrics.procrustes import (
    angular_shape_distance,
    procrustes_distance,
    procrustes_rotation,
)
from embvar.metrics.recommendations import (
    churn_top1,
    prediction_disagreement,
    topk_items,
    topk_overlap,
)
from embvar.metrics.similarity import (
    spearman_pairwise_similarity,
    spearman_similarity_matrix,
)
from embvar.metrics.spectral import eigenspace_instability, eigenspace_overlap, pip_loss
from embvar.metrics.words import (
    SIMILARITY_DATASETS,
    AnalogyResult,
    WordSimilarityResult,
    analogy_accuracy,
    word_similarity,
)

__all__ = [
    "AUTO_EXACT_MAX_ROWS",
    "ENTITY_COLUMNS",
    "PAIRWISE_METRICS",
    "SIMILARITY_DATASETS",
    "AnalogyResult",
    "CrossProducts",
    "GeneralizedProcrustesResult",
    "IdMatch",
    "NeighborSets",
    "WordSimilarityResult",
    "analogy_accuracy",
    "angular_shape_distance",
    "churn_top1",
    "cross_products",
    "eigenspace_instability",
    "eigenspace_overlap",
    "entity_stability_table",
    "generalized_procrustes",
    "knn_indices",
    "knn_overlap",
    "knn_recall",
    "linear_cka",
    "match_ids",
    "mean_abs_difference",
    "neighbor_overlap",
    "neighbor_sets",
    "pairwise_metrics",
    "pip_loss",
    "prediction_disagreement",
    "procrustes_distance",
    "procrustes_rotation",
    "relative_frobenius",
    "spearman_pairwise_similarity",
    "spearman_similarity_matrix",
    "topk_items",
    "topk_overlap",
    "word_similarity",
]
