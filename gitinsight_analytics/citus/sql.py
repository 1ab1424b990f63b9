"""The SQL of the Citus layout, kept in one place (constant statements; table names come from constant tuples)."""

from __future__ import annotations

from ..objects import ALERTS_ACCESS, AUDIT_PARTITION_FUNCTION, REPOSITORY_STATS_FUNCTION

__all__ = [
    "REFERENCE_TABLES",
    "REPOSITORY_TABLES",
    "OTHER_DISTRIBUTED",
    "LAID_OUT_TABLES",
    "ROLLUPS",
    "COORDINATOR_VIEWS",
    "KEYS_TABLE_SQL",
    "KEYS_FK_SQL",
    "KEYS_DROP_SQL",
    "SYNC_KEYS_SQL",
    "PRUNE_KEYS_SQL",
    "CITUS_PRESENT_SQL",
    "DISTRIBUTED_SQL",
    "POLICY_FUNCTIONS",
    "AUDIT_PARTITION_FUNCTION_CITUS",
    "REPOSITORY_STATS_FUNCTION_CITUS",
    "CITUS_DRIFT_NAMES",
    "EXTRA_POLICIES",
]

#: The functions the Citus policies call: created on every node.
POLICY_FUNCTIONS = ("app_current_user_id()", "app_visible_repository_ids()", "app_visible_owner_ids()",
                    "app_owned_repository_ids()")

#: Small tables every node needs whole (joins with them run on any shard). repository_keys: see KEYS_TABLE_SQL.
REFERENCE_TABLES = ("users", "api_keys", "github_ranking_files", "repository_keys")

#: (table, distribution column): sharded on the repository id and co-located with repositories, so a
#: repository's insights, jobs, snapshots and followers live on the shard of its repository row.
REPOSITORY_TABLES = (
    ("repositories", "id"),
    ("insights", "repository_id"),
    ("analysis_jobs", "repository_id"),
    ("repository_snapshots", "repository_id"),
    ("user_repository_follows", "repository_id"),
    ("insight_outcomes", "repository_id"),
    ("alerts", "repository_id"),
)

#: Distributed on their own key, not co-located (audit_logs stays partitioned by month; its partitions follow).
OTHER_DISTRIBUTED = (("audit_logs", "id"),)

#: Every table the layout manages, in the order it distributes them (reference tables are listed last here but
#: made first: see layout.distribute).
LAID_OUT_TABLES = (*(t for t, _ in (*REPOSITORY_TABLES, *OTHER_DISTRIBUTED)), *REFERENCE_TABLES)

#: Materialized views with a row per repository (or per snapshot): too big for the coordinator, so on Citus they
#: become distributed tables co-located with repositories, refreshed from a view ``<name>_source`` by a
#: co-located DELETE + INSERT ... SELECT (maintenance.refresh). (name, distribution column); a rollup computed
#: from another (objects.DEPENDENT_VIEWS) comes after it: created in this order, dropped in the reverse one.
ROLLUPS = (("repository_stats", "id"), ("repository_snapshot_deltas", "repository_id"),
           ("repository_star_trends", "repository_id"))

#: Materialized views that stay on the coordinator: a few thousand rows each (per confidence value, day, tag).
COORDINATOR_VIEWS = ("insight_confidence_hist", "insight_confidence_daily", "insight_tag_stats",
                     "analysis_views_refreshed")

# Citus cannot enforce UNIQUE (github_id) or UNIQUE (full_name) on a table sharded by id. repository_keys holds
# every repository's (id, github_id, full_name) with both unique constraints, as a reference table (whole on
# every node), and repositories has a foreign key onto it: a repository row whose keys are not there, exactly, is
# refused at commit (DEFERRABLE INITIALLY DEFERRED, so a writer inserts the repository, then its keys). Two
# repositories with one full_name would need two key rows with that name: the unique constraint refuses that.
KEYS_TABLE_SQL = """
CREATE TABLE repository_keys (
    repository_id uuid NOT NULL,
    github_id bigint NOT NULL,
    full_name varchar(255) NOT NULL,
    CONSTRAINT repository_keys_pkey PRIMARY KEY (repository_id),
    CONSTRAINT repository_keys_github_id_key UNIQUE (github_id),
    CONSTRAINT repository_keys_full_name_key UNIQUE (full_name),
    CONSTRAINT repository_keys_all_key UNIQUE (repository_id, github_id, full_name)
)
"""

