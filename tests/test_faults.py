"""Faults lose nothing (issue 12): real ``gitinsight`` processes on a real server, killed, raced, cut off from the
server or from disk space at known points (checkpoints: ``GITINSIGHT_TEST_PAUSE``, see
``gitinsight_analytics/checkpoints.py``), and what they leave behind checked."""

from __future__ import annotations

import json
import os
import re
import resource
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gitinsight_analytics import migrate, server
from gitinsight_analytics.backup.sets import create_backup, list_backups
from gitinsight_analytics.db import connect
from gitinsight_analytics.exceptions import DatabaseUnreachable, PoolExhausted
from gitinsight_analytics.reports.index import INTERRUPTED
from gitinsight_analytics.settings import Settings, load_settings

from . import factories
from .conftest import start_cluster
from .faults_support import (
    cli_environment,
    fingerprint,
    finish,
    gitinsight,
    kill_group,
    libpq,
    one_line_error,
    release,
    start_paused,
    wait_for,
)
from .reports_support import write_notebook

MINI = Path(__file__).parent / "data" / "github_ranking" / "mini"
OPERATIONS = ("freq = 'day'\nwindow_days = 30\nlimit = 10",)


def _notebooks(folder: Path, *body: str) -> Path:
    """Tiny stand-ins for the operations and dashboard reports (kernels start fast)."""
    write_notebook(folder / "operations.ipynb", OPERATIONS[0], *(body or ("print(freq)",)))
    write_notebook(folder / "dashboard.ipynb", "username = None", "print(username)")
    return folder


def _report_env(engine: Engine, tmp: Path, *body: str) -> dict[str, str]:
    return cli_environment(engine, tmp / "home", GITINSIGHT_REPORTS_DIR=str(tmp / "reports"),
                           GITINSIGHT_NOTEBOOKS_DIR=str(_notebooks(tmp / "nb", *body)))


def _runs(reports: Path) -> list[dict]:
    return [json.loads(p.read_text()) | {"_dir": p.parent} for p in sorted(reports.glob("*/*/run.json"))]


# ------------------------------------------------------------------ SIGKILL at a known point of each command


@dataclass
class Kill:
    """One command killed at a checkpoint: how to set it up, and what must hold after the kill and the rerun."""

    id: str
    point: str
    setup: Callable[[Engine, Path], tuple[list[str], dict[str, str]]]
    after_kill: Callable[[Engine, Path], None] = lambda engine, tmp: None
    after_rerun: Callable[[Engine, Path], None] = lambda engine, tmp: None
    #: Something still running for the killed command that must end by itself (e.g. its psql).
    settle: Callable[[Engine], None] = lambda engine: None
    extra: dict = field(default_factory=dict)


def _plain(engine: Engine, tmp: Path) -> dict[str, str]:
    return cli_environment(engine, tmp / "home")


def _no_sets(engine: Engine, tmp: Path) -> None:
    assert list_backups(tmp / "sets") == []
    assert list((tmp / "sets").glob(".gitinsight_*.partial"))  # the killed writer's staging folder, hidden
    code, out, _ = finish(gitinsight(["backup", "list", "--dir", str(tmp / "sets")], _plain(engine, tmp)))
    assert code == 0 and out.startswith("no backup sets"), out


def _one_set(engine: Engine, tmp: Path) -> None:
    assert len(list_backups(tmp / "sets")) == 1
    assert sorted(p.name for p in (tmp / "sets").iterdir() if p.name.startswith(".")) == []  # staging removed


def _restore_setup(engine: Engine, tmp: Path) -> tuple[list[str], dict[str, str]]:
    made = create_backup(engine, tmp / "sets")
    with engine.begin() as conn:  # the database now differs from the backup
        conn.execute(sa.text("DELETE FROM user_repository_follows"))
    return ["backup", "restore", str(made.path), "--force"], _plain(engine, tmp)


