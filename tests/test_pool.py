"""The connection pool: sizes per profile (the spec's 20 + 30 for a service process), each setting overridable
from the environment, waiters served in arrival order, one clear error when no connection frees up in time, and
the statement timeout of the analyses."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa

from gitinsight_analytics import queries
from gitinsight_analytics.db import make_engine, sqlalchemy_url
from gitinsight_analytics.exceptions import DatabaseUnreachable, PoolExhausted, StatementTimeout
from gitinsight_analytics.pool import FairPool, statement_timeout
from gitinsight_analytics.settings import PoolSettings, load_settings

URL = "postgresql://u@127.0.0.1:1/db"


def _url(engine: sa.Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


@pytest.mark.parametrize(("env", "size", "overflow"), [
    ({"GITINSIGHT_POOL_PROFILE": "service"}, 20, 30),
    ({}, 2, 3),
    ({"GITINSIGHT_POOL_PROFILE": "interactive"}, 2, 3),
    ({"GITINSIGHT_POOL_PROFILE": "service", "GITINSIGHT_POOL_SIZE": "4"}, 4, 30),
])
def test_pool_sizes_per_profile(env: dict[str, str], size: int, overflow: int) -> None:
    engine = make_engine(URL, pool=load_settings(env).pool)
    pool = engine.pool
    assert isinstance(pool, FairPool)
    assert (pool.settings.size, pool.settings.max_overflow) == (size, overflow)
    assert pool.max_size == size + overflow
    assert engine.url.drivername == "postgresql+psycopg"


def test_make_engine_defaults_are_the_specs() -> None:
    settings = make_engine(URL).pool.settings
    assert (settings.size, settings.max_overflow, settings.pre_ping, settings.recycle, settings.timeout) == \
        (20, 30, True, 3600, 30)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u:p@h:5/d", "postgresql+psycopg://u:p@h:5/d"),
        ("postgres://u@h/d", "postgresql+psycopg://u@h/d"),
        ("postgresql+psycopg://u@h/d", "postgresql+psycopg://u@h/d"),
    ],
)
def test_urls_use_psycopg3(given: str, expected: str) -> None:
    assert sqlalchemy_url(given) == expected


def test_pool_serves_concurrent_connections(engine: sa.Engine) -> None:
    wide = make_engine(engine.url.render_as_string(False), pool=PoolSettings(size=3, max_overflow=2))
    conns = [wide.connect() for _ in range(5)]
    try:
        pids = {c.execute(sa.text("SELECT pg_backend_pid()")).scalar() for c in conns}
        assert len(pids) == 5
    finally:
        for c in conns:
            c.close()
        wide.dispose()


def _waiting(engine: sa.Engine) -> int:
    return engine.pool.backing().get_stats().get("requests_waiting", 0)


def _until(condition, what: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


@pytest.mark.parametrize("waiters", [3, 8])
def test_waiters_are_served_in_arrival_order(engine: sa.Engine, waiters: int) -> None:
    one = make_engine(_url(engine), pool=PoolSettings(size=1, max_overflow=0, timeout=60))
    served: list[int] = []
    try:
        held = one.connect()
        threads = []
        for i in range(waiters):
            def wait_then_use(i: int = i) -> None:
                with one.connect() as conn:
                    served.append(i)
                    conn.execute(sa.text("SELECT 1"))

            threads.append(threading.Thread(target=wait_then_use))
            threads[-1].start()
            _until(lambda i=i: _waiting(one) == i + 1, f"waiter {i} to queue")  # arrival order is 0, 1, 2...
        held.close()
        with one.connect():  # a late arrival does not jump the queue: it is served after every waiter
            served.append(-1)
        for t in threads:
            t.join(timeout=60)
        assert served == [*range(waiters), -1]
    finally:
        one.dispose()


def test_pool_timeout_names_the_setting(engine: sa.Engine) -> None:
    one = make_engine(_url(engine), pool=PoolSettings(size=1, max_overflow=0, timeout=1, profile="interactive"))
    try:
        with one.connect(), pytest.raises(PoolExhausted) as caught:
            one.connect()
        message = str(caught.value)
        assert "\n" not in message
        assert "GITINSIGHT_POOL_TIMEOUT" in message and "all 1 connections" in message
        with one.connect() as conn:  # the pool still works once a connection is back
            assert conn.execute(sa.text("SELECT 1")).scalar() == 1
    finally:
        one.dispose()


def test_unreachable_server_is_not_reported_as_a_busy_pool() -> None:
    dead = make_engine(URL, pool=PoolSettings(size=1, max_overflow=0, timeout=1))
    try:
        with pytest.raises(DatabaseUnreachable, match="cannot connect"):
            dead.connect()
    finally:
        dead.dispose()


@pytest.mark.parametrize("autocommit", [False, True])
def test_connection_is_returned_clean(engine: sa.Engine, autocommit: bool) -> None:
    one = make_engine(_url(engine), pool=PoolSettings(size=1, max_overflow=0))
    try:
        with one.connect() as conn:
            if autocommit:
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar()
        for _ in range(3):
            with one.connect() as conn:  # the same server connection, reused, back in transaction mode
                assert conn.execute(sa.text("SELECT pg_backend_pid()")).scalar() == pid
                assert conn.connection.dbapi_connection.autocommit is False
                assert len(conn.connection.dbapi_connection._notice_handlers) == 1
    finally:
        one.dispose()


def test_dispose_closes_and_engine_reopens(engine: sa.Engine) -> None:
    two = make_engine(_url(engine), pool=PoolSettings(size=2, max_overflow=0))
    try:
        with two.connect() as conn:
            first = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar()
        two.dispose()
        with two.connect() as conn:
            assert conn.execute(sa.text("SELECT pg_backend_pid()")).scalar() != first
    finally:
        two.dispose()


def test_statement_timeout_cancels_with_a_clear_error(seeded_engine: sa.Engine) -> None:
    limited = make_engine(_url(seeded_engine), pool=PoolSettings(size=1, max_overflow=0), statement_timeout=0.2)
    try:
        with limited.connect() as conn, pytest.raises(StatementTimeout) as caught:
            conn.execute(sa.text("SELECT pg_sleep(5)"))
        assert "GITINSIGHT_STATEMENT_TIMEOUT" in str(caught.value) and "\n" not in str(caught.value)
        assert not queries.search_repositories(limited, text="a").empty  # the analyses run under it
        with limited.connect() as conn:
            assert conn.execute(sa.text("SELECT current_setting('statement_timeout')")).scalar() == "200ms"
            conn.rollback()
            with statement_timeout(conn, seconds=0):  # one block without the limit
                conn.execute(sa.text("SELECT pg_sleep(0.4)"))
                assert conn.execute(sa.text("SELECT current_setting('statement_timeout')")).scalar() == "0"
    finally:
        limited.dispose()


def test_statement_timeout_setting_reaches_connect(seeded_engine: sa.Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    from gitinsight_analytics.db import connect

    monkeypatch.setenv("DATABASE_URL", _url(seeded_engine))
    settings = load_settings({"DATABASE_URL": _url(seeded_engine), "GITINSIGHT_STATEMENT_TIMEOUT": "7"})
    for interactive, expected in ((True, "7s"), (False, "0")):
        limited = connect(settings, interactive=interactive)
        try:
            with limited.connect() as conn:
                assert conn.execute(sa.text("SELECT current_setting('statement_timeout')")).scalar() == expected
        finally:
            limited.dispose()
