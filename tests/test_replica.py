"""The streaming read replica (issue 10, item 5): `gitinsight db replica`, reads through GITINSIGHT_READ_URL,
reports rendered from the replica, writes kept on the primary."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from gitinsight_analytics import migrate, replica, server
from gitinsight_analytics.cli import main
from gitinsight_analytics.db import connect, make_engine, sqlalchemy_url
from gitinsight_analytics.exceptions import ReplicaLagging
from gitinsight_analytics.pgproc import free_port
from gitinsight_analytics.reports import runner
from gitinsight_analytics.settings import Settings, load_settings

from . import factories
from .conftest import SMALL_POOL

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
Cli = Callable[..., tuple[int, str, str]]


def _env(home: Path, port: int, replica_port: int) -> dict[str, str]:
    return {"GITINSIGHT_HOME": str(home), "GITINSIGHT_PG_PORT": str(port), "GITINSIGHT_REPLICA_PORT": str(replica_port)}


def _sql(url: str, query: str, *params: object) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(query, params)  # type: ignore[arg-type]
        return cursor.fetchall() if cursor.description else []


def _dead_url() -> str:
    """A URL where nothing listens: a primary that cannot have served what succeeded."""
    return f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/gitinsight"


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    """Outside /tmp/pytest-of-root (mode 0700 there: the servers' system user must reach the data)."""
    folder = Path(tempfile.mkdtemp(prefix="gitinsight-replica-"))
    folder.chmod(0o755)
    yield folder
    subprocess.Popen(["rm", "-rf", str(folder)], start_new_session=True)


@pytest.fixture(scope="module")
def cluster(workdir: Path) -> Iterator[tuple[Settings, replica.StartResult, str]]:
    """A primary of its own (migrated, tiny data set) and its replica: (settings, start result, wal_level before)."""
    settings = load_settings(_env(workdir / "home", free_port(), free_port()))
    try:
        server.start(settings)
        engine = make_engine(sqlalchemy_url(server.server_url(settings)), pool=SMALL_POOL)
        migrate.upgrade(engine)
        from gitinsight_analytics.seed import load_synthetic

        load_synthetic(engine, scale="tiny", seed=42, progress=False)
        engine.dispose()
        before = _sql(server.server_url(settings), "SHOW wal_level")[0][0]
        yield settings, replica.start(settings), before
    finally:
        with contextlib.suppress(Exception):
            replica.stop(settings, remove=True)
        server.stop(settings)


@pytest.fixture
def settings(cluster: tuple[Settings, replica.StartResult, str]) -> Settings:
    """The cluster's settings with GITINSIGHT_READ_URL pointing at the replica; the replica running."""
    base = cluster[0]
    if not replica.status(base).running:  # a test that failed half-way may have left it stopped
        replica.start(base)
    env = _env(base.home, base.pg_port, replica.replica_port(base))
    return load_settings(env | {"GITINSIGHT_READ_URL": replica.replica_url(base)})


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> Cli:
    """Run ``gitinsight ARGS`` in-process with ``env`` set: (exit code, stdout, stderr)."""

    def run(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
        for key in ("DATABASE_URL", "GITINSIGHT_READ_URL"):
            monkeypatch.delenv(key, raising=False)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def _new_repository(settings: Settings) -> str:
    """Commit a repository with a unique name on the primary; return its name."""
    name = f"replica-probe-{uuid.uuid4().hex[:10]}"
    engine = make_engine(sqlalchemy_url(server.server_url(settings)), pool=SMALL_POOL)
    with engine.begin() as conn:
        factories.repository(conn, factories.user(conn), name=name, description="written on the primary")
    engine.dispose()
    return name


def test_start_switches_the_primary_to_streaming_and_clones_it(cluster: tuple[Settings, replica.StartResult, str]
                                                              ) -> None:
    settings, started, before = cluster
    assert before == "minimal"
    assert started.actions[0].startswith("restarted the primary with wal_level=replica")
    assert started.actions[1].startswith(f"cloned the primary into {settings.replica_dir}")
    assert _sql(server.server_url(settings), "SHOW wal_level")[0][0] == "replica"
    state = started.status
    assert state.running and state.in_recovery and state.state == "streaming" and state.slot is not None
    assert state.port == replica.replica_port(settings) != settings.pg_port
    assert _sql(replica.replica_url(settings), "SELECT pg_is_in_recovery()")[0][0] is True


@pytest.mark.parametrize("reader", ["connect(read=True)", "gitinsight query search"])
def test_written_on_the_primary_read_on_the_replica(settings: Settings, cli: Cli, reader: str) -> None:
    name = _new_repository(settings)
    assert replica.wait_for_replay(server.server_url(settings), replica.replica_url(settings), timeout=30)
    if reader == "connect(read=True)":
        engine = connect(settings, read=True)
        try:
            with engine.connect() as conn:
                assert conn.execute(sa.text("SELECT pg_is_in_recovery()")).scalar_one() is True
            from gitinsight_analytics import queries

            found = queries.search_repositories(engine, text=name)
        finally:
            engine.dispose()
        assert found["name"].tolist() == [name]
    else:  # the primary is unreachable for the CLI: only reads through GITINSIGHT_READ_URL can succeed
        env = {"DATABASE_URL": _dead_url(), "GITINSIGHT_READ_URL": replica.replica_url(settings)}
        code, out, err = cli("query", "search", "--text", name, "--format", "json", env=env)
        assert code == 0, err
        assert [row["name"] for row in json.loads(out)] == [name]


def test_writes_keep_the_primary(settings: Settings, cli: Cli) -> None:
    primary = connect(settings)
    try:
        with primary.connect() as conn:
            assert conn.execute(sa.text("SELECT pg_is_in_recovery()")).scalar_one() is False
    finally:
        primary.dispose()
    read = connect(settings, read=True)
    try:
        with pytest.raises(sa.exc.InternalError, match="read-only transaction"), read.begin() as conn:
            conn.execute(sa.text("CREATE TABLE not_here (id int)"))
    finally:
        read.dispose()
    env = {"DATABASE_URL": _dead_url(), "GITINSIGHT_READ_URL": replica.replica_url(settings)}
    code, _, err = cli("refresh", env=env)  # a write: goes to the (dead) primary, never to the replica
    assert code != 0 and "cannot connect" in err


def test_report_renders_from_the_replica(settings: Settings, tmp_path: Path) -> None:
    """The kernel gets a dead DATABASE_URL and the replica as GITINSIGHT_READ_URL: the report can only succeed by
    reading the replica, whose own statistics count the transactions it served."""
    replica_url = replica.replica_url(settings)

    def served() -> int:
        return _sql(replica_url, "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")[0][0]

    before = served()
    read_engine = make_engine(sqlalchemy_url(replica_url), pool=SMALL_POOL)
    try:
        result = runner.run_report("repository_stats", {}, database_url=_dead_url(), read_url=replica_url,
                                   reports_dir=tmp_path, notebooks_dir=NOTEBOOKS, engine=read_engine)
    finally:
        read_engine.dispose()
    assert result.ok, result.error
    assert result.html.stat().st_size > 100_000
    assert "127.0.0.1" not in result.notebook.read_text()  # both URLs scrubbed
    _sql(replica_url, "SELECT pg_stat_force_next_flush()")
    assert served() > before


def test_lag_is_shown_and_waited_for(settings: Settings) -> None:
    """Replay paused on the replica: status shows the bytes behind, catch_up gives up with a one-line error;
    resumed: it catches up and the lag is zero."""
    primary_url, replica_url = server.server_url(settings), replica.replica_url(settings)
    _sql(replica_url, "SELECT pg_wal_replay_pause()")
    try:
        _new_repository(settings)
        behind = replica.status(settings)
        assert behind.lag_bytes is not None and behind.lag_bytes > 0
        assert f"lag {behind.lag_bytes} bytes" in behind.describe()
        with pytest.raises(ReplicaLagging, match="has replayed WAL up to .* only, the primary is at"):
            runner.catch_up(sqlalchemy_url(primary_url), sqlalchemy_url(replica_url), timeout=1)
    finally:
        _sql(replica_url, "SELECT pg_wal_replay_resume()")
    runner.catch_up(sqlalchemy_url(primary_url), sqlalchemy_url(replica_url), timeout=30)
    assert replica.status(settings).lag_bytes == 0
    assert replica.wait_for_replay(primary_url, primary_url) is None  # not a standby: nothing to wait for


def test_cli_stop_keeps_the_data_and_start_resumes(settings: Settings, cli: Cli) -> None:
    env = _env(settings.home, settings.pg_port, replica.replica_port(settings))
    code, out, _ = cli("db", "replica", "stop", env=env)
    assert code == 0
    assert "stopped the replica" in out and f"kept its data directory {settings.replica_dir}" in out
    assert (settings.replica_dir / "PG_VERSION").exists()
    code, out, _ = cli("db", "replica", "status", env=env)
    assert code == 3 and "replica stopped" in out and "resumes it" in out
    code, out, _ = cli("db", "replica", "stop", env=env)
    assert code == 0 and "the replica was not running" in out
    assert server.status(settings).running  # the primary is never stopped by it
    code, out, err = cli("db", "replica", "start", env=env)
    assert code == 0, err
    assert "resumed the replica" in out and "restarted the primary" not in out
    assert f"export GITINSIGHT_READ_URL={replica.replica_url(settings)}" in out
    code, out, _ = cli("db", "replica", "status", env=env)
    assert code == 0 and "hot standby" in out and "streaming" in out


def test_remove_and_a_lost_slot_clone_afresh(workdir: Path, cli: Cli) -> None:
    """Own small primary: a dropped slot makes start clone anew; stop --remove deletes dir, slot and settings."""
    env = _env(workdir / uuid.uuid4().hex[:8], free_port(), free_port())
    settings = load_settings(env)
    try:
        server.start(settings)
        replica.start(settings)
        replica.stop(settings)
        _sql(server.server_url(settings), "SELECT pg_drop_replication_slot(%s)", replica.SLOT)
        again = replica.start(settings)
        assert any("slot gitinsight_replica missing" in line for line in again.actions)
        assert any(line.startswith("cloned the primary") for line in again.actions)
        assert again.status.state == "streaming"
        code, out, err = cli("db", "replica", "stop", "--remove", env=env)
        assert code == 0, err
        assert f"removed {settings.replica_dir}" in out and "dropped the primary's replication slot" in out
        assert "back to wal_level=minimal at its next restart" in out
        assert not settings.replica_dir.exists()
        assert not (settings.pgdata / replica.REPLICATION_CONF).exists()
        assert _sql(server.server_url(settings), "SELECT count(*) FROM pg_replication_slots")[0][0] == 0
    finally:
        with contextlib.suppress(Exception):
            replica.stop(settings, remove=True)
        server.stop(settings)


@pytest.mark.parametrize(("argv", "extra", "code", "message"), [
    (["db", "replica", "start"], {"DATABASE_URL": "postgresql://u@h/db"}, 2,
     "DATABASE_URL is set: `gitinsight db replica` replicates the embedded server only"),
    (["db", "replica", "start"], {"GITINSIGHT_REPLICA_PORT": "PG"}, 2, "is the primary's port"),
    (["db", "replica", "status"], {"GITINSIGHT_REPLICA_PORT": "80"}, 2,
     "GITINSIGHT_REPLICA_PORT=80 is out of range (allowed: 1024..65535)"),
    (["query", "search"], {"GITINSIGHT_READ_URL": "mysql://u@h/db"}, 2,
     "GITINSIGHT_READ_URL uses 'mysql' (allowed: postgresql://"),
    (["db", "replica", "start"], {"FOREIGN_DIR": "1"}, 1, "was not made by `gitinsight db replica start`"),
    (["db", "replica", "start"], {"GITINSIGHT_REPLICA_PORT": "BUSY"}, 2,
     "is in use (set GITINSIGHT_REPLICA_PORT to a free port, 1024..65535)"),
])
def test_refusals_are_one_line(tmp_path: Path, cli: Cli, argv: list[str], extra: dict[str, str], code: int,
                               message: str) -> None:
    port = free_port()
    env = _env(tmp_path / "home", port, free_port()) | extra
    if env["GITINSIGHT_REPLICA_PORT"] == "PG":
        env["GITINSIGHT_REPLICA_PORT"] = str(port)
    if env.pop("FOREIGN_DIR", None):
        (tmp_path / "home" / "replica").mkdir(parents=True)
        (tmp_path / "home" / "replica" / "mine.txt").write_text("keep me")
    with socket.socket() as busy:
        if env["GITINSIGHT_REPLICA_PORT"] == "BUSY":
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            env["GITINSIGHT_REPLICA_PORT"] = str(busy.getsockname()[1])
        got, out, err = cli(*argv, env=env)
    assert got == code and message in err and len(err.strip().splitlines()) == 1, (out, err)
    assert not (tmp_path / "home" / "pgdata").exists()  # nothing started, nothing half-written
    if (tmp_path / "home" / "replica").exists():
        assert (tmp_path / "home" / "replica" / "mine.txt").read_text() == "keep me"


def test_status_and_url_without_a_replica(tmp_path: Path, cli: Cli) -> None:
    env = _env(tmp_path / "home", free_port(), free_port())
    code, out, _ = cli("db", "replica", "status", env=env)
    assert code == 3 and "replica stopped" in out and "creates it" in out
    code, out, _ = cli("db", "replica", "url", env=env)
    assert code == 0 and out.strip() == f"postgresql://postgres@127.0.0.1:{env['GITINSIGHT_REPLICA_PORT']}/gitinsight"
    code, out, _ = cli("db", "replica", "stop", env=env)
    assert code == 0 and out.strip() == "the replica was not running"


def test_report_commands_wait_for_the_read_url(settings: Settings, cli: Cli, tmp_path: Path) -> None:
    """`report run` checks the read URL has replayed the primary's writes before a kernel starts: an unreachable
    read URL is a one-line error, and no run is written."""
    dead = _dead_url().replace("+psycopg", "")
    env = _env(settings.home, settings.pg_port, replica.replica_port(settings)) | {
        "GITINSIGHT_READ_URL": dead, "GITINSIGHT_REPORTS_DIR": str(tmp_path / "reports")}
    code, _, err = cli("report", "run", "repository_stats", env=env)
    assert code == 1 and err.startswith(f"error: cannot connect to {dead}") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "reports" / "repository_stats").exists()


@pytest.mark.parametrize("read_url", [None, "postgresql://postgres@127.0.0.1:5/replica"])
def test_kernels_and_lab_get_the_read_url(read_url: str | None) -> None:
    from gitinsight_analytics.reports.lab import lab_command

    primary = "postgresql://postgres@127.0.0.1:4/primary"
    stale = {"GITINSIGHT_READ_URL": "postgresql://x@elsewhere/db"}
    assert runner.kernel_env(primary, read_url)["GITINSIGHT_READ_URL"] == (read_url or primary)
    _, env = lab_command(primary, NOTEBOOKS, base_env=stale, read_url=read_url)
    assert env["DATABASE_URL"] == primary and env["GITINSIGHT_READ_URL"] == (read_url or primary)
