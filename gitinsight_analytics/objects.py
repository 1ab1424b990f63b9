"""PostgreSQL objects the models cannot express, each defined once as (create, drop) SQL.

Migrations apply these definitions; a later migration that changes an object adds a new versioned constant
here (``..._V2``) and keeps the old one so that downgrades can restore it. Where an object differs from the
spec's SQL, ``docs/seed-deviations.md`` says why.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "SqlObject",
    "EXTENSION_PG_TRGM",
    "UPDATED_AT_FUNCTION",
    "UPDATED_AT_TRIGGERS",
    "REPOSITORY_STATS_FUNCTION",
    "REPOSITORY_STATS_VIEW",
    "REPOSITORY_STATS_VIEW_V2",
    "INSIGHT_CONFIDENCE_HIST",
    "INSIGHT_CONFIDENCE_DAILY",
    "INSIGHT_TAG_VIEW",
    "SNAPSHOT_DELTAS_VIEW",
    "ANALYSIS_REFRESH_MARKER",
    "ANALYSIS_VIEWS",
    "APPLICATION_ROLE",
    "ROW_LEVEL_SECURITY",
    "AUDIT_PARTITION_FUNCTION",
    "AUDIT_DEFAULT_PARTITION",
    "ENCRYPTION_FUNCTIONS",
    "ENCRYPTION_FUNCTIONS_WITHOUT_PGCRYPTO",
    "TABLES_WITH_UPDATED_AT",
    "APPLICATION_ROLE_NAME",
    "RLS_TABLES",
    "ADMIN_ONLY_VIEWS",
    "ROW_LEVEL_SECURITY_V2",
    "VISIBLE_REPOSITORY_STATS",
    "APPLICATION_ROLE_LIMITS",
]


@dataclass(frozen=True)
class SqlObject:
    """A named database object with the SQL that creates it and the SQL that removes it."""

    name: str
    create: str
    drop: str


EXTENSION_PG_TRGM = SqlObject(
    "pg_trgm",
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "DROP EXTENSION IF EXISTS pg_trgm",
)

UPDATED_AT_FUNCTION = SqlObject(
    "update_updated_at_column",
    """
CREATE OR REPLACE FUNCTION update_updated_at_column()
RETURNS TRIGGER AS $$
BEGIN
    NEW.updated_at = NOW();
    RETURN NEW;
END;
$$ LANGUAGE plpgsql
""",
    "DROP FUNCTION IF EXISTS update_updated_at_column()",
)

TABLES_WITH_UPDATED_AT = ("users", "repositories", "insights", "analysis_jobs")

UPDATED_AT_TRIGGERS = tuple(
    SqlObject(
        f"update_{table}_updated_at",
        f"CREATE TRIGGER update_{table}_updated_at BEFORE UPDATE ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION update_updated_at_column()",
        f"DROP TRIGGER IF EXISTS update_{table}_updated_at ON {table}",
    )
    for table in TABLES_WITH_UPDATED_AT
)

# Spec: ARRAY_AGG(DISTINCT type) is varchar(50)[], the declared result is TEXT[]: PL/pgSQL raises "structure of
# query does not match function result type". Cast to text; an empty repository gets '{}' rather than NULL.
# Written in SQL (STABLE) so the planner can inline it; the result columns are the spec's.
REPOSITORY_STATS_FUNCTION = SqlObject(
    "get_repository_stats",
    """
CREATE OR REPLACE FUNCTION get_repository_stats(repo_id UUID)
RETURNS TABLE (
    total_insights INTEGER,
    avg_confidence DECIMAL,
    latest_analysis TIMESTAMP WITH TIME ZONE,
    insight_types TEXT[]
) AS $$
    SELECT
        COUNT(*)::INTEGER AS total_insights,
        AVG(i.confidence_score)::DECIMAL AS avg_confidence,
        MAX(i.generated_at) AS latest_analysis,
        COALESCE(ARRAY_AGG(DISTINCT i.type::TEXT ORDER BY i.type::TEXT)
                 FILTER (WHERE i.type IS NOT NULL), '{}') AS insight_types
    FROM insights i
    WHERE i.repository_id = repo_id;
