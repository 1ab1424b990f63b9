"""The materialized views: repository_stats and the insight aggregates the analyses read, and the order
in which ``gitinsight refresh`` refreshes them."""

from __future__ import annotations

from .base import SqlObject

__all__ = [
    "REPOSITORY_STATS_VIEW",
    "REPOSITORY_STATS_VIEW_V2",
    "INSIGHT_CONFIDENCE_HIST",
    "INSIGHT_CONFIDENCE_DAILY",
    "INSIGHT_TAG_VIEW",
    "SNAPSHOT_DELTAS_VIEW",
    "STAR_TRENDS_VIEW",
    "STAR_TREND_WINDOWS",
    "ANALYSIS_REFRESH_MARKER",
    "ANALYSIS_VIEWS",
    "DEPENDENT_VIEWS",
]


# Spec: joining insights and follows in one GROUP BY multiplies rows (COUNT(i.id) = insights x followers).
# Each side is aggregated on its own first. Extended with the per-type breakdown, job figures and the time of
# the refresh (``refreshed_at``) so reports can say how fresh they are. The unique index on id is what
# REFRESH ... CONCURRENTLY requires.
REPOSITORY_STATS_VIEW = SqlObject(
    "repository_stats",
    """
CREATE MATERIALIZED VIEW repository_stats AS
WITH ins AS (
    SELECT repository_id,
           COUNT(*) AS total_insights,
           AVG(confidence_score)::float8 AS avg_confidence,
           MAX(generated_at) AS latest_insight
    FROM insights
    GROUP BY repository_id
), by_type AS (
    SELECT repository_id, jsonb_object_agg(type, n ORDER BY type) AS insights_by_type
    FROM (SELECT repository_id, type, COUNT(*) AS n FROM insights GROUP BY repository_id, type) t
    GROUP BY repository_id
), fol AS (
    SELECT repository_id, COUNT(*) AS follower_count
    FROM user_repository_follows
    GROUP BY repository_id
), jobs AS (
    SELECT repository_id,
           COUNT(*) AS total_jobs,
           COUNT(*) FILTER (WHERE status = 'failed') AS failed_jobs,
           (ARRAY_AGG(status ORDER BY created_at DESC, id DESC))[1] AS latest_job_status
    FROM analysis_jobs
    GROUP BY repository_id
)
SELECT
    r.id,
    r.full_name,
    r.language,
    r.stars,
    r.forks,
    r.analysis_status,
    COALESCE(ins.total_insights, 0)::bigint AS total_insights,
    ins.avg_confidence,
    ins.latest_insight,
    COALESCE(fol.follower_count, 0)::bigint AS follower_count,
    COALESCE(by_type.insights_by_type, '{}'::jsonb) AS insights_by_type,
    COALESCE(jobs.total_jobs, 0)::bigint AS total_jobs,
    COALESCE(jobs.failed_jobs, 0)::bigint AS failed_jobs,
    jobs.latest_job_status,
    now() AS refreshed_at
FROM repositories r
LEFT JOIN ins ON ins.repository_id = r.id
LEFT JOIN by_type ON by_type.repository_id = r.id
LEFT JOIN fol ON fol.repository_id = r.id
LEFT JOIN jobs ON jobs.repository_id = r.id;

CREATE UNIQUE INDEX idx_repo_stats_id ON repository_stats(id);
CREATE INDEX idx_repo_stats_language ON repository_stats(language);
CREATE INDEX idx_repo_stats_stars ON repository_stats(stars DESC);
CREATE INDEX idx_repo_stats_insights ON repository_stats(total_insights DESC);
CREATE INDEX idx_repo_stats_full_name ON repository_stats(full_name);
""",
    "DROP MATERIALIZED VIEW IF EXISTS repository_stats",
)

