"""Repository statistics: the repository_stats materialized view, get_repository_stats(), refresh, data dates."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
from sqlalchemy import text
from sqlalchemy.engine import Connection

from ..exceptions import ValidationError
from ..maintenance import refresh as maintenance
from ..validation import check_choice, check_limit, check_text, quote_ident, resolve_language
from .frame import Bind, connection, read_frame, stats_relation, view_refreshed_at
from .options import STATS_SORT

__all__ = [
    "repository_stats",
    "get_repository_stats",
    "refresh_stats",
    "data_as_of",
    "resolve_repository",
    "STATS_COLUMNS",
    "STATS_SORT",
]

STATS_COLUMNS = {
    "full_name": "str", "language": "str", "stars": "int", "forks": "int", "analysis_status": "str",
    "total_insights": "int", "avg_confidence": "float", "latest_insight": "ts", "follower_count": "int",
    "insights_by_type": "obj", "total_jobs": "int", "failed_jobs": "int", "latest_job_status": "str",
}


def resolve_repository(conn: Connection, full_name: Any, name: str = "full_name") -> tuple[Any, str]:
    """(id, full_name) of a repository named ``full_name`` (exact, else case-insensitive as GitHub does)."""
    value = check_text(full_name, name)
    if value is None:
        raise ValidationError(name, "is empty", "owner/name of a repository in the database")
    row = conn.execute(text("SELECT id, full_name FROM repositories WHERE full_name = :f"), {"f": value}).first()
    if row is None:
        rows = conn.execute(
            text("SELECT id, full_name FROM repositories WHERE lower(full_name) = lower(:f) LIMIT 2"), {"f": value}
        ).fetchall()
        if len(rows) != 1:
            raise ValidationError(name, f"no repository named {value!r}", "owner/name of a repository in the database")
        row = rows[0]
    return row[0], row[1]


def repository_stats(
    bind: Bind,
    *,
    full_name: str | None = None,
    language: str | None = None,
    sort: str = "stars",
    limit: int = 50,
) -> pd.DataFrame:
    """Rows of the ``repository_stats`` materialized view (counts, average confidence, latest insight,
    followers, per-type breakdown, jobs), one repository or the top ``limit`` by ``sort``. Under row-level
    security (``security.as_user``) only the rows of repositories the user can see (``visible_repository_stats``).

    ``df.attrs["view_refreshed_at"]`` says when the view was last refreshed (``gitinsight refresh``).
    """
    sort = check_choice(sort, "sort", STATS_SORT)
    limit = check_limit(limit)
    with connection(bind) as conn:
        params: dict[str, Any] = {"limit": limit}
        where = "TRUE"
        if full_name is not None:
            repo_id, params["full_name"] = resolve_repository(conn, full_name)
            params["id"] = repo_id
            where = "s.id = :id"
        language = resolve_language(conn, language)
        if language is not None:
            where += " AND s.language = :language"
            params["language"] = language
        column = quote_ident(conn, STATS_SORT[sort])
        relation = stats_relation(conn)
        direction = "ASC" if sort == "full_name" else "DESC"
        sql = f"""
            SELECT s.full_name, s.language, COALESCE(s.stars, 0) AS stars, COALESCE(s.forks, 0) AS forks,
                   s.analysis_status, s.total_insights, s.avg_confidence, s.latest_insight, s.follower_count,
                   s.insights_by_type, s.total_jobs, s.failed_jobs, s.latest_job_status
            FROM {relation} s
            WHERE {where}
            ORDER BY s.{column} {direction} NULLS LAST, s.id
            LIMIT :limit
        """  # noqa: S608 - whitelisted, quoted identifier and relation name; values are bound
        frame = read_frame(conn, sql, params, STATS_COLUMNS)
        refreshed = view_refreshed_at(conn)
        if full_name is not None and frame.empty:
            raise ValidationError(
                "full_name",
                f"{params['full_name']!r} is not in repository_stats yet (view refreshed {refreshed})",
                "a repository present at the last `gitinsight refresh`",
            )
    frame.attrs["view_refreshed_at"] = refreshed
    return frame


def get_repository_stats(bind: Bind, *, full_name: str) -> pd.DataFrame:
    """Live statistics of one repository through the SQL function ``get_repository_stats(id)``:
    full_name, total_insights, avg_confidence, latest_analysis, insight_types (list of str)."""
    check_text(full_name, "full_name")
    # The id first, then the function alone: on Citus a call with a constant id is delegated to the worker that
    # holds the repository's shard (a LATERAL call per row of a distributed table cannot be planned there).
    sql = """
        SELECT CAST(:full_name AS text) AS full_name, s.total_insights, s.avg_confidence::float8 AS avg_confidence,
               s.latest_analysis, s.insight_types
        FROM get_repository_stats(CAST(:id AS uuid)) s
    """
    kinds = {"full_name": "str", "total_insights": "int", "avg_confidence": "float", "latest_analysis": "ts",
             "insight_types": "obj"}
    with connection(bind) as conn:
        repository_id, name = resolve_repository(conn, full_name)
        frame = read_frame(conn, sql, {"full_name": name, "id": str(repository_id)}, kinds)
    frame["insight_types"] = frame["insight_types"].map(lambda v: list(v or []))
    return frame


def refresh_stats(bind: Bind, *, concurrently: bool | None = None) -> maintenance.RefreshResult:
    """Refresh the analysis views (repository_stats and the insight aggregates): CONCURRENTLY when populated."""
    if concurrently is not None and not isinstance(concurrently, bool):
        raise ValidationError("concurrently", f"{concurrently!r} is not a boolean", "True, False or None (auto)")
    engine = bind.engine if isinstance(bind, Connection) else bind
    return maintenance.refresh_repository_stats(engine, concurrently=concurrently)


def data_as_of(bind: Bind) -> dict[str, dt.date | dt.datetime | None]:
    """The dates the data reaches (never the clock): ``insights`` (UTC date of the newest generated_at),
    ``snapshots`` (newest snapshot_date), ``jobs`` (UTC date of the newest job), ``view_refreshed_at``."""
    with connection(bind) as conn:
        row = conn.execute(
            text(
                """
                SELECT (SELECT (max(generated_at) AT TIME ZONE 'UTC')::date FROM insights),
                       (SELECT max(snapshot_date) FROM repository_snapshots),
                       (SELECT (max(created_at) AT TIME ZONE 'UTC')::date FROM analysis_jobs)
                """
            )
        ).one()
        refreshed = view_refreshed_at(conn)
    return {"insights": row[0], "snapshots": row[1], "jobs": row[2], "view_refreshed_at": refreshed}
