"""``gitinsight alerts run`` (find, store and deliver the alerts of followed repositories) and ``alerts list``."""

from __future__ import annotations

import click

from ..exceptions import DeliveryFailed
from . import common
from .query import FORMATS, render

__all__ = ["register", "alerts"]


@click.group()
def alerts() -> None:
    """Alerts for followed repositories: milestones, unusual growth, top-100 moves, confident insights."""


@alerts.command("run")
@common.audited("alerts.run", "alerts")
@click.option("--as-of", help="YYYY-MM-DD (default: the newest day in the data)")
@click.option("--days", "lookback_days", type=int, default=7, show_default=True,
              help="look at the events of this many days up to --as-of")
@click.option("--user", "usernames", multiple=True, help="only this user (repeatable); default: every follower")
def run_cmd(as_of: str | None, lookback_days: int, usernames: tuple[str, ...]) -> None:
    """Find new alerts per user (read as that user), store each once, deliver each user's digest (files under
    the reports folder; e-mail when GITINSIGHT_SMTP_URL is set). A failed delivery is retried next run."""
    from ..alerts import run_alerts

    cfg = common.settings()
    result = run_alerts(common.engine(), reports_dir=cfg.reports_dir, as_of=as_of, lookback_days=lookback_days,
                        usernames=list(usernames) or None, smtp_url=cfg.smtp_url)
    common.audit_note(as_of=str(result.as_of), users=len(result.users), new=sum(u.new for u in result.users),
                      delivered=sum(u.delivered for u in result.users))
    for outcome in result.users:
        if outcome.new or outcome.delivered or outcome.error:
            click.echo(outcome.describe())
        for warning in outcome.warnings:
            click.echo(f"warning: {outcome.username}: {warning}", err=True)
    click.echo(result.describe())
    if not result.ok:
        failed = [u.username for u in result.users if u.error]
        raise DeliveryFailed(f"delivery failed for {len(failed)} users ({', '.join(failed[:10])}); "
                            "their alerts stay unsent and are retried by the next run")


@alerts.command("list")
@click.option("--user", "username", help="only this user's alerts")
@click.option("--limit", type=int, default=50, show_default=True)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
def list_cmd(username: str | None, limit: int, fmt: str) -> None:
    """Stored alerts, newest day first (sent_at empty: not delivered yet)."""
    from ..alerts import list_alerts

    frame = list_alerts(common.engine(), username=username, limit=limit)
    if fmt == "table":
        frame = frame[["as_of", "username", "full_name", "kind", "sent_at", "attempts", "message"]]
    click.echo(render(frame, fmt))


def register(cli: click.Group) -> None:
    cli.add_command(alerts)
