"""``gitinsight maintain``: audit_logs partitions and the materialized views."""

from __future__ import annotations

import click

from ..maintenance import partitions
from . import common
from .query import refresh

__all__ = ["register", "maintain", "render_partitions"]


@click.group()
def maintain() -> None:
    """Database maintenance (for cron): audit_logs partitions, materialized views."""


def render_partitions(report: partitions.PartitionReport) -> str:
    """The summary table: partition, range, rows (exact where the run acted; ~N: the planner's estimate; -: not
    analysed yet), action; then the totals."""
    lines = [f"as of {report.as_of}: partitions {report.first_month:%Y-%m} .. {report.last_month:%Y-%m} ensured"
             + (f"; retention: partitions ending on or before {report.cutoff} are expired" if report.cutoff else "")]
    lines.append(f"{'partition':<22} {'range':<24} {'rows':>10}  action")
    for part in report.partitions:
        if part.rows is not None:
            rows = str(part.rows)
        else:
            rows = f"~{part.estimate}" if part.estimate is not None and part.estimate >= 0 else "-"
        action = part.action
        if part.is_default:
            action = (f"default: {report.outside_rows} rows outside years 1..9999 stay here" if report.outside_rows
                      else "default (empty)" if part.rows == 0 else "default")
        lines.append(f"{part.name:<22} {part.range:<24} {rows:>10}  {action}")
    lines.append(f"created {len(report.created)}, moved {report.moved} rows from default, "
                 f"expired {len(report.expired)}, dropped {len(report.dropped)} ({report.dropped_rows} rows)")
    if report.expired and not report.drop_expired:
        lines.append("dry run for the expired partitions: add --drop-expired to detach and drop them")
    return "\n".join(lines)


@maintain.command("partitions")
@common.audited("maintain.partitions", "audit_logs")
@click.option("--months-ahead", type=int, default=3, show_default=True,
              help="Ensure partitions for the as-of month and this many months after it (0..120).")
@click.option("--retain-months", type=int, default=None,
              help="Keep the as-of month and the M months before it (1..600); older partitions are listed "
                   "as expired, dropped only with --drop-expired.")
@click.option("--drop-expired", is_flag=True, help="Detach and drop the expired partitions (needs --retain-months).")
@click.option("--as-of", default=None, help="YYYY-MM-DD (default: the database's current_date).")
def partitions_cmd(months_ahead: int, retain_months: int | None, drop_expired: bool, as_of: str | None) -> None:
    """Create the coming monthly partitions, move rows out of the default partition, apply retention."""
    partitions.check_options(months_ahead=months_ahead, retain_months=retain_months, drop_expired=drop_expired,
                             as_of=as_of)  # bad flags fail before the database is touched
    report = partitions.maintain_partitions(common.engine(), months_ahead=months_ahead, retain_months=retain_months,
                                            drop_expired=drop_expired, as_of=as_of)
    common.audit_note(as_of=report.as_of, created=report.created, moved_rows=report.moved, expired=report.expired,
                      dropped=report.dropped, dropped_rows=report.dropped_rows)
    click.echo(render_partitions(report))


maintain.add_command(refresh)  # `gitinsight maintain refresh` is `gitinsight refresh`


def register(cli: click.Group) -> None:
    cli.add_command(maintain)
