"""Database URL resolution and engines: the spec's pooled engine, checked for reachability and version."""

from __future__ import annotations

import re

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from .exceptions import ConfigurationError, DatabaseUnreachable, ServerTooOld
from .settings import PoolSettings, Settings

__all__ = ["resolve_url", "sqlalchemy_url", "libpq_url", "make_engine", "check_server", "connect", "redact",
           "resolve_read_url"]

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


def resolve_url(settings: Settings, *, start: bool = True) -> str:
    """The SQLAlchemy URL to use: ``DATABASE_URL`` if set, else the embedded server (started if needed)."""
    if settings.database_url:
        return sqlalchemy_url(settings.database_url)
    from . import server

    if start:
        server.start(settings)
    return sqlalchemy_url(server.server_url(settings))


def resolve_read_url(settings: Settings, *, start: bool = True) -> str:
    """Where analyses read: ``GITINSIGHT_READ_URL`` (e.g. the streaming replica) if set, else :func:`resolve_url`."""
    if settings.read_url:
        return sqlalchemy_url(settings.read_url, setting="GITINSIGHT_READ_URL")
    return resolve_url(settings, start=start)


def make_engine(url: str, *, pool: PoolSettings | None = None, echo: bool = False) -> Engine:
    """An engine configured as the spec's connection pool (QueuePool 20 + 30, pre-ping, recycle 3600)."""
    pool = pool or PoolSettings()
    return sa.create_engine(
        sqlalchemy_url(url),
        poolclass=sa.QueuePool,
        pool_size=pool.size,
        max_overflow=pool.max_overflow,
        pool_pre_ping=pool.pre_ping,
        pool_recycle=pool.recycle,
        pool_timeout=pool.timeout,
        echo=echo,
        connect_args={"connect_timeout": 10, "application_name": "gitinsight"},
    )


def check_server(engine: Engine) -> int:
    """Connect once; raise :class:`DatabaseUnreachable` or :class:`ServerTooOld`. Returns server_version_num."""
    try:
        with engine.connect() as conn:
            version = int(conn.exec_driver_sql("SHOW server_version_num").scalar_one())
    except sa.exc.OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc).splitlines()[0]
        where = engine.url.render_as_string(hide_password=True)
        raise DatabaseUnreachable(f"cannot connect to {where}: {reason}") from None
    if version < MIN_SERVER_VERSION_NUM:
        raise ServerTooOld(
            f"the server runs PostgreSQL {version // 10000}.{version % 10000} (allowed: PostgreSQL 15 or newer)"
        )
    return version


def connect(settings: Settings | None = None, *, start: bool = True, read: bool = False) -> Engine:
    """A checked, pooled engine for the configured database; what notebooks and the CLI call.

    ``read=True``: the engine of the read URL (:func:`resolve_read_url`), for analyses, notebooks and reports;
    writes (loads, refresh, keys, audit rows) always use the default, the primary.
    """
    from .settings import load_settings

    settings = settings or load_settings()
    url = resolve_read_url(settings, start=start) if read else resolve_url(settings, start=start)
    engine = make_engine(url, pool=settings.pool)
    check_server(engine)
    return engine
