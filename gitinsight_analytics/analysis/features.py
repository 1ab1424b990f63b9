"""Star-history features of every repository at an as-of day, computed only from snapshots dated up to that day.

:func:`load_history` reads the snapshots of the window ``(as_of - HISTORY_DAYS, as_of]`` (nothing later: the
no-look-ahead guarantee starts here); :class:`History` then gives the features at ``as_of`` or at any earlier
day of the window, which is how training examples with already known outcomes are built.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

__all__ = ["HISTORY_DAYS", "LOOKBACK_DAYS", "LONG_LOOKBACK_DAYS", "History", "load_history", "threshold_stars"]

#: Days of snapshots read before as_of (training examples come from this window too).
HISTORY_DAYS = 120
#: The recent window: a repository needs snapshots on as_of and on as_of - LOOKBACK_DAYS.
LOOKBACK_DAYS = 7
#: The long-run rate uses the newest snapshot at least this many days before as_of (monthly files).
LONG_LOOKBACK_DAYS = 28

_COLUMNS = ("stars", "forks", "open_issues", "best_rank", "n_lists", "commit_age")


def threshold_stars(stars_gained_lookback: float, horizon_days: int) -> int:
    """The event's threshold: at least the repository's recent pace (stars per day over the lookback) kept up for
    the horizon, and at least one star. Per repository, so the event is informative for small and large ones."""
    pace = max(float(stars_gained_lookback), 0.0) / LOOKBACK_DAYS
    return max(1, math.ceil(pace * horizon_days - 1e-9))


@dataclass(frozen=True)
class History:
    """Snapshot matrices (repositories x days) of the window ending on ``as_of``; NaN where no snapshot."""

    as_of: dt.date
    days: list[dt.date]
    repository_ids: list[str]
    full_names: list[str]
    values: dict[str, np.ndarray]

    def column(self, name: str, day: dt.date) -> np.ndarray:
        try:
            return self.values[name][:, self.days.index(day)]
        except ValueError:
            return np.full(len(self.repository_ids), np.nan)

    def has_day(self, day: dt.date) -> bool:
        return day in self.days

    def window(self, as_of: dt.date, *, history_days: int = HISTORY_DAYS) -> History:
        """What :func:`load_history` reads for ``as_of`` (the days ``(as_of - history_days, as_of]`` and the
        repositories with a snapshot in them), cut from this longer history: one read serves many as-of days."""
        if as_of > self.as_of:
            raise ValueError("a window after the history's as_of would look ahead")
        since = as_of - dt.timedelta(days=history_days)
        cols = [k for k, day in enumerate(self.days) if since < day <= as_of]
        present = ~np.isnan(self.values["stars"][:, cols]) if cols else np.zeros((len(self.repository_ids), 0), bool)
        rows = np.flatnonzero(present.any(axis=1))
        picked = np.ix_(rows, np.asarray(cols, dtype=np.int64))
        return History(as_of, [self.days[k] for k in cols], [self.repository_ids[i] for i in rows],
                       [self.full_names[i] for i in rows],
                       {name: matrix[picked] for name, matrix in self.values.items()})

    def features(self, day: dt.date, horizon_days: int) -> pd.DataFrame:
        """Features at ``day`` (<= as_of) for the repositories with a snapshot on ``day`` and ``day - 7``.

        Uses only columns dated ``<= day``. Rows are indexed by repository id.
        """
        if day > self.as_of:
            raise ValueError("features after as_of would look ahead")
        stars = self.column("stars", day)
        back = self.column("stars", day - dt.timedelta(days=LOOKBACK_DAYS))
        ok = ~np.isnan(stars) & ~np.isnan(back)
        gained = stars - back
        daily = np.column_stack([
            self.column("stars", day - dt.timedelta(days=k)) - self.column("stars", day - dt.timedelta(days=k + 1))
            for k in range(LOOKBACK_DAYS)
        ])  # daily gains, newest first (NaN where a day is missing)
        pace = np.maximum(gained, 0.0) / LOOKBACK_DAYS
        threshold = np.maximum(1.0, np.ceil(pace * horizon_days - 1e-9))
        need = threshold / horizon_days
        observed = ~np.isnan(daily)
        n_days = observed.sum(axis=1)
        hits = (np.nan_to_num(daily, nan=-np.inf) >= need[:, None]).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows (missing days) give NaN, handled below
            last3 = np.nanmean(daily[:, :3], axis=1) if daily.shape[1] else np.zeros(len(stars))
            volatility = np.nanstd(daily, axis=1) / (np.nanmean(np.abs(daily), axis=1) + 1.0)
        long_stars, long_gap = self._long_lookback(day)
        long_rate = np.where(np.isnan(long_stars), np.nan, (stars - long_stars) / np.maximum(long_gap, 1.0))
        has_long = ~np.isnan(long_rate)
        frame = pd.DataFrame({
            "full_name": self.full_names,
            "stars_at_as_of": stars,
            "stars_gained_7d": gained,
            "threshold_stars": threshold,
            "log_stars": np.log1p(np.maximum(stars, 0.0)),
            "log_pace_7d": np.log1p(pace),
            "log_threshold": np.log1p(threshold),
            "accel_3d": np.log1p(np.maximum(np.nan_to_num(last3), 0.0)) - np.log1p(pace),
            "accel_1d": np.log1p(np.maximum(np.nan_to_num(daily[:, 0]), 0.0)) - np.log1p(pace),
            "long_trend": np.where(has_long, np.log1p(np.maximum(np.nan_to_num(long_rate), 0.0)) - np.log1p(pace), 0.0),
            "has_long_history": has_long.astype(float),
            "hit_share_7d": (hits + 1.0) / (n_days + 2.0),
            "volatility_7d": np.nan_to_num(volatility),
            "log_fork_ratio": np.log1p(np.nan_to_num(self.column("forks", day))) - np.log1p(np.maximum(stars, 0.0)),
            "log_commit_age_days": np.log1p(np.clip(np.nan_to_num(self.column("commit_age", day), nan=365.0), 0,
                                                    3650)),
            "log_best_rank": np.log(np.clip(np.nan_to_num(self.column("best_rank", day), nan=100.0), 1, 1000)),
            "n_lists": np.nan_to_num(self.column("n_lists", day), nan=1.0),
        }, index=pd.Index(self.repository_ids, name="repository_id"))
        return frame[ok]

    def _long_lookback(self, day: dt.date) -> tuple[np.ndarray, np.ndarray]:
        """Stars at the newest snapshot at least LONG_LOOKBACK_DAYS before ``day``, and how many days back."""
        n = len(self.repository_ids)
        stars, gap = np.full(n, np.nan), np.full(n, np.nan)
        limit = day - dt.timedelta(days=LONG_LOOKBACK_DAYS)
        for other in sorted((d for d in self.days if d <= limit), reverse=True):
            column = self.column("stars", other)
            fill = np.isnan(stars) & ~np.isnan(column)
            stars[fill], gap[fill] = column[fill], (day - other).days
        return stars, gap


#: The window as one CSV text built by the server: a single value to fetch, where COPY hands over one row at a time
#: (10^5 Python-level reads). ``format`` writes NULL as an empty field, which the CSV parser reads as NaN.
_HISTORY_SQL = sa.text("""
    SELECT string_agg(format('%s,%s,%s,%s,%s,%s,%s,%s', repository_id, snapshot_date - CAST(:since AS date), stars,
                             forks, open_issues, best_rank, cardinality(lists),
                             (EXTRACT(EPOCH FROM ((snapshot_date + 1)::timestamptz - last_commit)) / 86400.0)::float8),
                      E'\\n')
    FROM repository_snapshots WHERE snapshot_date <= :as_of AND snapshot_date > :since
