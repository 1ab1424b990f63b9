"""Backup sets: a folder per backup with the full dump, the schema, the roles and a manifest, written atomically.

A set ``gitinsight_<UTC stamp>/`` holds ``full.dump`` (pg_dump custom format, compressed), ``schema.sql``
(schema only, plain SQL), ``globals.sql`` (``pg_dumpall --globals-only``: the roles) and ``manifest.json``: the
database, server version, alembic revision, per-table row counts and checksums (:mod:`.backup_facts`), the RLS
policies and the roles the schema names, and the size and sha256 of every file. The counts and checksums are
read in the very snapshot both dumps are taken from (``pg_export_snapshot`` / ``pg_dump --snapshot``), so they
describe exactly what the dump holds. Restoring is :mod:`.backup_restore`.

A set is written into a hidden staging folder (``.gitinsight_*.partial``, locked by the writing process) and
renamed to its name only when complete: a crash or a full disk never leaves a set that ``backup list`` shows, and
the next ``backup create`` removes staging folders whose writer died.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg
from psycopg import sql
from sqlalchemy.engine import Engine

from .. import atomic
from ..checkpoints import checkpoint
from ..citus.sql import CITUS_PRESENT_SQL
from ..db import one_row
from ..exceptions import BackupError, ValidationError
from ..pgproc import pg_tool
from .facts import CHECKSUM_METHOD, DatabaseFacts, TableSum, connect, database_facts, libpq_target

__all__ = [
    "backups_frame",
    "locate_backup",
    "FORMAT",
    "FULL_DUMP",
    "SCHEMA_DUMP",
    "GLOBALS",
    "MANIFEST",
    "BackupSet",
    "create_backup",
    "read_set",
    "open_backup",
    "list_backups",
    "prune_backups",
]

FORMAT = "gitinsight-backup/1"
FULL_DUMP, SCHEMA_DUMP, GLOBALS, MANIFEST = "full.dump", "schema.sql", "globals.sql", "manifest.json"
_SET = "a backup set folder or its full.dump, from `gitinsight backup create`"
_STAGING = ".gitinsight_*.partial"
#: A staging folder without a lock file (never locked, or written by an older version) counts as abandoned after.
_UNLOCKED_GRACE_S = 3600


@dataclass(frozen=True)
class BackupSet:
    """A backup set on disk and its manifest."""

    path: Path
    manifest: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.manifest["name"])

    @property
    def created_at(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.manifest["created_at"])

    @property
    def revision(self) -> str | None:
        return self.manifest.get("alembic_revision")

    @property
    def tables(self) -> dict[str, TableSum]:
        return {t: TableSum(int(v["rows"]), str(v["checksum"])) for t, v in self.manifest["tables"].items()}

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables.values())

    @property
    def size(self) -> int:
        return sum(int(f["bytes"]) for f in self.manifest["files"].values())

    @property
    def full_dump(self) -> Path:
        return self.path / FULL_DUMP

    def describe(self) -> str:
        return (f"{self.name}  {self.created_at:%Y-%m-%d %H:%M:%S}Z  {_size(self.size):>9}  {self.rows:>12,} rows  "
                f"revision {self.revision or '-'}")


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _last_line(text: str | bytes, default: str) -> str:
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    lines = [line for line in text.strip().splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    return (errors or lines or [default])[-1].strip()


def _dump_globals(url: str, env: dict[str, str], target: Path, facts: DatabaseFacts, conn: psycopg.Connection,
                  bindir: Path | None) -> str:
    """Write globals.sql; a user that may not read pg_authid gets roles without passwords, or only the roles
    the schema names (from pg_roles). Returns how globals.sql was made."""
    for extra in ([], ["--no-role-passwords"]):
        done = subprocess.run([pg_tool("pg_dumpall", bindir), "--globals-only", *extra, "--dbname", url,
                               "--file", str(target)], env=env, capture_output=True, text=True)
        if done.returncode == 0:
            return " ".join(["pg_dumpall --globals-only", *extra])
    reason = _last_line(done.stderr, "pg_dumpall failed")
    lines = [f"-- pg_dumpall --globals-only failed ({reason}); the roles the schema names, from pg_roles:"]
    for role in facts.roles:
        found = conn.execute("SELECT rolcanlogin, rolinherit FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
        login, inherit = found if found else (False, True)
        ident = sql.Identifier(role).as_string(conn)
        lines += [f"CREATE ROLE {ident};",
                  f"ALTER ROLE {ident} WITH {'LOGIN' if login else 'NOLOGIN'} {'INHERIT' if inherit else 'NOINHERIT'};"]
    target.write_text("\n".join(lines) + "\n")
    return f"roles the schema names only (pg_dumpall failed: {reason})"


def _manifest(name: str, created: dt.datetime, facts: DatabaseFacts, globals_note: str, folder: Path) -> dict:
    return {
        "format": FORMAT,
        "name": name,
        "created_at": created.isoformat(),
        "database": facts.database,
        "server_version": facts.server_version,
        "alembic_revision": facts.revision,
        "checksum_method": CHECKSUM_METHOD,
        "tables": {t: dataclasses.asdict(s) for t, s in facts.tables.items()},
        "policies": [list(p) for p in facts.policies],
        "roles": facts.roles,
        "globals": globals_note,
        "files": {f: {"bytes": (folder / f).stat().st_size, "sha256": _sha256(folder / f)}
                  for f in (FULL_DUMP, SCHEMA_DUMP, GLOBALS)},
    }


@contextlib.contextmanager
def _one_line_errors() -> Iterator[None]:
    try:
        yield
    except psycopg.Error as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise BackupError(f"backup failed, nothing written: {reason}") from None


def _exit_reason(code: int, stderr: bytes | str) -> str:
    """pg_dump's error line, or the signal that ended it (SIGXFSZ: the file size limit)."""
    if code < 0:
        name = signal.Signals(-code).name
        hint = " (file size limit exceeded)" if name == "SIGXFSZ" else ""
        return f"killed by {name}{hint}"
    return _last_line(stderr, "no message")


