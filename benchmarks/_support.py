"""What the benchmarks share: a throwaway embedded server and scratch databases recreated from nothing."""

from __future__ import annotations

import contextlib
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from gitinsight_analytics import server
from gitinsight_analytics.db import libpq_url
from gitinsight_analytics.pgproc import free_port
from gitinsight_analytics.settings import PoolSettings, Settings, load_settings

__all__ = ["throwaway_server", "recreate_database", "drop_database"]


def throwaway_server(home: Path, *, archive: bool | None = None) -> Settings:
    """Start an embedded server in ``home`` on a free port (WAL archiving on with ``archive=True``); stop it with
    ``server.stop(settings)``."""
    settings = load_settings({"GITINSIGHT_HOME": str(home), "GITINSIGHT_PG_PORT": str(free_port())})
    try:
        server.start(settings, archive=archive)
    except BaseException:
        with contextlib.suppress(Exception):  # a server started before the failure is not left running
            server.stop(settings)
        raise
    return settings


def _admin(url: str) -> str:
    return libpq_url(make_url(libpq_url(url)).set(database="postgres").render_as_string(hide_password=False))


def drop_database(url: str, name: str) -> None:
    """Drop database ``name`` of the server ``url`` points at, if it exists."""
    with psycopg.connect(_admin(url), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def recreate_database(url: str, name: str, *, migrated: bool = True) -> str:
    """Database ``name`` on the server of ``url``, dropped and created empty (migrated to head unless told
    otherwise); returns its libpq URL."""
    drop_database(url, name)
    with psycopg.connect(_admin(url), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    target = libpq_url(make_url(libpq_url(url)).set(database=name).render_as_string(hide_password=False))
    if migrated:
        from gitinsight_analytics import migrate  # not at import: the load benchmark's worker measures its RSS
        from gitinsight_analytics.db import make_engine

        engine = make_engine(target, pool=PoolSettings(size=1, max_overflow=1))
        migrate.upgrade(engine)
        engine.dispose()
    return target
