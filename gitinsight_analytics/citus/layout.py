"""Laying the migrated schema out for Citus: reference tables, co-located distributed tables, rollups.

Run by :func:`gitinsight_analytics.migrate.upgrade` after the migrations, in their transaction, when the database
has the ``citus`` extension (a coordinator); on plain PostgreSQL it does nothing. Idempotent: a table Citus
already manages is left alone. :func:`undistribute` reverses it before a downgrade. Why each step is needed:
docs/scale-out.md.
"""

from __future__ import annotations

from psycopg import sql
from sqlalchemy import text
from sqlalchemy.engine import Connection

from ..db import driver_connection
from ..exceptions import ConfigurationError
from ..objects import (
    ADMIN_ONLY_VIEWS,
    APPLICATION_ROLE_NAME,
    AUDIT_PARTITION_FUNCTION,
    REPOSITORY_STATS_FUNCTION,
    ROW_LEVEL_SECURITY_CITUS,
    ROW_LEVEL_SECURITY_V2,
    VISIBLE_REPOSITORY_STATS,
)
from . import sql as q

__all__ = ["is_citus", "distribute", "undistribute", "sync_repository_keys", "distributed_tables",
           "has_citus_policies"]


def is_citus(conn: Connection) -> bool:
    """Whether the database is a Citus coordinator (has the ``citus`` extension)."""
    return bool(conn.exec_driver_sql(q.CITUS_PRESENT_SQL).scalar())


def distributed_tables(conn: Connection) -> dict[str, str]:
    """{table: 'h' (hash-distributed) or 'n' (reference)} of the tables Citus manages (empty without Citus)."""
    if not is_citus(conn):
        return {}
    return {name: method for name, method in conn.exec_driver_sql(q.DISTRIBUTED_SQL).all()}


def _relkind(conn: Connection, name: str) -> str | None:
    return conn.execute(text("SELECT relkind::text FROM pg_class WHERE oid = to_regclass(:n)"), {"n": name}).scalar()


def _definition(conn: Connection, name: str) -> tuple[str, list[str]]:
    """(SELECT text, index DDL) of a materialized view or view, as PostgreSQL itself prints them."""
    select = conn.execute(text("SELECT pg_get_viewdef(to_regclass(:n))"), {"n": name}).scalar_one() or ""
    indexes = conn.execute(text("SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = to_regclass(:n) "
                                "ORDER BY indexrelid"), {"n": name}).scalars().all()
    return select.rstrip().rstrip(";"), list(indexes)


def _primary_key(conn: Connection, table: str) -> tuple[str, list[str]] | None:
    row = conn.execute(text("""
        SELECT c.conname::text, array_agg(a.attname::text ORDER BY k.ord)
        FROM pg_constraint c
        CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
        WHERE c.conrelid = to_regclass(:t) AND c.contype = 'p' GROUP BY c.conname"""), {"t": table}).first()
    return (row[0], list(row[1])) if row else None


def _unique_without(conn: Connection, table: str, column: str) -> list[str]:
    """Unique constraints of ``table`` that do not include ``column`` (Citus cannot enforce them across shards)."""
    return list(conn.execute(text("""
        SELECT c.conname::text FROM pg_constraint c
        WHERE c.conrelid = to_regclass(:t) AND c.contype = 'u'
          AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.conrelid AND a.attname = :c
                          AND a.attnum = ANY (c.conkey))"""), {"t": table, "c": column}).scalars())


def _ddl(conn: Connection, statement: str | sql.SQL | sql.Composed) -> None:
    """Run constant DDL as it is written (through the driver: no parameter markers are parsed)."""
    driver_connection(conn).execute(statement)


def has_citus_policies(conn: Connection) -> bool:
    """Whether the database runs the Citus variant of the policies (objects.ROW_LEVEL_SECURITY_CITUS)."""
    return bool(conn.exec_driver_sql("SELECT to_regprocedure('app_owned_repository_ids()') IS NOT NULL").scalar())


