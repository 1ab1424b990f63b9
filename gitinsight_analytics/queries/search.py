"""Repository search (the spec's "Repository Search with Filters"), with safe text matching and sorting."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import text as sql_text
from sqlalchemy.engine import Connection

from ..validation import (
    check_choice,
    check_int,
    check_limit,
    check_offset,
    check_text,
    escape_like,
    quote_ident,
    resolve_language,
)
from .frame import Bind, connection, to_frame

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["search_repositories", "search_rows", "search_statement", "SORT_COLUMNS", "SEARCH_COLUMNS"]

#: sort option -> (column, direction); the ORDER BY always ends with the unique id so pages are stable.
SORT_COLUMNS: dict[str, tuple[str, str]] = {
    "stars": ("stars", "DESC"),
    "forks": ("forks", "DESC"),
    "watchers": ("watchers", "DESC"),
    "updated": ("updated_at", "DESC"),
    "created": ("created_at", "DESC"),
    "last_analyzed": ("last_analyzed", "DESC"),
    "name": ("name", "ASC"),
    "full_name": ("full_name", "ASC"),
}

SEARCH_COLUMNS = {
    "full_name": "str", "name": "str", "owner_username": "str", "description": "str", "language": "str",
    "stars": "int", "forks": "int", "watchers": "int", "analysis_status": "str", "last_analyzed": "ts",
    "url": "str", "created_at": "ts", "updated_at": "ts",
}


def search_statement(
    conn: Connection,
    *,
    text: str | None = None,
    language: str | None = None,
    min_stars: int | None = None,
    sort: str = "stars",
    limit: int = 20,
    offset: int = 0,
) -> tuple[str, dict[str, Any]]:
    """The validated SQL and bound parameters of :func:`search_repositories` (also used by the benchmark)."""
    text_ = check_text(text, "text")
    if min_stars is not None:
        min_stars = check_int(min_stars, "min_stars", 0, 2_147_483_647)
    sort = check_choice(sort, "sort", SORT_COLUMNS)
    limit = check_limit(limit)
    offset = check_offset(offset)
    language = resolve_language(conn, language)
    column, direction = SORT_COLUMNS[sort]
    order = f"r.{quote_ident(conn, column)} {direction} NULLS LAST"
    if column != "updated_at":
        order += ", r.updated_at DESC NULLS LAST"
    where = ["TRUE"]
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    if text_ is not None:
        where.append(r"(r.name ILIKE :pattern ESCAPE '\' OR r.description ILIKE :pattern ESCAPE '\')")
        params["pattern"] = f"%{escape_like(text_)}%"
    if language is not None:
        where.append("r.language = :language")
        params["language"] = language
    if min_stars is not None:
        where.append("r.stars >= :min_stars")
        params["min_stars"] = min_stars
    sql = f"""
        SELECT r.full_name, r.name, u.username AS owner_username, r.description, r.language,
               COALESCE(r.stars, 0) AS stars, COALESCE(r.forks, 0) AS forks,
               COALESCE(r.watchers, 0) AS watchers, r.analysis_status, r.last_analyzed, r.url,
               r.created_at, r.updated_at
        FROM repositories r
        JOIN users u ON u.id = r.owner_id
        WHERE {' AND '.join(where)}
        ORDER BY {order}, r.id
        LIMIT :limit OFFSET :offset
    """  # noqa: S608 - only whitelisted, quoted identifiers are formatted in; values are bound
    return sql, params


def search_rows(
    bind: Bind,
    *,
    text: str | None = None,
    language: str | None = None,
    min_stars: int | None = None,
    sort: str = "stars",
    limit: int = 20,
    offset: int = 0,
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """:func:`search_repositories` as column names and plain rows, without pandas (``gitinsight query search
    --format csv`` prints them straight away; the same parameters and validation)."""
    with connection(bind) as conn:
        sql, params = search_statement(conn, text=text, language=language, min_stars=min_stars, sort=sort,
                                       limit=limit, offset=offset)
        result = conn.execute(sql_text(sql), params)
        return list(result.keys()), [tuple(row) for row in result.fetchall()]


def search_repositories(
    bind: Bind,
    *,
    text: str | None = None,
    language: str | None = None,
    min_stars: int | None = None,
    sort: str = "stars",
    limit: int = 20,
    offset: int = 0,
) -> pd.DataFrame:
    """Repositories whose name or description contains ``text`` (case-insensitive, literally: ``%`` and ``_``
    are not wildcards), optionally of one ``language`` and with at least ``min_stars``; sorted by ``sort``
    (one of :data:`SORT_COLUMNS`), ``limit``/``offset`` paginated. Ties are broken by ``updated_at`` then id.
    """
    columns, rows = search_rows(bind, text=text, language=language, min_stars=min_stars, sort=sort, limit=limit,
                                offset=offset)
    frame = to_frame(rows, columns, SEARCH_COLUMNS)
    frame.attrs.update({"sort": check_choice(sort, "sort", SORT_COLUMNS), "limit": check_limit(limit),
                        "offset": check_offset(offset)})
    return frame
