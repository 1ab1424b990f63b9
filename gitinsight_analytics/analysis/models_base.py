"""What every insight model shares: the training set of outcomes known at as_of, the calibrated logistic fit, and
the prediction frame the workers read.

A model predicts for all repositories of one as-of day at once (the workers cache the result), from a
:class:`~.features.History` that holds nothing dated after as_of. Training examples are earlier days ``a`` whose
outcome day ``a + horizon`` is itself ``<= as_of``: outcomes already known at as_of, never later ones.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import numpy as np
import pandas as pd

from .features import LOOKBACK_DAYS, History
from .logistic import LogisticModel, fit_logistic, fit_platt

__all__ = ["NotFittable", "Model", "TRAINING_DAYS", "P_MIN", "P_MAX", "training_days", "training_set",
           "fit_calibrated", "LogisticVersion"]

#: At most this many of the latest as-of days with known outcomes are used for training.
TRAINING_DAYS = 60
#: Probabilities are kept inside [P_MIN, P_MAX]: a model is never certain (and log loss stays finite).
P_MIN, P_MAX = 0.01, 0.99

#: outcome(history, day, horizon, features at day) -> (mask of repositories whose outcome is known, outcome)
OutcomeFn = Callable[[History, dt.date, int, pd.DataFrame], tuple[np.ndarray, np.ndarray]]


class NotFittable(Exception):
    """The model cannot predict at this as-of day (e.g. no outcome was known yet to train on)."""


class Model:
    """One versioned model of an insight type. ``predict`` returns the features frame plus ``probability``;
    ``features`` names the columns the version uses (what its insights keep in ``data.features``)."""

    features: tuple[str, ...] = ()

    def __init__(self, insight_type: str, version: str, description: str) -> None:
        self.insight_type = insight_type
        self.version = version
        self.description = description

    def predict(self, history: History, as_of: dt.date, horizon_days: int) -> pd.DataFrame:  # pragma: no cover
        raise NotImplementedError



def training_days(history: History, as_of: dt.date, horizon_days: int) -> list[dt.date]:
    """Days whose outcome (``day + horizon``) is known at ``as_of`` and which have the lookback history."""
    days = [d for d in history.days
            if d + dt.timedelta(days=horizon_days) <= as_of
            and history.has_day(d + dt.timedelta(days=horizon_days))
            and history.has_day(d - dt.timedelta(days=LOOKBACK_DAYS))]
    return days[-TRAINING_DAYS:]


def training_set(history: History, as_of: dt.date, horizon_days: int, outcome: OutcomeFn,
                 features: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Feature matrix, outcomes and the day of each example, over :func:`training_days`."""
    xs, ys, days = [], [], []
    for day in training_days(history, as_of, horizon_days):
        frame = history.features(day, horizon_days)
        known, y = outcome(history, day, horizon_days, frame)
        xs.append(frame.loc[known, list(features)].to_numpy(dtype=float))
        ys.append(y[known].astype(float))
        days.append(np.full(int(known.sum()), day.toordinal()))
    if not xs:
        return np.empty((0, len(features))), np.empty(0), np.empty(0)
    return np.vstack(xs), np.concatenate(ys), np.concatenate(days)


def fit_calibrated(X: np.ndarray, y: np.ndarray, days: np.ndarray, features: tuple[str, ...]) -> LogisticModel:
    """Logistic regression calibrated with Platt scaling on the latest training day (out of time).

    The regression is first fitted without the latest day, whose predictions fit the Platt map; the final
    regression is refitted on every day and keeps that map. With a single training day there is nothing held
    out and the map is the identity.
    """
    if len(y) == 0 or y.min() == y.max():
        raise NotFittable("no outcomes known at as_of to train on (or only one class)")
    last = days.max()
    held = days == last
    if held.all() or y[~held].min() == y[~held].max():
        return fit_logistic(X, y, features)
    first = fit_logistic(X[~held], y[~held], features)
    a, b = fit_platt(first.raw_logit(X[held]), y[held])
    return fit_logistic(X, y, features).calibrated(a, b)


class LogisticVersion(Model):
    """A calibrated logistic model over ``features`` trained on ``outcome`` (subclasses set both)."""

    def __init__(self, insight_type: str, version: str, description: str, features: tuple[str, ...],
                 outcome: OutcomeFn) -> None:
        super().__init__(insight_type, version, description)
        self.features = features
        self.outcome = outcome

    def fitted(self, history: History, as_of: dt.date, horizon_days: int) -> LogisticModel:
        X, y, days = training_set(history, as_of, horizon_days, self.outcome, self.features)
        return fit_calibrated(X, y, days, self.features)

    def predict(self, history: History, as_of: dt.date, horizon_days: int) -> pd.DataFrame:
        model = self.fitted(history, as_of, horizon_days)
        frame = history.features(as_of, horizon_days)
        p = model.predict(frame[list(self.features)].to_numpy(dtype=float))
        frame = frame.assign(probability=np.clip(p, P_MIN, P_MAX))
        frame.attrs["model"] = model.describe()
        return frame
