"""Trending repositories: the spec's activity score, and real star growth from the imported star history.

Both windows are whole UTC days ending on ``as_of`` (a date taken from the data, never the clock).
The formulas are explained in ``docs/analyses.md``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
from sqlalchemy import text

from ..objects import STAR_TREND_WINDOWS
from ..validation import check_fraction, check_limit, check_window_days, parse_date, resolve_language
from .frame import STATS_RELATIONS, Bind, connection, read_frame

__all__ = [
    "trending_by_score",
    "SCORE_SQL",
    "SCORE_FROM_VIEW_SQL",
    "STARS_SQL",
    "STARS_FROM_VIEW_SQL",
    "trending_by_stars",
    "SCORE_COLUMNS",
    "STARS_COLUMNS",
    "INSIGHT_WEIGHT",
    "STAR_WEIGHTS",
    "FORK_WEIGHTS",
    "YOUNG_BONUS",
    "SPIKE_FACTOR",
    "SPIKE_FLOOR",
    "INACTIVE_DAYS",
]

#: The spec's weight of one recent insight in the trending score.
INSIGHT_WEIGHT = 10
#: Time weights of a star (fork) gained at the start .. at the end of the window (OSS Insight uses 2..5, 1..4).
STAR_WEIGHTS = (2.0, 5.0)
FORK_WEIGHTS = (1.0, 4.0)
#: Bonus for a repository first seen in the star history ``y`` years before as_of: YOUNG_BONUS / (1 + y).
YOUNG_BONUS = 200.0
#: Anti-gaming: a day's gain above max(SPIKE_FACTOR x the mean daily gain of the repository's other intervals in
#: the window, SPIKE_FLOOR) counts only up to that cap (needs three or more intervals in the window); the excess
#: is reported as spike_stars.
SPIKE_FACTOR = 10.0
SPIKE_FLOOR = 50.0
#: Repositories whose last commit is older than this many days before as_of are left out (OSS Insight: 3 months).
INACTIVE_DAYS = 90

SCORE_COLUMNS = {
    "full_name": "str", "language": "str", "stars": "int", "forks": "int", "recent_insights": "int",
    "avg_confidence": "float", "trending_score": "int",
}

STARS_COLUMNS = {
    "full_name": "str", "language": "str", "stars": "int", "stars_start": "int", "star_delta": "int",
    "fork_delta": "int", "stars_per_day": "float", "growth_pct": "float", "first_snapshot": "date",
    "last_snapshot": "date", "coverage": "str", "spike_stars": "int", "first_seen": "date",
    "star_score": "float", "fork_score": "float", "young_bonus": "float", "trending_score": "float",
    "last_commit": "ts",
}


def _utc_midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


_SCORE_TEMPLATE = """
WITH recent AS MATERIALIZED (
    SELECT i.repository_id, COUNT(*) AS recent_insights, AVG(i.confidence_score)::float8 AS avg_confidence
    FROM insights i
    WHERE i.generated_at >= :lo AND i.generated_at < :hi
      AND (CAST(:min_confidence AS float8) IS NULL OR i.confidence_score >= CAST(:min_confidence AS float8))
    GROUP BY i.repository_id
), candidates AS (
    (SELECT s.id FROM {stats} s
     WHERE s.analysis_status = 'completed'
       AND (CAST(:language AS text) IS NULL OR s.language = CAST(:language AS text))
     ORDER BY (COALESCE(s.stars, 0) + COALESCE(s.forks, 0)) DESC
     LIMIT :limit)
    UNION
    SELECT repository_id FROM recent
)
SELECT s.full_name, s.language, COALESCE(s.stars, 0) AS stars, COALESCE(s.forks, 0) AS forks,
       COALESCE(r.recent_insights, 0) AS recent_insights, r.avg_confidence,
       COALESCE(s.stars, 0) + COALESCE(s.forks, 0) + :weight * COALESCE(r.recent_insights, 0) AS trending_score
FROM candidates c
JOIN {stats} s ON s.id = c.id
LEFT JOIN recent r ON r.repository_id = c.id
WHERE s.analysis_status = 'completed'
  AND (CAST(:language AS text) IS NULL OR s.language = CAST(:language AS text))
