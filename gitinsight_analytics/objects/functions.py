"""Extensions, functions and triggers: updated_at, get_repository_stats, audit_logs partitions, API-key
encryption (pgcrypto or a clear \"not available\")."""

from __future__ import annotations

from .base import SqlObject

__all__ = [
    "EXTENSION_PG_TRGM",
    "UPDATED_AT_FUNCTION",
    "TABLES_WITH_UPDATED_AT",
    "UPDATED_AT_TRIGGERS",
    "REPOSITORY_STATS_FUNCTION",
    "AUDIT_PARTITION_FUNCTION",
    "AUDIT_DEFAULT_PARTITION",
    "ENCRYPTION_FUNCTIONS",
    "ENCRYPTION_FUNCTIONS_WITHOUT_PGCRYPTO",
]


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
