"""Point-in-time recovery of the embedded cluster (issue 6): the drill, the archiving switch, the refusals."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from gitinsight_analytics import archiving, migrate, server
from gitinsight_analytics.cli import main
from gitinsight_analytics.db import make_engine, sqlalchemy_url
from gitinsight_analytics.pgproc import free_port, postmaster
from gitinsight_analytics.pitr import recover as pitr
from gitinsight_analytics.pitr.base import BaseBackup, base_backups
from gitinsight_analytics.settings import Settings, load_settings

from .conftest import SMALL_POOL

Cli = Callable[..., tuple[int, str, str]]


def _settings(home: Path, **env: str) -> Settings:
    return load_settings({"GITINSIGHT_HOME": str(home), "GITINSIGHT_PG_PORT": str(free_port()), **env})


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    """Homes and recovered clusters live here, not under /tmp/pytest-of-root: a pytest run started meanwhile
    (another shell) sets that folder back to mode 0700, and the server's system user could no longer reach them."""
    folder = Path(tempfile.mkdtemp(prefix="gitinsight-pitr-"))
    folder.chmod(0o755)
    yield folder
    # Deleting freshly fsynced clusters takes seconds on a discard-mounted disk: let it finish in the background.
    subprocess.Popen(["rm", "-rf", str(folder)], start_new_session=True)


@pytest.fixture
def tmp(workdir: Path) -> Path:
    """A new folder of this test in ``workdir``."""
    folder = workdir / uuid.uuid4().hex[:12]
    folder.mkdir()
    return folder


@pytest.fixture(scope="module")
def archived(workdir: Path) -> Iterator[tuple[Settings, BaseBackup]]:
    """A cluster of its own, archiving from its first start (the setting), migrated, with one base backup taken
    by `gitinsight backup base`."""
    settings = _settings(workdir / "home", GITINSIGHT_WAL_ARCHIVE="true")
    try:
        assert server.start(settings).archiving is True
        engine = make_engine(sqlalchemy_url(server.server_url(settings)), pool=SMALL_POOL)
        migrate.upgrade(engine)  # audit_logs, for the audit rows of the commands
        engine.dispose()
        _sql(settings, "CREATE TABLE probe (label text PRIMARY KEY)")
        with pytest.MonkeyPatch.context() as env:
            env.setenv("GITINSIGHT_HOME", str(settings.home))
            env.setenv("GITINSIGHT_PG_PORT", str(settings.pg_port))
            assert main(["backup", "base"]) == 0
        yield settings, base_backups(settings.base_backups_dir)[-1]
    finally:
        server.stop(settings)


def _sql(settings: Settings, query: str, *params: object, url: str | None = None) -> list[tuple]:
    with psycopg.connect(url or server.server_url(settings), autocommit=True) as conn:
        cursor = conn.execute(query, params)  # type: ignore[arg-type]
        return cursor.fetchall() if cursor.description else []


def _write(settings: Settings, labels: list[str]) -> dt.datetime:
    """Commit ``labels`` into probe; return the server's clock after the commit."""
    _sql(settings, "INSERT INTO probe SELECT unnest(%s::text[])", labels)
    return _sql(settings, "SELECT clock_timestamp()")[0][0]


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, archived: tuple[Settings, BaseBackup]) -> Cli:
    """Run ``gitinsight ARGS`` in-process against the archiving cluster: (exit code, stdout, stderr)."""

    def run(*args: str, settings: Settings = archived[0]) -> tuple[int, str, str]:
        monkeypatch.setenv("GITINSIGHT_HOME", str(settings.home))
        monkeypatch.setenv("GITINSIGHT_PG_PORT", str(settings.pg_port))
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def recovered(archived: tuple[Settings, BaseBackup]) -> Iterator[list[Path]]:
    """Folders of recovered clusters; their servers are stopped after the test."""
    made: list[Path] = []
    yield made
    for folder in made:
        with contextlib.suppress(Exception):
            pitr.stop_recovered(archived[0], folder)


def _audit(settings: Settings, action: str) -> list[dict]:
    rows = _sql(settings, "SELECT details FROM audit_logs WHERE action = %s ORDER BY created_at", action)
    return [row[0] for row in rows]


def test_drill_recovers_exactly_the_rows_written_before_the_target(
    archived: tuple[Settings, BaseBackup], cli: Cli, recovered: list[Path], tmp: Path
) -> None:
    settings, backup = archived
    record = json.loads((settings.base_backups_dir / f"{backup.name}.json").read_text())
    assert record["finished_at"] > record["started_at"] and (backup.path / "backup_manifest").exists()
    assert _audit(settings, "backup.base")[-1] | {"base_backup": backup.name, "outcome": "ok"} == \
        _audit(settings, "backup.base")[-1]

    tag = uuid.uuid4().hex
    first = [f"{tag}-a{i}" for i in range(5)]
    target_time = _write(settings, first)
    time.sleep(1.1)
    _write(settings, [f"{tag}-b{i}" for i in range(5)])

    target = tmp / "recovered"
    recovered.append(target)
    code, out, err = cli("backup", "pitr", "--to", target_time.isoformat(), "--target", str(target))
    assert code == 0, err
    assert f"from base backup {backup.name}" in out and "recovery stopping before commit" in out
    url = next(line for line in out.splitlines() if line.startswith("postgresql://"))
    rows = _sql(settings, "SELECT label FROM probe WHERE label LIKE %s", f"{tag}%", url=url)
    assert sorted(label for (label,) in rows) == sorted(first)
    assert len(_sql(settings, "SELECT 1 FROM probe WHERE label LIKE %s", f"{tag}%")) == 10  # live: untouched
    assert _sql(settings, "SHOW archive_mode", url=url) == [("off",)]  # never writes into the live archive

    assert _audit(settings, "backup.pitr")[-1]["base_backup"] == backup.name
    code, out, _ = cli("backup", "pitr-stop", str(target))
    assert code == 0 and "stopped" in out and postmaster(target) is None


