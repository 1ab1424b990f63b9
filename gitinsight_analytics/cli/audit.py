"""``gitinsight audit``: the newest rows of the audit trail the state-changing commands write."""

from __future__ import annotations

import json

import click

from .. import audit as audit_log
from . import common

__all__ = ["register", "audit"]


@click.command()
@click.option("--action", default=None, help="Only this action (e.g. seed, backup.create, keys.create).")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 10_000))
def audit(action: str | None, limit: int) -> None:
    """Show the newest audit_logs rows: when, action, outcome, resource and details."""
    with common.engine().connect() as conn:
        rows = audit_log.recent(conn, limit=limit, action=action)
    for row in rows:
        details = dict(row["details"] or {})
        outcome = details.pop("outcome", "-")
        resource = row["resource_type"] + (f":{row['resource_id']}" if row["resource_id"] else "")
        click.echo(f"{row['created_at']:%Y-%m-%d %H:%M:%S%z}  {row['action']:<22} {outcome:<7} {resource:<24} "
                   f"{json.dumps(details, sort_keys=True, default=str)}")


def register(cli: click.Group) -> None:
    cli.add_command(audit)
