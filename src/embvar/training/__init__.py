"""Training: one run of a built-in model, seeded source by source."""

from embvar.training.fit import RunResult, predict_ratings, rmse, train_run

__all__ = ["RunResult", "predict_ratings", "rmse", "train_run"]
