"""Running a ``psycopg.sql`` statement on either connection the package works with: a plain psycopg connection
(the CLI's quick read path, :mod:`.pgconn`) or a SQLAlchemy one (the engines). So a query is defined once.

On a SQLAlchemy connection the statement goes through ``exec_driver_sql`` (rendered for its psycopg connection,
values still bound as ``%(name)s`` parameters), so the engine's events apply as to any other statement: the
transaction it opens, the statement timeout and its error. SQLAlchemy itself is never imported here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeAlias

import psycopg
from psycopg import sql

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

__all__ = ["AnyConnection", "Statement", "render", "fetch"]

#: A psycopg connection or a SQLAlchemy connection over psycopg.
AnyConnection: TypeAlias = "psycopg.Connection[Any] | Connection"
#: What runs: SQL text of ``psycopg.sql`` objects (identifiers composed in, values as placeholders).
Statement: TypeAlias = "sql.SQL | sql.Composed"


def _psycopg(conn: AnyConnection) -> psycopg.Connection[Any]:
    if isinstance(conn, psycopg.Connection):
        return conn
    from .db import driver_connection  # a SQLAlchemy connection: SQLAlchemy is loaded already

    return driver_connection(conn)


def render(conn: AnyConnection, statement: sql.Composable) -> str:
    """``statement`` as SQL text for ``conn`` (identifiers quoted by libpq); placeholders stay placeholders."""
    return statement.as_string(_psycopg(conn))


def fetch(conn: AnyConnection, statement: Statement,
          params: Mapping[str, Any] | None = None) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run ``statement`` with bound ``params`` (``%(name)s`` placeholders); its column names and rows."""
    if isinstance(conn, psycopg.Connection):
        cursor = conn.execute(statement, params)
        if cursor.description is None:
            return [], []
        return [column.name for column in cursor.description], [tuple(row) for row in cursor.fetchall()]
    result = conn.exec_driver_sql(render(conn, statement), dict(params) if params else None)
    if not result.returns_rows:
        return [], []
    return list(result.keys()), [tuple(row) for row in result.fetchall()]
