"""Restoring a backup set: the archive checked before the target is touched, roles and data loaded in one
transaction, then verified (:mod:`.backup_verify`).

``pg_restore --clean`` cannot drop the constraints of audit_logs' partitions, so the public schema is dropped and
made again as PostgreSQL makes it (owner ``pg_database_owner``, USAGE for PUBLIC) and pg_restore's SQL is streamed
into one psql transaction. The transaction is opened and committed by the script itself (``BEGIN`` first,
``COMMIT`` written only once pg_restore has read the whole archive), not by ``psql --single-transaction``, which
commits at the end of its input: if this process dies mid-stream, psql meets the end of its input without a
COMMIT and the server rolls everything back. A failure anywhere leaves the target as it was.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import psycopg
from psycopg import sql
from sqlalchemy.engine import Engine, make_url

from ..checkpoints import checkpoint
from ..citus.sql import CITUS_PRESENT_SQL
from ..db import one_row, redact, sqlalchemy_url
from ..exceptions import (
    ConfigurationError,
    DataExistsError,
    GitInsightError,
    LockUnavailable,
    RestoreError,
    RestoreNotVerified,
    ValidationError,
)
from ..pgproc import pg_tool
from .facts import connect, libpq_target
from .sets import GLOBALS, BackupSet, open_backup
from .verify import Verification, older_revision, verify_database

__all__ = ["LOCK_TIMEOUT", "RestoreReport", "restore_target", "restore_backup"]

#: How long the restore waits for other sessions' locks on the target's tables before giving up.
LOCK_TIMEOUT = "60s"
_DB_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_$-]{0,62}$")
_ROLE_LINE = re.compile(r'^(?:CREATE|ALTER) ROLE ("(?:[^"]|"")+"|[^\s;"]+)[\s;]')
_USER_TABLES = """
SELECT n.nspname::text, c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                  AND d.deptype = 'e')  -- an extension's own tables (Citus' metadata) are not data
ORDER BY 1, 2
"""
_PUBLIC_SCHEMA = """
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS public CASCADE;
CREATE SCHEMA public;
ALTER SCHEMA public OWNER TO pg_database_owner;
GRANT USAGE ON SCHEMA public TO PUBLIC;
COMMENT ON SCHEMA public IS 'standard public schema';
"""


@dataclass(frozen=True)
class RestoreReport:
    backup: BackupSet
    database: str
    created: bool
    roles_created: tuple[str, ...]
    verification: Verification
    seconds: float
    #: The backup's older alembic revision the restored database was upgraded from (None: it was at head).
    upgraded_from: str | None = None


def restore_target(base_url: str, into: str | None) -> tuple[str, str | None]:
    """(target URL, admin URL) for ``--into``: None is ``base_url`` itself; a ``postgresql://`` URL is used as
    given; a bare name is that database on ``base_url``'s server, created through the admin URL (``base_url``)
    if it does not exist."""
    if into is None:
        return sqlalchemy_url(base_url), None
    if "://" in into:
        try:
            return sqlalchemy_url(into), None
        except ConfigurationError:
            raise ValidationError("into", f"{redact(into)!r} is not a PostgreSQL URL",
                                  "postgresql://user:password@host:port/dbname, or a database name") from None
    if not _DB_NAME.match(into):
        raise ValidationError("into", f"{into!r} is neither a postgresql:// URL nor a database name",
                              "a postgresql:// URL, or a name of letters, digits, _ and - (at most 63)")
    return make_url(sqlalchemy_url(base_url)).set(database=into).render_as_string(hide_password=False), base_url


def _tables_with_rows(conn: psycopg.Connection) -> list[str]:
    """Tables (any schema but the system's) holding a row; alembic_version alone does not count."""
    found = []
    for schema, table in conn.execute(_USER_TABLES).fetchall():
        if (schema, table) == ("public", "alembic_version"):
            continue
        query = sql.SQL("SELECT EXISTS (SELECT 1 FROM {}.{})").format(sql.Identifier(schema), sql.Identifier(table))
        if one_row(conn, query)[0]:
            found.append(table if schema == "public" else f"{schema}.{table}")
    return found


def _unquote(ident: str) -> str:
    return ident[1:-1].replace('""', '"') if ident.startswith('"') else ident


def _role_statements(globals_sql: str, roles: Iterable[str]) -> list[str]:
    """The CREATE/ALTER ROLE lines of ``globals_sql`` for ``roles`` (a bare NOLOGIN role for one not in it)."""
    wanted = set(roles)
    found: dict[str, list[str]] = {}
    for line in globals_sql.splitlines():
        match = _ROLE_LINE.match(line)
        if match and (name := _unquote(match.group(1))) in wanted:
            found.setdefault(name, []).append(line)
    statements = []
    for role in sorted(wanted):
        statements += found.get(role) or [f"CREATE ROLE {sql.Identifier(role).as_string()} NOLOGIN;"]
    return statements


def _error_line(text: bytes, default: str) -> str:
    lines = [line.strip() for line in text.decode(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if re.search(r"\b(ERROR|FATAL|error):", line)]
    line = (errors or lines or [default])[0]
    return re.sub(r"^psql:<stdin>:\d+:\s*", "", line)


#: Settings pg_restore's script sets that older servers do not know: (line, first server_version_num knowing it).
_NEWER_SETTINGS = ((b"SET transaction_timeout = 0;\n", 170000),)
_HEADER_LINES = 100


def _copy_script(script: IO[bytes], psql: IO[bytes], server_version: int) -> None:
    """Copy pg_restore's script into psql, without the header's SETs that ``server_version`` does not know."""
    skip = {line for line, since in _NEWER_SETTINGS if server_version < since}
    for _ in range(_HEADER_LINES):
        line = script.readline()
        if not line:
            return
        if line not in skip:
            psql.write(line)
    shutil.copyfileobj(script, psql, 1 << 20)


def _load(url: str, backup: BackupSet, roles: list[str], server_version: int, bindir: Path | None) -> None:
    """Create ``roles`` and replace the public schema by the dump, in one transaction."""
    target, env = libpq_target(url)
    prefix = "\n".join(["BEGIN;", f"SET lock_timeout = '{LOCK_TIMEOUT}';",
                        *_role_statements((backup.path / GLOBALS).read_text(), roles), _PUBLIC_SCHEMA])
    with tempfile.TemporaryFile() as psql_err, tempfile.TemporaryFile() as reader_err:
        psql = subprocess.Popen([pg_tool("psql", bindir), "--no-psqlrc", "--quiet", "--set", "ON_ERROR_STOP=1",
                                 "--dbname", target, "--file", "-"],
                                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=psql_err, env=env,
                                bufsize=0)
        reader = subprocess.Popen([pg_tool("pg_restore", bindir), "--no-owner", "--file", "-",
                                   str(backup.full_dump)], stdout=subprocess.PIPE, stderr=reader_err)
        assert psql.stdin is not None and reader.stdout is not None  # both are pipes (PIPE above)
        broken = False
        try:
            psql.stdin.write(prefix.encode())
            checkpoint("restore.sent")  # psql has the schema dropped and made again, in its open transaction
            _copy_script(reader.stdout, psql.stdin, server_version)
        except BrokenPipeError:  # psql stopped at an error: reported below
            broken = True
            reader.kill()
        reader.stdout.close()
        if reader.wait() != 0 and not broken:
            psql.kill()  # before its input ends, so it never commits: the server rolls the transaction back
            psql.wait()
            reader_err.seek(0)
            raise RestoreError(f"restore failed, database unchanged: pg_restore: "
                               f"{_error_line(reader_err.read(), 'could not read the archive')}")
        try:
            psql.stdin.write(b"\nCOMMIT;\n")  # the whole archive was read: only now may psql commit
            psql.stdin.close()
        except BrokenPipeError:
            pass
        if psql.wait() != 0:
            psql_err.seek(0)
            reason = _error_line(psql_err.read(), f"psql exited with code {psql.returncode}")
            error = LockUnavailable if "lock timeout" in reason else RestoreError
            raise error(f"restore failed, database unchanged: {reason}")


def _roles_present(conn: psycopg.Connection, roles: Iterable[str]) -> set[str]:
    rows = conn.execute("SELECT rolname::text FROM pg_roles WHERE rolname = ANY(%s)", (sorted(roles),))
    return {r for (r,) in rows.fetchall()}


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _admin(admin_url: str | None, statement: sql.SQL, database: str, what: str) -> None:
    with connect(str(admin_url), autocommit=True) as admin:
        try:
            admin.execute(statement.format(sql.Identifier(database)))
        except psycopg.Error as exc:
            raise RestoreError(f"{what} database {database} failed: {_first_line(exc)}") from None


def _is_cluster(url: str) -> bool:
    with connect(url) as conn:
        return bool(one_row(conn, CITUS_PRESENT_SQL)[0])


def _restore_into_cluster(url: str, database: str, backup: BackupSet, bindir: Path | None,
                          started: float) -> RestoreReport:
    """Into a Citus coordinator: restored and verified in a scratch plain database on its server first, then
    copied into the (laid out) cluster tables in one transaction and verified there again."""
    from ..citus import snapshot

    with snapshot.scratch_database(url) as scratch:
        restore_backup(scratch, backup, bindir=bindir, upgrade=False)
        snapshot.copy_into_cluster(scratch, url)
    not_verified = f"{backup.name} was restored into {database} (committed) but NOT verified: "
    try:
        verification = verify_database(url, backup, bindir=bindir)
    except (psycopg.Error, GitInsightError) as exc:
        raise RestoreNotVerified(not_verified + _first_line(exc)) from None
    report = RestoreReport(backup, database, False, (), verification, time.perf_counter() - started)
    if verification.problems:
        error = RestoreNotVerified(not_verified + "; ".join(verification.problems))
        error.report = report  # type: ignore[attr-defined]
        raise error
    return report


def _upgrade(url: str, backup: BackupSet, database: str) -> str:
    """Migrate the restored (and verified) database from the backup's older revision to head."""
    from sqlalchemy.exc import SQLAlchemyError

    from .. import migrate
    from ..db import make_engine
    from ..settings import PoolSettings

    engine = make_engine(url, pool=PoolSettings(size=1, max_overflow=1))
    try:
        migrate.upgrade(engine)
    except (SQLAlchemyError, GitInsightError) as exc:
        raise RestoreNotVerified(f"{backup.name} was restored into {database} (committed, verified at revision "
                                 f"{backup.revision}) but upgrading it to head failed: {_first_line(exc)}") from None
    finally:
        engine.dispose()
    return str(backup.revision)


def restore_backup(target: Engine | str, source: Path | BackupSet, *, force: bool = False, admin_url: str | None = None,
                   bindir: Path | None = None, upgrade: bool = True) -> RestoreReport:
    """Restore the backup set ``source`` (a path, or a set :func:`.backups.open_backup` checked) into ``target``
    and verify it.

    Refused (nothing changed) when the archive does not match its manifest, or when the target holds rows and
    ``force`` is False. With ``admin_url`` a missing target database is created through it (and dropped again
    if the restore fails). A backup of an older revision of this checkout is verified as restored, then (with
    ``upgrade``) migrated to head. Raises :class:`RestoreNotVerified` when the restore committed but a check (or
    that upgrade) failed.
    """
    started = time.perf_counter()
    backup = source if isinstance(source, BackupSet) else open_backup(source, bindir=bindir)
    url = target.url.render_as_string(hide_password=False) if isinstance(target, Engine) else sqlalchemy_url(target)
    database = str(make_url(url).database)
    needed = set(backup.manifest.get("roles", []))
    exists = True
    if admin_url is not None:
        with connect(admin_url, autocommit=True) as admin:
            exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone() is not None
    if exists:
        with connect(url) as conn:
            try:
                held = _tables_with_rows(conn)
            except psycopg.Error as exc:
                raise RestoreError(f"cannot tell whether {database} is empty: {_first_line(exc)}") from None
        if held and not force:
            shown = ", ".join(held[:5]) + (f" and {len(held) - 5} more" if len(held) > 5 else "")
            raise DataExistsError(f"database {database} already holds data in {shown} "
                                  "(allowed: an empty database, or force=True / --force to replace it)")
    else:
        _admin(admin_url, sql.SQL("CREATE DATABASE {}"), database, "creating")
    if exists and _is_cluster(url):
        return _restore_into_cluster(url, database, backup, bindir, started)
    try:
        with connect(url) as conn:
            missing = sorted(needed - _roles_present(conn, needed))
            server_version = int(one_row(conn, "SHOW server_version_num")[0])
        _load(url, backup, missing, server_version, bindir)
    except BaseException:
        if not exists:
            _admin(admin_url, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)"), database, "dropping")
        raise
    not_verified = f"{backup.name} was restored into {database} (committed) but NOT verified: "
    try:
        verification = verify_database(url, backup, bindir=bindir, upgradable=upgrade)
    except (psycopg.Error, GitInsightError) as exc:
        raise RestoreNotVerified(not_verified + _first_line(exc)) from None
    upgraded_from = None
    if upgrade and not verification.problems and older_revision(backup.revision):
        upgraded_from = _upgrade(url, backup, database)
    report = RestoreReport(backup, database, not exists, tuple(missing), verification, time.perf_counter() - started,
                           upgraded_from)
    if verification.problems:
        error = RestoreNotVerified(not_verified + "; ".join(verification.problems))
        error.report = report  # type: ignore[attr-defined]
        raise error
    return report
