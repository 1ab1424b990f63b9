"""Repository search (the spec's "Repository Search with Filters"), with safe text matching and sorting.

The statement is built once and runs on a SQLAlchemy connection (the DataFrame of :func:`search_repositories`) or on
a plain driver one: libpq's (``gitinsight query search --format csv``, which imports neither psycopg, SQLAlchemy nor
pandas: see :func:`search_rows`) or psycopg's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..statements import fetch, is_driver_connection
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

if TYPE_CHECKING:
    import pandas as pd
    import psycopg

    from ..libpq import Connection as LibpqConnection
    from ..statements import AnyConnection
    from .frame import Bind

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


_SELECT = """
    SELECT r.full_name, r.name, u.username AS owner_username, r.description, r.language,
           COALESCE(r.stars, 0) AS stars, COALESCE(r.forks, 0) AS forks,
           COALESCE(r.watchers, 0) AS watchers, r.analysis_status, r.last_analyzed, r.url,
           r.created_at, r.updated_at
    FROM repositories r
    JOIN users u ON u.id = r.owner_id
    WHERE {where}
    ORDER BY {order}, r.id
    LIMIT %(limit)s OFFSET %(offset)s
"""


def search_statement(
    conn: AnyConnection,
    *,
    text: str | None = None,
    language: str | None = None,
    min_stars: int | None = None,
    sort: str = "stars",
    limit: int = 20,
    offset: int = 0,
) -> tuple[str, dict[str, Any]]:
    """The validated statement of :func:`search_repositories` and its bound parameters: SQL text put together from
    this module's constant fragments and the sort column (a value of :data:`SORT_COLUMNS`, quoted by ``conn``'s
    driver); every value is a ``%(name)s`` placeholder. ``conn`` (any :mod:`..statements` connection) resolves the
    language and quotes; run the statement with :func:`..statements.fetch` (also used by the benchmark)."""
    text_ = check_text(text, "text")
    if min_stars is not None:
        min_stars = check_int(min_stars, "min_stars", 0, 2_147_483_647)
    sort = check_choice(sort, "sort", SORT_COLUMNS)
    limit = check_limit(limit)
    offset = check_offset(offset)
    language = resolve_language(conn, language)
    column, direction = SORT_COLUMNS[sort]
    order = [f"r.{quote_ident(conn, column)} {direction} NULLS LAST"]
    if column != "updated_at":
        order.append("r.updated_at DESC NULLS LAST")
    where = ["TRUE"]
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    if text_ is not None:
        where.append(r"(r.name ILIKE %(pattern)s ESCAPE '\' OR r.description ILIKE %(pattern)s ESCAPE '\')")
        params["pattern"] = f"%{escape_like(text_)}%"
    if language is not None:
        where.append("r.language = %(language)s")
        params["language"] = language
    if min_stars is not None:
        where.append("r.stars >= %(min_stars)s")
        params["min_stars"] = min_stars
    return _SELECT.format(where=" AND ".join(where), order=", ".join(order)), params


def search_rows(
    bind: Bind | psycopg.Connection[Any] | LibpqConnection,
    *,
    text: str | None = None,
    language: str | None = None,
    min_stars: int | None = None,
    sort: str = "stars",
    limit: int = 20,
    offset: int = 0,
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """:func:`search_repositories` as column names and plain rows, without pandas (the same parameters and
    validation). ``bind``: an engine or connection, or a libpq or psycopg connection (``gitinsight query search
    --format csv``: in the transaction of :func:`..libpq.read_transaction`, used as it is)."""
    options: dict[str, Any] = {"text": text, "language": language, "min_stars": min_stars, "sort": sort,
                               "limit": limit, "offset": offset}
    if is_driver_connection(bind):
        return fetch(bind, *search_statement(bind, **options))
    from .frame import connection

    with connection(bind) as conn:
        return fetch(conn, *search_statement(conn, **options))


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
    from .frame import to_frame

    columns, rows = search_rows(bind, text=text, language=language, min_stars=min_stars, sort=sort, limit=limit,
                                offset=offset)
    frame = to_frame(rows, columns, SEARCH_COLUMNS)
    frame.attrs.update({"sort": check_choice(sort, "sort", SORT_COLUMNS), "limit": check_limit(limit),
                        "offset": check_offset(offset)})
    return frame
