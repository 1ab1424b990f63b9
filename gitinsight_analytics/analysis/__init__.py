"""The analysis engine: insight models run as jobs of the ``analysis_jobs`` queue, and their outcomes.

- :mod:`.queue`: enqueue/schedule/claim/complete/fail/cancel/status (``FOR UPDATE SKIP LOCKED``, leases).
- :mod:`.worker`: worker processes (batch claim, heartbeat, retries with backoff).
- :mod:`.features`, :mod:`.models_trend`, :mod:`.models_retention`: what the models see (never after as-of) and
  predict; :mod:`.registry`: the types, versions and the job handler.
- :mod:`.outcomes`: what happened after the horizon; :mod:`.backtest`: the main job's backtest.
"""

from __future__ import annotations

from .backtest import BacktestResult, backtest_days, run_backtest
from .outcomes import outcome_coverage, resolve_outcomes
from .queue import cancel, enqueue, queue_status, schedule
from .registry import INSIGHT_TYPES, analysis_key, models_of
from .worker import WorkerOptions, WorkStats, work

__all__ = [
    "INSIGHT_TYPES",
    "models_of",
    "analysis_key",
    "enqueue",
    "schedule",
    "cancel",
    "queue_status",
    "work",
    "WorkerOptions",
    "WorkStats",
    "resolve_outcomes",
    "outcome_coverage",
    "backtest_days",
    "run_backtest",
    "BacktestResult",
]
