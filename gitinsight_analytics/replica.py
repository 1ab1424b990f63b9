"""A streaming read replica of the embedded server, for notebook and report traffic (``gitinsight db replica``).

:func:`start` clones the running primary with ``pg_basebackup -R`` into ``$GITINSIGHT_HOME/replica`` and starts
it as a hot standby on its own port (``GITINSIGHT_REPLICA_PORT``, default the primary's port + 1), with the same
binaries and system user as the primary. A physical replication slot keeps the WAL the replica has not received
yet (up to ``max_slot_wal_keep_size``), so a stopped replica resumes streaming when started again.

The primary runs with ``wal_level = minimal`` and no WAL senders unless archiving is on (bulk loads skip the
WAL). Streaming needs ``replica`` and senders: :func:`start` persists them in ``$PGDATA/gitinsight-replication.conf``
and restarts the primary once if the running server lacks them (fast shutdown, like ``db start --archive``).
Reads reach the replica only through ``GITINSIGHT_READ_URL`` (see :func:`gitinsight_analytics.db.connect`).
"""

from __future__ import annotations

import contextlib
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import server
from .db import redact
from .exceptions import ConfigurationError, DatabaseUnreachable, ReplicaLagging, ServerError
from .pgproc import bindir, file_lock, give, pg_ctl, port_taken, postmaster, run, system_identifier
from .settings import Settings

__all__ = ["ReplicaStatus", "StartResult", "replica_port", "replica_url", "start", "stop", "status",
           "wait_for_replay", "SLOT", "REPLICATION_CONF"]

SLOT = "gitinsight_replica"
REPLICATION_CONF = "gitinsight-replication.conf"
INCLUDE_LINE = f"include_if_exists = '{REPLICATION_CONF}'  # streaming replica: gitinsight db replica start"
#: WAL the primary keeps for a stopped replica; past it the slot is given up (the next start clones afresh).
SLOT_WAL_KEEP = "8GB"
#: The primary's settings for streaming (persisted; ``db replica stop --remove`` deletes the file).
REPLICATION_SETTINGS = {
    "wal_level": "replica",
    "max_wal_senders": "4",
    "max_replication_slots": "4",
    "max_slot_wal_keep_size": f"'{SLOT_WAL_KEEP}'",  # a replica stopped for long must not fill the disk
}
#: Appended to the replica's postgresql.auto.conf after pg_basebackup -R.
MARKER = "# gitinsight db replica"
LOG_NAME = "replica.log"


@dataclass(frozen=True)
class ReplicaStatus:
    """The replica's server and, when both run, how far it is behind the primary."""

    running: bool
    pgdata: Path
    port: int
    pid: int | None = None
    in_recovery: bool | None = None
    #: pg_stat_replication.state on the primary (``streaming``, ``catchup``), None when not connected.
    state: str | None = None
    primary_lsn: str | None = None
    replay_lsn: str | None = None
    #: Bytes of WAL the primary has written that the replica has not replayed yet.
    lag_bytes: int | None = None
    #: pg_stat_replication.replay_lag in seconds (None when idle: PostgreSQL clears it once caught up).
    replay_lag_s: float | None = None
    last_replayed_at: str | None = None
    #: pg_replication_slots.wal_status of the slot (``reserved``, ``extended``, ``unreserved``, ``lost``).
    slot: str | None = None

    def describe(self) -> str:
        if not self.running:
            kept = ("kept; `gitinsight db replica start` resumes it" if (self.pgdata / "PG_VERSION").exists()
                    else "none: `gitinsight db replica start` creates it")
            return f"replica stopped (port {self.port}; data directory {self.pgdata}: {kept})"
        role = "hot standby" if self.in_recovery else "NOT in recovery (promoted?)"
        text = f"replica running: {role}, pid {self.pid}, 127.0.0.1:{self.port}, data {self.pgdata}"
        if self.state is None:
            return text + "\nnot connected to the primary (is it running? see $GITINSIGHT_HOME/replica.log)"
        lag = f"{self.replay_lag_s:.3f} s" if self.replay_lag_s is not None else "none (caught up)"
        return (f"{text}\n{self.state}: replayed {self.replay_lsn}, primary at {self.primary_lsn}, "
                f"lag {self.lag_bytes} bytes, replay lag {lag}, last replayed commit {self.last_replayed_at}, "
                f"slot {SLOT} {self.slot}")


