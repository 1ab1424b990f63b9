"""PgBouncer in front of the embedded server: many processes share a bounded number of server connections.

Every process (each JupyterLab kernel, papermill run, ``report due``, the CLI) has its own pool; with many of
them the server's 200 connections run out. PgBouncer (Debian's ``pgbouncer``) in transaction mode lets thousands
of client connections share ``GITINSIGHT_POOLER_POOL_SIZE`` server connections per database: a server
connection is lent for one transaction. What the package does works that way: settings it needs are
transaction-local (``SET LOCAL``/``set_config(..., true)`` in the row-level security helper and the statement
timeout), locks are transaction-level (``pg_advisory_xact_lock``), COPY runs inside the loader's transaction,
and psycopg's server-side prepared statements are off by default (``GITINSIGHT_PREPARE_THRESHOLD``; PgBouncer
1.18 cannot keep them across transactions). Nothing uses LISTEN.

One pooler per ``$GITINSIGHT_HOME``: configuration, pid and log in ``<home>/pgbouncer/``, listening on
127.0.0.1:``GITINSIGHT_POOLER_PORT`` (default: the server's port + 10), every database of the server reachable
by its name, trust authentication as for the server.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from .exceptions import ConfigurationError, PortInUse, ServerError
from .pgproc import give, port_taken, process_name, run
from .settings import Settings

__all__ = ["PoolerStatus", "start", "stop", "status", "pooler_url", "config_text", "executable"]

USER = "postgres"
START_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class PoolerStatus:
    running: bool
    folder: Path
    port: int | None = None
    pid: int | None = None
    pool_size: int | None = None

    def describe(self) -> str:
        if not self.running:
            return f"pooler stopped (configuration in {self.folder})"
        return (f"pooler running: PgBouncer pid {self.pid}, 127.0.0.1:{self.port}, transaction mode, "
                f"{self.pool_size} server connections per database")


def _folder(settings: Settings) -> Path:
    return settings.home / "pgbouncer"


def executable() -> Path | None:
    """The ``pgbouncer`` program (PATH, else Debian's /usr/sbin), or None."""
    import shutil

    found = shutil.which("pgbouncer") or ("/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None)
    return Path(found) if found else None


def pooler_url(settings: Settings, database: str | None = None, *, require: bool = False) -> str:
    """libpq URL of the pooler for ``database`` (default: the configured one). ``require``: raise
    :class:`ConfigurationError` when the pooler does not run."""
    if require and not status(settings).running:
        raise ConfigurationError("GITINSIGHT_USE_POOLER is true but the pooler does not run (allowed: start it "
                                 "with `gitinsight db pooler start`, or unset GITINSIGHT_USE_POOLER)")
    return f"postgresql://{USER}@127.0.0.1:{settings.pooler_listen_port}/{database or settings.db_name}"


def config_text(settings: Settings, server_port: int) -> str:
    """pgbouncer.ini for this home: transaction mode, all databases of the server on ``server_port``."""
    folder = _folder(settings)
    return "\n".join([
        "; written by gitinsight db pooler start; rewritten at every start",
        "[databases]",
        f"* = host=127.0.0.1 port={server_port}",
        "",
        "[pgbouncer]",
        "listen_addr = 127.0.0.1",
        f"listen_port = {settings.pooler_listen_port}",
        "unix_socket_dir =",
        "auth_type = trust",
        f"auth_file = {folder / 'userlist.txt'}",
        f"admin_users = {USER}",
        "pool_mode = transaction",
        f"default_pool_size = {settings.pooler_pool_size}",
        "reserve_pool_size = 0",
        "max_client_conn = 1000",
        "server_reset_query =",
        "ignore_startup_parameters = extra_float_digits",
        "query_wait_timeout = 120",
        "log_connections = 0",
        "log_disconnections = 0",
        f"logfile = {folder / 'pgbouncer.log'}",
        f"pidfile = {folder / 'pgbouncer.pid'}",
        "",
    ])


def _pid(settings: Settings) -> int | None:
    try:
        pid = int((_folder(settings) / "pgbouncer.pid").read_text().strip())
    except (FileNotFoundError, PermissionError, ValueError):
        return None
    return pid if "pgbouncer" in (process_name(pid) or "") else None


def status(settings: Settings) -> PoolerStatus:
    """Whether this home's pooler runs, and where."""
    pid = _pid(settings)
    if pid is None:
        return PoolerStatus(False, _folder(settings))
    return PoolerStatus(True, _folder(settings), port=settings.pooler_listen_port, pid=pid,
                        pool_size=settings.pooler_pool_size)


def start(settings: Settings) -> PoolerStatus:
    """Start PgBouncer in front of the embedded server (started too if needed); a no-op when it runs."""
    from . import server

    if settings.database_url:
        raise ConfigurationError("DATABASE_URL is set: `gitinsight db pooler` fronts the embedded server only "
                                 "(allowed: unset DATABASE_URL, or point it at your own pooler)")
    program = executable()
    if program is None:
        raise ServerError("PgBouncer is not installed (allowed: install Debian's package: apt-get install pgbouncer)")
    current = status(settings)
    if current.running:
        return current
    port = settings.pooler_listen_port
    if port_taken(port):
        raise PortInUse(f"port {port} on 127.0.0.1 is in use by another process "
                        "(set GITINSIGHT_POOLER_PORT to a free port, 1024..65535)")
    db = server.start(settings)
    folder = _folder(settings)
    folder.mkdir(parents=True, exist_ok=True)
    ini = folder / "pgbouncer.ini"
    (folder / "pgbouncer.pid").unlink(missing_ok=True)  # left by a pooler that did not stop cleanly
    (folder / "userlist.txt").write_text(f'"{USER}" ""\n')
    ini.write_text(config_text(settings, db.port or settings.pg_port))
    for path in (folder, ini, folder / "userlist.txt"):
        give(path)  # as root, PgBouncer runs as the server's system user (it refuses to run as root)
    run([str(program), "-d", "-q", str(ini)], f"starting PgBouncer (log: {folder / 'pgbouncer.log'})", timeout=30)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if _pid(settings) is not None and port_taken(port):
            return status(settings)
        time.sleep(0.1)
    raise ServerError(f"PgBouncer did not accept connections on port {port} within {START_TIMEOUT_S:g} s "
                      f"(log: {folder / 'pgbouncer.log'})")


def stop(settings: Settings) -> PoolerStatus:
    """Stop this home's pooler if it runs (open client connections are closed)."""
    pid = _pid(settings)
    if pid is not None:
        import psutil

        os.kill(pid, signal.SIGTERM)
        try:
            psutil.Process(pid).wait(timeout=10)
        except psutil.NoSuchProcess:
            pass
        except psutil.TimeoutExpired:
            raise ServerError(f"PgBouncer (pid {pid}) did not stop within 10 s") from None
    return status(settings)
