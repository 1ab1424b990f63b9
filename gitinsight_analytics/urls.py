"""Database URLs as strings: which URL a command uses and how each client spells it, without SQLAlchemy.

One definition for the engines (:mod:`.db`) and the quick read path (:mod:`.libpq`, :mod:`.pgconn`): ``DATABASE_URL``
if set, else the embedded server (started if needed), through its PgBouncer when asked; reads go to
``GITINSIGHT_READ_URL`` when set. SQLAlchemy wants ``postgresql+psycopg://``, libpq (psql, pg_dump,
``psycopg.connect``) ``postgresql://``; the rest of the URL is passed on as given.
"""

from __future__ import annotations

import re

from .exceptions import ConfigurationError
from .settings import Settings

__all__ = ["redact", "url_scheme", "sqlalchemy_url", "libpq_url", "resolve_url", "resolve_read_url", "SCHEMES"]

#: The schemes accepted in DATABASE_URL and GITINSIGHT_READ_URL (all mean PostgreSQL through psycopg 3).
SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")

#: ``scheme://[user[:password]@][host|[ipv6]][:port][/dbname][?query]``: what SQLAlchemy's ``make_url`` accepts.
_URL = re.compile(
    r"""^(?P<scheme>[\w+]+)://
        (?:[^:/]*(?::[^@]*)?@)?
        (?:(?:\[[^/?]+\]|[^/:?]+)?(?::(?P<port>[^/?]*))?)?
        (?:/[^?]*)?
        (?:\?.*)?$""",
    re.VERBOSE | re.DOTALL,
)


def redact(url: str) -> str:
    """The URL with its password replaced, for messages and logs."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def url_scheme(url: str, *, setting: str = "DATABASE_URL") -> tuple[str, str]:
    """``(scheme, rest)`` of a URL, the rest being everything after ``://``; :class:`ConfigurationError` naming
    ``setting`` when it is not a URL (no scheme, or a port that is not a number)."""
    match = _URL.match(url)
    if match is None or (match["port"] and not match["port"].isdigit()):
        raise ConfigurationError(
            f"{setting} {redact(url)!r} is not a URL (allowed: postgresql://user:password@host:port/dbname)"
        )
    return match["scheme"], url[match.end("scheme") + 3:]


def sqlalchemy_url(url: str, *, setting: str = "DATABASE_URL") -> str:
    """``postgresql://`` or ``postgres://`` spelled with the psycopg 3 driver explicitly (``setting``: for errors)."""
    scheme, rest = url_scheme(url, setting=setting)
    if scheme not in SCHEMES:
        raise ConfigurationError(f"{setting} uses {scheme!r} (allowed: postgresql:// or postgresql+psycopg://)")
    return f"postgresql+psycopg://{rest}"


def libpq_url(url: str) -> str:
    """The URL as psql, pg_dump and psycopg.connect want it (no SQLAlchemy driver suffix)."""
    return "postgresql://" + url_scheme(sqlalchemy_url(url))[1]


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
