"""Checks after a restore: rows and checksums as the manifest recorded them, pg_amcheck, policies, roles,
migrations at head, and the materialized views refreshed."""

from __future__ import annotations

import dataclasses
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from sqlalchemy.exc import SQLAlchemyError

from ..exceptions import GitInsightError
from ..pgproc import pg_tool
from .facts import DatabaseFacts, compare_tables, connect, database_facts, libpq_target
from .sets import BackupSet

__all__ = ["older_revision", "Verification", "verify_database", "run_amcheck"]

APPLICATION_ROLE = "application_role"


@dataclass
class Verification:
    """What the checks found: ``problems`` empty means verified."""

    facts: DatabaseFacts | None = None
    amcheck: str = "not run"
    views_refreshed: int = 0
    head: bool = False
    problems: list[str] = field(default_factory=list)

    def summary(self) -> list[str]:
        facts = self.facts
        if facts is None:
            return []
        rows = sum(t.rows for t in facts.tables.values())
        return [
            f"rows and checksums: {len(facts.tables)} tables, {rows:,} rows, "
            + ("equal to the backup" if not any(p.startswith("table ") for p in self.problems) else "DIFFERENT"),
            self.amcheck,
            f"RLS policies: {len(facts.policies)}"
            + (" as in the backup" if not any(p.startswith("policies") for p in self.problems) else " DIFFERENT"),
            f"roles: {', '.join(facts.roles) or 'none'} present",
            f"migrations: revision {facts.revision or 'none'}" + (" (head)" if self.head else " (NOT head)"),
            f"materialized views refreshed: {self.views_refreshed}",
        ]


def run_amcheck(url: str, *, bindir: Path | None = None) -> tuple[str, str | None]:
    """(summary, problem or None) of pg_amcheck on ``url``'s database (tables and btree indexes).

    pg_amcheck needs the amcheck extension: installed for the check and dropped again when it was not there
    (so the next backup does not carry it). Without amcheck, or the right to install it, the check is skipped.
    """
    with connect(url, autocommit=True) as conn:
        installed = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'amcheck'").fetchone() is not None
        if not installed:
            if conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'amcheck'").fetchone() is None:
                return "pg_amcheck skipped: amcheck not available on this server", None
            try:
                conn.execute("CREATE EXTENSION amcheck")
            except psycopg.Error as exc:
                reason = str(exc).strip().splitlines()[0]
                return f"pg_amcheck skipped: amcheck not available ({reason})", None
        try:
            target, env = libpq_target(url)
            done = subprocess.run([pg_tool("pg_amcheck", bindir), target], env=env, capture_output=True,
                                  text=True)
        finally:
            if not installed:
                conn.execute("DROP EXTENSION IF EXISTS amcheck")
    if done.returncode == 0:
        return "pg_amcheck: clean", None
    detail = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    return "pg_amcheck: FAILED", f"pg_amcheck found problems: {detail[0] if detail else done.returncode}"


def _revision_problem(facts: DatabaseFacts, recorded: str | None, heads: list[str],
                      upgradable: bool = False) -> str | None:
    """A revision other than the backup's; or, unless ``upgradable`` (an older revision of this checkout, which
    the restore then upgrades), one that is not head."""
    if facts.revision != recorded:
        return f"alembic revision is {facts.revision}, the backup's {recorded}"
    if facts.revision not in heads and not upgradable:
        return (f"alembic revision {facts.revision} is not this checkout's head ({', '.join(heads)}): "
                "run `gitinsight db upgrade`")
    return None


def older_revision(revision: str | None) -> bool:
    """Whether ``revision`` is a revision of this checkout's migrations other than head (it can be upgraded)."""
    from .. import migrate

    if revision is None or revision in migrate.heads():
        return False
    from alembic.script import ScriptDirectory

    return revision in {r.revision for r in ScriptDirectory.from_config(migrate.alembic_config()).walk_revisions()}


def verify_database(url: str, backup: BackupSet, *, bindir: Path | None = None,
                    upgradable: bool = False) -> Verification:
    """Run every check on the restored database ``url`` against ``backup``'s manifest; refresh the views.
    ``upgradable``: an older revision of this checkout is not a problem (the caller upgrades it next)."""
    from .. import migrate
    from ..db import make_engine
    from ..maintenance.refresh import refresh_repository_stats
    from ..settings import PoolSettings

    result = Verification()
    manifest = backup.manifest
    with connect(url) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        facts = database_facts(conn)
        wanted_roles = set(manifest.get("roles", [])) | ({APPLICATION_ROLE} if facts.revision else set())
        present = {r for (r,) in conn.execute("SELECT rolname::text FROM pg_roles WHERE rolname = ANY(%s)",
                                              (sorted(wanted_roles),)).fetchall()}
        conn.rollback()
    # On Citus the rollups and repository_keys are tables derived from the others (refreshed, synced), not data.
    from ..citus.snapshot import DERIVED_TABLES

    facts = dataclasses.replace(facts, tables={t: s for t, s in facts.tables.items()
                                               if t in backup.tables or t not in DERIVED_TABLES})
    result.facts = facts
    result.problems += compare_tables(backup.tables, facts.tables)
    recorded = {tuple(p) for p in manifest.get("policies", [])}
    if set(facts.policies) != recorded:
        missing = sorted(f"{t}.{p}" for t, p in recorded - set(facts.policies))
        extra = sorted(f"{t}.{p}" for t, p in set(facts.policies) - recorded)
        result.problems.append(f"policies differ (missing: {', '.join(missing) or '-'}; "
                               f"not in the backup: {', '.join(extra) or '-'})")
    result.problems += [f"role {r} does not exist" for r in sorted(wanted_roles - present)]
    heads = migrate.heads()
    result.head = facts.revision in heads
    upgradable = upgradable and older_revision(facts.revision)
    if (problem := _revision_problem(facts, manifest.get("alembic_revision"), heads, upgradable)) is not None:
        result.problems.append(problem)
    result.amcheck, problem = run_amcheck(url, bindir=bindir)
    if problem:
        result.problems.append(problem)
    engine = make_engine(url, pool=PoolSettings(size=1, max_overflow=1))
    try:
        result.views_refreshed = len(refresh_repository_stats(engine).views)
    except (SQLAlchemyError, GitInsightError) as exc:  # a failed check: the restore itself stands
        result.problems.append(f"refreshing the materialized views failed: {str(exc).splitlines()[0]}")
    finally:
        engine.dispose()
    return result
