"""Migrations keep data (issue 12): a populated database at an older revision upgrades to head with every row
kept, and a backup taken at an older revision restores there and is upgraded to head."""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gitinsight_analytics import migrate, server
from gitinsight_analytics.backup.facts import table_sums
from gitinsight_analytics.backup.restore import restore_backup
from gitinsight_analytics.backup.sets import create_backup
from gitinsight_analytics.db import make_engine
from gitinsight_analytics.settings import Settings

from .conftest import SMALL_POOL, drop_database
from .faults_support import libpq

#: Revisions a populated database is taken back to (their downgrades drop no table the seed fills).
OLDER = ["0006", "0005"]


def _sums(engine: Engine) -> dict:
    """Rows and checksums of every table but alembic_version (the one table an upgrade changes on purpose)."""
    with psycopg.connect(libpq(engine)) as conn:
        found = table_sums(conn)
    found.pop("alembic_version")
    return found


@pytest.mark.parametrize("revision", OLDER)
def test_a_populated_database_upgrades_with_every_row(seeded_engine: Engine, revision: str) -> None:
    migrate.downgrade(seeded_engine, revision)
    before = _sums(seeded_engine)
    assert before["users"].rows > 0 and before["api_keys"].rows > 0
    migrate.upgrade(seeded_engine)
    after = _sums(seeded_engine)
    assert {t: after[t] for t in before} == before
    assert {t: s.rows for t, s in after.items() if t not in before} == dict.fromkeys(set(after) - set(before), 0)
    assert migrate.current_revision(seeded_engine) == migrate.heads()[0] and migrate.drift(seeded_engine) == []


def test_keys_sharing_an_active_name_are_kept_and_renamed(seeded_engine: Engine) -> None:
    """Before 0007 two active keys could share a name; the upgrade keeps both working, renaming the newer."""
    migrate.downgrade(seeded_engine, "0006")
    with seeded_engine.begin() as conn:
        owner, name = conn.execute(sa.text("SELECT user_id, name FROM api_keys WHERE is_active LIMIT 1")).one()
        conn.execute(sa.text("INSERT INTO api_keys (user_id, name, key_hash, created_at) "
                             "VALUES (:u, :n, 'sha256:twin', now())"), {"u": owner, "n": name})
        count = conn.execute(sa.text("SELECT count(*) FROM api_keys")).scalar()
    migrate.upgrade(seeded_engine)
    with seeded_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM api_keys")).scalar() == count
        twin = conn.execute(sa.text("SELECT name, is_active FROM api_keys WHERE key_hash = 'sha256:twin'")).one()
    assert tuple(twin) == (f"{name} (2)", True)


def test_a_backup_from_an_older_revision_restores_and_upgrades(seeded_engine: Engine, pg: Settings,
                                                               tmp_path: Path) -> None:
    migrate.downgrade(seeded_engine, "0006")
    made = create_backup(seeded_engine, tmp_path / "sets")
    assert made.revision == "0006"
    name = f"gi_old_restore_{os.getpid()}"
    target = make_engine(server.server_url(pg, database=name), pool=SMALL_POOL)
    try:
        report = restore_backup(target, made, admin_url=server.server_url(pg, database="postgres"))
        assert report.created and not report.verification.problems and report.upgraded_from == "0006"
        assert migrate.current_revision(target) == migrate.heads()[0] and migrate.drift(target) == []
        expected = dict(made.tables)
        expected.pop("alembic_version")
        assert _sums(target) == expected
    finally:
        target.dispose()
        drop_database(pg, name)