def _remove_abandoned(directory: Path) -> None:
    """Staging folders of earlier runs whose process died (lock free), or unlocked ones older than an hour."""
    for folder in directory.glob(_STAGING):
        lock = folder / atomic.LOCK_FILE
        if lock.exists():
            dead = atomic.abandoned(lock)
        else:
            try:
                dead = time.time() - folder.stat().st_mtime > _UNLOCKED_GRACE_S
            except FileNotFoundError:
                continue
        if dead:
            shutil.rmtree(folder, ignore_errors=True)


def _free_name(directory: Path, created: dt.datetime) -> str:
    base = f"gitinsight_{created:%Y%m%dT%H%M%SZ}"
    name, n = base, 1
    while (directory / name).exists():
        n += 1
        name = f"{base}_{n}"
    return name


def create_backup(engine: Engine, directory: Path, *, bindir: Path | None = None,
                  on_snapshot: Callable[[], None] | None = None) -> BackupSet:
    """Write a backup set of ``engine``'s database into ``directory``; nothing is left behind on failure.

    ``on_snapshot`` runs once the snapshot is exported, before anything is read from it (tests write to the
    database there to show the manifest and the dump agree). A Citus coordinator is backed up through a plain
    copy of its rows (see :mod:`gitinsight_analytics.citus.snapshot`): a pg_dump of it alone holds no shard rows.
    """
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise ValidationError("dir", f"{directory} is not a folder", "a folder for backup sets")
    directory.mkdir(parents=True, exist_ok=True)
    created = dt.datetime.now(dt.UTC).replace(microsecond=0)
    url, env = libpq_target(engine.url.render_as_string(hide_password=False))
    with connect(url) as conn:  # one line when unreachable; a Citus coordinator goes through a plain copy
        citus = bool(one_row(conn, CITUS_PRESENT_SQL)[0])
    if citus:
        from ..citus import snapshot

        with snapshot.plain_copy(engine) as plain:
            return create_backup(plain, directory, bindir=bindir, on_snapshot=on_snapshot)
    _remove_abandoned(directory)
    staging = Path(tempfile.mkdtemp(prefix=".gitinsight_", suffix=".partial", dir=directory))  # mode 0700
    lock = None
    try:
        lock = atomic.hold(staging / atomic.LOCK_FILE)  # freed when this process ends, however it ends
        with connect(url) as conn, _one_line_errors():
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            conn.read_only = True
            snapshot = one_row(conn, "SELECT pg_export_snapshot()")[0]
            if on_snapshot is not None:
                on_snapshot()
            dumps = [
                (what, subprocess.Popen([pg_tool("pg_dump", bindir), *args, f"--snapshot={snapshot}",
                                         "--file", str(staging / out), "--dbname", url],
                                        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
                for what, out, args in (("full dump", FULL_DUMP, ["--format=custom", "--compress=9"]),
                                        ("schema dump", SCHEMA_DUMP, ["--schema-only", "--format=plain"]))
            ]
            try:
                facts = database_facts(conn)  # while pg_dump reads the same snapshot
            except BaseException:
                for _, proc in dumps:
                    proc.kill()
                    proc.communicate()
                raise
            ended = [(what, proc.communicate()[1], proc.returncode) for what, proc in dumps]
            failures = [f"pg_dump ({what}) failed: {_exit_reason(code, err)}" for what, err, code in ended
                        if code != 0]
            if failures:
                raise BackupError(f"backup failed, nothing written: {failures[0]}")
            globals_note = _dump_globals(url, env, staging / GLOBALS, facts, conn, bindir)
            conn.rollback()
        checkpoint("backup.dumped")
        name = _free_name(directory, created)
        manifest = _manifest(name, created, facts, globals_note, staging)
        try:
            (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        except OSError as exc:
            raise BackupError(f"backup failed, nothing written: cannot write {MANIFEST} "
                             f"({exc.strerror or exc})") from None
        (staging / atomic.LOCK_FILE).unlink()  # still held: a rival sees a young unlocked folder, and waits
        final = directory / name
        staging.rename(final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        if lock is not None:
            lock.close()
    return BackupSet(final, manifest)


def read_set(folder: Path) -> BackupSet | None:
    """The backup set in ``folder``, or None when it is not one (no readable manifest naming this folder)."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        if manifest.get("format") != FORMAT or manifest.get("name") != folder.name:
            return None
        found = BackupSet(folder, manifest)
        found.tables, found.size  # noqa: B018  (readable)
        if found.created_at.tzinfo is None:
            return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return found


def open_backup(source: Path, *, bindir: Path | None = None) -> BackupSet:
    """The backup set at ``source`` (its folder or full dump), checked: every file as the manifest records it
    (size and sha256) and the dump readable by pg_restore. Anything else is a :class:`ValidationError`."""
    source = Path(source)
    if not source.exists():
        raise ValidationError("backup", f"{source} does not exist", _SET)
    folder = source.parent if source.is_file() else source
    if source.is_file() and source.name != FULL_DUMP:
        raise ValidationError("backup", f"{source} is not the full dump of a backup set", _SET)
    if not (folder / MANIFEST).is_file():
        raise ValidationError("backup", f"{folder} has no {MANIFEST}", _SET)
    found = read_set(folder)
    if found is None:
        raise ValidationError("backup", f"{folder / MANIFEST} is unreadable or names another folder", _SET)
    for file, recorded in found.manifest["files"].items():
        path = folder / file
        if not path.is_file():
            raise ValidationError("backup", f"{path} is missing", _SET)
        if path.stat().st_size != recorded["bytes"] or _sha256(path) != recorded["sha256"]:
            raise ValidationError("backup", f"{path} does not match its manifest (corrupt or truncated)", _SET)
    done = subprocess.run([pg_tool("pg_restore", bindir), "--list", str(found.full_dump)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        raise ValidationError("backup", f"{found.full_dump} is not a readable archive: "
                              f"{_last_line(done.stderr, 'pg_restore --list failed')}", _SET)
    return found


def locate_backup(source: Path, directory: Path) -> Path:
    """Where backup set ``source`` is: the path itself when it exists or names a folder (``dir/SET``,
    ``SET/full.dump``), else the set of that name in ``directory``, as ``gitinsight backup list`` prints it."""
    source = Path(source)
    if source.exists() or len(source.parts) != 1:
        return source
    named = Path(directory) / source
    if read_set(named) is None:
        raise ValidationError("backup", f"no backup set named {str(source)!r} in {directory}",
                              "a name from `gitinsight backup list`, or " + _SET)
    return named


def list_backups(directory: Path) -> list[BackupSet]:
    """The backup sets directly in ``directory``, newest first (folders without a manifest are not sets)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ValidationError("dir", f"{directory} is not a folder", "a folder holding backup sets")
    found = [s for child in directory.iterdir() if child.is_dir() and not child.is_symlink()
             and (s := read_set(child)) is not None]
    return sorted(found, key=lambda s: (s.created_at, s.name), reverse=True)


def backups_frame(directory: Path) -> pd.DataFrame:
    """The backup sets of ``directory`` as a table for reports (newest first; empty when there is none yet):
    name, created_at, size_mb, rows, revision."""
    sets = list_backups(directory) if Path(directory).is_dir() else []
    return pd.DataFrame(
        {"name": pd.array([s.name for s in sets], dtype="str"),
         "created_at": pd.to_datetime([s.created_at for s in sets], utc=True),
         "size_mb": [round(s.size / 1e6, 1) for s in sets], "rows": [s.rows for s in sets],
         "revision": pd.array([s.revision or "" for s in sets], dtype="str")},
        columns=["name", "created_at", "size_mb", "rows", "revision"],
    )


def prune_backups(directory: Path, *, keep_days: int, now: dt.datetime | None = None) -> list[BackupSet]:
    """Delete the sets created (per their manifest) more than ``keep_days`` days before ``now``; the newest set
    is always kept, so a backup job that stopped working never leaves you with none. Returns the deleted sets."""
    if keep_days < 1:
        raise ValidationError("keep_days", f"{keep_days} is less than 1", "1 or more days")
    now = now or dt.datetime.now(dt.UTC)
    cutoff = now - dt.timedelta(days=keep_days)
    doomed = [s for s in list_backups(directory)[1:] if s.created_at < cutoff]
    for backup_set in doomed:
        shutil.rmtree(backup_set.path)
    return doomed