ORDER BY trending_score DESC, s.full_name
LIMIT :limit
"""


# The default report (7 days ending on the newest insight's day, no confidence filter) is precomputed in the view.
_SCORE_FROM_VIEW_TEMPLATE = """
SELECT s.full_name, s.language, COALESCE(s.stars, 0) AS stars, COALESCE(s.forks, 0) AS forks,
       s.recent_insights_7d AS recent_insights, s.recent_avg_confidence_7d AS avg_confidence,
       COALESCE(s.stars, 0) + COALESCE(s.forks, 0) + 10 * s.recent_insights_7d AS trending_score
FROM {stats} s
WHERE s.analysis_status = 'completed'
  AND (CAST(:language AS text) IS NULL OR s.language = CAST(:language AS text))
ORDER BY COALESCE(s.stars, 0) + COALESCE(s.forks, 0) + 10 * s.recent_insights_7d DESC, s.full_name
LIMIT :limit
"""

# {stats}: repository_stats, or under row-level security the view of the rows the user can see (stats_relation).
_SCORE_SQLS = {
    rel: (_SCORE_TEMPLATE.format(stats=rel), _SCORE_FROM_VIEW_TEMPLATE.format(stats=rel))  # whitelisted
    for rel in STATS_RELATIONS
}
# What a call needs besides its rows, in one round trip (many analysts at once: every round trip is CPU on both
# sides): whether row-level security applies (as in queries.frame.stats_relation), and when the views were
# refreshed (queries.frame.view_refreshed_at; the marker exists from migration 0003 on). The newest insight's day
# (when as_of is not given) is a statement of its own: inside this one, Citus would run it as a subplan whose
# intermediate result opens a transaction on every worker.
_SCORE_CONTEXT_SQL = """
SELECT row_security_active('repositories'), (SELECT refreshed_at FROM analysis_views_refreshed)
"""
_NEWEST_INSIGHT_DAY_SQL = "SELECT (max(generated_at) AT TIME ZONE 'UTC')::date FROM insights"

#: As the admin runs them (benchmarks/bench_queries.py measures these two).
SCORE_SQL, SCORE_FROM_VIEW_SQL = _SCORE_SQLS["repository_stats"]


def trending_by_score(
    bind: Bind,
    *,
    window_days: int = 7,
    as_of: str | dt.date | None = None,
    language: str | None = None,
    min_confidence: float | None = None,
    limit: int = 50,
) -> pd.DataFrame:
    """The spec's trending score, ``stars + forks + 10 x recent insights``, of analysed repositories
    (``analysis_status = 'completed'``). Recent insights: generated in the ``window_days`` UTC days ending on
    ``as_of`` (default: the day of the newest insight), counting only insights with confidence
    >= ``min_confidence`` when given. Stars, forks, language and status come from ``repository_stats``
    (``df.attrs["view_refreshed_at"]``; under row-level security ``visible_repository_stats``). Insights are
    counted live, except for the default report when the view already holds it (its newest-insight day equals
    as_of: ``df.attrs["precomputed"]``).
    """
    window_days = check_window_days(window_days)
    as_of_date = parse_date(as_of)
    if min_confidence is not None:
        min_confidence = check_fraction(min_confidence, "min_confidence")
    limit = check_limit(limit)
    with connection(bind) as conn:
        language = resolve_language(conn, language)
        rls, refreshed = conn.execute(text(_SCORE_CONTEXT_SQL)).one()
        if as_of_date is None:
            as_of_date = conn.execute(text(_NEWEST_INSIGHT_DAY_SQL)).scalar()
        day = as_of_date or dt.date(1970, 1, 1)
        params: dict[str, Any] = {
            "lo": _utc_midnight(day - dt.timedelta(days=window_days - 1)),
            "hi": _utc_midnight(day + dt.timedelta(days=1)),
            "min_confidence": min_confidence, "language": language, "limit": limit, "weight": INSIGHT_WEIGHT,
        }
        relation = STATS_RELATIONS[1] if rls else STATS_RELATIONS[0]  # as stats_relation decides
        live_sql, view_sql = _SCORE_SQLS[relation]
        view_day = conn.execute(text(f"SELECT recent_as_of FROM {relation} LIMIT 1")).scalar()  # noqa: S608
        precomputed = (window_days == 7 and min_confidence is None and as_of_date is not None
                       and view_day == as_of_date)
        frame = read_frame(conn, view_sql if precomputed else live_sql, params, SCORE_COLUMNS)
    frame.attrs.update({"as_of": as_of_date, "window_days": window_days, "view_refreshed_at": refreshed,
                        "window_start": params["lo"], "window_end": params["hi"], "precomputed": precomputed})
    return frame


_STARS_RANKED_LIVE = """
WITH win AS MATERIALIZED (
    SELECT d.repository_id, d.snapshot_date, d.stars, d.forks, d.last_commit, d.first_seen,
           (d.prev_date >= :start) AS counted,  -- the change since a snapshot inside the window
           d.d_stars, d.d_forks, d.snapshot_date - d.prev_date AS gap
    FROM repository_snapshot_deltas d
    WHERE d.snapshot_date >= :start AND d.snapshot_date <= :as_of
      AND (CAST(:language AS text) IS NULL
           OR d.repository_id IN (SELECT id FROM repositories WHERE language = CAST(:language AS text)))
), per_repo AS (
    SELECT repository_id,
           COUNT(*) AS snapshots,
           MIN(snapshot_date) AS first_snapshot, MAX(snapshot_date) AS last_snapshot,
           MIN(stars) FILTER (WHERE counted IS NOT TRUE) AS stars_start,
           COALESCE(SUM(d_stars) FILTER (WHERE counted), 0) AS star_delta,
           COALESCE(SUM(d_forks) FILTER (WHERE counted), 0) AS fork_delta,
           SUM(d_stars::float8 / gap) FILTER (WHERE counted) AS rate_sum,
           COUNT(*) FILTER (WHERE counted) AS intervals,
           MIN(first_seen) AS first_seen,
           MAX(last_commit) AS last_commit
    FROM win
    GROUP BY repository_id
    HAVING COUNT(*) >= 2 AND (MAX(last_commit) IS NULL OR MAX(last_commit) >= :active_since)
), scored AS (
    -- anti-gaming: a day's gain counts up to SPIKE_FACTOR x the mean daily gain of the repository's other
    -- intervals in the window (at least SPIKE_FLOOR a day); needs three or more intervals.
    SELECT w.repository_id,
           ROUND(COALESCE(SUM(GREATEST(w.d_stars - c.cap_per_day * w.gap, 0)), 0))::bigint AS spike_stars,
           COALESCE(SUM((:sw0 + (:sw1 - :sw0) * (w.snapshot_date - :start) / :window)
                        * LEAST(w.d_stars, c.cap_per_day * w.gap)), 0) AS star_score,
           COALESCE(SUM((:fw0 + (:fw1 - :fw0) * (w.snapshot_date - :start) / :window) * w.d_forks), 0)
               AS fork_score
    FROM win w
    JOIN (SELECT repository_id, rate_sum, intervals FROM per_repo) p USING (repository_id)
    CROSS JOIN LATERAL (
        SELECT CASE WHEN p.intervals >= 3 THEN GREATEST(
                   :spike_factor * (p.rate_sum - w.d_stars::float8 / w.gap) / (p.intervals - 1), :spike_floor)
               END AS cap_per_day
    ) c
    WHERE w.counted
    GROUP BY w.repository_id
), ranked AS (
    SELECT a.*, s.spike_stars, s.star_score, s.fork_score,
           :young / (1 + (:as_of - a.first_seen) / 365.25) AS young_bonus,
           s.star_score + s.fork_score + :young / (1 + (:as_of - a.first_seen) / 365.25) AS trending_score
    FROM per_repo a JOIN scored s USING (repository_id)
    ORDER BY trending_score DESC, a.repository_id
    LIMIT :limit
)"""

# The same ranking from the precomputed rows (objects.STAR_TRENDS_VIEW: as_of = the newest snapshot day).
_STARS_RANKED_PRECOMPUTED = """
WITH ranked AS (
    SELECT a.* FROM repository_star_trends a
    WHERE a.window_days = :window_days
      AND (CAST(:language AS text) IS NULL
           OR a.repository_id IN (SELECT id FROM repositories WHERE language = CAST(:language AS text)))
    ORDER BY a.trending_score DESC, a.repository_id
    LIMIT :limit
)"""

_STARS_OUTPUT = """
SELECT r.full_name, r.language,
       a.stars_start + a.star_delta AS stars, a.stars_start, a.star_delta, a.fork_delta,
       a.star_delta::float8 / NULLIF(a.last_snapshot - a.first_snapshot, 0) AS stars_per_day,
       100.0 * a.star_delta / NULLIF(a.stars_start, 0) AS growth_pct,
       a.first_snapshot, a.last_snapshot,
       CASE WHEN a.first_snapshot > :start AND a.last_snapshot < :as_of THEN 'entered+left'
            WHEN a.first_snapshot > :start THEN 'entered'
            WHEN a.last_snapshot < :as_of THEN 'left'
            ELSE 'full' END AS coverage,
       a.spike_stars, a.first_seen, a.star_score, a.fork_score, a.young_bonus, a.trending_score, a.last_commit
