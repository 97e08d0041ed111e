"""What each metric in a report means: level, formula, range, reference.

The HTML report's methods section and its figure labels read this
catalogue, so a metric is described once. Keys are the names
``report.json`` uses, without their ``@k`` suffix (``knn_overlap@10`` is
``knn_overlap`` with k = 10).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["MetricInfo", "METRICS", "LEVELS", "metric_info", "split_key"]

Level = Literal["parameters", "geometry", "function"]

LEVELS: dict[str, str] = {
    "parameters": "the raw coordinates, compared row for row",
    "geometry": "the space up to rotation and scale: who is near whom",
    "function": "what the model predicts and recommends",
}


@dataclass(frozen=True)
class MetricInfo:
    """How to read one metric.

    Attributes
    ----------
    key : str
        The name in ``report.json`` without its ``@k`` suffix.
    level : {"parameters", "geometry", "function"}
    name : str
        A short display name.
    alike : str
        The value two identical runs get and which way means "more alike",
        e.g. ``"0 = identical"``.
    low, high : float or None
        The metric's range where it has a fixed one (for axes).
    more_alike : {"lower", "higher"} or None
        Which direction means the runs agree more; None for accuracy.
    formula : str
        The definition, in plain text.
    invariant : str
        The transformations the metric ignores.
    reference : str
    """

    key: str
    level: Level
    name: str
    alike: str
    low: float | None
    high: float | None
    more_alike: Literal["lower", "higher"] | None
    formula: str
    invariant: str
    reference: str


_ENTRIES = [
    MetricInfo(
        "relative_frobenius",
        "parameters",
        "relative Frobenius distance",
        "0 = identical coordinates",
        0.0,
        None,
        "lower",
        "2 ‖X − Y‖_F / (‖X‖_F + ‖Y‖_F), the same rows of two runs' tables "
        "compared directly; reported as is, in [0, 2]: two unrelated random "
        "tables of equal norm score about √2 ≈ 1.41",
        "nothing: a rotation of the space counts as a difference",
        "a standard matrix distance",
    ),
    MetricInfo(
        "mean_abs_difference",
        "parameters",
        "mean absolute difference",
        "0 = identical coordinates",
        0.0,
        None,
        "lower",
        "mean over all entries of |X_ij − Y_ij|",
        "nothing: a rotation of the space counts as a difference",
        "the measure the reference article's example 3 prints",
    ),
    MetricInfo(
        "procrustes",
        "geometry",
        "Procrustes distance",
        "0 = same shape, 1 = no shared structure",
        0.0,
        1.0,
        "lower",
        "centre both tables, scale each to unit Frobenius norm; "
        "d² = min over rotations R and scale s of ‖X − s·Y·R‖²_F = 1 − ‖XᵀY‖²_*; "
        "reported: d (not d²). 1 − d² is the share of the structure the two "
        "runs have in common after the best rotation: d = 0.857 means only "
        "1 − 0.857² ≈ 27% is shared",
        "rotation, reflection, translation and isotropic scaling",
        "Schönemann (1966), Psychometrika 31; Gower (1975), Psychometrika 40",
    ),
    MetricInfo(
        "angular_shape_distance",
        "geometry",
        "angular shape distance",
        "0 = same shape, π/2 = unrelated",
        0.0,
        1.5708,
        "lower",
        "θ = arccos ‖XᵀY‖_* with X, Y centred and of unit Frobenius norm",
        "rotation, reflection, translation and isotropic scaling",
        "Williams, Kunz, Kornblith & Linderman (2021), NeurIPS",
    ),
    MetricInfo(
        "cka",
        "geometry",
        "linear CKA",
        "1 = same similarity structure",
        0.0,
        1.0,
        "higher",
        "‖YᵀX‖²_F / (‖XᵀX‖_F ‖YᵀY‖_F) on centred tables",
        "rotation, reflection, translation and isotropic scaling",
        "Kornblith, Norouzi, Lee & Hinton (2019), ICML",
    ),
    MetricInfo(
        "knn_overlap",
        "geometry",
        "k-NN overlap",
        "1 = same neighbours",
        0.0,
        1.0,
        "higher",
        "|N_k(i) in run A ∩ N_k(i) in run B| / k, each entity's k nearest other "
        "entities by cosine similarity, averaged over entities",
        "any transformation that keeps cosine similarities (rotation, scaling)",
        "Hellrich & Hahn (2016), COLING; Wendlandt, Kummerfeld & Mihalcea (2018), "
        "NAACL",
    ),
    MetricInfo(
        "knn_jaccard",
        "geometry",
        "k-NN Jaccard",
        "1 = same neighbours",
        0.0,
        1.0,
        "higher",
        "|A ∩ B| / |A ∪ B| of each entity's k nearest neighbours in two runs",
        "any transformation that keeps cosine similarities",
        "Jaccard (1912), New Phytologist 11",
    ),
    MetricInfo(
        "similarity_correlation",
        "geometry",
        "similarity correlation",
        "1 = same similarity ranking",
        -1.0,
        1.0,
        "higher",
        "Spearman correlation of the cosine similarities of a seeded sample of "
        "entity pairs in two runs",
        "rotation, scaling, any monotone change of similarities",
        "Antoniak & Mimno (2018), TACL",
    ),
    MetricInfo(
        "eigenspace_overlap",
        "geometry",
        "eigenspace overlap",
        "1 = same column space",
        0.0,
        1.0,
        "higher",
        "‖U_Xᵀ U_Y‖²_F / max(r_X, r_Y) with U the left singular vectors and r "
        "the tables' ranks",
        "any invertible linear map of either table",
        "May, Zhang, Dao & Ré (2019), NeurIPS",
    ),
    MetricInfo(
        "pip_loss",
        "geometry",
        "PIP loss",
        "0 = same inner products",
        0.0,
        None,
        "lower",
        "‖XXᵀ − YYᵀ‖_F = (‖XᵀX‖² + ‖YᵀY‖² − 2‖XᵀY‖²)^½",
        "rotation and reflection",
        "Yin & Shen (2018), NeurIPS",
    ),
    MetricInfo(
        "eigenspace_instability",
        "geometry",
        "eigenspace instability",
        "0 = stable",
        0.0,
        1.0,
        "lower",
        "the eigenspace instability measure against higher-dimensional "
        "reference embeddings",
        "rotation",
        "Leszczynski, May, Zhang, Wu, Aberger & Ré (2020), MLSys",
    ),
    MetricInfo(
        "displacement",
        "geometry",
        "displacement from the consensus",
        "0 = no movement",
        0.0,
        2.0,
        "lower",
        "cosine distance of an entity's vector to the consensus of all runs, "
        "after generalized Procrustes alignment",
        "rotation, reflection, translation and isotropic scaling",
        "Gower (1975), Psychometrika 40",
    ),
    MetricInfo(
        "aligned_displacement",
        "geometry",
        "aligned displacement",
        "0 = no movement, 1 = as far as a typical row is long",
        0.0,
        None,
        "lower",
        "√n · ‖x_i − s·y_i·R‖ per entity, with both tables centred and of unit "
        "Frobenius norm, R and s the Procrustes rotation and scale of Y onto X",
        "rotation, reflection, translation and isotropic scaling",
        "Schönemann (1966), Psychometrika 31",
    ),
    MetricInfo(
        "relative_displacement",
        "geometry",
        "relative displacement",
        "0 = same vector, 2 = opposite vectors",
        0.0,
        2.0,
        "lower",
        "‖x_i − s·y_i·R‖ / ((‖x_i‖ + ‖s·y_i·R‖) / 2) per entity, with both "
        "tables centred and of unit Frobenius norm, R and s the Procrustes "
        "rotation and scale of Y onto X: how far the entity's vector moves "
        "between two runs, in units of its own length; about √2 ≈ 1.41 for "
        "unrelated vectors of equal length",
        "rotation, reflection, translation and isotropic scaling",
        "Schönemann (1966), Psychometrika 31",
    ),
    MetricInfo(
        "test_rmse",
        "function",
        "test RMSE",
        "lower = more accurate",
        None,
        None,
        None,
        "root mean squared error of predicted ratings on the held-out test pairs",
        "any change of the tables that keeps every prediction",
        "the standard rating-prediction error",
    ),
    MetricInfo(
        "topk_overlap",
        "function",
        "top-k overlap",
        "1 = same recommendations",
        0.0,
        1.0,
        "higher",
        "|top-k(u) in run A ∩ top-k(u) in run B| / k per user, items the user "
        "rated in training excluded, averaged over users",
        "any change of the tables that keeps every user's ranking",
        "the top-k form of prediction churn (Cormier, Milani Fard, Canini & "
        "Gupta, 2016, NeurIPS)",
    ),
    MetricInfo(
        "churn_top1",
        "function",
        "top-1 churn",
        "0 = same first recommendation",
        0.0,
        1.0,
        "lower",
        "share of users whose first recommendation differs between two runs",
        "any change of the tables that keeps every user's ranking",
        "Cormier, Milani Fard, Canini & Gupta (2016), NeurIPS",
    ),
    MetricInfo(
        "prediction_disagreement",
        "function",
        "prediction disagreement",
        "0 = same predictions",
        0.0,
        None,
        "lower",
        "mean |r̂_A(u, i) − r̂_B(u, i)| over the test pairs",
        "any change of the tables that keeps every prediction (U → UA, V → VA⁻ᵀ)",
        "the rating-scale analogue of prediction churn",
    ),
    MetricInfo(
        "wordsim353",
        "function",
        "WordSim353 ρ",
        "accuracy: higher is better",
        -1.0,
        1.0,
        None,
        "Spearman correlation of cosine similarities with human judgements",
        "rotation and scaling",
        "Finkelstein et al. (2002), ACM TOIS 20",
    ),
    MetricInfo(
        "simlex999",
        "function",
        "SimLex-999 ρ",
        "accuracy: higher is better",
        -1.0,
        1.0,
        None,
        "Spearman correlation of cosine similarities with human judgements",
        "rotation and scaling",
        "Hill, Reichart & Korhonen (2015), Computational Linguistics 41",
    ),
    MetricInfo(
        "analogy",
        "function",
        "analogy accuracy",
        "accuracy: higher is better",
        0.0,
        1.0,
        None,
        "share of a : b :: c : ? questions whose nearest answer is right",
        "rotation and scaling",
        "Mikolov, Chen, Corrado & Dean (2013), arXiv:1301.3781",
    ),
]

METRICS: dict[str, MetricInfo] = {m.key: m for m in _ENTRIES}


def split_key(key: str) -> tuple[str, str | None]:
    """Return ``(base, k)`` of a report key.

    ``"knn_overlap@10"`` gives ``("knn_overlap", "10")``; a key without
    ``@`` gives ``(key, None)``.
    """
    base, _, k = key.partition("@")
    return base, (k or None)


def metric_info(key: str, level: Level | None = None) -> MetricInfo:
    """Return the catalogue entry of a report key, or a plain one if unknown.

    Parameters
    ----------
    key : str
        A metric name as ``report.json`` writes it, with or without ``@k``.
    level : {"parameters", "geometry", "function"}, optional
        The level to give an unknown metric (default "geometry").

    Returns
    -------
    MetricInfo
        For ``@k`` keys the name gains ``@k`` (``"k-NN overlap@10"``).
    """
    base, k = split_key(key)
    info = METRICS.get(base)
    if info is None:
        info = MetricInfo(
            base,
            level or "geometry",
            base.replace("_", " "),
            "",
            None,
            None,
            None,
            "see the embvar.metrics docstring of the same name",
            "",
            "",
        )
    if k is None:
        return info
    from dataclasses import replace

    return replace(info, name=f"{info.name}@{k}")