def _psql_gone(engine: Engine) -> None:
    """The killed restore's psql ends by itself when its input ends (without a COMMIT: rolled back)."""
    def gone() -> bool:
        with psycopg.connect(libpq(engine), autocommit=True) as conn:
            return conn.execute("SELECT count(*) = 0 FROM pg_stat_activity WHERE datname = current_database() "
                                "AND application_name = 'psql'").fetchone()[0]
    wait_for(gone, "the killed restore's psql to end", timeout=60)


def _restored(engine: Engine, tmp: Path) -> None:
    (made,) = list_backups(tmp / "sets")
    found, expected = fingerprint(engine)["tables"], made.tables
    assert found.pop("audit_logs").rows == expected.pop("audit_logs").rows + 1  # the restore's own audit row
    assert found == expected


def _report_killed(engine: Engine, tmp: Path) -> None:
    (run,) = _runs(tmp / "reports")
    assert run["status"] == "running"  # on disk, until the next command looks


def _report_recovered(engine: Engine, tmp: Path) -> None:
    runs = sorted(_runs(tmp / "reports"), key=lambda r: r["started_at"])
    assert [r["status"] for r in runs] == ["failed", "succeeded"], runs
    assert runs[0]["error"] == INTERRUPTED and not list(runs[0]["_dir"].glob(".*.ipynb"))
    index = (tmp / "reports" / "index.html").read_text()
    assert 'class="status running"' not in index and index.count('class="status failed"') == 1


def _kernel_busy(tmp: Path) -> str:
    marker = tmp / "kernel-busy"
    return f"import pathlib, time\npathlib.Path({str(marker)!r}).touch()\ntime.sleep(120)"


KILLS = [
    Kill("seed", "load.copied",
         lambda e, t: (["seed", "--scale", "tiny", "--seed", "7", "--replace"], _plain(e, t))),
    Kill("import", "import.written",
         lambda e, t: (["import", "github-ranking", str(MINI), "--no-progress"], _plain(e, t))),
    Kill("backup-create", "backup.dumped",
         lambda e, t: (["backup", "create", "--dir", str(t / "sets")], _plain(e, t)),
         after_kill=_no_sets, after_rerun=_one_set),
    Kill("backup-restore", "restore.sent", _restore_setup, settle=_psql_gone, after_rerun=_restored),
    Kill("report-run", "report.started",
         lambda e, t: (["report", "run", "operations"], _report_env(e, t)),
         after_kill=_report_killed, after_rerun=_report_recovered),
]


@pytest.mark.parametrize("case", [pytest.param(k, id=k.id, marks=[pytest.mark.slow] if k.id == "report-run" else [])
                                  for k in KILLS])
def test_sigkill_changes_nothing_and_the_next_run_succeeds(case: Kill, seeded_engine: Engine, tmp_path: Path) -> None:
    argv, env = case.setup(seeded_engine, tmp_path)
    before = fingerprint(seeded_engine)
    proc = start_paused(argv, env, case.point, tmp_path / "pause")
    try:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        case.settle(seeded_engine)
        assert fingerprint(seeded_engine) == before
        case.after_kill(seeded_engine, tmp_path)
    finally:
        kill_group(proc)
        proc.communicate()
    code, out, err = finish(gitinsight(argv, env))
    assert code == 0, err[-3000:]
    case.after_rerun(seeded_engine, tmp_path)


