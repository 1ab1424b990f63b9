"""Test data for the analysis engine: repositories with a daily star history (seeded random growth), and jobs."""

from __future__ import annotations

import datetime as dt
import os
import time
import uuid

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from gitinsight_analytics.analysis.registry import Context, Job, JobResult

from . import factories

START = dt.date(2026, 7, 1)


def _series(repos: int, days: int, seed: int) -> list[list[int]]:
    """Stars per repository and day: Poisson daily gains around a drifting per-repository rate (some accelerate,
    some fade), so the trend event is uncertain."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(repos):
        rate, drift = float(rng.lognormal(2.0, 1.0)), float(rng.normal(0.0, 0.05))
        stars, series = int(rng.integers(1_000, 50_000)), []
        for _ in range(days):
            rate = max(0.05, rate * float(np.exp(drift + rng.normal(0, 0.15))))
            stars += int(rng.poisson(rate))
            series.append(stars)
        out.append(series)
    return out


_INSERT = sa.text("""INSERT INTO repository_snapshots (repository_id, snapshot_date, full_name, stars, forks,
                     open_issues, best_rank, lists, last_commit) VALUES (:r, :d, :n, :s, :f, :i, :b, :l, :c)""")


def star_history(conn: Connection, *, repos: int = 40, days: int = 30, seed: int = 7, start: dt.date = START,
                 until: dt.date | None = None) -> list[uuid.UUID]:
    """``repos`` repositories with a snapshot every day ``start .. start + days - 1`` (only up to ``until``)."""
    owner = factories.user(conn, f"owner{seed}")
    ids = [factories.repository(conn, owner, f"project{seed}-{k}", language="Python") for k in range(repos)]
    extend_history(conn, ids, days=days, seed=seed, start=start, until=until)
    return ids


def extend_history(conn: Connection, ids: list[uuid.UUID], *, days: int = 30, seed: int = 7, start: dt.date = START,
                   after: dt.date | None = None, until: dt.date | None = None) -> None:
    """Insert the snapshots of :func:`star_history`'s series dated after ``after`` and up to ``until``."""
    rows = []
    for k, (repo, series) in enumerate(zip(ids, _series(len(ids), days, seed), strict=True)):
        for d, stars in enumerate(series):
            day = start + dt.timedelta(days=d)
            if (after and day <= after) or (until and day > until):
                continue
            rows.append({"r": repo, "d": day, "n": f"owner{seed}/project{seed}-{k}", "s": stars, "f": stars // 10,
                         "i": 10, "b": 1 + k, "l": ["Python"],
                         "c": dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC)})
    if rows:
        conn.execute(_INSERT, rows)


def queued_jobs(conn: Connection, job_type: str, n: int, *, max_attempts: int = 3) -> list[str]:
    """``n`` queued jobs of ``job_type`` on one repository (distinct keys)."""
    owner = factories.user(conn)
    repo = factories.repository(conn, owner)
    rows = conn.execute(sa.text("""
        INSERT INTO analysis_jobs (repository_id, type, options, analysis_key, max_attempts)
        SELECT :r, CAST(:t AS text), '{}'::jsonb, CAST(:t AS text) || ':' || g, :m
        FROM generate_series(1, :n) g RETURNING id::text"""),
        {"r": repo, "t": job_type, "n": n, "m": max_attempts})
    return [r[0] for r in rows]


def _marker(job: Job, tag: str) -> dict[str, object]:
    """An insight row naming the job and the process that ran it (a double run shows as two rows)."""
    return {"repository_id": job.repository_id, "type": job.type, "title": tag, "description": None,
            "confidence_score": 0.5, "data": {"job": job.id, "pid": os.getpid()}, "model_version": "t",
            "tags": [], "analysis_key": f"{job.id}:{os.getpid()}:{job.attempts}"}


def log_handler(context: Context, job: Job) -> JobResult:
    time.sleep(0.01)
    return JobResult(insights=[_marker(job, "ran")], result={"pid": os.getpid()})


def slow_first_attempt(context: Context, job: Job) -> JobResult:
    if job.attempts == 1:
        time.sleep(120)  # killed before it ends
    return JobResult(insights=[_marker(job, "after takeover")])


def flaky(context: Context, job: Job) -> JobResult:
    if job.attempts < 3:
        raise RuntimeError(f"transient failure on attempt {job.attempts}")
    return JobResult(insights=[_marker(job, "third time")])


def always_fails(context: Context, job: Job) -> JobResult:
    raise RuntimeError("the analysis cannot run")


def cancels_itself(context: Context, job: Job) -> JobResult:
    from gitinsight_analytics.analysis.queue import cancel

    cancel(context.engine, job.id)
    return JobResult(insights=[_marker(job, "must not be written")])


def job_rows(engine: Engine) -> list[sa.Row]:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT id::text, status, attempts, locked_by, error_message, run_after, "
                                    "started_at, completed_at, progress, options FROM analysis_jobs "
                                    "ORDER BY created_at, id")).all()
