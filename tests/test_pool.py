"""The spec's connection pool configuration, each setting overridable from the environment."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from gitinsight_analytics.db import make_engine, sqlalchemy_url
from gitinsight_analytics.exceptions import ConfigurationError
from gitinsight_analytics.settings import PoolSettings, load_settings

URL = "postgresql://u@127.0.0.1:1/db"


def test_defaults_are_the_specs() -> None:
    engine = make_engine(URL, pool=load_settings({}).pool)
    pool = engine.pool
    assert isinstance(pool, sa.QueuePool)
    assert pool.size() == 20
    assert pool._max_overflow == 30
    assert pool._pre_ping is True
    assert pool._recycle == 3600
    assert engine.url.drivername == "postgresql+psycopg"


@pytest.mark.parametrize(
    ("variable", "value", "field", "expected"),
    [
        ("GITINSIGHT_POOL_SIZE", "5", "size", 5),
        ("GITINSIGHT_MAX_OVERFLOW", "0", "max_overflow", 0),
        ("GITINSIGHT_POOL_PRE_PING", "false", "pre_ping", False),
        ("GITINSIGHT_POOL_RECYCLE", "600", "recycle", 600),
        ("GITINSIGHT_POOL_TIMEOUT", "7", "timeout", 7),
    ],
)
def test_each_setting_is_overridable(variable: str, value: str, field: str, expected: object) -> None:
    pool = load_settings({variable: value}).pool
    assert getattr(pool, field) == expected
    assert getattr(PoolSettings(), field) != expected


@pytest.mark.parametrize(
    ("variable", "value"),
    [("GITINSIGHT_POOL_SIZE", "0"), ("GITINSIGHT_POOL_SIZE", "many"), ("GITINSIGHT_POOL_PRE_PING", "perhaps")],
)
def test_bad_pool_settings_are_refused(variable: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=variable):
        load_settings({variable: value})


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
