"""Backup sets: create, list, prune, restore with verification; bad input changes nothing."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gitinsight_analytics import audit, migrate, server
from gitinsight_analytics.backup import facts as backup_facts
from gitinsight_analytics.backup import sets as backups
from gitinsight_analytics.backup.restore import restore_backup, restore_target
from gitinsight_analytics.cli import main
from gitinsight_analytics.db import make_engine
from gitinsight_analytics.exceptions import (
    DatabaseUnreachable,
    DataExistsError,
    GitInsightError,
    RestoreNotVerified,
    ValidationError,
)
from gitinsight_analytics.settings import Settings

from . import factories as f
from .conftest import SMALL_POOL, bindir_major, debian_bindir, drop_database, start_cluster


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def _sums(engine: Engine) -> dict[str, backup_facts.TableSum]:
    with backup_facts.connect(_url(engine)) as conn:
        return backup_facts.table_sums(conn)


def _rewrite_manifest(backup_set: backups.BackupSet, change: Callable[[dict], None]) -> None:
    path = backup_set.path / backups.MANIFEST
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


def _resign(backup_set: backups.BackupSet, file: str) -> None:
    """Record ``file``'s present size and sha256 in the manifest (a corrupt file that passes the sha check)."""
    data = (backup_set.path / file).read_bytes()

    def change(manifest: dict) -> None:
        manifest["files"][file] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}

    _rewrite_manifest(backup_set, change)


def test_a_damaged_database_gets_every_row_back(seeded_engine: Engine, tmp_path: Path) -> None:
    before = _sums(seeded_engine)

    def write_meanwhile() -> None:  # committed after the backup's snapshot, before pg_dump starts
        with seeded_engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM insights WHERE confidence_score > 0.5"))
            f.user(conn, "late_arrival")

    made = backups.create_backup(seeded_engine, tmp_path, on_snapshot=write_meanwhile)
    assert made.tables == before != _sums(seeded_engine)  # the manifest describes the snapshot
    assert {"users", "insights", "audit_logs", "alembic_version"} <= set(made.tables)
    assert not {"repository_stats", "audit_logs_default"} & set(made.tables)  # views refresh, partitions via parent
    assert made.rows > 4000 and made.manifest["roles"] == ["application_role"]
    with seeded_engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM insights WHERE confidence_score < 0.5"))
        conn.execute(sa.text("DELETE FROM audit_logs"))
        conn.execute(sa.text("UPDATE users SET bio = coalesce(bio, '') || '!' WHERE username = "
                             "(SELECT min(username) FROM users)"))
        conn.execute(sa.text("DROP TABLE user_repository_follows CASCADE"))  # takes a policy and a view with it
    damage = backup_facts.compare_tables(made.tables, _sums(seeded_engine))
    assert "table user_repository_follows is missing" in damage
    assert "table users has 101 rows, the backup 100" in damage

    # Verification compares with the manifest: it passes only if the dump holds the same snapshot.
    report = restore_backup(seeded_engine, made.path, force=True)

    assert _sums(seeded_engine) == made.tables
    assert report.verification.problems == [] and report.verification.amcheck == "pg_amcheck: clean"
    assert report.verification.facts.policies == [tuple(p) for p in made.manifest["policies"]]
    assert report.verification.views_refreshed >= 1
    assert migrate.drift(seeded_engine) == []


def test_a_failed_backup_leaves_nothing(tmp_path: Path) -> None:
    unreachable = make_engine("postgresql://postgres@127.0.0.1:1/gitinsight", pool=SMALL_POOL)
    with pytest.raises(DatabaseUnreachable, match="cannot connect to postgresql://postgres@127.0.0.1:1/gitinsight"):
        backups.create_backup(unreachable, tmp_path / "sets")
    assert list((tmp_path / "sets").iterdir()) == []


def test_checksums_see_a_changed_value(seeded_engine: Engine) -> None:
    before = _sums(seeded_engine)
    with seeded_engine.begin() as conn:
        conn.execute(sa.text("UPDATE users SET bio = coalesce(bio, '') || '!' WHERE username = "
                             "(SELECT min(username) FROM users)"))
    assert backup_facts.compare_tables(before, _sums(seeded_engine)) == [
        "table users has 100 rows as in the backup but a different checksum"]


def test_restoring_into_an_empty_database_then_refusing_it_without_force(seeded_engine: Engine, engine: Engine,
                                                                         tmp_path: Path) -> None:
    made = backups.create_backup(seeded_engine, tmp_path)
    _rewrite_manifest(made, lambda m: m["tables"]["users"].update(checksum="12345"))
    # The target is migrated with no rows but alembic_version's: nothing to lose, no --force needed. The
    # tampered checksum makes the check after the commit fail, and the error says the data is in.
    with pytest.raises(RestoreNotVerified, match=r"restored into .* \(committed\) but NOT verified: table users "
                                                 r"has 100 rows as in the backup but a different checksum$"):
        restore_backup(engine, made.path)
    assert _sums(engine)["insights"] == made.tables["insights"]
    before = _sums(engine)
    with pytest.raises(DataExistsError, match=r"already holds data in .* \(allowed: an empty database, or "
                                              r"force=True / --force"):
        restore_backup(engine, made.path)
    assert _sums(engine) == before


