"""The backtest of the main job: predictions for every as-of day of the real data that has enough history and a
later outcome, produced through the job queue, then resolved.

Nothing here sees the future: each job's model reads snapshots up to its own as-of day only (see
:mod:`.features`), so running every day at once is the same as running each day when it happened.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from .features import LOOKBACK_DAYS
from .outcomes import resolve_outcomes
from .queue import enqueue
from .registry import DEFAULT_HORIZON_DAYS, INSIGHT_TYPES
from .worker import WorkerOptions, work

__all__ = ["BacktestResult", "backtest_days", "run_backtest"]


@dataclass(frozen=True)
class BacktestResult:
    days: list[dt.date]
    queued: int
    completed: int
    failed: int
    outcomes: pd.DataFrame
    seconds: float

    def describe(self) -> str:
        span = f"{self.days[0]} .. {self.days[-1]}" if self.days else "no day"
        resolved = int(self.outcomes["resolved"].sum()) if not self.outcomes.empty else 0
        return (f"backtest: {len(self.days)} as-of days ({span}), {self.queued} jobs queued, {self.completed} "
                f"completed, {self.failed} failed, {resolved} insights resolved, {self.seconds:.1f} s")


def backtest_days(engine: Engine, *, horizon_days: int = DEFAULT_HORIZON_DAYS) -> list[dt.date]:
    """As-of days with the lookback (``d - 7``) and the outcome day (``d + horizon``) in the data, and at least
    one earlier day whose outcome is known at ``d`` (so the fitted model has something to train on)."""
    with engine.connect() as conn:
        days = set(conn.execute(sa.text("SELECT DISTINCT snapshot_date FROM repository_snapshots")).scalars())
    h, back = dt.timedelta(days=horizon_days), dt.timedelta(days=LOOKBACK_DAYS)
    usable = sorted(d for d in days if d - back in days and d + h in days)
    return [d for d in usable if any(a + h <= d for a in usable)]


def run_backtest(engine: Engine, *, horizon_days: int = DEFAULT_HORIZON_DAYS, workers: int = 2,
                 types: Sequence[str] = INSIGHT_TYPES, echo: Callable[[str], None] = print) -> BacktestResult:
    """Enqueue every type for every backtest day (idempotent), work the queue empty, resolve outcomes."""
    started = time.perf_counter()
    days = backtest_days(engine, horizon_days=horizon_days)
    queued = 0
    for day in days:
        for insight_type in types:
            queued += enqueue(engine, insight_type, as_of=day, horizon_days=horizon_days)["queued"]
    if not days:
        echo("backtest: no as-of day with 7 days of history, a later outcome and an earlier known one: skipped")
        return BacktestResult(days, 0, 0, 0, resolve_outcomes(engine), time.perf_counter() - started)
    echo(f"backtest: {queued} jobs queued for {len(days)} as-of days; working with {workers} workers")
    stats = work(engine, workers=workers, options=WorkerOptions(until_empty=True, batch=100),
                 handlers={t: "gitinsight_analytics.analysis.registry:run_insight_job" for t in INSIGHT_TYPES})
    outcomes = resolve_outcomes(engine)
    return BacktestResult(days, queued, stats.completed, stats.failed, outcomes, time.perf_counter() - started)
