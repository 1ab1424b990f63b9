"""Outcomes: what happened after an engine insight's horizon, recorded in ``insight_outcomes``.

An insight is resolved when the data holds the day ``as_of + horizon_days`` (some repository has a snapshot that
day). ``trend_prediction`` needs the repository's own snapshot that day (a repository that left the ranking lists
cannot be observed and stays unresolved, counted as ``unobservable``); ``list_retention`` is resolved by the day's
data either way. Resolving is idempotent: importing newer data and resolving again adds what became known.
"""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

__all__ = ["resolve_outcomes", "outcome_coverage"]

_RESOLVE_TREND = sa.text("""
    INSERT INTO insight_outcomes (repository_id, analysis_key, outcome, observed_value, observed_on, details)
    SELECT i.repository_id, i.analysis_key,
           s.stars - (i.data->>'stars_at_as_of')::int >= (i.data->>'threshold_stars')::int,
           s.stars - (i.data->>'stars_at_as_of')::int, s.snapshot_date,
           jsonb_build_object('stars_at_horizon', s.stars, 'threshold_stars', (i.data->>'threshold_stars')::int)
    FROM insights i
    JOIN repository_snapshots s ON s.repository_id = i.repository_id
     AND s.snapshot_date = (i.data->>'as_of')::date + (i.data->>'horizon_days')::int
    WHERE i.type = 'trend_prediction' AND i.analysis_key IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM insight_outcomes o
                      WHERE o.repository_id = i.repository_id AND o.analysis_key = i.analysis_key)
    ON CONFLICT (repository_id, analysis_key) DO NOTHING
""")

_RESOLVE_RETENTION = sa.text("""
    INSERT INTO insight_outcomes (repository_id, analysis_key, outcome, observed_value, observed_on, details)
    SELECT i.repository_id, i.analysis_key, s.repository_id IS NOT NULL, s.best_rank, d.day,
           jsonb_build_object('listed', s.repository_id IS NOT NULL, 'lists', COALESCE(s.lists, '{}'))
    FROM insights i
    CROSS JOIN LATERAL (SELECT (i.data->>'as_of')::date + (i.data->>'horizon_days')::int AS day) d
    LEFT JOIN repository_snapshots s ON s.repository_id = i.repository_id AND s.snapshot_date = d.day
    WHERE i.type = 'list_retention' AND i.analysis_key IS NOT NULL
      AND EXISTS (SELECT 1 FROM repository_snapshots x WHERE x.snapshot_date = d.day)
      AND NOT EXISTS (SELECT 1 FROM insight_outcomes o
                      WHERE o.repository_id = i.repository_id AND o.analysis_key = i.analysis_key)
    ON CONFLICT (repository_id, analysis_key) DO NOTHING
""")


def resolve_outcomes(engine: Engine) -> pd.DataFrame:
    """Record the outcome of every engine insight whose horizon day is in the data; one transaction.

    Returns :func:`outcome_coverage` with a ``resolved_now`` column.
    """
    with engine.begin() as conn:
        trend = conn.execute(_RESOLVE_TREND).rowcount
        retention = conn.execute(_RESOLVE_RETENTION).rowcount
        coverage = outcome_coverage(conn)
    now = {"trend_prediction": trend, "list_retention": retention}
    coverage["resolved_now"] = coverage["type"].map(now).fillna(0).astype("int64")
    return coverage


def outcome_coverage(conn: Connection | Engine) -> pd.DataFrame:
    """Per type: engine insights, resolved, pending (horizon after the data's last day), unobservable."""
    query = sa.text("""
        WITH last AS (SELECT MAX(snapshot_date) AS day FROM repository_snapshots)
        SELECT i.type, COUNT(*)::bigint AS insights, COUNT(o.analysis_key)::bigint AS resolved,
               COUNT(*) FILTER (WHERE o.analysis_key IS NULL AND d.day > (SELECT day FROM last))::bigint AS pending,
               COUNT(*) FILTER (WHERE o.analysis_key IS NULL AND d.day <= (SELECT day FROM last))::bigint
                   AS unobservable
        FROM insights i
        CROSS JOIN LATERAL (SELECT (i.data->>'as_of')::date + (i.data->>'horizon_days')::int AS day) d
        LEFT JOIN insight_outcomes o ON o.repository_id = i.repository_id AND o.analysis_key = i.analysis_key
        WHERE i.analysis_key IS NOT NULL
        GROUP BY i.type ORDER BY i.type""")
    if isinstance(conn, Engine):
        with conn.connect() as c:
            rows = c.execute(query).mappings().all()
    else:
        rows = conn.execute(query).mappings().all()
    return pd.DataFrame(rows, columns=["type", "insights", "resolved", "pending", "unobservable"])
