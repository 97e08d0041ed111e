"""Data sets embvar trains on: MovieLens and any interactions table."""

from embvar.data.interactions import Interactions, interactions_from_frame
from embvar.data.movielens import load_movielens
from embvar.data.split import Split, split_interactions, subsample_train

__all__ = [
    "Interactions",
    "interactions_from_frame",
    "load_movielens",
    "Split",
    "split_interactions",
    "subsample_train",
]
