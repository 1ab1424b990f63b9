"""Point-in-time recovery of the embedded cluster: a base backup plus archived WAL, replayed up to a moment.

The result is a new data directory with its own server on 127.0.0.1 (a free port); the live cluster keeps
running untouched, except that its current WAL segment is closed and archived first, so the archive reaches
"now". The recovered copy does not archive (it must never write into the live cluster's archive). Recovery counts
as successful only when PostgreSQL reports that it stopped at the target ("recovery stopping before/after
commit ... time ..."), not merely that replay ended.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import shlex
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from .. import archiving, server
from ..exceptions import ConfigurationError, RecoveryError, ServerError, ValidationError
from ..pgproc import bindir, free_port, give, hand_to_server_user, pg_ctl, port_taken, postmaster, run
from ..settings import Settings
from .base import BaseBackup, base_backups

__all__ = ["RecoveredCluster", "parse_target", "recover", "stop_recovered", "EXAMPLE_TIME"]

EXAMPLE_TIME = "2026-11-27T17:05:00Z"
MARKER = "# gitinsight backup pitr"
LOG_NAME = "pitr.log"
FAILED_LOG = "pitr-failed.log"
_REACHED = re.compile(r"recovery stopping (?:before|after) (?:commit|abort) of transaction \d+, time [^\n]+")
_NOT_REACHED = "recovery ended before configured recovery target was reached"


@dataclass(frozen=True)
class RecoveredCluster:
    """A running server holding the database as it was at ``target_time``."""

    pgdata: Path
    port: int
    url: str
    target_time: dt.datetime
    base_backup: str
    #: PostgreSQL's own words, e.g. "recovery stopping before commit of transaction 812, time 2026-...".
    stop_record: str
    log: Path


def parse_target(text: str) -> dt.datetime:
    """``text`` as an ISO 8601 timestamp in UTC; without a UTC offset it is taken as UTC (the server's zone)."""
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValidationError("--to", f"{text!r} is not an ISO 8601 timestamp", f"e.g. {EXAMPLE_TIME}") from None
    return _utc(value)


def _utc(value: dt.datetime) -> dt.datetime:
    """``value`` in UTC; without a UTC offset it is taken as UTC (the embedded server's zone)."""
    return (value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)


def _check_target(settings: Settings, target: Path) -> None:
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ValidationError("--target", f"{target} exists and is not an empty folder", "a new or empty folder")
    if not target.parent.is_dir():
        raise ValidationError("--target", f"the folder {target.parent} does not exist", "a folder in an existing one")
    for kept in (settings.pgdata, settings.wal_archive_dir, settings.base_backups_dir, settings.replica_dir):
        kept = kept.resolve()
        if target == kept or kept in target.parents:
            raise ValidationError("--target", f"{target} is inside {kept}", "a folder outside the live cluster")


def _choose_backup(settings: Settings, to: dt.datetime, base: str | None) -> BaseBackup:
    """The named backup, or the newest one that ended before ``to`` (of the cluster the archive belongs to)."""
    folder = settings.base_backups_dir
    marker = settings.wal_archive_dir / archiving.SYSTEM_ID_FILE
    if not marker.is_file():
        raise RecoveryError(f"no WAL archive in {settings.wal_archive_dir}: switch archiving on with "
                            "`gitinsight db start --archive`, then take a base backup")
    cluster = marker.read_text().strip()
    backups = [b for b in base_backups(folder) if b.system_identifier == cluster]
    if base is not None:
        given = Path(base).expanduser()
        path = given.resolve() if given.is_absolute() or len(given.parts) > 1 else folder / base
        record = path.parent / f"{path.name}.json"
        if not record.is_file() or not path.is_dir():
            names = ", ".join(b.name for b in backups) or "none yet: take one with `gitinsight backup base`"
            raise ValidationError("--base", f"no base backup {base!r} in {path.parent}", names)
        backups = [BaseBackup.from_json(record)]
    if not backups:
        raise RecoveryError(f"no base backup in {folder}: take one with `gitinsight backup base` (archiving on)")
    fitting = [b for b in backups if b.finished_at <= to]
    if not fitting:
        first, end = backups[0], backups[0].finished_at.isoformat()
        raise ValidationError("--to", f"{to.isoformat()} is before base backup {first.name} ended",
                              f"a time after {end}")
    return fitting[-1]


def _pick_port(port: int | None) -> int:
    if port is None:
        return free_port()
    if port_taken(port):
        raise ValidationError("--port", f"{port} is in use on 127.0.0.1", "a free port, 1024..65535")
    return port


def _archive_now(settings: Settings, *, timeout: float = 60) -> None:
    """If the live server archives: commit a transaction stamped now, close its WAL segment, wait until archived.

    The commit gives recovery to any earlier time a record to stop at; without it a target in a quiet stretch
    would look like the end of the WAL.
    """
    import psycopg

    state = server.status(settings)
    if not state.running or not state.archiving:
        return
    with psycopg.connect(server.server_url(settings, state.port, "postgres"), autocommit=True) as conn:
        conn.execute("SELECT pg_current_xact_id()")
        row = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()
        segment = row[0] if row else ""
        deadline = time.monotonic() + timeout
        while not (settings.wal_archive_dir / segment).exists():
            if time.monotonic() > deadline:
                failed = conn.execute("SELECT last_failed_wal FROM pg_stat_archiver").fetchone()
                raise RecoveryError(f"WAL segment {segment} was not archived within {timeout:.0f} s (last failure: "
                                    f"{failed[0] if failed else None}; see {settings.home / 'postgresql.log'})")
            time.sleep(0.1)


def _prepare(settings: Settings, backup: BaseBackup, target: Path, to: dt.datetime, port: int) -> None:
    """Copy the backup into ``target`` and configure it to recover to ``to`` and then promote."""
    hand_to_server_user(target)
    target.chmod(0o700)
    run(["cp", "-a", f"{backup.path}/.", str(target)], "copying the base backup", timeout=3600)
    archive = shlex.quote(str(settings.wal_archive_dir)).replace("%", "%%")  # %% is a literal % there
    restore = f"cp {archive}/%f %p"
    conf = {
        "port": str(port),
        "listen_addresses": "'127.0.0.1'",
        "archive_mode": "off",  # never into the live cluster's archive
        "hot_standby": "off",  # pg_ctl -w then returns when recovery has ended, not when it is consistent
        "restore_command": archiving.conf_quote(restore),
        "recovery_target_time": archiving.conf_quote(to.isoformat()),
        "recovery_target_inclusive": "on",
        "recovery_target_action": "'promote'",
    }
    with open(target / "postgresql.auto.conf", "a") as handle:
        handle.write(f"\n{MARKER} to {to.isoformat()} from base backup {backup.name}\n")
        handle.write("".join(f"{key} = {value}\n" for key, value in conf.items()))
    for name in ("recovery.signal", LOG_NAME):
        (target / name).touch()
        give(target / name)


def _wait_ready(target: Path, timeout: float) -> str | None:
    """Wait until the recovered server has left recovery and accepts connections; None, or why not.

    ``pg_ctl start -w`` returns once recovery is consistent, which can be before the target is reached.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if postmaster(target) is None:
            return "the recovered server stopped"
        with contextlib.suppress(OSError):
            lines = (target / "postmaster.pid").read_text().splitlines()
            if len(lines) >= 8 and lines[7].strip() == "ready":
                return None
        time.sleep(0.1)
    return f"recovery did not finish within {timeout:.0f} s"


def _start_and_check(settings: Settings, target: Path, to: dt.datetime, timeout: float) -> str:
    """Start the recovered server, and return PostgreSQL's "recovery stopping ..." line, or raise."""
    log = target / LOG_NAME
    failure: str | None = None
    try:
        pg_ctl(bindir(settings), "-D", str(target), "-l", str(log), "-w", "-t", str(int(timeout)), "start",
               what="starting the recovered server", timeout=timeout + 30)
    except ServerError as exc:
        failure = str(exc)
    if failure is None:
        failure = _wait_ready(target, timeout)
    text = log.read_text(errors="replace")
    kept = settings.home / FAILED_LOG
    if _NOT_REACHED in text:
        raise RecoveryError(f"recovery ended before the target {to.isoformat()} was reached: the archived WAL ends "
                            f"earlier (a future time? a server stopped before archiving its last WAL?); log: {kept}")
    reached = _REACHED.search(text)
    if failure is not None or reached is None:
        fatal = [line for line in text.splitlines() if "FATAL" in line or "PANIC" in line]
        detail = fatal[-1] if fatal else failure or "PostgreSQL did not report stopping at the target"
        raise RecoveryError(f"recovery to {to.isoformat()} failed: {detail.strip()} (log: {kept})")
    return reached.group(0).strip()


def _discard(settings: Settings, target: Path, created: bool) -> None:
    """Undo a failed recovery: stop its server, keep its log in $GITINSIGHT_HOME, empty or remove ``target``."""
    log = target / LOG_NAME
    if log.exists():
        shutil.copyfile(log, settings.home / FAILED_LOG)
    if postmaster(target) is not None:
        with contextlib.suppress(ServerError):
            pg_ctl(bindir(settings), "-D", str(target), "-m", "immediate", "-w", "stop",
                   what="stopping the recovered server")
    if created:
        shutil.rmtree(target, ignore_errors=True)
        return
    for child in target.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def recover(settings: Settings, *, to: dt.datetime, target: Path, base: str | None = None, port: int | None = None,
            timeout: float = 600) -> RecoveredCluster:
    """Bring up a copy of the embedded cluster as it was at ``to`` in ``target`` (a new or empty folder).

    ``to`` without a UTC offset is UTC. ``base`` names the base backup to start from (default: the newest that
    ended before ``to``); ``port`` the recovered server's port (default: a free one). Bad input changes nothing;
    a failed recovery removes what it made and keeps PostgreSQL's log as ``$GITINSIGHT_HOME/pitr-failed.log``.
    """
    if settings.database_url:
        raise ConfigurationError("DATABASE_URL is set: `gitinsight backup pitr` recovers the embedded server only "
                                 "(external servers: docs/operations.md, Point-in-time recovery)")
    to = _utc(to)
    target = Path(target).expanduser().resolve()
    _check_target(settings, target)
    backup = _choose_backup(settings, to, base)
    port = _pick_port(port)
    _archive_now(settings)
    created = not target.exists()
    target.mkdir(mode=0o700, exist_ok=True)
    try:
        _prepare(settings, backup, target, to, port)
        stop_record = _start_and_check(settings, target, to, timeout)
    except BaseException:
        _discard(settings, target, created)
        raise
    return RecoveredCluster(pgdata=target, port=port, url=server.server_url(settings, port), target_time=to,
                            base_backup=backup.name, stop_record=stop_record, log=target / LOG_NAME)


def stop_recovered(settings: Settings, target: Path) -> bool:
    """Stop the server of a cluster made by :func:`recover`; False when it was not running."""
    target = Path(target).expanduser().resolve()
    auto = target / "postgresql.auto.conf"
    if target == settings.pgdata.resolve() or not auto.is_file() or MARKER not in auto.read_text():
        raise ValidationError("DIR", f"{target} is not a cluster made by `gitinsight backup pitr`",
                              "the --target folder of a pitr run")
    if postmaster(target) is None:
        return False
    pg_ctl(bindir(settings), "-D", str(target), "-m", "fast", "-w", "stop", what="stopping the recovered server")
    return True