KEYS_FK_SQL = """
ALTER TABLE repositories ADD CONSTRAINT repositories_keys_fkey FOREIGN KEY (id, github_id, full_name)
    REFERENCES repository_keys (repository_id, github_id, full_name) DEFERRABLE INITIALLY DEFERRED
"""

KEYS_DROP_SQL = """
ALTER TABLE repositories DROP CONSTRAINT IF EXISTS repositories_keys_fkey;
DROP TABLE IF EXISTS repository_keys;
"""

#: After a write to repositories (seed, import): the keys of new and renamed repositories. A duplicate github_id or
#: full_name fails here, with the unique constraint's name, and the writer's transaction rolls back.
SYNC_KEYS_SQL = """
INSERT INTO repository_keys (repository_id, github_id, full_name)
SELECT r.id, r.github_id, r.full_name
FROM repositories r LEFT JOIN repository_keys k ON k.repository_id = r.id
WHERE k.repository_id IS NULL OR (k.github_id, k.full_name) IS DISTINCT FROM (r.github_id, r.full_name)
ON CONFLICT (repository_id) DO UPDATE SET github_id = EXCLUDED.github_id, full_name = EXCLUDED.full_name
"""

#: Keys of repositories that are gone (deleted or truncated): they would keep their names taken.
PRUNE_KEYS_SQL = """
DELETE FROM repository_keys WHERE repository_id NOT IN (SELECT id FROM repositories)
"""

CITUS_PRESENT_SQL = "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')"

#: {table: 'h' hash-distributed | 'n' reference} of what Citus already manages.
DISTRIBUTED_SQL = "SELECT logicalrelid::regclass::text, partmethod::text FROM pg_dist_partition"


# create_audit_log_partition compares created_at (timestamptz) with DATE bounds: an implicit date -> timestamptz
# cast, which is STABLE (it reads TimeZone), and Citus refuses STABLE functions applied to columns in a
# distributed DELETE/UPDATE. The same function with the bounds cast once, in the function (same values).
AUDIT_PARTITION_FUNCTION_CITUS = AUDIT_PARTITION_FUNCTION.create.replace(
    "WHERE created_at >= lo AND created_at < hi", "WHERE created_at >= lo::timestamptz AND created_at < hi::timestamptz"
)
assert AUDIT_PARTITION_FUNCTION_CITUS != AUDIT_PARTITION_FUNCTION.create, "create_audit_log_partition changed"

# get_repository_stats is a SQL function (inlined by the planner on one node); Citus cannot plan a parameterised
# SQL function over distributed tables, and delegates calls only of PL/pgSQL functions to the worker holding the
# shard. The same query and result columns in PL/pgSQL.
REPOSITORY_STATS_FUNCTION_CITUS = (
    REPOSITORY_STATS_FUNCTION.create.replace("$$\n    SELECT", "$$\nBEGIN\n    RETURN QUERY SELECT", 1)
    .replace("WHERE i.repository_id = repo_id;\n$$ LANGUAGE sql STABLE",
             "WHERE i.repository_id = repo_id;\nEND;\n$$ LANGUAGE plpgsql STABLE")
)
assert "plpgsql" in REPOSITORY_STATS_FUNCTION_CITUS and "RETURN QUERY" in REPOSITORY_STATS_FUNCTION_CITUS

#: What `alembic check` finds on a Citus database because of this layout (and nothing else): the rollup tables and
#: repository_keys (not models), the widened primary keys, the unique keys moved to repository_keys.
CITUS_DRIFT_NAMES = ("repository_stats", "repository_snapshot_deltas", "repository_star_trends", "repository_keys",
                     "repositories_keys_fkey", "insights_pkey", "analysis_jobs_pkey", "repositories_github_id_key",
                     "repositories_full_name_key")

#: Policies of tables added after 0004, swapped with the main ones: (table, policy, single-node SQL that creates it
#: with its RLS settings, the Citus variant: the same rule without subqueries).
EXTRA_POLICIES = (
    ("alerts", "alert_access_policy", ALERTS_ACCESS.create,
     "CREATE POLICY alert_access_policy ON alerts FOR SELECT TO application_role "
     "USING (user_id = app_current_user_id() AND repository_id = ANY (app_visible_repository_ids()))"),
)