$$ LANGUAGE sql STABLE
""",
    "DROP FUNCTION IF EXISTS get_repository_stats(UUID)",
)

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
    ANALYSIS_REFRESH_MARKER.name,
)

APPLICATION_ROLE_NAME = "application_role"

# Roles are cluster-wide: create it only if missing; on drop, keep it while other databases still use it.
APPLICATION_ROLE = SqlObject(
    APPLICATION_ROLE_NAME,
    """
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'application_role') THEN
        CREATE ROLE application_role NOLOGIN;
    END IF;
END
$$;
GRANT USAGE ON SCHEMA public TO application_role;
GRANT SELECT, INSERT, UPDATE, DELETE ON users, repositories, insights, analysis_jobs,
    user_repository_follows, api_keys, audit_logs, repository_snapshots TO application_role;
GRANT SELECT ON repository_stats TO application_role;
GRANT EXECUTE ON FUNCTION get_repository_stats(UUID) TO application_role;
""",
    """
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'application_role') THEN
        EXECUTE 'REVOKE ALL ON ALL TABLES IN SCHEMA public FROM application_role';
        EXECUTE 'REVOKE ALL ON ALL FUNCTIONS IN SCHEMA public FROM application_role';
        EXECUTE 'REVOKE ALL ON SCHEMA public FROM application_role';
        BEGIN
            EXECUTE 'DROP ROLE application_role';
        EXCEPTION WHEN dependent_objects_still_exist THEN
            RAISE NOTICE 'application_role is still used by another database; kept';
        END;
    END IF;
END
$$;
""",
)

# Spec: current_setting('app.current_user_id') raises when the setting is absent; with missing_ok it is NULL
# and the policy shows nothing. The spec enables RLS on insights without any policy (the role then sees no
# insight at all); insights follow the visibility of their repository.
ROW_LEVEL_SECURITY = SqlObject(
    "row_level_security",
    """
ALTER TABLE repositories ENABLE ROW LEVEL SECURITY;
ALTER TABLE insights ENABLE ROW LEVEL SECURITY;

CREATE POLICY repository_access_policy ON repositories
    FOR ALL TO application_role
    USING (
        owner_id = NULLIF(current_setting('app.current_user_id', true), '')::UUID
        OR
        id IN (
            SELECT repository_id
            FROM user_repository_follows
            WHERE user_id = NULLIF(current_setting('app.current_user_id', true), '')::UUID
        )
    );

CREATE POLICY insight_access_policy ON insights
    FOR ALL TO application_role
    USING (repository_id IN (SELECT id FROM repositories));
""",
    """
DROP POLICY IF EXISTS insight_access_policy ON insights;
DROP POLICY IF EXISTS repository_access_policy ON repositories;
ALTER TABLE insights DISABLE ROW LEVEL SECURITY;
ALTER TABLE repositories DISABLE ROW LEVEL SECURITY;
""",
)

# Spec: audit_logs was not declared partitioned, so "PARTITION OF audit_logs" fails. The table is now
# PARTITION BY RANGE (created_at) (see models.AuditLog). This function creates the partition of one month;
# rows of that month already sitting in the default partition are moved into it.
AUDIT_PARTITION_FUNCTION = SqlObject(
    "create_audit_log_partition",
    """
CREATE OR REPLACE FUNCTION create_audit_log_partition(month DATE)
RETURNS TEXT AS $$
DECLARE
    lo DATE := date_trunc('month', month)::DATE;
    hi DATE := (date_trunc('month', month) + INTERVAL '1 month')::DATE;
    part TEXT := format('audit_logs_y%sm%s', to_char(lo, 'YYYY'), to_char(lo, 'MM'));
    moved BIGINT;