@pytest.mark.slow  # report processes with their kernels
def test_a_report_killed_while_its_kernel_works(seeded_engine: Engine, tmp_path: Path) -> None:
    """Killed mid-notebook (no checkpoint: the notebook itself says when): the run is recorded as failed."""
    env = _report_env(seeded_engine, tmp_path, _kernel_busy(tmp_path))
    proc = gitinsight(["report", "run", "operations"], env)
    try:
        wait_for((tmp_path / "kernel-busy").exists, "the kernel to run the notebook", proc=proc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        kill_group(proc)  # the orphaned kernel
        proc.communicate()
    code, out, err = finish(gitinsight(["report", "prune"], env))
    assert code == 0, err
    (run,) = _runs(tmp_path / "reports")
    assert run["status"] == "failed" and run["error"] == INTERRUPTED
    assert 'class="status running"' not in (tmp_path / "reports" / "index.html").read_text()


# ------------------------------------------------------------------ concurrency


@pytest.mark.slow  # report processes with their kernels
def test_two_report_due_at_once_and_other_commands_meanwhile(seeded_engine: Engine, tmp_path: Path) -> None:
    """One `report due` runs, the other says the lock is held; `report all` and `prune` while it holds the lock
    leave a consistent index: every run on disk listed once, none `running`."""
    env = _report_env(seeded_engine, tmp_path)
    reports = tmp_path / "reports"
    old = reports / "operations" / "20200101T000000000Z-aaaaaa"  # a run prune removes
    old.mkdir(parents=True)
    (old / "run.json").write_text(json.dumps({"name": "operations", "run_id": old.name, "status": "succeeded",
                                              "parameters": {}, "started_at": "2020-01-01T00:00:00Z"}))
    schedule = tmp_path / "schedule.yml"
    schedule.write_text("reports:\n  - id: ops\n    report: operations\n    every: 1h\n")
    pause = tmp_path / "pause"
    paused = {**env, "GITINSIGHT_TEST_PAUSE": f"due.locked:{pause}"}
    pair = [gitinsight(["report", "due", "--schedule", str(schedule)], paused) for _ in range(2)]
    try:
        wait_for(lambda: (pause / "due.locked.reached").exists() and any(p.poll() is not None for p in pair),
                 "one `report due` to hold the lock and the other to give up")
        (loser,) = [p for p in pair if p.poll() is not None]
        (winner,) = [p for p in pair if p is not loser]
        code, out, err = finish(loser)
        assert code == 0 and "another `gitinsight report due` run holds the lock" in out, (out, err)
        others = [gitinsight(["report", "all"], env), gitinsight(["report", "prune", "--days", "30"], env)]
        for proc in others:
            code, out, err = finish(proc)
            assert code == 0, err[-3000:]
        release(pause, "due.locked")
        code, out, err = finish(winner)
        assert code == 0, err[-3000:]
    finally:
        for proc in pair:
            kill_group(proc)
    runs = _runs(reports)
    assert sorted(r["name"] for r in runs) == ["dashboard", "operations", "operations"]
    assert all(r["status"] == "succeeded" for r in runs) and not old.exists()
    index = (reports / "index.html").read_text()
    listed = re.findall(r'<table id="runs">.*</table>', index, re.S)[0]
    assert sorted(re.findall(r"<code>(\d{8}T\d{9}Z-[0-9a-f]{6})</code>", listed)) == sorted(r["run_id"] for r in runs)
    assert json.loads((reports / ".schedule-state.json").read_text())["ops"]["status"] == "succeeded"


def test_two_key_creates_at_once_make_one_active_key(engine: Engine, tmp_path: Path) -> None:
    """Both pass the check in Python (paused right after it); the unique index lets one in."""
    with engine.begin() as conn:
        factories.user(conn, "alice")
    env = _plain(engine, tmp_path)
    argv = ["keys", "create", "alice", "--name", "ci"]
    pair = [start_paused(argv, env, "keys.checked", tmp_path / f"pause{n}") for n in range(2)]
    for n in range(2):
        release(tmp_path / f"pause{n}", "keys.checked")
    results = sorted(finish(p) for p in pair)
    assert [code for code, _, _ in results] == [0, 2], results
    assert "already has an active key named 'ci'" in one_line_error(results[1][2])
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM api_keys WHERE name = 'ci' AND is_active")).scalar() == 1


def test_the_database_refuses_a_second_active_key_of_a_name(engine: Engine) -> None:
    with engine.begin() as conn:
        owner = factories.user(conn, "alice")
    insert = sa.text("INSERT INTO api_keys (user_id, name, key_hash, is_active) VALUES (:u, 'ci', :h, :a)")
    with engine.begin() as conn:
        conn.execute(insert, {"u": owner, "h": "h1", "a": True})
        conn.execute(insert, {"u": owner, "h": "h2", "a": False})  # a revoked one may share the name
    with pytest.raises(sa.exc.IntegrityError, match="uq_api_keys_user_name_active"), engine.begin() as conn:
        conn.execute(insert, {"u": owner, "h": "h3", "a": True})


# ------------------------------------------------------------------ the server stopped mid-command


@pytest.fixture(scope="module")
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A server of this module's own, stopped and started by the tests (the session's keeps running)."""
    settings = start_cluster(tmp_path_factory.mktemp("faults-pg"))
    yield settings
    server.stop(settings)


def _server_env(settings: Settings) -> dict[str, str]:
    return cli_environment(None, settings.home, GITINSIGHT_PG_PORT=str(settings.pg_port),
                           GITINSIGHT_POOL_TIMEOUT="3")


def test_server_stopped_mid_command_then_started(own_server: Settings, tmp_path: Path) -> None:
    env = _server_env(own_server)
    engine = connect(load_settings(env), start=False, pooled=False)
    migrate.upgrade(engine)
    engine.dispose()
    proc = start_paused(["seed", "--scale", "tiny"], env, "load.copied", tmp_path / "pause")
    try:
        server.stop(own_server)
        release(tmp_path / "pause", "load.copied")
        code, _, err = finish(proc)
    finally:
        kill_group(proc)
    assert code != 0 and "lost the database connection" in one_line_error(err)
    for argv in (["db", "start"], ["seed", "--scale", "tiny"]):
        code, out, err = finish(gitinsight(argv, env))
        assert code == 0, err[-3000:]


def test_the_pool_recovers_when_the_server_comes_back(own_server: Settings) -> None:
    """Pre-ping: connections that died with the server are replaced, the same engine works again."""
    settings = load_settings(_server_env(own_server))
    server.start(settings)
    engine = connect(settings, start=False, pooled=False)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar() == 1
        server.stop(settings)
        with pytest.raises((DatabaseUnreachable, PoolExhausted, sa.exc.OperationalError)), engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        server.start(settings)
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()
        server.start(settings)


# ------------------------------------------------------------------ a full disk (a file size limit)


def _file_limit(size: int) -> Callable[[], None]:
    """A child's RLIMIT_FSIZE: writing past ``size`` bytes fails (EFBIG, or SIGXFSZ for pg_dump) like ENOSPC."""
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))


