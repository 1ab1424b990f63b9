"""Shared by the fault tests: ``gitinsight`` as a real process, paused at a checkpoint, killed or released, and a
fingerprint of a database (every table's rows and checksum, every constraint and index) to compare before/after.

A process started here runs in its own session: :func:`kill_group` removes what it leaves behind (a killed
``report run`` may leave its kernel, a killed restore its psql for a moment).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.engine import Engine

from gitinsight_analytics.backup.facts import table_sums
from gitinsight_analytics.db import libpq_url
from gitinsight_analytics.seed.copy_stream import CopySource
from gitinsight_analytics.settings import TEST_PAUSE_VARIABLE

__all__ = ["gitinsight", "start_paused", "wait_for", "release", "kill_group", "finish", "fingerprint",
           "schema_snapshot", "failing_source", "cli_environment", "one_line_error", "libpq"]

CLI = [sys.executable, "-m", "gitinsight_analytics.cli"]


def libpq(engine: Engine) -> str:
    return libpq_url(engine.url.render_as_string(hide_password=False))


def cli_environment(engine: Engine | None, home: Path, **extra: str) -> dict[str, str]:
    """The environment of a ``gitinsight`` process pointed at ``engine``'s database (or, None, at ``home``'s
    embedded server), with the interactive pool and no pause unless ``extra`` sets one."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITINSIGHT_") and k != "DATABASE_URL"}
    env["GITINSIGHT_HOME"] = str(home)
    if engine is not None:
        env["DATABASE_URL"] = engine.url.render_as_string(hide_password=False)
    env.update(extra)
    return env


def gitinsight(argv: list[str], env: Mapping[str, str], **popen: Any) -> subprocess.Popen[str]:
    """Start ``gitinsight ARGV`` in a session of its own (output captured as text)."""
    return subprocess.Popen([*CLI, *argv], env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, **popen)


def wait_for(condition: Callable[[], bool], what: str, *, proc: subprocess.Popen | None = None,
             timeout: float = 120) -> None:
    """Poll ``condition`` until true; fail with the process's output if it ended first or time ran out."""
    deadline = time.monotonic() + timeout
    while not condition():
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"the process ended (code {proc.returncode}) before {what}: {out[-2000:]} "
                                 f"{err[-2000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def start_paused(argv: list[str], env: Mapping[str, str], point: str, folder: Path,
                 **popen: Any) -> subprocess.Popen[str]:
    """Start ``gitinsight ARGV`` with a pause at checkpoint ``point`` and return once it is there."""
    folder.mkdir(parents=True, exist_ok=True)
    proc = gitinsight(argv, {**env, TEST_PAUSE_VARIABLE: f"{point}:{folder}"}, **popen)
    wait_for((folder / f"{point}.reached").exists, f"checkpoint {point}", proc=proc)
    return proc


def release(folder: Path, point: str) -> None:
    (folder / f"{point}.release").touch()


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL whatever is left of ``proc``'s session (its children: kernels, psql, pg_dump)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def finish(proc: subprocess.Popen, timeout: float = 300) -> tuple[int, str, str]:
    """Wait for ``proc``: (exit code, stdout, stderr)."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        out, err = proc.communicate()
        raise AssertionError(f"still running after {timeout} s: {out[-2000:]} {err[-2000:]}") from None
    return proc.returncode, out, err


def one_line_error(err: str) -> str:
    """The stderr of a failed command: exactly one line starting ``error:`` (progress bars aside)."""
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.strip() and "%|" not in line
             and not line.startswith(("github-ranking", "loading"))
             and not re.match(r"[\w .-]+: (at|done|stopped at) [\d,/]+ ", line)]  # progress off a terminal
    assert len(lines) == 1 and lines[0].startswith("error: "), err[-3000:]
    return lines[0]


_SCHEMA = """
SELECT conrelid::regclass::text, conname::text, pg_get_constraintdef(oid) || CASE WHEN convalidated THEN ''
       ELSE ' NOT VALID' END FROM pg_constraint WHERE connamespace = 'public'::regnamespace
UNION ALL
SELECT tablename::text, indexname::text, indexdef FROM pg_indexes WHERE schemaname = 'public'
UNION ALL
SELECT relname::text, 'relation ' || relkind::text, '' FROM pg_class WHERE relnamespace = 'public'::regnamespace
ORDER BY 1, 2, 3
"""


def schema_snapshot(engine: Engine) -> list[tuple[str, str, str]]:
    """Every constraint (validated or not), index and relation of the schema, partitions included, as
    ``(table or relation, name, definition)`` in a fixed order: equal snapshots mean the same schema."""
    with psycopg.connect(libpq(engine)) as conn:
        return [tuple(row) for row in conn.execute(_SCHEMA).fetchall()]


def failing_source(source: CopySource, how: str) -> CopySource:
    """``source`` whose load fails after all its rows: in Python (``how="python"``: the generator raises
    RuntimeError "generator broke mid-load") or in PostgreSQL (``"postgres"``: a row that violates NOT NULL)."""
    def blocks():
        yield from source.blocks()
        if how == "python":
            raise RuntimeError("generator broke mid-load")
        bad = b"\t".join([b"00000000000000000000000000000001", b"\\N", b"x"] + [b"\\N"] * 9) + b"\n"
        yield bad, 1  # repository_id NULL violates NOT NULL

    return CopySource(source.table, source.columns, blocks, source.expected_rows)


def fingerprint(engine: Engine) -> dict[str, Any]:
    """Every table's row count and checksum, and the schema's constraints, indexes and relations."""
    with psycopg.connect(libpq(engine)) as conn:
        tables = table_sums(conn)
    return {"tables": tables, "schema": schema_snapshot(engine)}