def _truncated(backup_set: backups.BackupSet) -> None:
    dump = backup_set.full_dump
    dump.write_bytes(dump.read_bytes()[: dump.stat().st_size // 2])


def _truncated_resigned(backup_set: backups.BackupSet) -> None:
    dump = backup_set.full_dump
    dump.write_bytes(dump.read_bytes()[: int(dump.stat().st_size * 0.9)])  # table of contents intact, data cut
    _resign(backup_set, backups.FULL_DUMP)


def _garbage_resigned(backup_set: backups.BackupSet) -> None:
    backup_set.full_dump.write_bytes(os.urandom(4096))
    _resign(backup_set, backups.FULL_DUMP)


@pytest.mark.parametrize(("damage", "message"), [
    (_truncated, r"full.dump does not match its manifest \(corrupt or truncated\)"),
    (_truncated_resigned, r"restore failed, database unchanged: pg_restore: .*"),
    (_garbage_resigned, r"full.dump is not a readable archive"),
    (lambda s: (s.path / backups.MANIFEST).unlink(), r"has no manifest.json"),
    (lambda s: (s.path / backups.MANIFEST).write_text("{"), r"manifest.json is unreadable"),
    (lambda s: (s.path / backups.GLOBALS).unlink(), r"globals.sql is missing"),
], ids=["truncated", "truncated-resigned", "garbage-resigned", "no-manifest", "bad-manifest", "no-globals"])
def test_a_broken_backup_changes_nothing(seeded_engine: Engine, tmp_path: Path, damage: Callable,
                                         message: str) -> None:
    made = backups.create_backup(seeded_engine, tmp_path)
    with seeded_engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM insights WHERE confidence_score < 0.5"))
    before = _sums(seeded_engine)
    damage(made)
    with pytest.raises(GitInsightError, match=message):
        restore_backup(seeded_engine, made.path, force=True)
    assert _sums(seeded_engine) == before


def test_cli_restores_into_a_new_database_by_name(cli_env: Engine, pg: Settings, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    with cli_env.begin() as conn:
        f.fan_out(conn)
    assert main(["backup", "create", "--dir", str(tmp_path / "sets")]) == 0
    [made] = backups.list_backups(tmp_path / "sets")
    shown = backups.backups_frame(tmp_path / "sets")  # what the operations report lists
    assert shown[["name", "rows", "revision"]].values.tolist() == [[made.name, made.rows, made.revision]]
    assert backups.backups_frame(tmp_path / "no-such-folder").empty
    name = f"gi_restored_{os.getpid()}"
    try:
        assert main(["backup", "restore", str(made.full_dump), "--into", name]) == 0
        out = capsys.readouterr().out
        assert f"restored {made.name} into {name} (database created)" in out
        assert "equal to the backup" in out and "pg_amcheck: clean" in out and "(head)" in out
        target = make_engine(server.server_url(pg, database=name), pool=SMALL_POOL)
        assert _sums(target) == made.tables
        target.dispose()
        assert main(["backup", "restore", str(made.path), "--into", name]) == 2  # it holds data now
        assert "already holds data" in capsys.readouterr().err
        listed = capsys.readouterr().out if main(["backup", "list", "--dir", str(tmp_path / "sets")]) == 0 else ""
        assert listed.split()[0] == made.name  # the name as listed is enough
        assert main(["backup", "restore", made.name, "--dir", str(tmp_path / "sets"), "--into", name, "--force"]) == 0
        assert f"restored {made.name} into {name}" in capsys.readouterr().out
    finally:
        drop_database(pg, name)
    with cli_env.connect() as conn:
        rows = [(r["action"], r["details"]["outcome"]) for r in audit.recent(conn, limit=10)]
    assert rows[:4] == [("backup.restore", "ok"), ("backup.restore", "failed"), ("backup.restore", "ok"),
                        ("backup.create", "ok")]


def test_cli_restore_into_a_url_of_a_fresh_server_creates_the_roles(cli_env: Engine, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    with cli_env.begin() as conn:
        f.fan_out(conn)
    made = backups.create_backup(cli_env, tmp_path / "sets")
    fresh = start_cluster(tmp_path / "fresh")  # a new cluster: no application_role
    try:
        assert main(["backup", "restore", str(made.path), "--into", server.server_url(fresh)]) == 0
        assert "(roles created: application_role)" in capsys.readouterr().out
        target = make_engine(server.server_url(fresh), pool=SMALL_POOL)
        assert _sums(target) == made.tables
        target.dispose()
    finally:
        server.stop(fresh)


def test_another_server_version_round_trips(pgcrypto_engine: Engine, tmp_path: Path) -> None:
    """Another server (Debian's PostgreSQL, whatever its major version), restored into a new database by name."""
    with pgcrypto_engine.begin() as conn:
        f.fan_out(conn)
    made = backups.create_backup(pgcrypto_engine, tmp_path)
    assert made.manifest["server_version"].split(".")[0] == str(bindir_major(debian_bindir()))
    target, admin = restore_target(_url(pgcrypto_engine), f"gi_other_copy_{os.getpid()}")
    try:
        report = restore_backup(target, made.path, admin_url=admin)
        assert report.created and report.verification.problems == []
    finally:
        with backup_facts.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "gi_other_copy_{os.getpid()}" WITH (FORCE)')


def _copy_as(backup_set: backups.BackupSet, days_ago: int) -> backups.BackupSet:
    created = backup_set.created_at - dt.timedelta(days=days_ago)
    name = f"gitinsight_{created:%Y%m%dT%H%M%SZ}"
    shutil.copytree(backup_set.path, backup_set.path.parent / name)
    copied = backups.BackupSet(backup_set.path.parent / name, {**backup_set.manifest, "name": name,
                                                                "created_at": created.isoformat()})
    _rewrite_manifest(copied, lambda m: m.update(name=name, created_at=created.isoformat()))
    return copied


def test_list_and_prune_go_by_the_manifest_date(cli_env: Engine, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "sets"
    made = backups.create_backup(cli_env, folder)
    recent, older, old = _copy_as(made, 29), _copy_as(made, 31), _copy_as(made, 400)
    os.utime(recent.path, (0, 0))  # an ancient mtime does not matter: the manifest's date does
    (folder / "notes").mkdir()
    (folder / "notes" / "keep.txt").write_text("not a backup")
    (folder / "gitinsight_20000101T000000Z").mkdir()
    (folder / "gitinsight_20000101T000000Z" / "manifest.json").write_text('{"format": "something else"}')

    assert main(["backup", "list", "--dir", str(folder)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == [made.name, recent.name, older.name, old.name]
    assert f"{made.rows:>12,} rows  revision {made.revision}" in lines[0]

    assert main(["backup", "prune", "--keep-days", "30", "--dir", str(folder)]) == 0
    out = capsys.readouterr().out
    assert f"removed {older.name}" in out and f"removed {old.name}" in out and "2 backup set(s) removed, 2 kept" in out
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [made.name, recent.name, "notes", "gitinsight_20000101T000000Z"])
    # However old, the newest set stays.
    later = made.created_at + dt.timedelta(days=90)
    assert [s.name for s in backups.prune_backups(folder, keep_days=1, now=later)] == [recent.name]
    assert [s.name for s in backups.list_backups(folder)] == [made.name]


@pytest.mark.parametrize(("argv", "message"), [
    (["backup", "restore", "{tmp}/missing"], "backup: {tmp}/missing does not exist"),
    (["backup", "restore", "{tmp}"], "backup: {tmp} has no manifest.json"),
    (["backup", "restore", "20260101T000000Z", "--dir", "{tmp}"],
     "backup: no backup set named '20260101T000000Z' in {tmp} (allowed: a name from `gitinsight backup list`"),
    (["backup", "list", "--dir", "{tmp}/missing"], "dir: {tmp}/missing is not a folder"),
    (["backup", "create", "--dir", "{tmp}/file.txt"], "dir: {tmp}/file.txt is not a folder"),
    (["backup", "prune", "--keep-days", "0", "--dir", "{tmp}"], "keep_days: 0 is less than 1"),
])
def test_cli_bad_input_is_one_line_and_exit_2(cli_env: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              argv: list[str], message: str) -> None:
    (tmp_path / "file.txt").write_text("x")
    before = sorted(tmp_path.rglob("*"))
    assert main([a.replace("{tmp}", str(tmp_path)) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {message.replace('{tmp}', str(tmp_path))}")
    assert sorted(tmp_path.rglob("*")) == before


@pytest.mark.parametrize(("into", "expected"), [
    (None, ("postgresql+psycopg://u:p@h:5432/main", None)),
    ("copy_1", ("postgresql+psycopg://u:p@h:5432/copy_1", "postgresql://u:p@h:5432/main")),
    ("postgresql://x@other:6543/db", ("postgresql+psycopg://x@other:6543/db", None)),
])
def test_restore_target(into: str | None, expected: tuple[str, str | None]) -> None:
    assert restore_target("postgresql://u:p@h:5432/main", into) == expected


@pytest.mark.parametrize("into", ["bad name!", "x" * 64, "mysql://u@h/db", "1abc"])
def test_restore_target_rejects(into: str) -> None:
    with pytest.raises(ValidationError, match="^into: "):
        restore_target("postgresql://u:p@h:5432/main", into)
