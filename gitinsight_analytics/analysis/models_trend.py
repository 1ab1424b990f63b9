"""Insight type ``trend_prediction``: will the repository keep up its recent star pace?

Event: the repository gains at least ``threshold_stars`` stars in the ``horizon_days`` after as_of, where the
threshold is its own pace of the last 7 days over the horizon (at least one star). Two model versions:

- ``baseline-1``: the share of the last 7 days on which it gained at least the needed daily pace (Laplace-smoothed
  ``(hits + 1) / (days + 2)``): persistence, nothing fitted.
- ``logistic-1``: logistic regression on growth features, trained on outcomes known at as_of, Platt-calibrated on
  the latest known day (see :mod:`.models_base`).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from .features import History
from .models_base import P_MAX, P_MIN, LogisticVersion, Model

__all__ = ["TREND_TYPE", "TREND_FEATURES", "trend_outcome", "TrendBaseline", "trend_models", "trend_text"]

TREND_TYPE = "trend_prediction"

TREND_FEATURES = ("log_stars", "log_pace_7d", "accel_3d", "accel_1d", "long_trend", "has_long_history",
                  "hit_share_7d", "volatility_7d", "log_fork_ratio", "log_commit_age_days", "log_best_rank",
                  "n_lists")


def trend_outcome(history: History, day: dt.date, horizon_days: int,
                  frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Known where the repository has a snapshot ``horizon_days`` after ``day``; true if the gain reached the
    threshold."""
    later = pd.Series(history.column("stars", day + dt.timedelta(days=horizon_days)),
                      index=history.repository_ids).reindex(frame.index).to_numpy()
    known = ~np.isnan(later)
    gained = later - frame["stars_at_as_of"].to_numpy()
    return known, np.where(known, gained >= frame["threshold_stars"].to_numpy(), False)


class TrendBaseline(Model):
    features = ("hit_share_7d",)

    def predict(self, history: History, as_of: dt.date, horizon_days: int) -> pd.DataFrame:
        frame = history.features(as_of, horizon_days)
        return frame.assign(probability=np.clip(frame["hit_share_7d"].to_numpy(), P_MIN, P_MAX))


def trend_models() -> list[Model]:
    return [
        TrendBaseline(TREND_TYPE, "baseline-1",
                      "share of the last 7 days with at least the needed daily gain, Laplace-smoothed"),
        LogisticVersion(TREND_TYPE, "logistic-1",
                        "logistic regression on growth features, Platt-calibrated, trained on known outcomes",
                        TREND_FEATURES, trend_outcome),
    ]


def trend_text(full_name: str, row: dict[str, float], as_of: dt.date, horizon_days: int,
               version: str) -> tuple[str, str, list[str]]:
    """Title, description and tags of one prediction."""
    p, threshold = row["probability"], int(row["threshold_stars"])
    until = as_of + dt.timedelta(days=horizon_days)
    title = f"{full_name[:180]}: {p:.0%} chance of gaining {threshold}+ stars in {horizon_days} days"
    description = (f"As of {as_of}, {full_name} has {int(row['stars_at_as_of'])} stars and gained "
                   f"{int(row['stars_gained_7d'])} in the last 7 days. Model {version} gives a probability of "
                   f"{p:.2f} that it gains at least {threshold} stars (its recent pace) by {until}.")
    outlook = "likely" if p >= 0.67 else "unlikely" if p <= 0.33 else "uncertain"
    return title, description, ["engine", "prediction", "stars", f"horizon-{horizon_days}d", outlook]
