"""Backups of a Citus cluster: its rows copied through the coordinator into a plain database, then dumped.

``pg_dump`` of a coordinator holds the distributed tables' definitions but none of their rows (those live in the
shards on the workers): a backup made that way would restore empty tables. So :func:`plain_copy` makes a scratch
database on the coordinator's server (without Citus), migrates it to the cluster's revision, and copies every table
into it with ``COPY (SELECT ...)`` through the coordinator while the cluster's tables are locked against writes
(SHARE locks, taken through the coordinator: one consistent cut, reads go on). The caller dumps that database with
the ordinary single-node backup code; the set restores into a single node, or into a cluster's coordinator where
``db upgrade`` distributes it again. Needs room for one more copy of the data on the coordinator's disk: a
cluster larger than that is backed up per node with ``citus_create_restore_point`` (docs/scale-out.md).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import psycopg
from psycopg import sql
from sqlalchemy.engine import Engine, make_url

from .. import migrate
from ..db import driver_connection, libpq_url, make_engine
from ..settings import PoolSettings
from .layout import sync_repository_keys
from .sql import REFERENCE_TABLES, ROLLUPS

__all__ = ["DERIVED_TABLES", "plain_copy", "scratch_database", "copy_into_cluster"]

#: Derived tables, rebuilt on the copy by the refresh and the key sync: not copied.
DERIVED_TABLES = {"repository_keys", *(name for name, _ in ROLLUPS)}


def _tables(conn: psycopg.Connection) -> list[str]:
    """Base tables of the public schema holding data, parents before children (foreign keys), no partitions."""
    rows = conn.execute("""
        SELECT c.relname::text FROM pg_class c
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
          AND c.relname <> 'alembic_version'""").fetchall()
    names = [r[0] for r in rows if r[0] not in DERIVED_TABLES]
    order = [t for t in REFERENCE_TABLES if t in names] + ["repositories"]
    return order + sorted(t for t in names if t not in order)


def _months(conn: psycopg.Connection) -> list[str]:
    return [r[0] for r in conn.execute("""
        SELECT substring(pg_get_expr(c.relpartbound, c.oid) FROM 'FROM \\(''([^'']+)''\\)')
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = to_regclass('audit_logs') AND pg_get_expr(c.relpartbound, c.oid) <> 'DEFAULT'""")]


@contextlib.contextmanager
def scratch_database(url: str) -> Iterator[str]:
    """A new empty database on ``url``'s server (no Citus in it), dropped afterwards; yields its URL."""
    name = f"gitinsight_scratch_{os.getpid()}"
    admin = libpq_url(make_url(url).set(database="postgres").render_as_string(hide_password=False))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _copy_tables(src: psycopg.Connection, dst: psycopg.Connection, tables: list[str]) -> None:
    for month in _months(src):
        dst.execute("SELECT create_audit_log_partition(%s::timestamptz::date)", (month,))
    for table in tables:
        columns = [r[0] for r in src.execute(
            "SELECT attname::text FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
            "AND NOT attisdropped ORDER BY attnum", (table,))]
        cols = sql.SQL(", ").join(map(sql.Identifier, columns))
        ident = sql.Identifier(table)
        with src.cursor().copy(sql.SQL("COPY (SELECT {} FROM {}) TO STDOUT (FORMAT binary)").format(
                cols, ident)) as out, dst.cursor().copy(
                sql.SQL("COPY {} ({}) FROM STDIN (FORMAT binary)").format(ident, cols)) as into:
            for block in out:
                into.write(block)


@contextlib.contextmanager
def plain_copy(engine: Engine) -> Iterator[Engine]:
    """A scratch plain-PostgreSQL database holding every row of the cluster's database, dropped afterwards."""
    source = libpq_url(engine.url.render_as_string(hide_password=False))
    with scratch_database(engine.url.render_as_string(hide_password=False)) as target_url:
        target = make_engine(target_url, pool=PoolSettings(size=1, max_overflow=1))
        try:
            migrate.upgrade(target, migrate.current_revision(engine) or "base")
            with psycopg.connect(source) as src, psycopg.connect(libpq_url(target_url)) as dst:
                tables = _tables(src)
                src.execute(sql.SQL("LOCK TABLE {} IN SHARE MODE").format(
                    sql.SQL(", ").join(map(sql.Identifier, tables))))
                _copy_tables(src, dst, tables)
                src.rollback()  # releases the locks: the copy is complete in dst's transaction
                dst.commit()
            from ..maintenance.refresh import refresh_repository_stats

            refresh_repository_stats(target)
            yield target
        finally:
            target.dispose()


def copy_into_cluster(plain_url: str, cluster_url: str) -> None:
    """Copy every row of a plain database into an empty cluster database at the same revision, laid out for
    Citus, in one transaction (restoring a backup set into a cluster: see backup.restore)."""
    from ..maintenance.refresh import refresh_repository_stats

    plain = make_engine(plain_url, pool=PoolSettings(size=1, max_overflow=1))
    target = make_engine(cluster_url, pool=PoolSettings(size=2, max_overflow=1))
    try:
        migrate.upgrade(target, migrate.current_revision(plain) or "base")
        with target.begin() as conn, psycopg.connect(libpq_url(plain_url)) as src:
            dst = driver_connection(conn)
            dst.execute("SET LOCAL citus.multi_shard_modify_mode TO 'sequential'")
            tables = _tables(src)
            dst.execute(sql.SQL("TRUNCATE {} CASCADE").format(sql.SQL(", ").join(map(sql.Identifier, tables))))
            _copy_tables(src, dst, tables)
            sync_repository_keys(conn)
        refresh_repository_stats(target)
    finally:
        plain.dispose()
        target.dispose()