def _swap_policies(conn: Connection, *, to_citus: bool) -> None:
    """Replace the single-node policies (V2, and those of later tables: sql.EXTRA_POLICIES) with their Citus
    variants, or back."""
    extra = [p for p in q.EXTRA_POLICIES if _relkind(conn, p[0])]
    for table, policy, _, _ in extra:
        _ddl(conn, sql.SQL("DROP POLICY IF EXISTS {} ON {}").format(sql.Identifier(policy), sql.Identifier(table)))
    old, new = ((ROW_LEVEL_SECURITY_V2, ROW_LEVEL_SECURITY_CITUS) if to_citus
                else (ROW_LEVEL_SECURITY_CITUS, ROW_LEVEL_SECURITY_V2))
    _ddl(conn, old.drop)
    _ddl(conn, new.create)
    for _, _, single, citus_variant in extra:
        _ddl(conn, citus_variant if to_citus else single)


def _create_view(conn: Connection, name: str, select: str, indexes: list[str]) -> None:
    """A materialized view from its captured definition (pg_get_viewdef) and index DDL (pg_get_indexdef)."""
    _ddl(conn, sql.SQL("CREATE MATERIALIZED VIEW {} AS {}").format(sql.Identifier(name), sql.SQL(select)))
    for ddl in indexes:
        _ddl(conn, ddl)


def _restore_role_views(conn: Connection) -> None:
    """visible_repository_stats again, and the admin-only views (re-created) closed to the role, as 0004 left them."""
    _ddl(conn, VISIBLE_REPOSITORY_STATS.create)
    for name in ADMIN_ONLY_VIEWS:
        if _relkind(conn, name):
            _ddl(conn, sql.SQL("REVOKE ALL ON {} FROM {}").format(sql.Identifier(name),
                                                                 sql.Identifier(APPLICATION_ROLE_NAME)))


def _widen_keys(conn: Connection, table: str, column: str, actions: list[str]) -> None:
    """Put the distribution column into the primary key; refuse unique constraints that cannot hold it."""
    pk = _primary_key(conn, table)
    if pk is not None and column not in pk[1]:
        name, cols = pk
        _ddl(conn, sql.SQL("ALTER TABLE {t} DROP CONSTRAINT {n}, ADD CONSTRAINT {n} PRIMARY KEY ({c})").format(
            t=sql.Identifier(table), n=sql.Identifier(name),
            c=sql.SQL(", ").join(map(sql.Identifier, [*cols, column]))))
        actions.append(f"{table}: primary key ({', '.join(cols)}) -> ({', '.join([*cols, column])})")
    unique = _unique_without(conn, table, column)
    if table == "repositories":
        for name in unique:
            _ddl(conn, sql.SQL("ALTER TABLE repositories DROP CONSTRAINT {}").format(sql.Identifier(name)))
        if unique:
            actions.append(f"repositories: {', '.join(unique)} enforced through the reference table repository_keys")
    elif unique:
        raise ConfigurationError(f"cannot distribute {table} on {column}: unique constraints {', '.join(unique)} "
                                 f"do not include {column} (allowed: unique keys that include the distribution "
                                 "column; see docs/scale-out.md)")