BEGIN
    IF to_regclass(format('public.%I', part)) IS NOT NULL THEN
        RETURN part;
    END IF;
    LOCK TABLE audit_logs IN ACCESS EXCLUSIVE MODE;
    CREATE TEMP TABLE _audit_move (LIKE audit_logs) ON COMMIT DROP;
    IF to_regclass('public.audit_logs_default') IS NOT NULL THEN
        WITH m AS (
            DELETE FROM audit_logs_default WHERE created_at >= lo AND created_at < hi RETURNING *
        ) INSERT INTO _audit_move SELECT * FROM m;
    END IF;
    EXECUTE format('CREATE TABLE %I PARTITION OF audit_logs FOR VALUES FROM (%L) TO (%L)', part, lo, hi);
    INSERT INTO audit_logs SELECT * FROM _audit_move;
    GET DIAGNOSTICS moved = ROW_COUNT;
    DROP TABLE _audit_move;
    IF moved > 0 THEN
        RAISE NOTICE 'moved % rows from audit_logs_default into %', moved, part;
    END IF;
    RETURN part;
END;
$$ LANGUAGE plpgsql
""",
    "DROP FUNCTION IF EXISTS create_audit_log_partition(DATE)",
)

AUDIT_DEFAULT_PARTITION = SqlObject(
    "audit_logs_default",
    "CREATE TABLE IF NOT EXISTS audit_logs_default PARTITION OF audit_logs DEFAULT",
    "DROP TABLE IF EXISTS audit_logs_default",
)

# Spec: encrypt_api_key as written, plus its inverse; a missing app.encryption_key is a clear error rather
# than "unrecognized configuration parameter".
ENCRYPTION_FUNCTIONS = SqlObject(
    "encrypt_api_key",
    """
CREATE OR REPLACE FUNCTION encrypt_api_key(key_text TEXT)
RETURNS BYTEA AS $$
DECLARE
    secret TEXT := NULLIF(current_setting('app.encryption_key', true), '');
BEGIN
    IF secret IS NULL THEN
        RAISE EXCEPTION 'app.encryption_key is not set' USING HINT = 'SET app.encryption_key = ''...''';
    END IF;
    RETURN pgp_sym_encrypt(key_text, secret);
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION decrypt_api_key(encrypted BYTEA)
RETURNS TEXT AS $$
DECLARE
    secret TEXT := NULLIF(current_setting('app.encryption_key', true), '');
BEGIN
    IF secret IS NULL THEN
        RAISE EXCEPTION 'app.encryption_key is not set' USING HINT = 'SET app.encryption_key = ''...''';
    END IF;
    RETURN pgp_sym_decrypt(encrypted, secret);
END;
$$ LANGUAGE plpgsql;
""",
    """
DROP FUNCTION IF EXISTS decrypt_api_key(BYTEA);
DROP FUNCTION IF EXISTS encrypt_api_key(TEXT);
""",
)

# Where the server has no pgcrypto, the same functions exist and say so when called.
ENCRYPTION_FUNCTIONS_WITHOUT_PGCRYPTO = SqlObject(
    "encrypt_api_key",
    """
CREATE OR REPLACE FUNCTION encrypt_api_key(key_text TEXT)
RETURNS BYTEA AS $$
BEGIN
    RAISE EXCEPTION 'pgcrypto is not available on this PostgreSQL server'
        USING ERRCODE = 'feature_not_supported',
              HINT = 'use a server with the pgcrypto extension (e.g. GITINSIGHT_PG_BINDIR=$(pg_config --bindir))';
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION decrypt_api_key(encrypted BYTEA)
RETURNS TEXT AS $$
BEGIN
    RAISE EXCEPTION 'pgcrypto is not available on this PostgreSQL server'
        USING ERRCODE = 'feature_not_supported';
