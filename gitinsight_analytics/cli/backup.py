"""``gitinsight backup``: backup sets (create, list, prune, restore). ``cli/pitr.py`` adds base/pitr to the group."""

from __future__ import annotations

from pathlib import Path

import click

from ..backup import sets as backups
from ..backup.restore import RestoreReport, restore_backup, restore_target
from ..db import redact, resolve_url
from ..exceptions import RestoreNotVerified
from . import common

__all__ = ["register", "backup_group"]

_DIR_HELP = "Folder of the backup sets (default: $GITINSIGHT_HOME/backups)."


@click.group("backup")
def backup_group() -> None:
    """Backup sets of the database: full dump, schema, roles and a manifest of row counts and checksums."""


def _folder(directory: Path | None) -> Path:
    return directory if directory is not None else common.settings().home / "backups"


@backup_group.command("create")
@common.audited("backup.create", "backup")
@click.option("--dir", "directory", type=click.Path(path_type=Path), default=None, help=_DIR_HELP)
def create_cmd(directory: Path | None) -> None:
    """Write a backup set: full dump, schema-only dump, roles, and a manifest taken in the dump's snapshot."""
    folder = _folder(directory)
    made = backups.create_backup(common.engine(), folder)
    common.audit_note(backup_set=made.name, path=str(made.path), rows=made.rows, bytes=made.size)
    click.echo(f"backup set {made.path}: {len(made.tables)} tables, {made.rows:,} rows, "
               f"{made.size / 1e6:.1f} MB, revision {made.revision or '-'}")
    if made.manifest["globals"] != "pg_dumpall --globals-only":
        click.echo(f"note: globals.sql holds {made.manifest['globals']}", err=True)


@backup_group.command("list")
@click.option("--dir", "directory", type=click.Path(path_type=Path), default=None, help=_DIR_HELP)
def list_cmd(directory: Path | None) -> None:
    """One line per backup set, newest first: name, created (UTC), size, rows, alembic revision."""
    folder = _folder(directory)
    found = [] if directory is None and not folder.exists() else backups.list_backups(folder)
    if not found:
        click.echo(f"no backup sets in {folder}")
    for backup_set in found:
        click.echo(backup_set.describe())


@backup_group.command("prune")
@common.audited("backup.prune", "backup")
@click.option("--keep-days", default=30, show_default=True, type=int,
              help="Delete sets created more than this many days ago (the newest set is always kept).")
@click.option("--dir", "directory", type=click.Path(path_type=Path), default=None, help=_DIR_HELP)
def prune_cmd(keep_days: int, directory: Path | None) -> None:
    """Delete backup sets older than --keep-days (by their manifest's created_at); other folders are left alone."""
    folder = _folder(directory)
    removed = backups.prune_backups(folder, keep_days=keep_days)
    common.audit_note(removed=[s.name for s in removed], path=str(folder))
    for backup_set in removed:
        click.echo(f"removed {backup_set.describe()}")
    click.echo(f"{len(removed)} backup set(s) removed, {len(backups.list_backups(folder))} kept in {folder}")


def _summary(report: RestoreReport) -> None:
    extra = (["database created"] if report.created else []) + (
        [f"roles created: {', '.join(report.roles_created)}"] if report.roles_created else [])
    click.echo(f"restored {report.backup.name} into {report.database}"
               + (f" ({'; '.join(extra)})" if extra else "") + f" in {report.seconds:.1f} s")
    for line in report.verification.summary():
        click.echo(f"  {line}")
    if report.upgraded_from:
        click.echo(f"  upgraded from revision {report.upgraded_from} to head")


@backup_group.command("restore")
@common.audited("backup.restore", "backup")
@click.argument("source", metavar="SET", type=click.Path(path_type=Path))
@click.option("--into", default=None, metavar="URL|DBNAME",
              help="Target: a postgresql:// URL, or a database name on the configured server (created if "
                   "missing). Default: the configured database.")
@click.option("--force", is_flag=True, help="Replace the target even if it holds data.")
@click.option("--dir", "directory", type=click.Path(path_type=Path), default=None,
              help="Where a SET given by name is (default: $GITINSIGHT_HOME/backups).")
def restore_cmd(source: Path, into: str | None, force: bool, directory: Path | None) -> None:
    """Restore backup set SET (its name as `backup list` prints it, its folder or full.dump), then verify rows,
    checksums, amcheck, policies, roles."""
    source = backups.locate_backup(source, _folder(directory))
    found = backups.open_backup(source)  # a bad archive is refused before any server is started
    target, admin = restore_target(resolve_url(common.settings()), into)
    common.audit_note(backup_set=found.name, path=str(found.path), target=redact(target))
    try:
        report = restore_backup(target, found, force=force, admin_url=admin)
    except RestoreNotVerified as exc:
        _summary(exc.report)  # type: ignore[attr-defined]
        raise
    _summary(report)


def register(cli: click.Group) -> None:
    cli.add_command(backup_group)