def test_a_full_disk_while_writing_a_backup_leaves_nothing(seeded_engine: Engine, tmp_path: Path) -> None:
    sets = tmp_path / "sets"
    sets.mkdir()
    proc = gitinsight(["backup", "create", "--dir", str(sets)], _plain(seeded_engine, tmp_path),
                      preexec_fn=_file_limit(64 * 1024))
    code, out, err = finish(proc)
    assert code == 1 and "backup failed, nothing written" in one_line_error(err)
    assert list(sets.iterdir()) == []  # no set, no staging folder


@pytest.mark.slow  # report processes with their kernels
def test_a_full_disk_while_writing_a_report_leaves_nothing_partial(seeded_engine: Engine, tmp_path: Path) -> None:
    env = _report_env(seeded_engine, tmp_path, "print('x' * 3_000_000)")
    code, out, err = finish(gitinsight(["report", "run", "operations"], env, preexec_fn=_file_limit(1 << 20)))
    assert code == 1 and "report operations failed" in one_line_error(err)
    (run,) = _runs(tmp_path / "reports")
    assert run["status"] == "failed" and "File too large" in run["error"], run
    assert sorted(p.name for p in run["_dir"].iterdir()) == ["kernel.log", "run.json"]
    assert 'class="status failed"' in (tmp_path / "reports" / "index.html").read_text()
    code, out, err = finish(gitinsight(["report", "run", "operations"], env))  # with room again: fine
    assert code == 0, err[-3000:]

