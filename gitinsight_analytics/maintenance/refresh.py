"""Refreshing the materialized views (audit-log partitions: :mod:`gitinsight_analytics.maintenance.partitions`)."""

from __future__ import annotations

import datetime as dt
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from psycopg import sql
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from ..db import driver_connection
from ..exceptions import ValidationError

__all__ = [
    "RefreshResult",
    "refresh_repository_stats",
    "view_refreshed_at",
]


#: work_mem of the session refreshing the materialized views (reset afterwards: the connection is pooled).
REFRESH_WORK_MEM = "256MB"
#: Sessions refreshing the analysis views side by side (the machine this is sized for has 2 cores).
REFRESH_WORKERS = 2
#: The views in the order they are handed to the sessions: longest first (measured at medium scale: tag stats
#: 4.2 s, repository_stats 3.8 s, daily confidence 1.9 s, histogram 0.6 s), so that the sessions end together.
REFRESH_COST_ORDER = ("insight_tag_stats", "repository_stats", "insight_confidence_daily", "insight_confidence_hist")


@dataclass(frozen=True)
class RefreshResult:
    concurrently: bool
    seconds: float
    refreshed_at: dt.datetime | None  # None only where the marker of refreshes is missing
    #: Every view refreshed, with its seconds (repository_stats first, then the insight aggregates of 0003).
    views: tuple[tuple[str, float], ...] = ()


def _is_populated(conn: Connection, view: str = "repository_stats") -> bool:
    return bool(
        conn.execute(text("SELECT relispopulated FROM pg_class WHERE oid = to_regclass(:v)"), {"v": view}).scalar()
    )


def _is_rollup(engine: Engine, view: str) -> bool:
    """Whether ``view`` is a rollup table (on Citus, see citus.sql.ROLLUPS) rather than a materialized view."""
    with engine.connect() as conn:
        return conn.execute(text("SELECT relkind = 'r' FROM pg_class WHERE oid = to_regclass(:v)"),
                            {"v": view}).scalar() is True


def _refresh_rollup(engine: Engine, views: tuple[str, ...]) -> None:
    """Replace rollup tables' rows with their source views' in one transaction (a rollup, then those computed from
    it): readers see the old rows until the commit, as with REFRESH ... CONCURRENTLY; on Citus both statements run
    shard by shard on the workers."""
    with engine.begin() as conn:
        raw = driver_connection(conn)
        raw.execute(sql.SQL("SET LOCAL work_mem = {}").format(sql.Literal(REFRESH_WORK_MEM)))
        for view in views:
            table, source = sql.Identifier(view), sql.Identifier(f"{view}_source")
            raw.execute(sql.SQL("DELETE FROM {}").format(table))
            raw.execute(sql.SQL("INSERT INTO {} SELECT * FROM {}").format(table, source))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for view in views:
            driver_connection(conn).execute(sql.SQL("ANALYZE {}").format(sql.Identifier(view)))


def _refresh_one(engine: Engine, view: str, modes: dict[str, bool],
                 dependents: tuple[str, ...] = ()) -> list[tuple[str, float]]:
    """Refresh ``view`` and the views computed from it (objects.DEPENDENT_VIEWS) in one transaction; the seconds
    of each (the dependents' include nothing of the view's)."""
    views = (view, *dependents)
    started = time.perf_counter()
    if _is_rollup(engine, view):
        _refresh_rollup(engine, views)
        return [(view, time.perf_counter() - started), *((d, 0.0) for d in dependents)]
    seconds = dict.fromkeys(views, 0.0)
    with engine.begin() as conn:
        # Aggregating a million insights sorts/hashes more than the default work_mem holds: spill-free here.
        conn.execute(text(f"SET LOCAL work_mem = '{REFRESH_WORK_MEM}'"))
        for name in views:  # names from a constant tuple, never from input
            keyword = " CONCURRENTLY" if modes[name] else ""
            started = time.perf_counter()
            conn.execute(text(f"REFRESH MATERIALIZED VIEW{keyword} {name}"))
            seconds[name] += time.perf_counter() - started
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for name in views:
            started = time.perf_counter()
            conn.execute(text(f"ANALYZE {name}"))
            seconds[name] += time.perf_counter() - started
    return list(seconds.items())


def refresh_repository_stats(engine: Engine, *, concurrently: bool | None = None,
                             workers: int = REFRESH_WORKERS) -> RefreshResult:
    """REFRESH MATERIALIZED VIEW repository_stats and the other analysis views (objects.ANALYSIS_VIEWS that
    exist): CONCURRENTLY (readers not blocked) when ``concurrently`` is None and the view is populated.

    The views read only tables, except those of objects.DEPENDENT_VIEWS (refreshed after the view they read, in
    its transaction), so ``workers`` sessions refresh them side by side; the refresh marker goes last, only once
    every view succeeded.
    """
    from ..objects import ANALYSIS_REFRESH_MARKER, ANALYSIS_VIEWS, DEPENDENT_VIEWS

    if not 1 <= workers <= 16:
        raise ValidationError("workers", f"{workers} is out of range", "1..16")
    started = time.perf_counter()
    with engine.connect() as conn:
        present = [v for v in ANALYSIS_VIEWS
                   if conn.execute(text("SELECT to_regclass(:v) IS NOT NULL"), {"v": v}).scalar()]
        # The one-row refresh marker has no unique index: always a plain (instant) refresh.
        modes = {v: v != ANALYSIS_REFRESH_MARKER.name
                 and (_is_populated(conn, v) if concurrently is None else concurrently) for v in present}
    dependents = {v: tuple(d for d in DEPENDENT_VIEWS.get(v, ()) if d in present) for v in present}
    computed = {d for ds in dependents.values() for d in ds}
    views = [v for v in present if v != ANALYSIS_REFRESH_MARKER.name and v not in computed]
    heaviest_first = sorted(views, key=lambda v: REFRESH_COST_ORDER.index(v) if v in REFRESH_COST_ORDER else 99)
    with ThreadPoolExecutor(max_workers=min(workers, max(len(views), 1))) as pool:
        futures = {view: pool.submit(_refresh_one, engine, view, modes, dependents[view]) for view in heaviest_first}
    timings = [t for view in views for t in futures[view].result()]  # re-raises the first failure
    if ANALYSIS_REFRESH_MARKER.name in present:
        timings += _refresh_one(engine, ANALYSIS_REFRESH_MARKER.name, modes)
    with engine.connect() as conn:
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
