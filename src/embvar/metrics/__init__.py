"""Stability metrics: how much two (or K) runs' embeddings differ.

Three levels, from the raw coordinates to what the model does:

- parameters: :func:`relative_frobenius`, :func:`mean_abs_difference`;
- geometry: :func:`procrustes_distance`, :func:`angular_shape_distance`,
  :func:`linear_cka`, :func:`knn_overlap`;
- function: :func:`topk_overlap`, :func:`churn_top1`,
  :func:`prediction_disagreement`.

Every function takes NumPy arrays of shape (n_entities, dim) whose rows are
the same entities in the same order; :func:`match_ids` lines up two runs
whose rows carry ids.
"""

from embvar.metrics.cka import linear_cka
from embvar.metrics.neighbors import (
    AUTO_EXACT_MAX_ROWS,
    NeighborSets,
    knn_indices,
    knn_overlap,
    knn_recall,
    neighbor_overlap,
    neighbor_sets,
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

__all__ = [
    "AUTO_EXACT_MAX_ROWS",
    "NeighborSets",
    "angular_shape_distance",
    "churn_top1",
    "knn_indices",
    "knn_overlap",
    "knn_recall",
    "linear_cka",
    "mean_abs_difference",
    "neighbor_overlap",
    "neighbor_sets",
    "prediction_disagreement",
    "procrustes_distance",
    "procrustes_rotation",
    "relative_frobenius",
    "topk_items",
    "topk_overlap",
]
