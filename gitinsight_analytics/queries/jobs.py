"""Analysis-job analytics: throughput, failure rates and error messages, queue backlog, durations by job type.

Times are UTC; "now" is taken from the data (the newest job timestamp), never the clock.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
from sqlalchemy import text
from sqlalchemy.engine import Connection

from ..validation import FREQUENCIES, check_choice, check_int, check_limit, check_window_days, parse_date
from .frame import Bind, connection, read_frame

__all__ = ["job_throughput", "job_failures", "job_failure_rates", "queue_backlog", "job_durations", "job_types"]

#: A job in progress for longer than this (before the data's newest timestamp) counts as stuck.
STUCK_HOURS = 24


def job_types(conn: Connection) -> list[str]:
    return [r[0] for r in conn.execute(text("SELECT DISTINCT type FROM analysis_jobs ORDER BY 1"))]


def _check_type(conn: Connection, job_type: Any) -> str | None:
    if job_type is None:
        return None
    return check_choice(job_type, "job_type", job_types(conn) or ["(no jobs)"])


def _data_now(conn: Connection) -> dt.datetime | None:
    return conn.execute(
        text("SELECT GREATEST(MAX(created_at), MAX(started_at), MAX(completed_at)) FROM analysis_jobs")
    ).scalar()


def job_throughput(
    bind: Bind,
    *,
    freq: str = "day",
    as_of: str | dt.date | None = None,
    window_days: int = 30,
    job_type: str | None = None,
) -> pd.DataFrame:
    """Per period (``freq``: day, week, month; UTC) of the ``window_days`` days ending on ``as_of`` (default:
    the day of the newest job): jobs created, started, completed, failed and cancelled in it (finished jobs by
    completed_at, else updated_at). Periods without events are present with zeros."""
    freq = check_choice(freq, "freq", FREQUENCIES)
    window_days = check_window_days(window_days)
    as_of_date = parse_date(as_of)
    with connection(bind) as conn:
        job_type = _check_type(conn, job_type)
        if as_of_date is None:
            as_of_date = conn.execute(text("SELECT (max(created_at) AT TIME ZONE 'UTC')::date FROM analysis_jobs")
                                      ).scalar()
        day = as_of_date or dt.date(1970, 1, 1)
        lo = dt.datetime.combine(day - dt.timedelta(days=window_days - 1), dt.time())
        hi = dt.datetime.combine(day + dt.timedelta(days=1), dt.time())
        frame = read_frame(
            conn,
            """
            WITH ev AS (
                SELECT created_at AS at, 'created' AS event FROM analysis_jobs
                WHERE CAST(:t AS text) IS NULL OR type = CAST(:t AS text)
                UNION ALL
                SELECT started_at, 'started' FROM analysis_jobs
                WHERE started_at IS NOT NULL AND (CAST(:t AS text) IS NULL OR type = CAST(:t AS text))
                UNION ALL
                SELECT COALESCE(completed_at, updated_at), status FROM analysis_jobs
                WHERE status IN ('completed', 'failed', 'cancelled')
                  AND (CAST(:t AS text) IS NULL OR type = CAST(:t AS text))
            ), counted AS (
                SELECT date_trunc(:freq, at AT TIME ZONE 'UTC') AS period,
                       COUNT(*) FILTER (WHERE event = 'created') AS created,
                       COUNT(*) FILTER (WHERE event = 'started') AS started,
                       COUNT(*) FILTER (WHERE event = 'completed') AS completed,
                       COUNT(*) FILTER (WHERE event = 'failed') AS failed,
                       COUNT(*) FILTER (WHERE event = 'cancelled') AS cancelled
                FROM ev
                WHERE at >= CAST(:lo AS timestamp) AT TIME ZONE 'UTC' AND at < CAST(:hi AS timestamp) AT TIME ZONE 'UTC'
                GROUP BY 1
            )
            SELECT p.period AT TIME ZONE 'UTC' AS period_start,
                   COALESCE(c.created, 0) AS created, COALESCE(c.started, 0) AS started,
                   COALESCE(c.completed, 0) AS completed, COALESCE(c.failed, 0) AS failed,
                   COALESCE(c.cancelled, 0) AS cancelled
            FROM generate_series(date_trunc(:freq, CAST(:lo AS timestamp)),
                                 CAST(:hi AS timestamp) - interval '1 microsecond',
                                 CAST('1 ' || :freq AS interval)) AS p(period)
            LEFT JOIN counted c ON c.period = p.period
            ORDER BY 1
            """,
            {"freq": freq, "lo": lo, "hi": hi, "t": job_type},
            {"period_start": "ts", "created": "int", "started": "int", "completed": "int", "failed": "int",
             "cancelled": "int"},
        )
    frame.attrs.update({"as_of": as_of_date, "window_days": window_days, "freq": freq})
    return frame


def job_failure_rates(bind: Bind, *, job_type: str | None = None) -> pd.DataFrame:
    """Per job type: jobs, completed, failed, cancelled, and failure_rate = failed / (completed + failed)."""
    with connection(bind) as conn:
        job_type = _check_type(conn, job_type)
        frame = read_frame(
            conn,
            """
            SELECT type AS job_type, COUNT(*) AS jobs,
                   COUNT(*) FILTER (WHERE status = 'completed') AS completed,
                   COUNT(*) FILTER (WHERE status = 'failed') AS failed,
                   COUNT(*) FILTER (WHERE status = 'cancelled') AS cancelled,
                   COUNT(*) FILTER (WHERE status = 'failed')::float8
                     / NULLIF(COUNT(*) FILTER (WHERE status IN ('completed', 'failed')), 0) AS failure_rate
            FROM analysis_jobs
            WHERE CAST(:t AS text) IS NULL OR type = CAST(:t AS text)
            GROUP BY type ORDER BY type
            """,
            {"t": job_type},
            {"job_type": "str", "jobs": "int", "completed": "int", "failed": "int", "cancelled": "int",
             "failure_rate": "float"},
        )
    return frame


def job_failures(bind: Bind, *, limit: int = 20, job_type: str | None = None) -> pd.DataFrame:
    """The ``limit`` most frequent error messages of failed jobs, grouped by pattern (digits replaced by N):
    failures, share of all failures, an example message, job types, first and last occurrence.
    ``df.attrs["failure_rate"]`` is failed / (completed + failed) over the same jobs."""
    limit = check_limit(limit)
    with connection(bind) as conn:
        job_type = _check_type(conn, job_type)
        params = {"t": job_type, "limit": limit}
        frame = read_frame(
            conn,
            """
            WITH f AS (
                SELECT type, error_message,
                       COALESCE(regexp_replace(error_message, '[0-9]+', 'N', 'g'), '(no message)') AS pattern,
                       COALESCE(completed_at, updated_at) AS at
                FROM analysis_jobs
                WHERE status = 'failed' AND (CAST(:t AS text) IS NULL OR type = CAST(:t AS text))
            )
            SELECT pattern AS error_pattern, COUNT(*) AS failures,
                   COUNT(*)::float8 / SUM(COUNT(*)) OVER () AS share_of_failures,
                   MIN(error_message) AS example_message,
                   ARRAY_AGG(DISTINCT type::text ORDER BY type::text) AS job_types,
                   MIN(at) AS first_seen, MAX(at) AS last_seen
            FROM f GROUP BY pattern
            ORDER BY failures DESC, error_pattern
            LIMIT :limit
            """,
            params,
            {"error_pattern": "str", "failures": "int", "share_of_failures": "float", "example_message": "str",
             "job_types": "obj", "first_seen": "ts", "last_seen": "ts"},
        )
        rate = conn.execute(
            text("""SELECT COUNT(*) FILTER (WHERE status = 'failed')::float8
                           / NULLIF(COUNT(*) FILTER (WHERE status IN ('completed', 'failed')), 0)
                    FROM analysis_jobs WHERE CAST(:t AS text) IS NULL OR type = CAST(:t AS text)"""),
            params,
        ).scalar()
    frame["job_types"] = frame["job_types"].map(list)
    frame.attrs["failure_rate"] = rate
    return frame


def queue_backlog(bind: Bind, *, stuck_hours: int = STUCK_HOURS) -> pd.DataFrame:
    """Per job type: jobs queued and in progress, the oldest queued job and its age, the median queued age,
    and in-progress jobs started more than ``stuck_hours`` before the data's newest job timestamp
    (``df.attrs["as_of"]``), which stands in for "now"."""
    stuck_hours = check_int(stuck_hours, "stuck_hours", 1, 24 * 365)
    with connection(bind) as conn:
        now = _data_now(conn)
        frame = read_frame(
            conn,
            """
            SELECT type AS job_type,
                   COUNT(*) FILTER (WHERE status = 'queued') AS queued,
                   COUNT(*) FILTER (WHERE status = 'in_progress') AS in_progress,
                   MIN(created_at) FILTER (WHERE status = 'queued') AS oldest_queued_at,
                   EXTRACT(EPOCH FROM CAST(:now AS timestamptz) - MIN(created_at) FILTER (WHERE status = 'queued'))
                       / 3600.0 AS oldest_queued_age_hours,
                   percentile_cont(0.5) WITHIN GROUP (
                       ORDER BY EXTRACT(EPOCH FROM CAST(:now AS timestamptz) - created_at) / 3600.0)
                       FILTER (WHERE status = 'queued') AS median_queued_age_hours,
                   COUNT(*) FILTER (WHERE status = 'in_progress'
                                    AND started_at < CAST(:now AS timestamptz) - make_interval(hours => :stuck))
                       AS stuck_in_progress
            FROM analysis_jobs
            WHERE status IN ('queued', 'in_progress')
            GROUP BY type ORDER BY queued DESC, type
            """,
            {"now": now, "stuck": stuck_hours},
            {"job_type": "str", "queued": "int", "in_progress": "int", "oldest_queued_at": "ts",
             "oldest_queued_age_hours": "float", "median_queued_age_hours": "float", "stuck_in_progress": "int"},
        )
    frame.attrs["as_of"] = now
    return frame


def job_durations(bind: Bind, *, job_type: str | None = None) -> pd.DataFrame:
    """Per job type, over completed jobs with start and end times: run time (completed_at - started_at) p50, p90
    and max, and queue wait (started_at - created_at) p50 and p90, in seconds (percentiles interpolated)."""
    with connection(bind) as conn:
        job_type = _check_type(conn, job_type)
        frame = read_frame(
            conn,
            """
            WITH d AS (
                SELECT type, EXTRACT(EPOCH FROM completed_at - started_at)::float8 AS run_s,
                       EXTRACT(EPOCH FROM started_at - created_at)::float8 AS wait_s
                FROM analysis_jobs
                WHERE status = 'completed' AND started_at IS NOT NULL AND completed_at IS NOT NULL
                  AND (CAST(:t AS text) IS NULL OR type = CAST(:t AS text))
            )
            SELECT type AS job_type, COUNT(*) AS jobs,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY run_s) AS run_p50_s,
                   percentile_cont(0.9) WITHIN GROUP (ORDER BY run_s) AS run_p90_s,
                   MAX(run_s) AS run_max_s,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY wait_s) AS wait_p50_s,
                   percentile_cont(0.9) WITHIN GROUP (ORDER BY wait_s) AS wait_p90_s
            FROM d GROUP BY type ORDER BY type
            """,
            {"t": job_type},
            {"job_type": "str", "jobs": "int", "run_p50_s": "float", "run_p90_s": "float", "run_max_s": "float",
             "wait_p50_s": "float", "wait_p90_s": "float"},
        )
    return frame