# Issue 4 (migration 0003): V1 carried now() in every row, so REFRESH ... CONCURRENTLY found every row changed
# and rewrote all of them (~3x slower at medium scale than a diff of the rows that really changed). V2 has no
# refreshed_at column: the time of the last refresh is kept by ANALYSIS_REFRESH_MARKER. V2 also aggregates the
# insights in one pass (per repository and type, then per repository), which an index-only scan of
# idx_insights_repo_type_cover feeds in order; and it holds the spec's trending inputs for the default window
# (recent_insights_7d: insights in the 7 UTC days ending on recent_as_of, the newest insight's day), so the
# default trending report is an index scan of the view.
REPOSITORY_STATS_VIEW_V2 = SqlObject(
    "repository_stats",
    """
CREATE MATERIALIZED VIEW repository_stats AS
WITH by_type AS (
    SELECT repository_id, type, COUNT(*) AS n, SUM(confidence_score) AS conf, MAX(generated_at) AS latest
    FROM insights
    GROUP BY repository_id, type
), ins AS (
    SELECT repository_id,
           SUM(n)::bigint AS total_insights,
           (SUM(conf) / SUM(n))::float8 AS avg_confidence,
           MAX(latest) AS latest_insight,
           jsonb_object_agg(type, n ORDER BY type) AS insights_by_type
    FROM by_type
    GROUP BY repository_id
), recent_day AS (
    SELECT (MAX(generated_at) AT TIME ZONE 'UTC')::date AS as_of FROM insights
), recent AS (
    -- the spec's "recent insights" for the default trending window: the 7 UTC days ending on the newest one
    SELECT i.repository_id, COUNT(*) AS n, AVG(i.confidence_score)::float8 AS avg_confidence
    FROM insights i, recent_day d
    WHERE i.generated_at >= (d.as_of - 6)::timestamp AT TIME ZONE 'UTC'
      AND i.generated_at < (d.as_of + 1)::timestamp AT TIME ZONE 'UTC'
    GROUP BY i.repository_id
), fol AS (
    SELECT repository_id, COUNT(*) AS follower_count
    FROM user_repository_follows
    GROUP BY repository_id
), jobs AS (
    SELECT repository_id,
           COUNT(*) AS total_jobs,
           COUNT(*) FILTER (WHERE status = 'failed') AS failed_jobs,
           (ARRAY_AGG(status ORDER BY created_at DESC NULLS LAST, id DESC))[1] AS latest_job_status
    FROM analysis_jobs
    GROUP BY repository_id
)
SELECT
    r.id,
    r.full_name,
    r.language,
    r.stars,
    r.forks,
    r.analysis_status,
    COALESCE(ins.total_insights, 0)::bigint AS total_insights,
    ins.avg_confidence,
    ins.latest_insight,
    COALESCE(fol.follower_count, 0)::bigint AS follower_count,
    COALESCE(ins.insights_by_type, '{}'::jsonb) AS insights_by_type,
    COALESCE(jobs.total_jobs, 0)::bigint AS total_jobs,
    COALESCE(jobs.failed_jobs, 0)::bigint AS failed_jobs,
    jobs.latest_job_status,
    COALESCE(recent.n, 0)::bigint AS recent_insights_7d,
    recent.avg_confidence AS recent_avg_confidence_7d,
    (SELECT as_of FROM recent_day) AS recent_as_of
FROM repositories r
LEFT JOIN ins ON ins.repository_id = r.id
LEFT JOIN recent ON recent.repository_id = r.id
LEFT JOIN fol ON fol.repository_id = r.id
LEFT JOIN jobs ON jobs.repository_id = r.id;

CREATE UNIQUE INDEX idx_repo_stats_id ON repository_stats(id);
CREATE INDEX idx_repo_stats_language ON repository_stats(language);
CREATE INDEX idx_repo_stats_stars ON repository_stats(stars DESC);
CREATE INDEX idx_repo_stats_insights ON repository_stats(total_insights DESC);
CREATE INDEX idx_repo_stats_full_name ON repository_stats(full_name);
CREATE INDEX idx_repo_stats_trending ON repository_stats((COALESCE(stars, 0) + COALESCE(forks, 0)) DESC)
    WHERE analysis_status = 'completed';
CREATE INDEX idx_repo_stats_trending_7d ON repository_stats(
    (COALESCE(stars, 0) + COALESCE(forks, 0) + 10 * recent_insights_7d) DESC, full_name)
    WHERE analysis_status = 'completed';
""",
    "DROP MATERIALIZED VIEW IF EXISTS repository_stats",
)

# Small aggregates of the insights table so that the confidence analyses read a few thousand rows instead of
# scanning a million insights on every report run. Confidence is NUMERIC(3,2) (101 values), so counts per value
# give exact distributions and tests.
INSIGHT_CONFIDENCE_HIST = SqlObject(
    "insight_confidence_hist",
    """
CREATE MATERIALIZED VIEW insight_confidence_hist AS
SELECT type::text AS type,
       COALESCE(model_version, '(none)')::text AS model_version,
       confidence_score,
       COUNT(*)::bigint AS n
FROM insights
GROUP BY 1, 2, 3;

CREATE UNIQUE INDEX idx_insight_conf_hist_key ON insight_confidence_hist (type, model_version, confidence_score);
""",
    "DROP MATERIALIZED VIEW IF EXISTS insight_confidence_hist",
)