END;
$$ LANGUAGE plpgsql;
""",
    ENCRYPTION_FUNCTIONS.drop,
)

# --- Row-level security in practice (issue 6, migration 0004) ---------------------------------------------------

#: Every table the application role has privileges on. Each gets row-level security, FORCEd so that a table owner
#: without BYPASSRLS is held to the policies too (the admin connection must be a superuser or BYPASSRLS).
RLS_TABLES = ("users", "repositories", "insights", "analysis_jobs", "repository_snapshots",
              "user_repository_follows", "api_keys", "audit_logs")

#: Materialized views computed over every user's rows (a view holds what its owner saw: RLS does not filter it).
#: The application role may not read them; it reads visible_repository_stats instead.
ADMIN_ONLY_VIEWS = ("repository_stats", "insight_confidence_hist", "insight_confidence_daily", "insight_tag_stats",
                    "repository_snapshot_deltas")

_WRITE_COMMANDS = ("insert", "update", "delete")
_RLS_POLICIES = (
    ("repository_access_policy", "repositories"),
    *((f"repository_owner_{c}_policy", "repositories") for c in _WRITE_COMMANDS),
    ("insight_access_policy", "insights"),
    *((f"insight_owner_{c}_policy", "insights") for c in _WRITE_COMMANDS),
    ("analysis_job_access_policy", "analysis_jobs"),
    *((f"analysis_job_owner_{c}_policy", "analysis_jobs") for c in _WRITE_COMMANDS),
    ("repository_snapshot_access_policy", "repository_snapshots"),
    *((f"repository_snapshot_owner_{c}_policy", "repository_snapshots") for c in _WRITE_COMMANDS),
    ("follow_access_policy", "user_repository_follows"), ("follow_share_policy", "user_repository_follows"),
    ("follow_update_policy", "user_repository_follows"), ("follow_delete_policy", "user_repository_follows"),
    ("user_access_policy", "users"),
    *((f"user_self_{c}_policy", "users") for c in _WRITE_COMMANDS),
    ("api_key_owner_policy", "api_keys"),
    ("audit_log_access_policy", "audit_logs"), ("audit_log_insert_policy", "audit_logs"),
)

# V1 let a follower UPDATE and DELETE the repository it follows (one FOR ALL policy), left analysis_jobs,
# repository_snapshots, follows, users, api_keys and audit_logs open to every user of the role (A could follow B's
# private repository by inserting a follow row, then read it; or delete B's user row and with it, by ON DELETE
# CASCADE, B's repositories), and did not FORCE. V2:
# - who may SELECT a repository is written once, in app_visible_repository_ids() (the spec's rule: owned or
#   followed); every read policy asks "is the repository (or its owner) among the visible ones".
# - The policies are written so that PostgreSQL can use indexes: each user-dependent value is a scalar subquery,
#   (SELECT app_current_user_id()) or (SELECT app_visible_repository_ids()), which the planner evaluates once per
#   query (an InitPlan) instead of once per row, and "= ANY (array)" is an index condition on the primary key or
#   the repository_id indexes (the ::uuid[] cast keeps "ANY ((SELECT ...))" from being read as ANY (subquery)).
#   With "owner = me OR id IN (subquery)" every query under the role scanned all
#   repositories and users (~100 ms at medium scale for a user with 3 follows, ~460 ms for one with 10,000).
#   The write policies are per command (INSERT, UPDATE, DELETE), not FOR ALL: a FOR ALL policy also takes part in
#   every SELECT, OR-ed with the read policy, and an OR of the two is again a full scan.
# - app_visible_repository_ids() and app_visible_owner_ids() are SECURITY DEFINER (run as the migration's role,
#   a superuser or BYPASSRLS): a policy on repositories cannot read repositories under its own policy (infinite
#   recursion). They read only the current user's follows and repositories, with a fixed search_path.
# - writes (INSERT/UPDATE/DELETE) need ownership: of the repository, of the insights/jobs/snapshots of one's own
#   repositories, of one's own user row, API keys and follows. A follow is created by the repository's owner
#   (sharing it); a user may unfollow or change its notification settings (only that column is granted).
# - app_current_user_id() is NULL when app.current_user_id is unset or empty: every policy is then false, so a
#   missing user id shows no rows instead of raising.
_CURRENT_USER_FUNCTION = """
CREATE FUNCTION app_current_user_id() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN NULLIF(current_setting('app.current_user_id', true), '')::uuid;

