"""``gitinsight backup base | pitr | pitr-stop``: base backups and point-in-time recovery of the embedded cluster."""

from __future__ import annotations

from pathlib import Path

import click

from ..pitr import base as basebackup
from ..pitr import recover as pitr
from . import common
from .backup import backup_group

__all__ = ["register"]


@click.command("base")
@common.audited("backup.base", "cluster")
@click.option("--dir", "folder", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder of the base backups (default: $GITINSIGHT_HOME/base_backups).")
def base(folder: Path | None) -> None:
    """Take a base backup of the embedded cluster (pg_basebackup, verified); needs WAL archiving on."""
    made = basebackup.take_base_backup(common.settings(), folder=folder)
    common.audit_note(base_backup=made.name, path=str(made.path))
    click.echo(f"base backup {made.path} (verified; {made.started_at.isoformat()} .. {made.finished_at.isoformat()}, "
               f"WAL {made.start_lsn} .. {made.stop_lsn})")


@click.command("pitr")
@common.audited("backup.pitr", "cluster")
@click.option("--to", "to", required=True, metavar="TIMESTAMP",
              help=f"ISO 8601 time to recover to, e.g. {pitr.EXAMPLE_TIME}; no offset = UTC.")
@click.option("--target", required=True, type=click.Path(path_type=Path),
              help="New or empty folder for the recovered cluster.")
@click.option("--base", "base_name", default=None, metavar="NAME",
              help="Base backup to start from (default: the newest that ended before --to).")
@click.option("--port", type=click.IntRange(1024, 65535), default=None,
              help="Port of the recovered server (default: a free one).")
def pitr_command(to: str, target: Path, base_name: str | None, port: int | None) -> None:
    """Recover the embedded cluster as it was at --to into --target, and start it on 127.0.0.1."""
    when = pitr.parse_target(to)
    done = pitr.recover(common.settings(), to=when, target=target, base=base_name, port=port)
    common.audit_note(base_backup=done.base_backup, target_time=when.isoformat(), port=done.port)
    click.echo(f"recovered to {when.isoformat()} from base backup {done.base_backup}: {done.stop_record}")
    click.echo(done.url)
    click.echo(f"stop it with: gitinsight backup pitr-stop {done.pgdata}")


@click.command("pitr-stop")
@click.argument("directory", metavar="DIR", type=click.Path(path_type=Path))
def pitr_stop(directory: Path) -> None:
    """Stop the server of a cluster recovered by `gitinsight backup pitr` (its folder is kept)."""
    stopped = pitr.stop_recovered(common.settings(), directory)
    click.echo(f"stopped the server of {directory}" if stopped else f"the server of {directory} was not running")


def register(cli: click.Group) -> None:  # the commands join `gitinsight backup`
    for command in (base, pitr_command, pitr_stop):
        backup_group.add_command(command)
