"""``gitinsight partitions``: operations on the configured database."""

from __future__ import annotations

import datetime as dt

import click

from .. import maintenance
from . import common

__all__ = ["register"]


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
    for command in (partitions,):
        cli.add_command(command)
