"""Engines: pooled (fair waiting, :mod:`.pool`), checked for reachability and version. Which URL to use is
:mod:`.urls`' (re-exported here), how a plain connection is opened and checked :mod:`.pgconn`'s."""

from __future__ import annotations

from typing import Any, cast

import psycopg
import sqlalchemy as sa
from psycopg import sql
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import PoolProxiedConnection

from . import pgconn
from .exceptions import DatabaseUnreachable, ServerError
from .pool import FairPool, limit_statements
from .settings import PoolSettings, Settings
from .urls import libpq_url, redact, resolve_read_url, resolve_url, sqlalchemy_url

__all__ = ["resolve_url", "sqlalchemy_url", "libpq_url", "make_engine", "check_server", "connect", "redact",
           "resolve_read_url", "driver_connection", "one_row"]

def make_engine(url: str | sa.URL, *, pool: PoolSettings | None = None, echo: bool = False,
                statement_timeout: float = 0) -> Engine:
    """An engine whose pool (:class:`~.pool.FairPool`) keeps ``pool.size`` connections, opens at most
    ``size + max_overflow``, serves waiting callers in arrival order and checks connections before use.

    ``pool`` defaults to the spec's 20 + 30 (a long-running service process); ``statement_timeout`` (seconds,
    0 = none) cancels longer statements with :class:`~.exceptions.StatementTimeout`. ``url``: a string or another
    engine's ``engine.url``.
    """
    pool = pool or PoolSettings()
    target = sqlalchemy_url(url if isinstance(url, str) else url.render_as_string(hide_password=False))
    engine = sa.create_engine(
        target,
        pool=FairPool(libpq_url(target), pool, pgconn.CONNECT_OPTIONS,
                      recycle=pool.recycle, echo=echo),
        echo=echo,
    )
    return limit_statements(engine, statement_timeout)


def check_server(engine: Engine) -> int:
    """Connect once; raise :class:`DatabaseUnreachable` or :class:`ServerTooOld`. Returns server_version_num.

    A connection of its own, not the pool's: the pool would retry an unreachable server until its timeout."""
    with pgconn.connect(engine.url.render_as_string(hide_password=False)) as conn:
        return conn.info.server_version


def connect(settings: Settings | None = None, *, start: bool = True, read: bool = False,
            pooled: bool | None = None, interactive: bool = True) -> Engine:
    """A checked, pooled engine for the configured database; what notebooks, reports and the CLI call.

    ``read=True``: the engine of the read URL (:func:`resolve_read_url`), for analyses, notebooks and reports;
    writes (loads, refresh, keys, audit rows) always use the default, the primary. ``pooled``: see
    :func:`resolve_url` (default: through the pooler when it runs). ``interactive`` applies the analyses' statement
    timeout (``GITINSIGHT_STATEMENT_TIMEOUT``); loads, migrations and maintenance pass False.
    """
    from .settings import load_settings

    settings = settings or load_settings()
    url = (resolve_read_url(settings, start=start, pooled=pooled) if read
           else resolve_url(settings, start=start, pooled=pooled))
    engine = make_engine(url, pool=settings.pool, statement_timeout=settings.statement_timeout if interactive else 0)
    check_server(engine)
    return engine


def driver_connection(conn: Connection | PoolProxiedConnection) -> psycopg.Connection[Any]:
    """The psycopg connection under ``conn`` (COPY, and constant SQL that must not be parsed for parameters)."""
    raw = (conn.connection if isinstance(conn, Connection) else conn).driver_connection
    if raw is None:  # only once the connection was closed or invalidated
        raise DatabaseUnreachable("the database connection was closed")
    return cast("psycopg.Connection[Any]", raw)


def one_row(conn: psycopg.Connection[Any], query: str | sql.SQL | sql.Composed, params: Any = None) -> tuple[Any, ...]:
    """The row of a query that always returns exactly one (``SHOW``, aggregates, ``SELECT <expressions>``)."""
    row = conn.execute(query, params).fetchone()
    if row is None:
        raise ServerError(f"the server returned no row for a query that always returns one: {query!r:.80}")
    return tuple(row)