FROM ranked a
JOIN repositories r ON r.id = a.repository_id
ORDER BY a.trending_score DESC, r.full_name
"""

STARS_SQL = _STARS_RANKED_LIVE + _STARS_OUTPUT
STARS_FROM_VIEW_SQL = _STARS_RANKED_PRECOMPUTED + _STARS_OUTPUT

# The day of the precomputed rows: refreshed with repository_snapshot_deltas in one transaction, it is also the
# newest snapshot day (the default as_of) whenever it has rows. Statements of their own rather than subqueries of
# one: on Citus those would run as subplans whose intermediate results open a transaction on every worker.
_STARS_PRECOMPUTED_DAY_SQL = "SELECT as_of FROM repository_star_trends LIMIT 1"
_STARS_NEWEST_DAY_SQL = "SELECT max(snapshot_date) FROM repository_snapshot_deltas"
_REFRESHED_SQL = "SELECT refreshed_at FROM analysis_views_refreshed"


def trending_by_stars(
    bind: Bind,
    *,
    window_days: int = 7,
    as_of: str | dt.date | None = None,
    language: str | None = None,
    limit: int = 50,
) -> pd.DataFrame:
    """Repositories ranked by real star growth in the ``window_days`` days before ``as_of`` (default: the newest
    snapshot_date), from the star history (``repository_snapshots``, prepared by the materialized view
    ``repository_snapshot_deltas``: ``df.attrs["view_refreshed_at"]``).

    trending_score = time-weighted star gains (2 at the window's start .. 5 at its end, each day's gain capped
    against spikes) + time-weighted fork gains (1 .. 4) + a bonus for repositories new to the star history;
    see docs/analyses.md. A repository missing at one end of the window is measured between the snapshots it
    has inside the window (``coverage`` says 'entered', 'left' or 'entered+left'; 'full' otherwise); one
    snapshot only is not a trend and is left out. Deltas can be negative (unstars). Repositories whose last
    commit is more than 90 days older than as_of are left out.

    For the newest snapshot day and the windows of ``objects.STAR_TREND_WINDOWS`` (7, 14, 30, 90 days) the
    scores come precomputed from ``repository_star_trends``, refreshed with ``repository_snapshot_deltas`` in
    one transaction: the same rows as the live statement (``df.attrs["precomputed"]``).
    """
    window_days = check_window_days(window_days)
    as_of_date = parse_date(as_of)
    limit = check_limit(limit)
    with connection(bind) as conn:
        language = resolve_language(conn, language)
        precomputed_day = conn.execute(text(_STARS_PRECOMPUTED_DAY_SQL)).scalar()
        refreshed = conn.execute(text(_REFRESHED_SQL)).scalar()
        if as_of_date is None:
            as_of_date = precomputed_day or conn.execute(text(_STARS_NEWEST_DAY_SQL)).scalar()
        day = as_of_date or dt.date(1970, 1, 1)
        start = day - dt.timedelta(days=window_days)
        precomputed = (window_days in STAR_TREND_WINDOWS and as_of_date is not None
                       and precomputed_day == as_of_date)
        params: dict[str, Any] = {
            "start": start, "as_of": day, "window": float(window_days), "language": language, "limit": limit,
            "window_days": window_days,
            "sw0": STAR_WEIGHTS[0], "sw1": STAR_WEIGHTS[1], "fw0": FORK_WEIGHTS[0], "fw1": FORK_WEIGHTS[1],
            "spike_factor": SPIKE_FACTOR, "spike_floor": SPIKE_FLOOR, "young": YOUNG_BONUS,
            "active_since": _utc_midnight(day - dt.timedelta(days=INACTIVE_DAYS)),
        }
        frame = read_frame(conn, STARS_FROM_VIEW_SQL if precomputed else STARS_SQL, params, STARS_COLUMNS)
    frame.attrs.update({"as_of": as_of_date, "window_days": window_days, "window_start": start,
                        "view_refreshed_at": refreshed, "precomputed": precomputed})
    return frame