def distribute(conn: Connection) -> list[str]:
    """Lay the schema out for Citus (see the module docstring); returns what was done, one line per step."""
    if not is_citus(conn):
        return []
    managed = distributed_tables(conn)
    rollups = [name for name, _ in q.ROLLUPS if _relkind(conn, name) == "m"]
    pending = [t for t in q.LAID_OUT_TABLES if t not in managed and (t == "repository_keys" or _relkind(conn, t))]
    if not pending and not rollups:
        _ddl(conn, q.AUDIT_PARTITION_FUNCTION_CITUS)
        _ddl(conn, q.REPOSITORY_STATS_FUNCTION_CITUS)
        return ["the schema is already laid out for Citus: nothing to do"]
    actions: list[str] = []
    # Only BEFORE UPDATE triggers that set NEW.updated_at exist: they touch no other row or table, which is what
    # makes a trigger safe on a shard. Several DDL steps on distributed tables in one transaction need sequential
    # shard DDL.
    _ddl(conn, "SET LOCAL citus.enable_unsafe_triggers = on")
    _ddl(conn, "SET LOCAL citus.multi_shard_modify_mode = 'sequential'")

    # 1. Views over the tables: dropped now, recreated over the distributed tables at the end.
    views = {name: _definition(conn, name) for name in (*rollups, *q.COORDINATOR_VIEWS)
             if _relkind(conn, name) == "m"}
    _ddl(conn, VISIBLE_REPOSITORY_STATS.drop)
    for name in reversed(views):  # a rollup computed from another first
        _ddl(conn, sql.SQL("DROP MATERIALIZED VIEW {}").format(sql.Identifier(name)))

    # 2. Policies without subqueries (Citus refuses to distribute a table with them), keys Citus can enforce,
    #    and the reference table that enforces the rest.
    if not has_citus_policies(conn):
        _swap_policies(conn, to_citus=True)
        actions.append("row-level security: policies compare with per-transaction settings (no subqueries)")
    for table, column in (*q.REPOSITORY_TABLES, *q.OTHER_DISTRIBUTED):
        if table in pending:
            _widen_keys(conn, table, column, actions)
    if "repository_keys" in pending:
        _ddl(conn, q.KEYS_TABLE_SQL)
        _ddl(conn, "INSERT INTO repository_keys SELECT id, github_id, full_name FROM repositories")

    # 3. Reference tables first (distributed tables' foreign keys point at them), then the co-located group; the
    #    foreign keys between the group's tables are dropped while it is built (a local table cannot reference a
    #    distributed one) and put back, identical, once every table is distributed.
    group = [t for t, _ in q.REPOSITORY_TABLES if t in pending]
    fkeys = conn.execute(text("""
        SELECT conrelid::regclass::text, conname::text, pg_get_constraintdef(oid) FROM pg_constraint
        WHERE contype = 'f' AND confrelid::regclass::text = ANY (:g)"""), {"g": group}).all()
    for table, name, _ in fkeys:
        _ddl(conn, sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(sql.Identifier(table),
                                                                      sql.Identifier(name)))
    for table in q.REFERENCE_TABLES:
        if table in pending:
            conn.execute(text("SELECT create_reference_table(:t)"), {"t": table})
            actions.append(f"{table}: reference table (a copy on every node)")
    for table, column in q.REPOSITORY_TABLES:
        if table in pending:
            colocate = "default" if table == "repositories" else "repositories"
            conn.execute(text("SELECT create_distributed_table(:t, :c, colocate_with => :w)"),
                         {"t": table, "c": column, "w": colocate})
            actions.append(f"{table}: distributed on {column}, co-located with repositories")
    for table, column in q.OTHER_DISTRIBUTED:
        if table in pending:
            conn.execute(text("SELECT create_distributed_table(:t, :c)"), {"t": table, "c": column})
            actions.append(f"{table}: distributed on {column} (monthly partitions distributed with it)")
    for table, name, definition in fkeys:
        _ddl(conn, sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(  # definition: pg_get_constraintdef
            sql.Identifier(table), sql.Identifier(name), sql.SQL(definition)))
    if "repository_keys" in pending:
        _ddl(conn, q.KEYS_FK_SQL)

    # 4. Per-repository rollups as co-located distributed tables; small aggregates stay on the coordinator.
    for name, column in q.ROLLUPS:
        if name not in views:
            continue
        select, indexes = views[name]
        source, target = sql.Identifier(f"{name}_source"), sql.Identifier(name)
        _ddl(conn, sql.SQL("CREATE VIEW {} AS {}").format(source, sql.SQL(select)))  # select: pg_get_viewdef
        _ddl(conn, sql.SQL("CREATE TABLE {} AS SELECT * FROM {} WITH NO DATA").format(target, source))
        conn.execute(text("SELECT create_distributed_table(:t, :c, colocate_with => 'repositories')"),
                     {"t": name, "c": column})
        for ddl in indexes:
            _ddl(conn, ddl)
        _ddl(conn, sql.SQL("INSERT INTO {} SELECT * FROM {}").format(target, source))
        actions.append(f"{name}: rollup table distributed on {column}, refreshed from the view {name}_source")
    for name in q.COORDINATOR_VIEWS:
        if name in views:
            _create_view(conn, name, *views[name])
    _restore_role_views(conn)

    # 5. One repository's statistics run on the worker holding its shard; the RLS role must be able to log in
    #    there (Citus runs shard queries as the current role).
    _ddl(conn, q.REPOSITORY_STATS_FUNCTION_CITUS)
    _ddl(conn, "SELECT create_distributed_function('get_repository_stats(uuid)', '$1', "
                         "colocate_with => 'repositories')")
    _ddl(conn, q.AUDIT_PARTITION_FUNCTION_CITUS)
    for function in q.POLICY_FUNCTIONS:
        conn.execute(text("SELECT create_distributed_function(:f)"), {"f": function})
    _ddl(conn, sql.SQL("ALTER ROLE {} LOGIN").format(sql.Identifier(APPLICATION_ROLE_NAME)))
    actions.append("get_repository_stats(uuid): delegated to the shard of its repository")
    return actions


