"""PgBouncer in transaction mode in front of the embedded server: `gitinsight db pooler`, bounded server
connections, and what the package does working through it (prepared statements, the row-level security helper's
SET LOCAL, the statement timeout, COPY in the seed loader, the advisory-locked import, a report run)."""

from __future__ import annotations

import dataclasses
import io
import threading
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gitinsight_analytics import pooler, queries, server
from gitinsight_analytics.cli import main
from gitinsight_analytics.db import make_engine, resolve_url
from gitinsight_analytics.exceptions import StatementTimeout
from gitinsight_analytics.pgproc import free_port
from gitinsight_analytics.reports import runner
from gitinsight_analytics.security.rls import as_user
from gitinsight_analytics.seed import import_github_ranking, load_synthetic
from gitinsight_analytics.settings import PoolSettings, Settings
from gitinsight_analytics.statements import fetch

from . import factories as f
from .conftest import SMALL_POOL, start_cluster, unavailable


@pytest.fixture(autouse=True)
def _needs_pgbouncer() -> None:
    if pooler.executable() is None:
        unavailable("PgBouncer is not installed (scripts/test-deps.sh installs Debian's pgbouncer)")

SERVER_CONNECTIONS = 3
MINI = Path(__file__).parent / "data" / "github_ranking" / "mini"
NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


@pytest.fixture(scope="module")
def bouncer(pg: Settings) -> Iterator[Settings]:
    """The session server's pooler, on a free port, lending at most 3 server connections per database."""
    settings = dataclasses.replace(pg, pooler_port=free_port(), pooler_pool_size=SERVER_CONNECTIONS)
    pooler.start(settings)
    yield settings
    pooler.stop(settings)


def through(bouncer: Settings, engine: Engine, pool: PoolSettings = SMALL_POOL, **kwargs: float) -> Engine:
    """An engine on the same database as ``engine``, through the pooler."""
    return make_engine(pooler.pooler_url(bouncer, engine.url.database), pool=pool, **kwargs)


@pytest.fixture
def pooled(bouncer: Settings, engine: Engine) -> Iterator[Engine]:
    e = through(bouncer, engine)
    yield e
    e.dispose()


