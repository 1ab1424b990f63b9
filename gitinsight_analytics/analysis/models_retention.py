"""Insight type ``list_retention``: will the repository still be in a GitHub ranking top-100 list after the horizon?

Checkable later: on day ``as_of + horizon_days`` the imported file either lists it or not. Two versions:

- ``baseline-1``: the share of repositories that stayed, among the outcomes known at as_of (one rate for all).
- ``logistic-1``: logistic regression on rank, number of lists, size and growth, Platt-calibrated.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from .features import History
from .models_base import P_MAX, P_MIN, LogisticVersion, Model, NotFittable, training_set

__all__ = ["RETENTION_TYPE", "RETENTION_FEATURES", "retention_outcome", "retention_models", "retention_text"]

RETENTION_TYPE = "list_retention"

RETENTION_FEATURES = ("log_best_rank", "n_lists", "log_stars", "log_pace_7d", "accel_3d", "log_commit_age_days")


def retention_outcome(history: History, day: dt.date, horizon_days: int,
                      frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Known when a file of ``day + horizon`` was imported; true if the repository has a snapshot that day."""
    later = pd.Series(history.column("stars", day + dt.timedelta(days=horizon_days)),
                      index=history.repository_ids).reindex(frame.index).to_numpy()
    return np.ones(len(frame), dtype=bool), ~np.isnan(later)


class RetentionBaseline(Model):
    def predict(self, history: History, as_of: dt.date, horizon_days: int) -> pd.DataFrame:
        _, y, _ = training_set(history, as_of, horizon_days, retention_outcome, ())
        if len(y) == 0:
            raise NotFittable("no outcomes known at as_of")
        frame = history.features(as_of, horizon_days)
        return frame.assign(probability=float(np.clip(y.mean(), P_MIN, P_MAX)))


def retention_models() -> list[Model]:
    return [
        RetentionBaseline(RETENTION_TYPE, "baseline-1", "share of repositories that stayed, among known outcomes"),
        LogisticVersion(RETENTION_TYPE, "logistic-1",
                        "logistic regression on rank, lists, size and growth, Platt-calibrated",
                        RETENTION_FEATURES, retention_outcome),
    ]


def retention_text(full_name: str, row: dict[str, float], as_of: dt.date, horizon_days: int,
                   version: str) -> tuple[str, str, list[str]]:
    p = row["probability"]
    until = as_of + dt.timedelta(days=horizon_days)
    title = f"{full_name[:180]}: {p:.0%} chance to stay in the top-100 lists for {horizon_days} days"
    description = (f"As of {as_of}, {full_name} is ranked {int(np.exp(row['log_best_rank']))} at best in "
                   f"{int(row['n_lists'])} list(s). Model {version} gives a probability of {p:.2f} that it is still "
                   f"listed on {until}.")
    return title, description, ["engine", "prediction", "ranking", f"horizon-{horizon_days}d"]