def test_a_target_after_the_last_write_is_reached(archived: tuple[Settings, BaseBackup], recovered: list[Path],
                                                  tmp: Path) -> None:
    """No commit after the target in the WAL yet: recover() commits one and archives it first."""
    settings, _ = archived
    tag = uuid.uuid4().hex
    target_time = _write(settings, [f"{tag}-only"])
    recovered.append(tmp / "r")
    naive_utc = target_time.astimezone(dt.UTC).replace(tzinfo=None)  # the library, like --to, reads it as UTC
    done = pitr.recover(settings, to=naive_utc, target=tmp / "r")
    assert _sql(settings, "SELECT label FROM probe WHERE label LIKE %s", f"{tag}%", url=done.url) == [(f"{tag}-only",)]


@pytest.mark.parametrize("text", ["xyz", "2026-13-01T00:00:00Z", "27/11/2026 17:05", ""])
def test_a_bad_timestamp_is_one_line_and_exit_2(cli: Cli, tmp: Path, text: str) -> None:
    code, out, err = cli("backup", "pitr", "--to", text, "--target", str(tmp / "r"))
    assert code == 2 and out == ""
    assert err.strip() == f"error: --to: {text!r} is not an ISO 8601 timestamp (allowed: e.g. {pitr.EXAMPLE_TIME})"
    assert not (tmp / "r").exists()


@pytest.mark.parametrize("case", ["before the base backup", "target not empty", "target in pgdata", "no such base",
                                  "port taken"])
def test_bad_input_is_refused_and_changes_nothing(archived: tuple[Settings, BaseBackup], cli: Cli, tmp: Path,
                                                  case: str) -> None:
    settings, backup = archived
    target, to, extra = tmp / "r", dt.datetime.now(dt.UTC).isoformat(), []
    expected = {"before the base backup": "is before base backup", "target not empty": "is not an empty folder",
                "target in pgdata": "is inside", "no such base": "--base: no base backup 'nope'",
                "port taken": "is in use"}[case]
    if case == "before the base backup":
        to = (backup.started_at - dt.timedelta(hours=1)).isoformat()
    elif case == "target not empty":
        target.mkdir()
        (target / "keep.txt").write_text("mine")
    elif case == "target in pgdata":
        target = settings.pgdata / "recovered"
    elif case == "no such base":
        extra = ["--base", "nope"]
    else:
        extra = ["--port", str(settings.pg_port)]
    before = sorted(settings.home.rglob("*"))
    code, out, err = cli("backup", "pitr", "--to", to, "--target", str(target), *extra)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and expected in err, err
    if case == "target not empty":
        assert [p.name for p in target.iterdir()] == ["keep.txt"]
    else:
        assert not target.exists()
    assert sorted(settings.home.rglob("*")) == before


@pytest.mark.parametrize("existing", [False, True], ids=["new-folder", "empty-folder"])
def test_a_target_beyond_the_archived_wal_fails_and_cleans_up(archived: tuple[Settings, BaseBackup], cli: Cli,
                                                              recovered: list[Path], tmp: Path,
                                                              existing: bool) -> None:
    settings, _ = archived
    target = tmp / "r"
    recovered.append(target)
    if existing:
        target.mkdir()
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    code, out, err = cli("backup", "pitr", "--to", future, "--target", str(target))
    assert code == 1 and out == ""
    assert err.startswith("error: recovery ended before the target") and len(err.strip().splitlines()) == 1
    assert (target.exists() and not any(target.iterdir())) if existing else not target.exists()
    assert pitr.FAILED_LOG in err and (settings.home / pitr.FAILED_LOG).exists()
    assert _audit(settings, "backup.pitr")[-1]["outcome"] == "failed"


def test_archiving_switch_and_base_backup_refused_without_it(cli: Cli, tmp: Path) -> None:
    settings = _settings(tmp / "home")
    try:
        code, out, _ = cli("db", "start", settings=settings)
        assert code == 0 and out.strip().endswith("WAL archiving off")
        code, out, err = cli("backup", "base", settings=settings)
        assert code == 2 and out == "" and err.startswith("error: WAL archiving is off") and err.count("\n") == 1
        assert not settings.base_backups_dir.exists()

        code, out, _ = cli("db", "start", "--archive", settings=settings)
        assert code == 0 and out.startswith("restarted the server to switch WAL archiving on")
        assert archiving.configured(settings.pgdata) and settings.wal_archive_dir.is_dir()
        code, out, _ = cli("db", "status", settings=settings)
        assert out.strip().endswith("WAL archiving on")
        code, out, _ = cli("db", "start", settings=settings)  # the choice is kept
        assert code == 0 and "restarted" not in out and out.strip().endswith("WAL archiving on")

        code, out, _ = cli("db", "start", "--no-archive", settings=settings)
        assert code == 0 and out.startswith("restarted the server to switch WAL archiving off")
        assert not archiving.configured(settings.pgdata)
        assert _sql(settings, "SHOW wal_level") == [("minimal",)]
    finally:
        server.stop(settings)
