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
    "APPLICATION_ROLE",
    "ROW_LEVEL_SECURITY",
    "AUDIT_PARTITION_FUNCTION",
    "AUDIT_DEFAULT_PARTITION",
    "ENCRYPTION_FUNCTIONS",
    "ENCRYPTION_FUNCTIONS_WITHOUT_PGCRYPTO",
    "TABLES_WITH_UPDATED_AT",
    "APPLICATION_ROLE_NAME",
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
