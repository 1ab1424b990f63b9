"""Running one statement on any connection the package works with: a SQLAlchemy one (the engines), a plain psycopg
one (:mod:`.pgconn`) or the libpq client of the quickest commands (:mod:`.libpq`). So a query is defined once.

A statement is SQL text with psycopg's ``%(name)s`` placeholders, or ``psycopg.sql`` objects (identifiers composed
in) on the connections that have psycopg. On a SQLAlchemy connection it goes through ``exec_driver_sql`` (values
still bound as parameters), so the engine's events apply as to any other statement: the transaction it opens, the
statement timeout and its error. Neither SQLAlchemy nor psycopg is imported here: a connection of either brings
its library with it.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeAlias

from .libpq import Connection as LibpqConnection

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql
    from sqlalchemy.engine import Connection
    from typing_extensions import TypeIs

__all__ = ["AnyConnection", "Statement", "render", "fetch", "is_driver_connection"]

#: A psycopg connection, a SQLAlchemy connection over psycopg or a libpq one.
AnyConnection: TypeAlias = "psycopg.Connection[Any] | Connection | LibpqConnection"
#: What runs: SQL text with ``%(name)s`` placeholders, or ``psycopg.sql`` objects (not on a libpq connection).
Statement: TypeAlias = "str | sql.SQL | sql.Composed"


def is_driver_connection(conn: object) -> TypeIs[psycopg.Connection[Any] | LibpqConnection]:
    """Whether ``conn`` is a plain driver connection (libpq's or psycopg's), not a SQLAlchemy one."""
    if isinstance(conn, LibpqConnection):
        return True
    psycopg = sys.modules.get("psycopg")  # not loaded: no psycopg connection can exist
    return psycopg is not None and isinstance(conn, psycopg.Connection)


def _psycopg(conn: AnyConnection) -> psycopg.Connection[Any]:
    import psycopg

    if isinstance(conn, psycopg.Connection):
        return conn
    from .db import driver_connection  # a SQLAlchemy connection: SQLAlchemy is loaded already

    return driver_connection(conn)  # type: ignore[arg-type]


def render(conn: AnyConnection, statement: sql.Composable) -> str:
    """``statement`` as SQL text for ``conn`` (identifiers quoted by libpq); placeholders stay placeholders."""
    if isinstance(conn, LibpqConnection):
        raise TypeError("psycopg.sql statements need a psycopg or SQLAlchemy connection")
    return statement.as_string(_psycopg(conn))


def fetch(conn: AnyConnection, statement: Statement,
          params: Mapping[str, Any] | None = None) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run ``statement`` with bound ``params`` (``%(name)s`` placeholders); its column names and rows."""
    if isinstance(conn, LibpqConnection):
        if not isinstance(statement, str):
            raise TypeError("a libpq connection runs SQL text, not psycopg.sql objects")
        return conn.execute(statement, params)
    import psycopg

    if isinstance(conn, psycopg.Connection):
        cursor = conn.execute(statement, params)
        if cursor.description is None:
            return [], []
        return [column.name for column in cursor.description], [tuple(row) for row in cursor.fetchall()]
    text = statement if isinstance(statement, str) else render(conn, statement)
    result = conn.exec_driver_sql(text, dict(params) if params else None)
    if not result.returns_rows:
        return [], []
    return list(result.keys()), [tuple(row) for row in result.fetchall()]
