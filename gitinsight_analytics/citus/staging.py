"""The GitHub ranking import on Citus: the tables it reads and writes, staged on the coordinator.

The import resolves renames with statements that join its temporary tables (the CSV rows, the key map) with
repositories, users and the star history, update temporary tables from them, and correlate subqueries: Citus
plans none of that across a temporary table and distributed shards. So on Citus the import first copies those
tables into temporary tables of the same names (PostgreSQL looks up temporary tables first, so the import's
statements run unchanged on the copies, on the coordinator), then writes what changed back into the distributed
tables with INSERT ... ON CONFLICT (rows that did not change are not touched), all in the import's transaction.
This costs a copy of the repositories and their star history per import: right for the ranking data (tens of
thousands of repositories), and the price of one code path for the rename rules.
"""

from __future__ import annotations

from psycopg import sql
from sqlalchemy.engine import Connection

from ..db import driver_connection
from .layout import is_citus, sync_repository_keys

__all__ = ["STAGED_TABLES", "stage", "write_back"]

#: Read or written by the import; copied in this order, written back in it too (users before repositories).
STAGED_TABLES = ("users", "repositories", "repository_snapshots", "github_ranking_files")

_WRITE_BACK = {
    "users": ("id", ["username"]),
    "repositories": ("id", ["name", "full_name", "description", "url", "clone_url", "language", "stars", "forks",
                            "owner_id"]),
    "repository_snapshots": ("repository_id, snapshot_date", ["full_name", "stars", "forks", "open_issues",
                                                              "best_rank", "lists", "last_commit"]),
    "github_ranking_files": ("snapshot_date", ["file_name", "sha256", "rows", "imported_at"]),
}


def stage(conn: Connection) -> bool:
    """On Citus, copy STAGED_TABLES into temporary tables of the same names (dropped at commit); True if done."""
    if not is_citus(conn):
        return False
    raw = driver_connection(conn)
    # Reference tables are written in this transaction after reads of the shards: one connection per worker.
    raw.execute("SET LOCAL citus.multi_shard_modify_mode TO 'sequential'")
    for table in STAGED_TABLES:
        name = sql.Identifier(table)
        raw.execute(sql.SQL("CREATE TEMP TABLE {} (LIKE public.{} INCLUDING DEFAULTS INCLUDING INDEXES) "
                            "ON COMMIT DROP").format(name, name))
        raw.execute(sql.SQL("INSERT INTO pg_temp.{} SELECT * FROM public.{}").format(name, name))
        raw.execute(sql.SQL("ANALYZE pg_temp.{}").format(name))
    return True


def write_back(conn: Connection) -> None:
    """Write the staged copies' new and changed rows into the distributed tables, drop the copies, and record the
    repositories' keys (a duplicate full_name or github_id fails the import here)."""
    raw = driver_connection(conn)
    for table in STAGED_TABLES:
        key, columns = _WRITE_BACK[table]
        name = sql.Identifier(table)
        cols = sql.SQL(", ").join(map(sql.Identifier, columns))
        excluded = sql.SQL(", ").join(sql.SQL("EXCLUDED.{}").format(sql.Identifier(c)) for c in columns)
        current = sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(c)) for c in columns)
        raw.execute(sql.SQL(
            "INSERT INTO public.{name} AS t SELECT * FROM pg_temp.{name} ON CONFLICT ({key}) DO UPDATE "
            "SET ({cols}) = ROW({excluded}) WHERE ({current}) IS DISTINCT FROM ({excluded})"
        ).format(name=name, key=sql.SQL(key), cols=cols, excluded=excluded, current=current))
    for table in STAGED_TABLES:
        raw.execute(sql.SQL("DROP TABLE pg_temp.{}").format(sql.Identifier(table)))
    sync_repository_keys(conn)