CREATE FUNCTION app_visible_repository_ids() RETURNS uuid[]
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public
    AS $$
        SELECT COALESCE(array_agg(DISTINCT v.id), '{}')
        FROM (SELECT r.id FROM public.repositories r WHERE r.owner_id = public.app_current_user_id()
              UNION ALL
              SELECT f.repository_id FROM public.user_repository_follows f
              WHERE f.user_id = public.app_current_user_id()) v
    $$;

CREATE FUNCTION app_visible_owner_ids() RETURNS uuid[]
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public
    AS $$
        SELECT COALESCE(array_agg(DISTINCT r.owner_id), '{}')
        FROM public.repositories r WHERE r.id = ANY (public.app_visible_repository_ids())
    $$;

REVOKE ALL ON FUNCTION app_visible_repository_ids(), app_visible_owner_ids() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app_visible_repository_ids(), app_visible_owner_ids() TO application_role;
"""
_RLS_ON = "\n".join(f"ALTER TABLE {t} ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;" for t in RLS_TABLES)
_RLS_OFF = "\n".join(f"ALTER TABLE {t} NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY;" for t in RLS_TABLES)
_ME = "(SELECT app_current_user_id())"
_VISIBLE = "(SELECT app_visible_repository_ids())"
_OWNED = f"(SELECT id FROM repositories WHERE owner_id = {_ME})"  # noqa: S608 - constant SQL, no input


def _owner_policies(table: str, name: str, owned: str) -> str:
    """``name``_insert/update/delete policies (not FOR ALL: see above) allowing the rows where ``owned`` holds."""
    return f"""
CREATE POLICY {name}_insert_policy ON {table} FOR INSERT TO application_role WITH CHECK ({owned});
CREATE POLICY {name}_update_policy ON {table} FOR UPDATE TO application_role USING ({owned}) WITH CHECK ({owned});
CREATE POLICY {name}_delete_policy ON {table} FOR DELETE TO application_role USING ({owned});
"""


_POLICIES_V2 = f"""
CREATE POLICY repository_access_policy ON repositories FOR SELECT TO application_role
    USING (id = ANY ({_VISIBLE}::uuid[]));
{_owner_policies("repositories", "repository_owner", f"owner_id = {_ME}")}
CREATE POLICY insight_access_policy ON insights FOR SELECT TO application_role
    USING (repository_id = ANY ({_VISIBLE}::uuid[]));
{_owner_policies("insights", "insight_owner", f"repository_id IN {_OWNED}")}
CREATE POLICY analysis_job_access_policy ON analysis_jobs FOR SELECT TO application_role
    USING (repository_id = ANY ({_VISIBLE}::uuid[]));
{_owner_policies("analysis_jobs", "analysis_job_owner", f"repository_id IN {_OWNED}")}
CREATE POLICY repository_snapshot_access_policy ON repository_snapshots FOR SELECT TO application_role
    USING (repository_id = ANY ({_VISIBLE}::uuid[]));
{_owner_policies("repository_snapshots", "repository_snapshot_owner", f"repository_id IN {_OWNED}")}
CREATE POLICY follow_access_policy ON user_repository_follows FOR SELECT TO application_role
    USING (user_id = {_ME});
CREATE POLICY follow_share_policy ON user_repository_follows FOR INSERT TO application_role
    WITH CHECK (repository_id IN {_OWNED});
CREATE POLICY follow_update_policy ON user_repository_follows FOR UPDATE TO application_role
    USING (user_id = {_ME});
CREATE POLICY follow_delete_policy ON user_repository_follows FOR DELETE TO application_role
    USING (user_id = {_ME});

