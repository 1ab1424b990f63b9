"""Who may see what: application_role, row-level security (the spec's V1 and the per-user V2 of migration
0004), the view of repository_stats the role reads, and what is taken away from the role."""

from __future__ import annotations

from .base import SqlObject

__all__ = [
    "APPLICATION_ROLE_NAME",
    "APPLICATION_ROLE",
    "ROW_LEVEL_SECURITY",
    "RLS_TABLES",
    "ADMIN_ONLY_VIEWS",
    "ROW_LEVEL_SECURITY_V2",
    "VISIBLE_REPOSITORY_STATS",
    "APPLICATION_ROLE_LIMITS",
    "ROW_LEVEL_SECURITY_CITUS",
    "CITUS_USER_LISTS_SQL",
    "ALERTS_ACCESS",
    "ALERTS_RLS_TABLES",
]


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


# --- Row-level security in practice (issue 6, migration 0004) ---------------------------------------------------

#: Every table the application role has privileges on. Each gets row-level security, FORCEd so that a table owner
#: without BYPASSRLS is held to the policies too (the admin connection must be a superuser or BYPASSRLS).
RLS_TABLES = ("users", "repositories", "insights", "analysis_jobs", "repository_snapshots",
              "user_repository_follows", "api_keys", "audit_logs")

#: Materialized views computed over every user's rows (a view holds what its owner saw: RLS does not filter it).
#: The application role may not read them; it reads visible_repository_stats instead.
ADMIN_ONLY_VIEWS = ("repository_stats", "insight_confidence_hist", "insight_confidence_daily", "insight_tag_stats",
                    "repository_snapshot_deltas", "repository_star_trends")

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


# --- Row-level security on Citus (issue 10) ---------------------------------------------------------------------

# Citus refuses policies with subqueries on distributed tables ("Subqueries are not supported in policies on
# distributed tables") and runs the policies on the workers, inside shard queries, where a function that queries
# distributed tables cannot run. So on Citus the user's visible, owned and owners' ids are computed once per
# transaction on the coordinator by the RLS helper (security.rls.as_user) and handed to every node as settings
# (SET LOCAL, propagated with citus.propagate_set_commands = 'local'); the policies compare with them. The rules
# are V2's, only the lists come from the settings: who may see or change what does not change. The role could set
# these settings itself, exactly as it could set app.current_user_id on a single node: the identity is the
# application's to set in both designs.
_CITUS_FUNCTIONS = """
CREATE FUNCTION app_current_user_id() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN NULLIF(current_setting('app.current_user_id', true), '')::uuid;
CREATE FUNCTION app_visible_repository_ids() RETURNS uuid[]
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN COALESCE(NULLIF(current_setting('app.visible_repository_ids', true), '')::uuid[], '{}');
CREATE FUNCTION app_visible_owner_ids() RETURNS uuid[]
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN COALESCE(NULLIF(current_setting('app.visible_owner_ids', true), '')::uuid[], '{}');
CREATE FUNCTION app_owned_repository_ids() RETURNS uuid[]
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN COALESCE(NULLIF(current_setting('app.owned_repository_ids', true), '')::uuid[], '{}');
GRANT EXECUTE ON FUNCTION app_visible_repository_ids(), app_visible_owner_ids(), app_owned_repository_ids()
    TO application_role;
"""
_C_ME = "app_current_user_id()"
_C_VISIBLE = "app_visible_repository_ids()"
_C_OWNED = "app_owned_repository_ids()"
_POLICIES_CITUS = f"""
CREATE POLICY repository_access_policy ON repositories FOR SELECT TO application_role
    USING (id = ANY ({_C_VISIBLE}));
{_owner_policies("repositories", "repository_owner", f"owner_id = {_C_ME}")}
CREATE POLICY insight_access_policy ON insights FOR SELECT TO application_role
    USING (repository_id = ANY ({_C_VISIBLE}));
{_owner_policies("insights", "insight_owner", f"repository_id = ANY ({_C_OWNED})")}
CREATE POLICY analysis_job_access_policy ON analysis_jobs FOR SELECT TO application_role
    USING (repository_id = ANY ({_C_VISIBLE}));
{_owner_policies("analysis_jobs", "analysis_job_owner", f"repository_id = ANY ({_C_OWNED})")}
CREATE POLICY repository_snapshot_access_policy ON repository_snapshots FOR SELECT TO application_role
    USING (repository_id = ANY ({_C_VISIBLE}));
{_owner_policies("repository_snapshots", "repository_snapshot_owner", f"repository_id = ANY ({_C_OWNED})")}
CREATE POLICY follow_access_policy ON user_repository_follows FOR SELECT TO application_role
    USING (user_id = {_C_ME});
CREATE POLICY follow_share_policy ON user_repository_follows FOR INSERT TO application_role
    WITH CHECK (repository_id = ANY ({_C_OWNED}));
CREATE POLICY follow_update_policy ON user_repository_follows FOR UPDATE TO application_role
    USING (user_id = {_C_ME});
CREATE POLICY follow_delete_policy ON user_repository_follows FOR DELETE TO application_role
    USING (user_id = {_C_ME});

CREATE POLICY user_access_policy ON users FOR SELECT TO application_role
    USING (id = {_C_ME} OR id = ANY (app_visible_owner_ids()));
{_owner_policies("users", "user_self", f"id = {_C_ME}")}
CREATE POLICY api_key_owner_policy ON api_keys FOR ALL TO application_role
    USING (user_id = {_C_ME}) WITH CHECK (user_id = {_C_ME});

CREATE POLICY audit_log_access_policy ON audit_logs FOR SELECT TO application_role
    USING (user_id = {_C_ME});
CREATE POLICY audit_log_insert_policy ON audit_logs FOR INSERT TO application_role
    WITH CHECK (user_id = {_C_ME});
"""