@dataclass(frozen=True)
class StartResult:
    status: ReplicaStatus
    #: What start did, in order, for the user (restart of the primary, clone, resume).
    actions: list[str] = field(default_factory=list)


def replica_port(settings: Settings) -> int:
    """``GITINSIGHT_REPLICA_PORT``, or the primary's port + 1 (- 1 at the top of the range)."""
    port = settings.replica_port or (settings.pg_port + 1 if settings.pg_port < 65535 else settings.pg_port - 1)
    if port == settings.pg_port:
        raise ConfigurationError(f"GITINSIGHT_REPLICA_PORT={port} is the primary's port (allowed: another free port, "
                                 "1024..65535)")
    return port


def replica_url(settings: Settings, database: str | None = None) -> str:
    """libpq URL of the local replica (what to put in ``GITINSIGHT_READ_URL``)."""
    return server.server_url(settings, replica_port(settings), database)


def _query(url: str, query: str, params: tuple = ()) -> tuple | None:
    """One row of ``query`` on ``url``; an unreachable server is a one-line :class:`DatabaseUnreachable`."""
    import psycopg

    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as exc:
        reason = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise DatabaseUnreachable(f"cannot connect to {redact(url)}: {reason}") from None
    with conn:
        return conn.execute(query, params).fetchone()


def _ours(pgdata: Path) -> bool:
    auto = pgdata / "postgresql.auto.conf"
    return auto.is_file() and MARKER in auto.read_text()


def _enable_streaming(settings: Settings) -> tuple[server.ServerStatus, bool]:
    """Persist the primary's streaming settings; restart it if the running server lacks them. (status, restarted)"""
    primary = server.start(settings)
    conf = settings.pgdata / REPLICATION_CONF
    body = "\n".join(f"{key} = {value}" for key, value in REPLICATION_SETTINGS.items())
    text = f"# written by `gitinsight db replica start`; `gitinsight db replica stop --remove` deletes it\n{body}\n"
    if not conf.exists() or conf.read_text() != text:
        conf.write_text(text)
        give(conf)
    main_conf = settings.pgdata / "postgresql.conf"
    if INCLUDE_LINE not in main_conf.read_text():
        with open(main_conf, "a") as handle:
            handle.write(f"\n{INCLUDE_LINE}\n")
    url = server.server_url(settings, primary.port, "postgres")
    level, senders, slots = _query(url, "SELECT current_setting('wal_level'), current_setting('max_wal_senders')::int,"
                                        " current_setting('max_replication_slots')::int") or ("minimal", 0, 0)
    if level != "minimal" and senders > 0 and slots > 0:
        return primary, False
    server.stop(settings)  # to switch it to wal_level=replica
    return server.start(settings), True


def _slot_state(primary_url: str) -> str | None:
    row = _query(primary_url, "SELECT coalesce(wal_status, 'unknown') FROM pg_replication_slots WHERE slot_name = %s",
                 (SLOT,))
    return row[0] if row else None


def _drop_slot(primary_url: str) -> bool:
    row = _query(primary_url, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                              "WHERE slot_name = %s AND NOT active", (SLOT,))
    return row is not None


