"""Database URL resolution and engines: pooled (fair waiting, :mod:`.pool`), checked for reachability and version."""

from __future__ import annotations

import re
from typing import Any, cast

import psycopg
import sqlalchemy as sa
from psycopg import sql
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.pool import PoolProxiedConnection

from .exceptions import ConfigurationError, DatabaseUnreachable, ServerError, ServerTooOld
from .pool import FairPool, limit_statements
from .settings import PoolSettings, Settings

__all__ = ["resolve_url", "sqlalchemy_url", "libpq_url", "make_engine", "check_server", "connect", "redact",
           "resolve_read_url", "driver_connection", "one_row"]

MIN_SERVER_VERSION_NUM = 150000


def redact(url: str) -> str:
    """The URL with its password replaced, for messages and logs."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def sqlalchemy_url(url: str, *, setting: str = "DATABASE_URL") -> str:
    """``postgresql://`` or ``postgres://`` spelled with the psycopg 3 driver explicitly (``setting``: for errors)."""
    try:
        parsed = make_url(url)
    except Exception:
        raise ConfigurationError(
            f"{setting} {redact(url)!r} is not a URL (allowed: postgresql://user:password@host:port/dbname)"
        ) from None
    if parsed.drivername in {"postgresql", "postgres", "postgresql+psycopg"}:
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    raise ConfigurationError(
        f"{setting} uses {parsed.drivername!r} (allowed: postgresql:// or postgresql+psycopg://)"
    )


def libpq_url(url: str) -> str:
    """The URL as psql, pg_dump and psycopg.connect want it (no SQLAlchemy driver suffix)."""
    return make_url(sqlalchemy_url(url)).set(drivername="postgresql").render_as_string(hide_password=False)


def resolve_url(settings: Settings, *, start: bool = True, pooled: bool | None = False) -> str:
    """The SQLAlchemy URL to use: ``DATABASE_URL`` if set, else the embedded server (started if needed).

    ``pooled`` (embedded server only): True = through this home's PgBouncer (``gitinsight db pooler start``),
    None = through it when it runs (or as ``GITINSIGHT_USE_POOLER`` says), False = directly.
    """
    if settings.database_url:
        return sqlalchemy_url(settings.database_url)
    from . import pooler, server

    if start:
        running = server.postmaster(settings.pgdata)  # up on our port: no version check, no CREATE DATABASE
        if running is None or running[1] != settings.pg_port:  # (a quick `gitinsight query` starts faster)
            server.start(settings)
    if pooled is None:
        pooled = settings.use_pooler if settings.use_pooler is not None else pooler.status(settings).running
    if pooled:
        return sqlalchemy_url(pooler.pooler_url(settings, require=True))
    return sqlalchemy_url(server.server_url(settings))


def resolve_read_url(settings: Settings, *, start: bool = True, pooled: bool | None = False) -> str:
    """Where analyses read: ``GITINSIGHT_READ_URL`` (e.g. the streaming replica) if set, else :func:`resolve_url`."""
    if settings.read_url:
        return sqlalchemy_url(settings.read_url, setting="GITINSIGHT_READ_URL")
    return resolve_url(settings, start=start, pooled=pooled)


def make_engine(url: str, *, pool: PoolSettings | None = None, echo: bool = False,
                statement_timeout: float = 0) -> Engine:
    """An engine whose pool (:class:`~.pool.FairPool`) keeps ``pool.size`` connections, opens at most
    ``size + max_overflow``, serves waiting callers in arrival order and checks connections before use.

    ``pool`` defaults to the spec's 20 + 30 (a long-running service process); ``statement_timeout`` (seconds,
    0 = none) cancels longer statements with :class:`~.exceptions.StatementTimeout`.
    """
    pool = pool or PoolSettings()
    target = sqlalchemy_url(url)
    engine = sa.create_engine(
        target,
        pool=FairPool(libpq_url(target), pool, {"connect_timeout": 10, "application_name": "gitinsight"},
                      recycle=pool.recycle, echo=echo),
        echo=echo,
    )
    return limit_statements(engine, statement_timeout)


def check_server(engine: Engine) -> int:
    """Connect once; raise :class:`DatabaseUnreachable` or :class:`ServerTooOld`. Returns server_version_num.

    A connection of its own, not the pool's: the pool would retry an unreachable server until its timeout."""
    where = engine.url.render_as_string(hide_password=True)
    try:
        with psycopg.connect(libpq_url(engine.url.render_as_string(hide_password=False)), connect_timeout=10,
                             application_name="gitinsight", prepare_threshold=None) as conn:
            version = int(one_row(conn, "SHOW server_version_num")[0])
    except psycopg.OperationalError as exc:
        reason = (str(exc).strip().splitlines() or ["connection failed"])[0]
        raise DatabaseUnreachable(f"cannot connect to {where}: {reason}") from None
    if version < MIN_SERVER_VERSION_NUM:
        raise ServerTooOld(
            f"the server runs PostgreSQL {version // 10000}.{version % 10000} (allowed: PostgreSQL 15 or newer)"
        )
    return version


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
