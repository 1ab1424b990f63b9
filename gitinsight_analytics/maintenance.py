"""Operations: refreshing the materialized views and audit-log partitions."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from .exceptions import ValidationError

__all__ = [
    "RefreshResult",
    "refresh_repository_stats",
    "view_refreshed_at",
    "ensure_audit_partitions",
    "audit_partitions",
]


#: work_mem of the session refreshing the materialized views (reset afterwards: the connection is pooled).
REFRESH_WORK_MEM = "256MB"


@dataclass(frozen=True)
class RefreshResult:
    concurrently: bool
    seconds: float
    refreshed_at: dt.datetime
    #: Every view refreshed, with its seconds (repository_stats first, then the insight aggregates of 0003).
    views: tuple[tuple[str, float], ...] = ()


def _is_populated(conn: Connection, view: str = "repository_stats") -> bool:
    return bool(
        conn.execute(text("SELECT relispopulated FROM pg_class WHERE oid = to_regclass(:v)"), {"v": view}).scalar()
    )


def refresh_repository_stats(engine: Engine, *, concurrently: bool | None = None) -> RefreshResult:
    """REFRESH MATERIALIZED VIEW repository_stats and the other analysis views (objects.ANALYSIS_VIEWS that
    exist): CONCURRENTLY (readers not blocked) when ``concurrently`` is None and the view is populated."""
    from .objects import ANALYSIS_REFRESH_MARKER, ANALYSIS_VIEWS

    started = time.perf_counter()
    timings = []
    with engine.connect() as conn:
        present = [v for v in ANALYSIS_VIEWS
                   if conn.execute(text("SELECT to_regclass(:v) IS NOT NULL"), {"v": v}).scalar()]
        # The one-row refresh marker has no unique index: always a plain (instant) refresh.
        modes = {v: v != ANALYSIS_REFRESH_MARKER.name
                 and (_is_populated(conn, v) if concurrently is None else concurrently) for v in present}
        conn.commit()
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        # Aggregating a million insights sorts/hashes more than the default work_mem holds: spill-free here.
        conn.execute(text(f"SET work_mem = '{REFRESH_WORK_MEM}'"))
        try:
            for view in present:  # names from a constant tuple, never from input
                view_started = time.perf_counter()
                keyword = " CONCURRENTLY" if modes[view] else ""
                conn.execute(text(f"REFRESH MATERIALIZED VIEW{keyword} {view}"))
                conn.execute(text(f"ANALYZE {view}"))
                timings.append((view, time.perf_counter() - view_started))
        finally:
            conn.execute(text("RESET work_mem"))
        refreshed = view_refreshed_at(conn)
    return RefreshResult(bool(modes.get("repository_stats")), time.perf_counter() - started, refreshed,
                         tuple(timings))


def view_refreshed_at(conn: Connection) -> dt.datetime | None:
    """When the analysis views were last refreshed by :func:`refresh_repository_stats` (None: never with data).

    From migration 0003 on, the one-row view ``analysis_views_refreshed`` holds it; before, every row of
    repository_stats carried it.
    """
    if conn.execute(text("SELECT to_regclass('analysis_views_refreshed') IS NOT NULL")).scalar():
        return conn.execute(text("SELECT refreshed_at FROM analysis_views_refreshed")).scalar()
    return conn.execute(text("SELECT refreshed_at FROM repository_stats LIMIT 1")).scalar()


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