# Per UTC day and insight type: n and the histogram of confidence (scores = confidence x 100, counts), for the
# low-confidence share over time under any threshold and period (a few thousand rows, not one per value).
# Insights without generated_at cannot be placed in time and are left out (the histogram view has them).
INSIGHT_CONFIDENCE_DAILY = SqlObject(
    "insight_confidence_daily",
    """
CREATE MATERIALIZED VIEW insight_confidence_daily AS
SELECT day, type,
       SUM(n)::bigint AS n,
       ARRAY_AGG(score ORDER BY score)::smallint[] AS scores,
       ARRAY_AGG(n ORDER BY score)::bigint[] AS counts
FROM (
    SELECT (generated_at AT TIME ZONE 'UTC')::date AS day, type::text AS type,
           round(confidence_score * 100)::smallint AS score, COUNT(*) AS n
    FROM insights
    WHERE generated_at IS NOT NULL
    GROUP BY 1, 2, 3
) h
GROUP BY day, type;

CREATE UNIQUE INDEX idx_insight_conf_daily_key ON insight_confidence_daily (day, type);
""",
    "DROP MATERIALIZED VIEW IF EXISTS insight_confidence_daily",
)

# A tag repeated within one insight counts once; NULL array elements are ignored.
INSIGHT_TAG_VIEW = SqlObject(
    "insight_tag_stats",
    """
CREATE MATERIALIZED VIEW insight_tag_stats AS
WITH tagged AS (
    -- COLLATE "C": grouping two million (repository, tag) pairs sorts bytes, not locale-aware text
    SELECT i.repository_id, i.confidence_score, i.generated_at, t.tag COLLATE "C" AS tag
    FROM insights i, unnest(i.tags) WITH ORDINALITY AS t(tag, pos)
    WHERE t.tag IS NOT NULL AND array_position(i.tags, t.tag) = t.pos  -- first occurrence only
), per_repo AS (
    SELECT tag, repository_id, COUNT(*) AS n, SUM(confidence_score) AS conf,
           MIN(generated_at) AS first_seen, MAX(generated_at) AS last_seen
    FROM tagged GROUP BY repository_id, tag
)
SELECT tag,
       SUM(n)::bigint AS insights,
       COUNT(*)::bigint AS repositories,
       (SUM(conf) / SUM(n))::float8 AS avg_confidence,
       MIN(first_seen) AS first_seen,
       MAX(last_seen) AS last_seen
FROM per_repo
GROUP BY tag;

CREATE UNIQUE INDEX idx_insight_tag_stats_tag ON insight_tag_stats (tag);
""",
    "DROP MATERIALIZED VIEW IF EXISTS insight_tag_stats",
)

# Star history prepared for trending by stars: each snapshot with its change since the repository's previous
# snapshot (prev_date, d_stars, d_forks) and the repository's first snapshot ever (first_seen), so that a trend
# over any window is two hash aggregations of the window's rows instead of window functions over them.
SNAPSHOT_DELTAS_VIEW = SqlObject(
    "repository_snapshot_deltas",
    """
CREATE MATERIALIZED VIEW repository_snapshot_deltas AS
SELECT repository_id, snapshot_date, stars, forks, last_commit,
       lag(snapshot_date) OVER w AS prev_date,
       stars - lag(stars) OVER w AS d_stars,
       forks - lag(forks) OVER w AS d_forks,
       MIN(snapshot_date) OVER (PARTITION BY repository_id) AS first_seen
FROM repository_snapshots
WINDOW w AS (PARTITION BY repository_id ORDER BY snapshot_date);

CREATE UNIQUE INDEX idx_snapshot_deltas_key ON repository_snapshot_deltas (repository_id, snapshot_date);
CREATE INDEX idx_snapshot_deltas_date ON repository_snapshot_deltas (snapshot_date);
""",
    "DROP MATERIALIZED VIEW IF EXISTS repository_snapshot_deltas",
)

#: Windows (days) whose star trends are precomputed for the newest snapshot day (repository_star_trends).
STAR_TREND_WINDOWS = (7, 14, 30, 90)

