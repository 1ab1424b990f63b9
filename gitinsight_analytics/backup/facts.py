"""What a backup records about its database and a restore checks again: row counts, checksums, policies, roles.

Checksum of a table: the sum, as an exact numeric, of the first 64 bits (signed) of ``md5(row::text)`` over its
rows. A sum does not depend on row order and any changed, added or removed row changes it (short of a 64-bit
collision). The row text depends on a few session settings (time zone, date and interval styles, float digits,
bytea output), so :data:`STABLE_TEXT` pins them: a backup and its restore hash the same text on any server.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from ..db import libpq_url, one_row, redact
from ..exceptions import DatabaseUnreachable

__all__ = [
    "CHECKSUM_METHOD",
    "TableSum",
    "DatabaseFacts",
    "libpq_target",
    "connect",
    "stable_text",
    "database_facts",
    "table_sums",
    "compare_tables",
]

CHECKSUM_METHOD = "sum of the first 64 bits of md5(row::text), UTC/ISO text"

#: Session settings that make ``row::text`` the same on every server and session.
STABLE_TEXT = {
    "TimeZone": "UTC",
    "DateStyle": "ISO, YMD",
    "IntervalStyle": "postgres",
    "extra_float_digits": "1",
    "bytea_output": "hex",
}

_TABLES = """
SELECT c.relname FROM pg_class c
WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                  AND d.deptype = 'e')
ORDER BY c.relname
"""

# Roles named by the public schema's privileges and policies (owners excepted: the restore uses --no-owner).
_ROLES = """
WITH acls AS (
    SELECT relowner AS owner, relacl AS acl FROM pg_class
    WHERE relnamespace = 'public'::regnamespace AND relacl IS NOT NULL
    UNION ALL
    SELECT proowner, proacl FROM pg_proc WHERE pronamespace = 'public'::regnamespace AND proacl IS NOT NULL
    UNION ALL
    SELECT nspowner, nspacl FROM pg_namespace WHERE nspname = 'public' AND nspacl IS NOT NULL
)
SELECT r.rolname::text FROM acls, aclexplode(acls.acl) e JOIN pg_roles r ON r.oid = e.grantee
WHERE e.grantee <> acls.owner AND r.rolname !~ '^pg_'
UNION
SELECT unnest(roles)::text FROM pg_policies WHERE schemaname = 'public'
EXCEPT SELECT 'public'
ORDER BY 1
"""

_POLICIES = "SELECT tablename::text, policyname::text FROM pg_policies WHERE schemaname = 'public' ORDER BY 1, 2"


@dataclass(frozen=True)
class TableSum:
    rows: int
    checksum: str


@dataclass(frozen=True)
class DatabaseFacts:
    """The state of a database as a backup manifest records it."""

    database: str
    server_version: str
    revision: str | None
    tables: dict[str, TableSum]
    policies: list[tuple[str, str]]
    roles: list[str]


def libpq_target(url: str) -> tuple[str, dict[str, str]]:
    """(URL without its password, environment with PGPASSWORD) for the client programs: no password in argv."""
    parsed = make_url(libpq_url(url))
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    return parsed.set(password=None).render_as_string(hide_password=False), env


@contextlib.contextmanager
def connect(url: str, *, autocommit: bool = False) -> Iterator[psycopg.Connection]:
    """A psycopg connection to ``url``; a failure to connect is one line naming the URL (password hidden)."""
    try:
        conn = psycopg.connect(libpq_url(url), autocommit=autocommit, connect_timeout=10,
                               application_name="gitinsight-backup")
    except psycopg.OperationalError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatabaseUnreachable(f"cannot connect to {redact(libpq_url(url))}: {reason}") from None
    with conn:
        yield conn


def stable_text(conn: psycopg.Connection) -> None:
    """Pin the settings row text depends on, for the current transaction."""
    for name, value in STABLE_TEXT.items():
        conn.execute("SELECT set_config(%s, %s, true)", (name, value))


def table_sums(conn: psycopg.Connection) -> dict[str, TableSum]:
    """Row count and checksum of every table of the public schema (partitioned tables through their parent)."""
    stable_text(conn)
    sums = {}
    for (table,) in conn.execute(_TABLES).fetchall():
        query = sql.SQL(
            "SELECT count(*), coalesce(sum(('x' || left(md5(t::text), 16))::bit(64)::bigint::numeric), 0)::text "
            "FROM {}.{} AS t"
        ).format(sql.Identifier("public"), sql.Identifier(table))
        rows, checksum = one_row(conn, query)
        sums[table] = TableSum(int(rows), checksum)
    return sums


def database_facts(conn: psycopg.Connection) -> DatabaseFacts:
    """Everything a manifest records, read in ``conn``'s current transaction (one snapshot)."""
    database, version = one_row(conn, "SELECT current_database(), current_setting('server_version')")
    revision = None
    if one_row(conn, "SELECT to_regclass('public.alembic_version') IS NOT NULL")[0]:
        found = conn.execute("SELECT version_num FROM public.alembic_version").fetchall()
        revision = ",".join(sorted(r[0] for r in found)) or None
    return DatabaseFacts(
        database=database,
        server_version=version,
        revision=revision,
        tables=table_sums(conn),
        policies=[(t, p) for t, p in conn.execute(_POLICIES).fetchall()],
        roles=[r for (r,) in conn.execute(_ROLES).fetchall()],
    )


def compare_tables(expected: dict[str, TableSum], found: dict[str, TableSum]) -> list[str]:
    """One problem per table whose rows or checksum differ from ``expected`` (empty: all equal)."""
    problems = []
    for table, want in sorted(expected.items()):
        got = found.get(table)
        if got is None:
            problems.append(f"table {table} is missing")
        elif got.rows != want.rows:
            problems.append(f"table {table} has {got.rows} rows, the backup {want.rows}")
        elif got.checksum != want.checksum:
            problems.append(f"table {table} has {got.rows} rows as in the backup but a different checksum")
    problems += [f"table {t} is not in the backup" for t in sorted(set(found) - set(expected))]
    return problems
