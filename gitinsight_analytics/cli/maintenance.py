"""``gitinsight backup | restore | partitions``: operations on the configured database."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from .. import maintenance
from . import common

__all__ = ["register"]


@click.command()
@click.argument("path", required=False, type=click.Path(dir_okay=False, path_type=Path))
def backup(path: Path | None) -> None:
    """Write a compressed pg_dump (custom format) to PATH (default: $GITINSIGHT_HOME/backups/...)."""
    cfg = common.settings()
    engine = common.engine()
    if path is None:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d_%H%M%S")
        path = cfg.home / "backups" / f"gitinsight_full_{stamp}.dump"
    written = maintenance.backup(engine, path, bindir=cfg.pg_bindir)
    click.echo(f"backup written: {written} ({written.stat().st_size / 1e6:.1f} MB)")


@click.command()
@click.argument("path", type=click.Path(path_type=Path))
def restore(path: Path) -> None:
    """Restore a backup into the configured database, replacing its objects, in one transaction."""
    cfg = common.settings()
    maintenance.restore(common.engine(), path, bindir=cfg.pg_bindir)
    click.echo(f"restored {path}")


@click.command()
@click.option("--months", default=3, show_default=True, type=click.IntRange(0, 120),
              help="Create partitions for the current month and this many months after it.")
def partitions(months: int) -> None:
    """Create the coming monthly audit_logs partitions and list all of them."""
    engine = common.engine()
    with engine.begin() as conn:
        today = conn.exec_driver_sql("SELECT current_date").scalar_one()
        end = today.replace(day=1)
        for _ in range(months):
            end = (end + dt.timedelta(days=32)).replace(day=1)
        maintenance.ensure_audit_partitions(conn, today, end)
        rows = maintenance.audit_partitions(conn)
    for name, bounds, estimate in rows:
        click.echo(f"{name:<24} {bounds:<80} ~{estimate} rows")


def register(cli: click.Group) -> None:
    for command in (backup, restore, partitions):
        cli.add_command(command)