# Issue 14 (migration 0008): trending_by_stars for the newest snapshot day and the windows of STAR_TREND_WINDOWS,
# before the LIMIT and the language filter: one row per (window, repository), computed from
# repository_snapshot_deltas by the statement of queries.trending.STARS_SQL with its parameters as columns
# (same expressions and types: float8 weights, dates, a UTC-midnight cut-off for inactive repositories). It is
# refreshed in the same transaction as repository_snapshot_deltas (DEPENDENT_VIEWS), so it always holds exactly
# what the live statement computes from that view; trending_by_stars reads it when as_of and the window match.
STAR_TRENDS_VIEW = SqlObject(
    "repository_star_trends",
    """
CREATE MATERIALIZED VIEW repository_star_trends AS
WITH params AS (
    SELECT w.window_days, m.as_of, m.as_of - w.window_days AS start, w.window_days::float8 AS span,
           (m.as_of - 90)::timestamp AT TIME ZONE 'UTC' AS active_since
    FROM (SELECT max(snapshot_date) AS as_of FROM repository_snapshot_deltas) m
    CROSS JOIN (VALUES {windows}) AS w(window_days)
    WHERE m.as_of IS NOT NULL
), win AS MATERIALIZED (
    SELECT p.window_days, p.as_of, p.start, p.span, p.active_since,
           d.repository_id, d.snapshot_date, d.stars, d.forks, d.last_commit, d.first_seen,
           (d.prev_date >= p.start) AS counted,
           d.d_stars, d.d_forks, d.snapshot_date - d.prev_date AS gap
    FROM params p
    JOIN repository_snapshot_deltas d ON d.snapshot_date >= p.start AND d.snapshot_date <= p.as_of
), per_repo AS (
    SELECT window_days, repository_id,
           MIN(as_of) AS as_of, MIN(start) AS start,
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
    GROUP BY window_days, repository_id
    HAVING COUNT(*) >= 2 AND (MAX(last_commit) IS NULL OR MAX(last_commit) >= MIN(active_since))
), scored AS (
    SELECT w.window_days, w.repository_id,
           ROUND(COALESCE(SUM(GREATEST(w.d_stars - c.cap_per_day * w.gap, 0)), 0))::bigint AS spike_stars,
           COALESCE(SUM((2.0::float8 + (5.0::float8 - 2.0::float8) * (w.snapshot_date - w.start) / w.span)
                        * LEAST(w.d_stars, c.cap_per_day * w.gap)), 0) AS star_score,
           COALESCE(SUM((1.0::float8 + (4.0::float8 - 1.0::float8) * (w.snapshot_date - w.start) / w.span)
                        * w.d_forks), 0) AS fork_score
    FROM win w
    JOIN (SELECT window_days, repository_id, rate_sum, intervals FROM per_repo) p USING (window_days, repository_id)
    CROSS JOIN LATERAL (
        SELECT CASE WHEN p.intervals >= 3 THEN GREATEST(
                   10.0::float8 * (p.rate_sum - w.d_stars::float8 / w.gap) / (p.intervals - 1), 50.0::float8)
               END AS cap_per_day
    ) c
    WHERE w.counted
    GROUP BY w.window_days, w.repository_id
)
SELECT a.repository_id, a.window_days, a.as_of, a.start, a.snapshots, a.first_snapshot, a.last_snapshot,
       a.stars_start, a.star_delta, a.fork_delta, a.rate_sum, a.intervals, a.first_seen, a.last_commit,
       s.spike_stars, s.star_score, s.fork_score,
       200.0::float8 / (1 + (a.as_of - a.first_seen) / 365.25) AS young_bonus,
       s.star_score + s.fork_score + 200.0::float8 / (1 + (a.as_of - a.first_seen) / 365.25) AS trending_score
FROM per_repo a JOIN scored s USING (window_days, repository_id);

CREATE UNIQUE INDEX idx_star_trends_key ON repository_star_trends (window_days, repository_id);
CREATE INDEX idx_star_trends_rank ON repository_star_trends (window_days, trending_score DESC, repository_id);
""".format(windows=", ".join(f"({days})" for days in STAR_TREND_WINDOWS)),  # noqa: S608 - integer constants
    "DROP MATERIALIZED VIEW IF EXISTS repository_star_trends",
)

# One row: when the analysis views were last refreshed. Refreshed after all of them (so a failed refresh leaves
# the older time: reports then understate freshness, never overstate it).
ANALYSIS_REFRESH_MARKER = SqlObject(
    "analysis_views_refreshed",
    "CREATE MATERIALIZED VIEW analysis_views_refreshed AS SELECT now() AS refreshed_at",
    "DROP MATERIALIZED VIEW IF EXISTS analysis_views_refreshed",
)

#: Materialized views refreshed by ``gitinsight refresh``, in order (the marker last).
ANALYSIS_VIEWS = (
    "repository_stats",
    INSIGHT_CONFIDENCE_HIST.name,
    INSIGHT_CONFIDENCE_DAILY.name,
    INSIGHT_TAG_VIEW.name,
    SNAPSHOT_DELTAS_VIEW.name,
    STAR_TRENDS_VIEW.name,
    ANALYSIS_REFRESH_MARKER.name,
)

#: Views computed from another analysis view: refreshed after it, in its transaction (readers see both old or
#: both new), never side by side with it.
DEPENDENT_VIEWS = {SNAPSHOT_DELTAS_VIEW.name: (STAR_TRENDS_VIEW.name,)}
