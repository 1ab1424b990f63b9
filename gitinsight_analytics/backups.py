"""Backups: pg_dump archives of the database and their restore."""

from __future__ import annotations

import subprocess
from pathlib import Path

from sqlalchemy.engine import Engine

from .db import libpq_url
from .exceptions import GitInsightError, ValidationError
from .pgtools import pg_tool

__all__ = ["backup", "restore"]


def backup(engine: Engine, path: Path, *, bindir: Path | None = None) -> Path:
    """pg_dump in custom format (compressed, restorable with :func:`restore`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    url = libpq_url(engine.url.render_as_string(hide_password=False))
    done = subprocess.run([pg_tool("pg_dump", bindir), "--format=custom", "--compress=9", "--file", str(path), url],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise GitInsightError(f"pg_dump failed: {done.stderr.strip().splitlines()[-1]}")
    return path


def restore(engine: Engine, path: Path, *, bindir: Path | None = None) -> None:
    """Replace the database's public schema by a :func:`backup` file, in one transaction.

    pg_restore turns the archive into SQL and psql runs it after dropping the schema, all inside one transaction
    (``pg_restore --clean`` cannot drop the constraints of audit_logs' partitions); on any error the database is
    left as it was.
    """
    path = Path(path)
    if not path.is_file():
        raise ValidationError("path", f"{path} is not a file", "a file written by `gitinsight backup`")
    url = libpq_url(engine.url.render_as_string(hide_password=False))
    script = subprocess.run([pg_tool("pg_restore", bindir), "--no-owner", "--file", "-", str(path)],
                            capture_output=True)
    if script.returncode != 0:
        raise GitInsightError(f"pg_restore failed: {script.stderr.decode().strip().splitlines()[-1]}")
    done = subprocess.run([pg_tool("psql", bindir), "--no-psqlrc", "--quiet", "--single-transaction",
                           "--set", "ON_ERROR_STOP=1", "--command", "DROP SCHEMA public CASCADE",
                           "--command", "CREATE SCHEMA public", "--file", "-", url],
                          input=script.stdout, capture_output=True)
    if done.returncode != 0:
        raise GitInsightError(f"restore failed, database unchanged: {done.stderr.decode().strip().splitlines()[-1]}")