ROW_LEVEL_SECURITY_CITUS = SqlObject(
    "row_level_security",
    _CITUS_FUNCTIONS + _RLS_ON + _POLICIES_CITUS,
    _DROP_POLICIES_V2 + "\n" + _RLS_OFF + "\nDROP FUNCTION IF EXISTS app_owned_repository_ids();"
    "\nDROP FUNCTION IF EXISTS app_visible_owner_ids();\nDROP FUNCTION IF EXISTS app_visible_repository_ids();"
    "\nDROP FUNCTION IF EXISTS app_current_user_id();\n",
)

#: The lists the Citus policies compare with, computed for user :u by the RLS helper before it takes the role.
CITUS_USER_LISTS_SQL = """
WITH visible AS (
    SELECT id, owner_id FROM repositories WHERE owner_id = :u
    UNION
    SELECT r.id, r.owner_id FROM user_repository_follows f JOIN repositories r ON r.id = f.repository_id
    WHERE f.user_id = :u
)
SELECT COALESCE(array_agg(id)::text, '{}'),
       COALESCE((array_agg(DISTINCT owner_id))::text, '{}'),
       COALESCE((array_agg(id) FILTER (WHERE owner_id = :u))::text, '{}')
FROM visible
"""
# Alerts (issue 13, migration 0006): a user reads its own alerts, and only those about repositories it can still
# see (an alert about a repository that became invisible disappears from the user's view). Alerts are written by
# `gitinsight alerts run` on the admin connection; the role may only read them. Same style as V2 above: scalar
# subqueries (one InitPlan per query) and "= ANY (array)".
#: Tables with FORCEd row-level security added after 0004 (RLS_TABLES stays what 0004 applies).
ALERTS_RLS_TABLES = ("alerts",)

ALERTS_ACCESS = SqlObject(
    "alerts_access",
    f"""
ALTER TABLE alerts ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
GRANT SELECT ON alerts TO application_role;
CREATE POLICY alert_access_policy ON alerts FOR SELECT TO application_role
    USING (user_id = {_ME} AND repository_id = ANY ({_VISIBLE}::uuid[]));
""",
    """
DROP POLICY IF EXISTS alert_access_policy ON alerts;
REVOKE ALL ON alerts FROM application_role;
ALTER TABLE alerts NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY;
""",
)