""")
_NAMES_SQL = sa.text("SELECT id::text, full_name FROM repositories WHERE id = ANY(CAST(:ids AS uuid[]))")


def load_history(engine: Engine, as_of: dt.date, *, history_days: int = HISTORY_DAYS) -> History:
    """Read the snapshots dated ``(as_of - history_days, as_of]``: never anything after ``as_of``.

    One text value parsed by pandas' CSV reader, then placed into the matrices by integer codes (no pivot).
    """
    since = as_of - dt.timedelta(days=history_days)
    with engine.connect() as conn:
        text = conn.execute(_HISTORY_SQL, {"as_of": as_of, "since": since}).scalar()
        if not text:
            return History(as_of, [], [], [], {c: np.empty((0, 0)) for c in _COLUMNS})
        rows = pd.read_csv(io.StringIO(text), names=["repository_id", "offset", *_COLUMNS], header=None,
                           dtype={"repository_id": str, "offset": np.int64}, engine="c")
        row_codes, ids = pd.factorize(rows["repository_id"], sort=True)
        col_codes, offsets = pd.factorize(rows["offset"], sort=True)
        names: dict[str, str] = dict(conn.execute(_NAMES_SQL, {"ids": list(ids)}).all())
    days = [since + dt.timedelta(days=int(k)) for k in offsets]
    values = {}
    for column in _COLUMNS:
        matrix = np.full((len(ids), len(days)), np.nan)
        matrix[row_codes, col_codes] = rows[column].to_numpy(dtype=float)
        values[column] = matrix
    return History(as_of, days, list(ids), [names[i] for i in ids], values)