def _clone(settings: Settings, primary: server.ServerStatus, port: int, timeout: float) -> None:
    """pg_basebackup -R of the primary into the replica folder (via a partial folder: a failure leaves nothing)."""
    url = server.server_url(settings, primary.port, "postgres")
    _drop_slot(url)
    partial = settings.home / ".replica.partial"
    shutil.rmtree(partial, ignore_errors=True)
    binaries = bindir(settings)
    try:
        run([str(binaries / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres",
             "--no-password", "-D", str(partial), "--format=plain", "--wal-method=stream",
             "--checkpoint=fast", "--write-recovery-conf", "--create-slot", f"--slot={SLOT}",
             "--label", "gitinsight replica"], "pg_basebackup of the primary", timeout=timeout)
        conf = {
            "port": str(port),
            "listen_addresses": "'127.0.0.1'",
            "hot_standby": "on",
            # Long report queries are not cancelled by the primary's vacuum (it keeps the rows they still see).
            "hot_standby_feedback": "on",
            "archive_mode": "off",  # never into the primary's WAL archive
        }
        with open(partial / "postgresql.auto.conf", "a") as handle:
            handle.write(f"\n{MARKER}: a hot standby of 127.0.0.1:{primary.port}\n")
            handle.write("".join(f"{key} = {value}\n" for key, value in conf.items()))
        partial.rename(settings.replica_dir)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        with contextlib.suppress(Exception):
            _drop_slot(url)
        raise


def _wait_streaming(primary_url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = _query(primary_url, "SELECT r.state FROM pg_stat_replication r JOIN pg_replication_slots s "
                                  "ON s.active_pid = r.pid WHERE s.slot_name = %s", (SLOT,))
        if row and row[0] == "streaming":
            return
        time.sleep(0.1)
    raise ServerError(f"the replica did not start streaming within {timeout:.0f} s (log: $GITINSIGHT_HOME/{LOG_NAME})")


def start(settings: Settings, *, timeout: float = 3600) -> StartResult:
    """Start the local replica, cloning the primary first when there is no usable replica data directory.

    Refused with ``DATABASE_URL`` (the embedded server only). A replica folder not made by this command is never
    touched; one that can no longer catch up (slot lost, another cluster) is cloned afresh, and the result says so.
    """
    if settings.database_url:
        raise ConfigurationError("DATABASE_URL is set: `gitinsight db replica` replicates the embedded server only "
                                 "(a replica of another server: docs/operations.md, Read replica)")
    port = replica_port(settings)
    target = settings.replica_dir
    actions: list[str] = []
    with file_lock(settings.home / "replica.lock"):  # its own lock: server.start takes the server's
        if postmaster(target) is not None:
            return StartResult(status(settings), ["the replica was already running"])
        if target.exists() and not _ours(target):
            raise ServerError(f"{target} exists and was not made by `gitinsight db replica start`: move it away")
        if port_taken(port):
            raise ConfigurationError(f"port {port} on 127.0.0.1 is in use (set GITINSIGHT_REPLICA_PORT to a free "
                                     "port, 1024..65535)")
        primary, restarted = _enable_streaming(settings)
        if restarted:
            actions.append("restarted the primary with wal_level=replica and WAL senders, kept for later starts "
                           "(open sessions were disconnected)")
        url = server.server_url(settings, primary.port, "postgres")
        if target.exists():
            slot = _slot_state(url)
            primary_id = system_identifier(bindir(settings), settings.pgdata)
            replica_id = system_identifier(bindir(settings), target)
            why = ("it is a copy of another cluster" if replica_id != primary_id else
                   f"the primary no longer keeps its WAL (slot {SLOT} {slot or 'missing'})"
                   if slot in (None, "lost") else None)
            if why:
                shutil.rmtree(target)
                actions.append(f"removed the old replica data directory: {why}")
        if not target.exists():
            _clone(settings, primary, port, timeout)
            actions.append(f"cloned the primary into {target} (pg_basebackup, slot {SLOT})")
        else:
            actions.append(f"resumed the replica in {target}")
        log = settings.home / LOG_NAME
        log.touch()
        give(log)
        pg_ctl(bindir(settings), "-D", str(target), "-l", str(log), "-o", f"-p {port}", "-w", "-t", "300", "start",
               what=f"starting the replica (log: {log})", timeout=330)
        _wait_streaming(url, 120)
    return StartResult(status(settings), actions)


def stop(settings: Settings, *, remove: bool = False) -> list[str]:
    """Stop the replica (fast shutdown); what was done, one line each.

    Without ``remove`` its data directory and the primary's slot stay, so ``start`` resumes streaming. With
    ``remove`` the data directory and the slot go too, and the primary's streaming settings file is deleted (the
    primary keeps running with them until its next restart). The primary is never stopped or restarted here.
    """
    done: list[str] = []
    target = settings.replica_dir
    with file_lock(settings.home / "replica.lock"):
        if postmaster(target) is not None:
            pg_ctl(bindir(settings), "-D", str(target), "-m", "fast", "-w", "stop", what="stopping the replica",
                   timeout=180)
            done.append(f"stopped the replica on port {replica_port(settings)}")
        else:
            done.append("the replica was not running")
        if not remove:
            if target.exists():
                done.append(f"kept its data directory {target} and the primary's slot {SLOT} (WAL is kept for it "
                            f"up to {SLOT_WAL_KEEP}); --remove deletes them")
            return done
        if target.exists():
            if not _ours(target):
                raise ServerError(f"{target} was not made by `gitinsight db replica start`: not removed")
            shutil.rmtree(target)
            done.append(f"removed {target}")
        primary = server.status(settings)
        if primary.running:
            if _drop_slot(server.server_url(settings, primary.port, "postgres")):
                done.append(f"dropped the primary's replication slot {SLOT}")
        elif (settings.pgdata / "PG_VERSION").exists():
            done.append(f"the primary is stopped: its slot {SLOT} (if any) is dropped by the next `replica stop "
                        "--remove` while it runs")
        conf = settings.pgdata / REPLICATION_CONF
        if conf.exists():
            conf.unlink()
            done.append("the primary goes back to wal_level=minimal at its next restart (unless archiving is on)")
    return done


def status(settings: Settings) -> ReplicaStatus:
    """Whether the replica runs and, when the primary runs too, its lag (pg_stat_replication, replay LSN)."""
    port = replica_port(settings)
    target = settings.replica_dir
    found = postmaster(target)
    if found is None:
        return ReplicaStatus(False, target, port)
    pid, live_port = found
    values: dict = {"pid": pid, "port": live_port or port}
    row = _query(server.server_url(settings, live_port or port, "postgres"),
                 "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text, "
                 "to_char(pg_last_xact_replay_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')")
    if row:
        values.update(in_recovery=row[0], replay_lsn=row[1], last_replayed_at=row[2])
    primary = server.status(settings)
    if primary.running and values.get("replay_lsn"):
        row = _query(server.server_url(settings, primary.port, "postgres"),
                     "SELECT r.state, pg_current_wal_lsn()::text, "
                     "pg_wal_lsn_diff(pg_current_wal_lsn(), %s::pg_lsn)::bigint, "
                     "extract(epoch FROM r.replay_lag)::float8, s.wal_status "
                     "FROM pg_replication_slots s LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid "
                     "WHERE s.slot_name = %s", (values["replay_lsn"], SLOT))
        if row:
            values.update(state=row[0], primary_lsn=row[1], lag_bytes=max(int(row[2]), 0), replay_lag_s=row[3],
                          slot=row[4])
    return ReplicaStatus(True, target, **values)


def wait_for_replay(primary_url: str, read_url: str, *, timeout: float = 60) -> str | None:
    """Wait until the server at ``read_url`` has replayed all WAL the primary had written when called.

    Returns the LSN waited for, or None when ``read_url`` is not a standby (nothing to wait for). Raises
    :class:`ReplicaLagging` after ``timeout`` seconds. Both URLs are libpq URLs (``db.libpq_url``).
    """
    row = _query(read_url, "SELECT pg_is_in_recovery()")
    if not row or not row[0]:
        return None
    target = (_query(primary_url, "SELECT pg_current_wal_lsn()::text") or ("0/0",))[0]
    deadline = time.monotonic() + timeout
    while True:
        row = _query(read_url, "SELECT coalesce(pg_last_wal_replay_lsn() >= %s::pg_lsn, false), "
                               "pg_last_wal_replay_lsn()::text", (target,))
        if row and row[0]:
            return target
        if time.monotonic() > deadline:
            raise ReplicaLagging(f"the read replica has replayed WAL up to {row[1] if row else '?'} only, the primary "
                                 f"is at {target} (waited {timeout:.0f} s): check `gitinsight db replica status`")
        time.sleep(0.05)
