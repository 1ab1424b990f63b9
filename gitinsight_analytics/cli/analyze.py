"""``gitinsight analyze ...``: the analysis engine's queue, workers, outcomes and calibration. Thin."""

from __future__ import annotations

import datetime as dt

import click
import sqlalchemy as sa

from .. import analysis, queries
from ..exceptions import ValidationError
from ..queries.calibration import calibration_findings
from ..validation import parse_date
from . import common
from .query import render

__all__ = ["register", "analyze"]


def _as_of(engine: sa.engine.Engine, value: str | None) -> dt.date:
    """The given date, or the newest snapshot day of the data (never the clock)."""
    day = parse_date(value, "--as-of")
    if day is not None:
        return day
    with engine.connect() as conn:
        newest = conn.execute(sa.text("SELECT MAX(snapshot_date) FROM repository_snapshots")).scalar()
    if newest is None:
        raise ValidationError("--as-of", "no snapshot data to take the date from", "YYYY-MM-DD, or import data")
    return newest


@click.group()
def analyze() -> None:
    """The analysis engine: queue jobs, run workers, resolve outcomes, check calibration."""


@analyze.command()
@common.audited("analyze.enqueue", "analysis_jobs")
@click.option("--type", "insight_type", type=click.Choice(analysis.INSIGHT_TYPES), required=True)
@click.option("--as-of", help="YYYY-MM-DD (default: the newest snapshot day).")
@click.option("--horizon-days", type=click.IntRange(1, 90), default=7, show_default=True)
@click.option("--model-version", "versions", multiple=True, help="Repeatable; default: every version.")
@click.option("--max-attempts", type=click.IntRange(1, 20), default=3, show_default=True)
@click.argument("repos", nargs=-1)
@click.option("--repos", "repos_option", multiple=True,
              help="real (a snapshot on as-of, default) | all | owner/name ... (also as arguments)")
def enqueue(insight_type: str, as_of: str | None, horizon_days: int, versions: tuple[str, ...], max_attempts: int,
            repos: tuple[str, ...], repos_option: tuple[str, ...]) -> None:
    """Queue one job per repository (idempotent)."""
    engine = common.engine()
    counts = analysis.enqueue(engine, insight_type, as_of=_as_of(engine, as_of), horizon_days=horizon_days,
                              repos=list(repos_option + repos) or ["real"], model_versions=list(versions) or None,
                              max_attempts=max_attempts)
    click.echo(f"queued {counts['queued']}, queued again {counts['requeued']}, already there {counts['existing']}")


@analyze.command()
@common.audited("analyze.schedule", "analysis_jobs")
@click.option("--as-of", help="YYYY-MM-DD (default: the newest snapshot day).")
@click.option("--type", "insight_type", type=click.Choice(analysis.INSIGHT_TYPES), default="trend_prediction",
              show_default=True)
def schedule(as_of: str | None, insight_type: str) -> None:
    """Queue what is due per repositories.settings.analysis_frequency (daily, weekly, monthly)."""
    engine = common.engine()
    counts = analysis.schedule(engine, as_of=_as_of(engine, as_of), insight_type=insight_type)
    click.echo(f"due {counts['due']}: queued {counts['queued']}, queued again {counts['requeued']}")


@analyze.command()
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True)
@click.option("--until-empty", is_flag=True, help="Stop when no job is queued or in progress.")
@click.option("--batch", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.option("--lease-seconds", type=click.FloatRange(1, 3600), default=30.0, show_default=True)
@click.option("--backoff-seconds", type=click.FloatRange(0, 3600), default=5.0, show_default=True)
def work(workers: int, until_empty: bool, batch: int, lease_seconds: float, backoff_seconds: float) -> None:
    """Run worker processes that claim and run jobs (Ctrl-C stops them; their jobs are given back)."""
    options = analysis.WorkerOptions(batch=batch, lease_seconds=lease_seconds, backoff_seconds=backoff_seconds,
                                     until_empty=until_empty)
    stats = analysis.work(common.engine(), workers=workers, options=options,
                          handlers={t: "gitinsight_analytics.analysis.registry:run_insight_job"
                                    for t in analysis.INSIGHT_TYPES})
    rate = stats.completed / stats.seconds if stats.seconds else 0.0
    click.echo(f"completed {stats.completed}, failed {stats.failed}, retried {stats.retried} in "
               f"{stats.seconds:.1f} s ({rate:.0f} jobs/s)")


@analyze.command()
@common.audited("analyze.cancel", "analysis_jobs")
@click.argument("job_id")
def cancel(job_id: str) -> None:
    """Cancel a queued or in-progress job."""
    previous = analysis.cancel(common.engine(), job_id)
    common.audit_note(resource_id=job_id)
    click.echo(f"cancelled {job_id} (was {previous})")


@analyze.command()
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
def status(fmt: str) -> None:
    """The queue: jobs per type and status, expired leases, retries, the latest error."""
    click.echo(render(analysis.queue_status(common.engine()), fmt))


@analyze.command()
@common.audited("analyze.resolve", "insights")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
def resolve(fmt: str) -> None:
    """Record the outcome of every engine insight whose horizon has ended within the data."""
    click.echo(render(analysis.resolve_outcomes(common.engine()), fmt))


@analyze.command()
@common.audited("analyze.backtest", "insights")
@click.option("--horizon-days", type=click.IntRange(1, 90), default=7, show_default=True)
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True)
def backtest(horizon_days: int, workers: int) -> None:
    """Enqueue, work and resolve every as-of day of the data with history and a later outcome."""
    result = analysis.run_backtest(common.engine(), horizon_days=horizon_days, workers=workers, echo=click.echo)
    click.echo(result.describe())


@analyze.command()
@click.option("--type", "insight_type", help="One insight type (default: all).")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
def calibration(insight_type: str | None, fmt: str) -> None:
    """Calibration per type and model version, the version comparison, and the findings."""
    engine = common.engine()
    summary = queries.calibration_summary(engine, insight_type=insight_type)
    comparison = queries.calibration_comparison(engine, insight_type=insight_type)
    click.echo(render(summary, fmt))
    click.echo(render(comparison, fmt))
    if fmt == "table":
        for sentence in calibration_findings(summary, comparison):
            click.echo(f"- {sentence}")


def register(cli: click.Group) -> None:
    cli.add_command(analyze)
