"""Schema migrations through Alembic's API, each run in one transaction on the given engine."""

from __future__ import annotations

import re

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from .exceptions import ValidationError
from .resources import alembic_ini, migrations_dir

_PARTITION = re.compile(r"^audit_logs_(y\d{4}m\d{2}|default)$")

__all__ = ["alembic_config", "upgrade", "downgrade", "current_revision", "heads", "drift", "include_object"]


def alembic_config() -> Config:
    """The project's Alembic configuration (``alembic.ini`` and ``migrations/`` shipped with the package)."""
    cfg = Config(str(alembic_ini()))
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.attributes["configure_logger"] = False
    return cfg


def _check_revision(cfg: Config, revision: str, parameter: str) -> None:
    script = ScriptDirectory.from_config(cfg)
    if revision in {"head", "heads", "base"} or revision.startswith(("+", "-")):
        return
    try:
        script.get_revision(revision)
    except Exception:
        known = ", ".join(["head", "base", *sorted(r.revision for r in script.walk_revisions())])
        raise ValidationError(parameter, f"unknown revision {revision!r}", known) from None


def _run(engine: Engine, fn, revision: str, *, citus_layout: bool) -> list[str]:
    from . import citus

    cfg = alembic_config()
    _check_revision(cfg, revision, "revision")
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        actions = [] if citus_layout else citus.undistribute(conn)
        fn(cfg, revision)
        if citus_layout:
            at = MigrationContext.configure(conn).get_current_revision()
            if at in ScriptDirectory.from_config(cfg).get_heads():
                actions = citus.distribute(conn)
    return actions


def upgrade(engine: Engine, revision: str = "head") -> list[str]:
    """Upgrade to ``revision`` (default head); all steps in one transaction.

    On a Citus coordinator the schema at head is then laid out for Citus in the same transaction (idempotent;
    see :mod:`gitinsight_analytics.citus`). Returns those layout steps (empty on plain PostgreSQL).
    """
    return _run(engine, command.upgrade, revision, citus_layout=True)


def downgrade(engine: Engine, revision: str) -> list[str]:
    """Downgrade to ``revision`` (e.g. ``base`` or ``-1``); all steps in one transaction. On Citus the tables are
    made local first (returned: what was undone); a later upgrade to head distributes them again."""
    return _run(engine, command.downgrade, revision, citus_layout=False)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def heads() -> list[str]:
    return list(ScriptDirectory.from_config(alembic_config()).get_heads())


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    """Autogenerate filter: audit_logs partitions are made by create_audit_log_partition(), not by models."""
    if type_ == "table" and name and _PARTITION.match(name):
        return False
    table = getattr(obj, "table", None)
    if type_ == "index" and table is not None and _PARTITION.match(table.name):
        return False
    return True


def _names(diff: object) -> list[str]:
    """Names of the objects (and their tables) an autogenerate diff is about."""
    if isinstance(diff, (tuple, list)):
        return [name for part in diff for name in _names(part)]
    table = getattr(diff, "table", None)
    return [n for n in (getattr(diff, "name", None), getattr(table, "name", None)) if isinstance(n, str)]


def drift(engine: Engine) -> list:
    """Differences between the models and the migrated database (empty when ``alembic check`` passes). On a
    Citus database laid out by :func:`upgrade`, the differences that layout makes on purpose are left out."""
    from .models import metadata

    with engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "compare_server_default": True,
                "include_object": include_object,
                "target_metadata": metadata,
            },
        )
        diffs = compare_metadata(ctx, metadata)
        from . import citus

        if citus.is_citus(conn) and citus.distributed_tables(conn):
            from .citus.sql import CITUS_DRIFT_NAMES

            diffs = [d for d in diffs if not set(_names(d)) & set(CITUS_DRIFT_NAMES)]
        return diffs