CREATE POLICY user_access_policy ON users FOR SELECT TO application_role
    USING (id = {_ME} OR id = ANY ((SELECT app_visible_owner_ids())::uuid[]));
{_owner_policies("users", "user_self", f"id = {_ME}")}
CREATE POLICY api_key_owner_policy ON api_keys FOR ALL TO application_role
    USING (user_id = {_ME}) WITH CHECK (user_id = {_ME});

CREATE POLICY audit_log_access_policy ON audit_logs FOR SELECT TO application_role
    USING (user_id = {_ME});
CREATE POLICY audit_log_insert_policy ON audit_logs FOR INSERT TO application_role
    WITH CHECK (user_id = {_ME});
"""
_DROP_POLICIES_V2 = "\n".join(f"DROP POLICY IF EXISTS {p} ON {t};" for p, t in _RLS_POLICIES)

ROW_LEVEL_SECURITY_V2 = SqlObject(
    "row_level_security",
    _CURRENT_USER_FUNCTION + _RLS_ON + _POLICIES_V2,
    _DROP_POLICIES_V2 + "\n" + _RLS_OFF + "\nDROP FUNCTION IF EXISTS app_visible_owner_ids();"
    "\nDROP FUNCTION IF EXISTS app_visible_repository_ids();\nDROP FUNCTION IF EXISTS app_current_user_id();\n",
)

# repository_stats holds every repository (its owner saw them all), so the application role reads this view of
# it instead: the rows of the repositories the querying role can SELECT. The visibility test is not repeated
# here: visible_repository_ids is a security_invoker view, so PostgreSQL checks repositories as the role running
# the query even from inside visible_repository_stats (an ordinary view, run with its owner's rights on
# repository_stats). For the admin (superuser/BYPASSRLS) that is every repository; for application_role those of
# app.current_user_id; with no user id, none. security_barrier: a caller's own (leaky) functions in WHERE run
# only on rows that passed the filter. A migration that replaces repository_stats must drop and recreate this.
VISIBLE_REPOSITORY_STATS = SqlObject(
    "visible_repository_stats",
    """
CREATE VIEW visible_repository_ids WITH (security_invoker = true) AS
SELECT id FROM repositories;

CREATE VIEW visible_repository_stats WITH (security_barrier = true) AS
SELECT s.* FROM repository_stats s
WHERE s.id IN (SELECT v.id FROM visible_repository_ids v);

GRANT SELECT ON visible_repository_stats TO application_role;
""",
    """
DROP VIEW IF EXISTS visible_repository_stats;
DROP VIEW IF EXISTS visible_repository_ids;
""",
)

# What 0004 takes away from the role (drop gives it back): the materialized views over everybody's rows; UPDATE and
# DELETE on audit_logs (append-only for users); UPDATE of a follow's keys (only notification_settings).
# Aggregates over all insights (confidence histograms, tag statistics) show no repository, but they count other
# users' insights and carry their tags: the role does not read them either (the confidence analyses need the
# admin connection). analysis_views_refreshed (one timestamp) stays readable.
APPLICATION_ROLE_LIMITS = SqlObject(
    "application_role_limits",
    """
REVOKE SELECT ON repository_stats, insight_confidence_hist, insight_confidence_daily, insight_tag_stats,
    repository_snapshot_deltas FROM application_role;
REVOKE UPDATE, DELETE ON audit_logs FROM application_role;
REVOKE UPDATE ON user_repository_follows FROM application_role;
GRANT UPDATE (notification_settings) ON user_repository_follows TO application_role;
""",
    """
REVOKE UPDATE (notification_settings) ON user_repository_follows FROM application_role;
GRANT UPDATE ON user_repository_follows TO application_role;
GRANT UPDATE, DELETE ON audit_logs TO application_role;
GRANT SELECT ON repository_stats, insight_confidence_hist, insight_confidence_daily, insight_tag_stats,
    repository_snapshot_deltas TO application_role;
""",
)