def undistribute(conn: Connection) -> list[str]:
    """Turn every Citus-managed table back into a local table and restore the single-node keys and views."""
    managed = distributed_tables(conn)
    if not managed:
        return []
    actions: list[str] = []
    _ddl(conn, "SET LOCAL citus.multi_shard_modify_mode = 'sequential'")
    _ddl(conn, VISIBLE_REPOSITORY_STATS.drop)
    rollups = {name: (_definition(conn, f"{name}_source")[0], _definition(conn, name)[1])
               for name, _ in q.ROLLUPS if name in managed}
    for name in reversed(rollups):  # a rollup computed from another first
        _ddl(conn, sql.SQL("DROP VIEW {}").format(sql.Identifier(f"{name}_source")))
        _ddl(conn, sql.SQL("DROP TABLE {}").format(sql.Identifier(name)))
    _ddl(conn, q.KEYS_DROP_SQL)
    for table in q.LAID_OUT_TABLES:
        if table not in distributed_tables(conn) or table == "repository_keys":
            continue
        if conn.execute(text("SELECT to_regclass(:t) IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pg_inherits "
                             "WHERE inhrelid = to_regclass(:t))"), {"t": table}).scalar():
            conn.execute(text("SELECT undistribute_table(:t, cascade_via_foreign_keys => true)"), {"t": table})
            actions.append(f"{table}: local table again")
    _ddl(conn, "ALTER TABLE repositories ADD CONSTRAINT repositories_github_id_key UNIQUE (github_id), "
                         "ADD CONSTRAINT repositories_full_name_key UNIQUE (full_name)")
    for table in ("insights", "analysis_jobs"):
        _ddl(conn, sql.SQL("ALTER TABLE {t} DROP CONSTRAINT {k}, ADD CONSTRAINT {k} PRIMARY KEY (id)").format(
            t=sql.Identifier(table), k=sql.Identifier(f"{table}_pkey")))
    _ddl(conn, AUDIT_PARTITION_FUNCTION.create)
    _ddl(conn, REPOSITORY_STATS_FUNCTION.create)
    if has_citus_policies(conn):
        _swap_policies(conn, to_citus=False)
    for name, (select, indexes) in rollups.items():
        _create_view(conn, name, select, indexes)
    _restore_role_views(conn)
    return actions


def sync_repository_keys(conn: Connection) -> None:
    """On Citus, record the keys of new and renamed repositories and forget those of deleted ones (no-op
    elsewhere). Writers of ``repositories`` call it in their transaction; a duplicate name fails it."""
    if _relkind(conn, "repository_keys") is None:
        return
    conn.exec_driver_sql(q.PRUNE_KEYS_SQL)
    conn.exec_driver_sql(q.SYNC_KEYS_SQL)
