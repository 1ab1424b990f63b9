"""The embedded server: lifecycle across processes and the clear errors the issue lists (settings: test_settings)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from gitinsight_analytics import server
from gitinsight_analytics.cli import main
from gitinsight_analytics.db import check_server, make_engine
from gitinsight_analytics.exceptions import (
    DatabaseUnreachable,
    DataDirectoryInUse,
    PortInUse,
    ServerTooOld,
)
from gitinsight_analytics.pgproc import free_port
from gitinsight_analytics.settings import load_settings


def _env(home: Path, port: int) -> dict[str, str]:
    return {"GITINSIGHT_HOME": str(home), "GITINSIGHT_PG_PORT": str(port)}


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"} | env
    return subprocess.run([sys.executable, "-m", "gitinsight_analytics.cli", *args], env=full,
                          capture_output=True, text=True, timeout=120)


def test_server_outlives_the_process_that_started_it(tmp_path: Path) -> None:
    env = _env(tmp_path / "home", free_port())
    started = _cli(env, "db", "start")
    assert started.returncode == 0, started.stderr
    assert "running" in started.stdout
    settings = load_settings(env)
    try:
        state = server.status(settings)  # another process, after the starter exited
        assert state.running and state.port == settings.pg_port
        url = _cli(env, "db", "url").stdout.strip()
        assert url == f"postgresql://postgres@127.0.0.1:{settings.pg_port}/gitinsight"
        with make_engine(url).connect() as conn:
            assert conn.execute(sa.text("SELECT current_database()")).scalar() == "gitinsight"
        again = _cli(env, "db", "start")  # idempotent
        assert again.returncode == 0 and str(state.pid) in again.stdout
    finally:
        stopped = _cli(env, "db", "stop")
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    status = _cli(env, "db", "status")
    assert status.returncode == 3 and "stopped" in status.stdout


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(PortInUse, match=f"port {port} .* in use.*GITINSIGHT_PG_PORT"):
            server.start(load_settings(_env(tmp_path, port)))
    assert not (tmp_path / "pgdata" / "PG_VERSION").exists()  # nothing initialised before the check


def test_data_directory_owned_by_another_running_server(pg) -> None:
    other = load_settings({"GITINSIGHT_HOME": str(pg.home), "GITINSIGHT_PG_PORT": str(free_port())})
    with pytest.raises(DataDirectoryInUse, match=rf"owned by another running server .*port {pg.pg_port}"):
        server.start(other)
    assert server.status(pg).running


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://nobody:secret@127.0.0.1:{port}/nowhere",
        "postgresql+psycopg://nobody@127.0.0.1:{port}/nowhere",
    ],
)
def test_unreachable_database_url(url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    url = url.format(port=free_port())
    with pytest.raises(DatabaseUnreachable, match="cannot connect to"):
        check_server(make_engine(url))
    monkeypatch.setenv("DATABASE_URL", url)
    assert main(["db", "upgrade"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot connect to") and err.count("\n") == 1
    assert "secret" not in err  # the password is redacted


def test_binaries_older_than_15_are_refused(tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "postgres"
    fake.write_text("#!/bin/sh\necho 'postgres (PostgreSQL) 14.11'\n")
    fake.chmod(0o755)
    settings = load_settings({"GITINSIGHT_HOME": str(tmp_path / "home"), "GITINSIGHT_PG_BINDIR": str(bindir)})
    with pytest.raises(ServerTooOld, match=r"14\.11 .* too old \(allowed: PostgreSQL 15 or newer\)"):
        server.start(settings)


def test_server_version_is_checked(engine) -> None:
    assert check_server(engine) >= 150000


def test_the_server_is_found_by_its_process_name(pg, tmp_path: Path) -> None:
    """``postmaster`` reads the pid file and checks the process is PostgreSQL (the name psutil gives, read without
    importing psutil on Linux); a pid file left by a crash and naming another process is not a server."""
    import psutil

    from gitinsight_analytics.pgproc import postmaster, process_name

    pid, port = postmaster(pg.pgdata) or (0, 0)
    assert port == pg.pg_port and process_name(pid) == psutil.Process(pid).name() and "postgres" in process_name(pid)
    assert process_name(os.getpid()) == psutil.Process().name()
    stale = tmp_path / "pgdata"
    stale.mkdir()
    (stale / "postmaster.pid").write_text(f"{os.getpid()}\n{stale}\n0\n{pg.pg_port}\n")  # this pytest process
    assert postmaster(stale) is None
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    assert process_name(int(dead.stdout)) is None