def test_cli_status_url_stop_start(bouncer: Settings, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    for key, value in {"GITINSIGHT_HOME": bouncer.home, "GITINSIGHT_PG_PORT": bouncer.pg_port,
                       "GITINSIGHT_POOLER_PORT": bouncer.pooler_port,
                       "GITINSIGHT_POOLER_POOL_SIZE": SERVER_CONNECTIONS}.items():
        monkeypatch.setenv(key, str(value))
    assert main(["db", "pooler", "status"]) == 0
    assert f"127.0.0.1:{bouncer.pooler_port}, transaction mode" in capsys.readouterr().out
    assert main(["db", "url"]) == 0  # the URL notebooks use goes through the pooler while it runs
    assert capsys.readouterr().out.strip().endswith(f"@127.0.0.1:{bouncer.pooler_port}/{bouncer.db_name}")
    assert main(["db", "url", "--direct"]) == 0
    assert f"@127.0.0.1:{bouncer.pg_port}/" in capsys.readouterr().out
    assert main(["db", "pooler", "stop"]) == 0
    assert main(["db", "pooler", "status"]) == 3
    assert resolve_url(bouncer, start=False, pooled=None).endswith(f":{bouncer.pg_port}/{bouncer.db_name}")
    capsys.readouterr()
    assert main(["db", "pooler", "start"]) == 0
    assert "pooler running" in capsys.readouterr().out
    assert resolve_url(bouncer, start=False, pooled=None).endswith(f":{bouncer.pooler_port}/{bouncer.db_name}")


def test_db_stop_stops_the_pooler_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = dataclasses.replace(start_cluster(tmp_path / "home"), pooler_port=free_port())
    try:
        for key, value in {"GITINSIGHT_HOME": settings.home, "GITINSIGHT_PG_PORT": settings.pg_port,
                           "GITINSIGHT_POOLER_PORT": settings.pooler_port}.items():
            monkeypatch.setenv(key, str(value))
        (settings.home / "pgbouncer").mkdir()
        (settings.home / "pgbouncer" / "pgbouncer.pid").write_text("999999\n")  # stale: a pooler that crashed
        assert main(["db", "pooler", "start"]) == 0
        assert pooler.status(settings).running
        assert main(["db", "stop"]) == 0
        assert not pooler.status(settings).running and not server.status(settings).running
    finally:
        pooler.stop(settings)
        server.stop(settings)


def test_many_clients_share_few_server_connections(bouncer: Settings, engine: Engine, pooled: Engine) -> None:
    wide = through(bouncer, engine, PoolSettings(size=12, max_overflow=0))
    try:
        clients = [wide.connect() for _ in range(12)]
        for conn in clients:  # each runs a transaction while all 12 stay connected
            assert conn.execute(sa.text("SELECT 1")).scalar() == 1
            conn.commit()
        with engine.connect() as direct:
            backends = direct.execute(sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()")).scalar()
        assert backends <= SERVER_CONNECTIONS
        for conn in clients:
            conn.close()
    finally:
        wide.dispose()


def test_repeated_statements_from_many_threads(bouncer: Settings, seeded_engine: Engine) -> None:
    """psycopg would prepare a statement run 5 times on a connection; through PgBouncer 1.18 in transaction
    mode the next transaction may land on a server connection without it. Prepared statements are off."""
    errors: list[BaseException] = []
    engines = [through(bouncer, seeded_engine) for _ in range(3)]

    def work(e: Engine) -> None:
        try:
            for i in range(15):
                queries.search_repositories(e, text="a", min_stars=i % 3, limit=5)
                queries.trending_by_score(e)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(engines[i % 3],)) for i in range(6)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        for e in engines:
            e.dispose()
    assert errors == []


def test_row_level_security_helper_through_the_pooler(engine: Engine, pooled: Engine) -> None:
    with engine.begin() as conn:
        world = f.fan_out(conn)
    expected = {world.alice: {"busy", "quiet"}, world.bob: {"busy", "quiet", "private"}}
    seen: list[bool] = []

    def work(user: object) -> None:
        for _ in range(10):
            with as_user(pooled, user) as conn:
                names = set(conn.execute(sa.text("SELECT name FROM repositories")).scalars())
            seen.append(names == expected[user])

    threads = [threading.Thread(target=work, args=(u,)) for u in (world.alice, world.bob) * 3]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 60 and all(seen)
    for _ in range(2 * SERVER_CONNECTIONS):  # no server connection kept the role or the user id
        with pooled.connect() as conn:
            role, uid = conn.execute(sa.text(
                "SELECT current_user::text, coalesce(current_setting('app.current_user_id', true), '')")).one()
            assert (role, uid) == ("postgres", "")


def test_statement_timeout_through_the_pooler(bouncer: Settings, engine: Engine, pooled: Engine) -> None:
    limited = through(bouncer, engine, statement_timeout=0.2)
    try:
        with limited.connect() as conn, pytest.raises(StatementTimeout, match="GITINSIGHT_STATEMENT_TIMEOUT"):
            conn.execute(sa.text("SELECT pg_sleep(5)"))
        for _ in range(2 * SERVER_CONNECTIONS):  # SET LOCAL: no other client inherits the limit
            with pooled.connect() as conn:
                assert conn.execute(sa.text("SELECT current_setting('statement_timeout')")).scalar() == "0"
    finally:
        limited.dispose()


@pytest.mark.parametrize("use_pooler", ["", "false"])
def test_quick_search_goes_through_the_pooler_when_it_runs(bouncer: Settings, seeded_engine: Engine,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str], use_pooler: str) -> None:
    """``query search --format csv`` (plain libpq, no engine) finds the server as the engine does: through this
    home's PgBouncer while it runs unless GITINSIGHT_USE_POOLER=false, in one transaction-local setup."""
    from gitinsight_analytics.cli import common

    for key, value in {"GITINSIGHT_HOME": bouncer.home, "GITINSIGHT_PG_PORT": bouncer.pg_port,
                       "GITINSIGHT_POOLER_PORT": bouncer.pooler_port, "GITINSIGHT_USE_POOLER": use_pooler,
                       "GITINSIGHT_DB_NAME": seeded_engine.url.database, "GITINSIGHT_STATEMENT_TIMEOUT": "9"}.items():
        monkeypatch.setenv(key, str(value))
    with common.read_connection() as conn:
        assert conn.info.port == (bouncer.pg_port if use_pooler else bouncer.pooler_port)
        assert fetch(conn, "SELECT current_setting('statement_timeout')")[1] == [("9s",)]
    names = {}
    for fmt in ("csv", "json"):
        assert main(["query", "search", "--text", "a", "--limit", "5", "--format", fmt]) == 0
        out = capsys.readouterr().out
        names[fmt] = (pd.read_csv(io.StringIO(out)) if fmt == "csv" else pd.read_json(io.StringIO(out)))["full_name"]
    assert len(names["csv"]) == 5 and names["csv"].tolist() == names["json"].tolist()
    other = through(bouncer, seeded_engine)
    try:
        for _ in range(2 * SERVER_CONNECTIONS):  # set_config(..., true): no other client inherits the limit
            with other.connect() as conn:
                assert conn.execute(sa.text("SELECT current_setting('statement_timeout')")).scalar() == "0"
    finally:
        other.dispose()


def test_copy_load_through_the_pooler(pooled: Engine, seeded_engine: Engine) -> None:
    load_synthetic(pooled, scale="tiny", seed=42, progress=False)
    counts = "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM insights), (SELECT count(*) FROM audit_logs)"
    with pooled.connect() as through_pooler, seeded_engine.connect() as direct:
        assert through_pooler.execute(sa.text(counts)).one() == direct.execute(sa.text(counts)).one()
        assert through_pooler.execute(sa.text("SELECT count(*) FROM repository_stats")).scalar() > 0


def test_advisory_locked_import_through_the_pooler(pooled: Engine) -> None:
    first = import_github_ranking(pooled, [MINI], progress=False)
    again = import_github_ranking(pooled, [MINI], progress=False)
    assert first.snapshots_added > 0
    assert again.snapshots_added == 0 and again.files_skipped == first.files_read
    with pooled.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM repository_snapshots")).scalar() == first.snapshots_added


def test_report_run_through_the_pooler(bouncer: Settings, seeded_engine: Engine, tmp_path: Path) -> None:
    pooled = through(bouncer, seeded_engine)
    try:
        url = pooled.url.render_as_string(hide_password=False)
        result = runner.run_report("getting-started", {"search_text": "a"}, database_url=url,
                                   reports_dir=tmp_path, notebooks_dir=NOTEBOOKS, engine=pooled)
    finally:
        pooled.dispose()
    assert result.ok, result.error
    assert f":{bouncer.pooler_port}/" in url
