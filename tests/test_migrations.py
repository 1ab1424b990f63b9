"""Migrations: one head, empty → head → base → head, models match the DDL, nothing left behind."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gitinsight_analytics import migrate
from gitinsight_analytics.cli import main
from gitinsight_analytics.exceptions import ValidationError

CATALOG = """
SELECT 'relation ' || c.relname || ' ' || c.relkind::text FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public' AND c.relname NOT LIKE 'alembic_version%'
UNION ALL
SELECT 'function ' || p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'public'
UNION ALL
SELECT 'type ' || t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
 WHERE n.nspname = 'public' AND t.typname NOT LIKE '%alembic_version%'
UNION ALL
SELECT 'extension ' || extname FROM pg_extension WHERE extname <> 'plpgsql'
UNION ALL
SELECT 'policy ' || polname FROM pg_policy
UNION ALL
SELECT 'trigger ' || tgname FROM pg_trigger WHERE NOT tgisinternal
UNION ALL
SELECT 'grant ' || table_name FROM information_schema.role_table_grants WHERE grantee = 'application_role'
ORDER BY 1
"""


def catalog(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text(CATALOG)).scalars())


def revisions() -> list[str]:
    script = migrate.ScriptDirectory.from_config(migrate.alembic_config())
    return [r.revision for r in reversed(list(script.walk_revisions()))]


def test_single_head() -> None:
    assert len(migrate.heads()) == 1


def test_upgrade_from_empty_matches_models(empty_engine: Engine) -> None:
    migrate.upgrade(empty_engine)
    assert migrate.current_revision(empty_engine) == migrate.heads()[0]
    assert migrate.drift(empty_engine) == []


def test_models_match_ddl_on_the_template(engine: Engine) -> None:
    assert migrate.drift(engine) == []


def test_downgrade_to_base_leaves_nothing_and_upgrades_again(empty_engine: Engine) -> None:
    before = catalog(empty_engine)
    migrate.upgrade(empty_engine)
    built = catalog(empty_engine)
    assert len(built) > 100
    migrate.downgrade(empty_engine, "base")
    assert catalog(empty_engine) == before
    migrate.upgrade(empty_engine)
    assert catalog(empty_engine) == built


def test_each_step_up_and_down(empty_engine: Engine) -> None:
    """Every revision upgrades from its predecessor and downgrades back to exactly the predecessor's schema."""
    previous = catalog(empty_engine)
    for revision in revisions():
        migrate.upgrade(empty_engine, revision)
        now = catalog(empty_engine)
        migrate.downgrade(empty_engine, "-1")
        assert catalog(empty_engine) == previous, f"downgrade of {revision} left objects behind"
        migrate.upgrade(empty_engine, revision)
        previous = now


def test_a_failing_migration_changes_nothing(empty_engine: Engine) -> None:
    """Migrations are transactional: an error part-way leaves the database as it was."""
    with empty_engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE insights (id int)"))  # 0001 will fail when it reaches insights
    before = catalog(empty_engine)
    with pytest.raises(sa.exc.ProgrammingError, match="already exists"):
        migrate.upgrade(empty_engine)
    assert catalog(empty_engine) == before
    assert migrate.current_revision(empty_engine) is None


@pytest.mark.parametrize("revision", ["nonsense", "9999"])
def test_unknown_revision_is_refused(engine: Engine, revision: str) -> None:
    with pytest.raises(ValidationError, match=r"revision: unknown revision .*allowed: head, base, 0001"):
        migrate.upgrade(engine, revision)


def test_cli_upgrade_downgrade_check(cli_env: Engine, capsys: pytest.CaptureFixture) -> None:
    assert main(["db", "check"]) == 0
    assert main(["db", "downgrade", "base"]) == 0
    assert "revision base" in capsys.readouterr().out
    assert main(["db", "upgrade", "0001"]) == 0
    assert "revision 0001" in capsys.readouterr().out
    assert main(["db", "upgrade"]) == 0
    assert main(["db", "check"]) == 0
    assert main(["db", "upgrade", "nonsense"]) == 2
    assert capsys.readouterr().err.startswith("error: revision: unknown revision 'nonsense'")


def test_drift_is_detected(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("DROP INDEX idx_insights_tags"))
        conn.execute(sa.text("ALTER TABLE users ADD COLUMN shoe_size int"))
    kinds = {diff[0] if isinstance(diff, tuple) else diff[0][0] for diff in migrate.drift(engine)}
    assert {"add_index", "remove_column"} <= kinds


def test_alembic_check_command_is_clean(engine: Engine) -> None:
    """The `alembic check` CLI itself, through migrations/env.py reading DATABASE_URL."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from gitinsight_analytics.settings import PROJECT_ROOT

    env = dict(os.environ, DATABASE_URL=engine.url.render_as_string(hide_password=False))
    alembic = Path(sys.executable).with_name("alembic")
    done = subprocess.run([str(alembic), "check"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "No new upgrade operations detected" in done.stdout + done.stderr
