"""The SQLAlchemy-free layer under the quick read path: URL spelling (urls), plain psycopg connections and their read
transaction (pgconn), and one statement run on any kind of connection (statements: SQLAlchemy, psycopg, libpq)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from psycopg import sql
from sqlalchemy.engine import Engine

from gitinsight_analytics import libpq, pgconn
from gitinsight_analytics.db import make_engine
from gitinsight_analytics.exceptions import ConfigurationError, DatabaseUnreachable, StatementTimeout
from gitinsight_analytics.pgproc import free_port
from gitinsight_analytics.queries.search import search_statement
from gitinsight_analytics.settings import PoolSettings
from gitinsight_analytics.statements import fetch
from gitinsight_analytics.urls import libpq_url, sqlalchemy_url
from gitinsight_analytics.validation import quote_ident, resolve_language

from .query_data import build


@pytest.mark.parametrize("given", [
    "postgresql://u:p@h:5/d", "postgres://u@h/d", "postgresql+psycopg://u@h/d", "postgresql://h",
    "postgresql://u:p%40ss@127.0.0.1:5432/db?sslmode=disable", "postgresql://u@[::1]:5432/d",
])
def test_urls_are_spelled_as_sqlalchemy_spelled_them(given: str) -> None:
    """The string functions agree with SQLAlchemy's URL parser, which db.py used before."""
    expected = sa.engine.make_url(given).set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    assert sqlalchemy_url(given) == expected
    assert libpq_url(given) == "postgresql" + expected.removeprefix("postgresql+psycopg")


@pytest.mark.parametrize(("given", "setting", "message"), [
    ("host=h dbname=d", "DATABASE_URL", "DATABASE_URL 'host=h dbname=d' is not a URL (allowed: postgresql://"),
    ("postgresql://u:secret@h:five/d", "DATABASE_URL", "DATABASE_URL 'postgresql://u:***@h:five/d' is not a URL"),
    ("mysql://u@h/d", "DATABASE_URL", "DATABASE_URL uses 'mysql' (allowed: postgresql:// or postgresql+psycopg://)"),
    ("postgresql+asyncpg://u@h/d", "GITINSIGHT_READ_URL", "GITINSIGHT_READ_URL uses 'postgresql+asyncpg'"),
])
def test_bad_urls_name_the_setting(given: str, setting: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        sqlalchemy_url(given, setting=setting)
    assert str(caught.value).startswith(message) and "secret" not in str(caught.value)


def test_unreachable_server_is_one_line_without_the_password() -> None:
    port = free_port()
    with pytest.raises(DatabaseUnreachable) as caught:
        pgconn.connect(f"postgresql://nobody:secret@127.0.0.1:{port}/nowhere")
    assert str(caught.value).startswith(f"cannot connect to postgresql+psycopg://nobody:***@127.0.0.1:{port}/nowhere: ")
    assert "\n" not in str(caught.value)


def test_read_transaction_times_out_with_the_clear_error(engine: Engine) -> None:
    url = engine.url.render_as_string(hide_password=False)
    with pytest.raises(StatementTimeout, match="0.2 s for analyses; allowed: raise GITINSIGHT_STATEMENT_TIMEOUT"):
        with pgconn.read_transaction(url, statement_timeout=0.2) as conn:
            conn.execute("SELECT pg_sleep(5)")
    assert conn.closed
    with pgconn.read_transaction(url) as conn:  # 0: no limit
        assert conn.execute("SELECT current_setting('statement_timeout')").fetchone() == ("0",)


@pytest.fixture
def every(engine: Engine):
    """A SQLAlchemy, a psycopg and a libpq connection on the same database (the query tests' data)."""
    build(engine)
    url = engine.url.render_as_string(hide_password=False)
    with engine.connect() as sa_conn, pgconn.connect(url) as pg_conn, libpq.read_transaction(url) as lib_conn:
        yield {"sqlalchemy": sa_conn, "psycopg": pg_conn, "libpq": lib_conn}


@pytest.mark.parametrize("options", [
    {}, {"text": "busy", "sort": "name"}, {"language": "python", "min_stars": 5, "limit": 2, "offset": 1},
    {"text": "100%", "sort": "updated"},
])
def test_one_statement_on_every_connection(every, options) -> None:
    """The search statement built and run on each connection: the same columns and rows."""
    results = [fetch(conn, *search_statement(conn, **options)) for conn in every.values()]
    assert results[0] == results[1] == results[2] and results[0][1]
    assert results[0][0][:3] == ["full_name", "name", "owner_username"]


@pytest.mark.parametrize("kind", ["sqlalchemy", "psycopg", "libpq"])
def test_lookups_take_every_connection(every, kind) -> None:
    conn = every[kind]
    assert resolve_language(conn, " javascript ") == "JavaScript"
    assert quote_ident(conn, "updated_at") == '"updated_at"' and quote_ident(conn, 'a"b') == '"a""b"'


def test_engine_events_apply_to_driver_statements(engine: Engine) -> None:
    """Run through SQLAlchemy (exec_driver_sql), a statement keeps the engine's statement timeout and its error."""
    limited = make_engine(engine.url.render_as_string(hide_password=False),
                          pool=PoolSettings(size=1, max_overflow=0), statement_timeout=0.2)
    try:
        with limited.connect() as conn, pytest.raises(StatementTimeout, match="GITINSIGHT_STATEMENT_TIMEOUT"):
            fetch(conn, sql.SQL("SELECT pg_sleep(5)"))
    finally:
        limited.dispose()


def test_make_engine_takes_another_engines_url(engine: Engine) -> None:
    """``make_engine(engine.url)``: a SQLAlchemy URL object, password included, as before the URL functions became
    plain string functions."""
    again = make_engine(engine.url, pool=PoolSettings(size=1, max_overflow=0))
    try:
        with again.connect() as conn:
            assert conn.execute(sa.text("SELECT current_database()")).scalar() == engine.url.database
    finally:
        again.dispose()
