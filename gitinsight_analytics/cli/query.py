"""``gitinsight query ...`` (the analyses from the shell) and ``gitinsight refresh``. Thin: parse, call, print."""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import click

from .. import queries
from ..queries import options
from . import common

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["register", "query", "refresh", "render", "csv_rows", "json_rows"]

FORMATS = ("table", "csv", "json")


def _plain(value: Any) -> Any:
    import pandas as pd

    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp | dt.datetime | dt.date):
        return value.isoformat()
    if hasattr(value, "item") and not isinstance(value, list | dict | str):
        return value.item()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _number(value: float) -> str:
    """Floats for people: thousands separated and no exponent for large values, two decimals for small ones."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"


def render(frame: pd.DataFrame, fmt: str) -> str:
    """The frame as a readable table, CSV or JSON (a list of objects, ISO timestamps, null for missing)."""
    import pandas as pd

    if fmt == "csv":
        return frame.to_csv(index=False, date_format="%Y-%m-%dT%H:%M:%S%z").rstrip("\n")
    if fmt == "json":
        import json

        records = [{k: _plain(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]
        return json.dumps(records, ensure_ascii=False, indent=2)
    if frame.empty:
        return "(no rows)"
    shown = frame.copy()
    for column in shown.columns:
        if isinstance(shown[column].dtype, pd.DatetimeTZDtype):
            shown[column] = shown[column].dt.strftime("%Y-%m-%d %H:%M")
    with pd.option_context("display.max_colwidth", 60, "display.width", 200, "display.float_format", _number):
        return shown.to_string(index=False)


def csv_rows(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Plain rows as :func:`render` writes a frame of them in CSV (empty for NULL, timestamps as
    ``2026-08-01T12:00:00+0000`` in UTC), without building a DataFrame."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([v.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S%z") if isinstance(v, dt.datetime) else v
                         for v in row])
    return out.getvalue().rstrip("\n")


def json_rows(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Plain rows as :func:`render` writes a frame of them in JSON (a list of objects, ISO timestamps in UTC, null
    for NULL), without building a DataFrame."""
    import json

    records = [{name: value.astimezone(dt.UTC).isoformat() if isinstance(value, dt.datetime) else value
                for name, value in zip(columns, row, strict=True)} for row in rows]
    return json.dumps(records, ensure_ascii=False, indent=2)


def _footer(frame: pd.DataFrame) -> str:
    notes = [f"{k}: {_plain(frame.attrs[k])}" for k in ("as_of", "view_refreshed_at", "failure_rate", "truncated")
             if k in frame.attrs]
    return ("\n" + "; ".join(notes)) if notes else ""


def _emit(frame: pd.DataFrame, fmt: str) -> None:
    click.echo(render(frame, fmt) + (_footer(frame) if fmt == "table" else ""))


def _format_option(fn: Callable) -> Callable:
    return click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
                        help="table for reading; csv or json for scripts")(fn)


@click.group()
def query() -> None:
    """Run an analysis and print its result (reads GITINSIGHT_READ_URL when set; bad options: exit code 2)."""


@query.command()
@click.option("--text", "text_", help="match in name or description (literal, case-insensitive)")
@click.option("--language")
@click.option("--min-stars", type=int)
@click.option("--sort", default="stars", show_default=True, help=", ".join(queries.search.SORT_COLUMNS))
@click.option("--limit", type=int, default=20, show_default=True)
@click.option("--offset", type=int, default=0, show_default=True)
@_format_option
def search(text_: str | None, language: str | None, min_stars: int | None, sort: str, limit: int, offset: int,
           fmt: str) -> None:
    """Search repositories."""
    kwargs: dict[str, Any] = {"text": text_, "language": language, "min_stars": min_stars, "sort": sort, "limit": limit,
                              "offset": offset}
    if fmt in {"csv", "json"}:  # for scripts: no engine, no DataFrame, no psycopg (libpq); the same text
        with common.read_connection() as conn:
            columns, rows = queries.search.search_rows(conn, **kwargs)
        click.echo(csv_rows(columns, rows) if fmt == "csv" else json_rows(columns, rows))
        return
    _emit(queries.search_repositories(common.read_engine(), **kwargs), fmt)


@query.command()
@click.option("--user", "username", required=True, help="username of the user")
@click.option("--limit", type=int, default=100, show_default=True)
@click.option("--offset", type=int, default=0, show_default=True)
@_format_option
def dashboard(username: str, limit: int, offset: int, fmt: str) -> None:
    """A user's followed repositories (newest follow first) with insights and latest job."""
    _emit(queries.user_dashboard(common.read_engine(), username=username, limit=limit, offset=offset), fmt)


@query.command()
@click.option("--by", type=click.Choice(["score", "stars"]), default="score", show_default=True)
@click.option("--window-days", type=int, default=7, show_default=True)
@click.option("--as-of", help="YYYY-MM-DD (default: the newest date in the data)")
@click.option("--language")
@click.option("--min-confidence", type=float, help="only with --by score")
@click.option("--limit", type=int, default=50, show_default=True)
@_format_option
def trending(by: str, window_days: int, as_of: str | None, language: str | None, min_confidence: float | None,
             limit: int, fmt: str) -> None:
    """Trending repositories: the spec's score, or real star growth."""
    engine = common.read_engine()
    if by == "score":
        frame = queries.trending_by_score(engine, window_days=window_days, as_of=as_of, language=language,
                                          min_confidence=min_confidence, limit=limit)
    else:
        if min_confidence is not None:
            raise click.UsageError("--min-confidence applies to --by score only")
        frame = queries.trending_by_stars(engine, window_days=window_days, as_of=as_of, language=language,
                                          limit=limit)
    _emit(frame, fmt)


@query.command()
@click.option("--repo", "full_name", help="owner/name: live figures of one repository (get_repository_stats)")
@click.option("--language")
@click.option("--sort", default="stars", show_default=True, help=", ".join(options.STATS_SORT))
@click.option("--limit", type=int, default=50, show_default=True)
@click.option("--view/--live", "from_view", default=None,
              help="--repo reads get_repository_stats() live by default; --view reads repository_stats")
@_format_option
def stats(full_name: str | None, language: str | None, sort: str, limit: int, from_view: bool | None,
          fmt: str) -> None:
    """Repository statistics (from the repository_stats view, or live for one --repo)."""
    engine = common.read_engine()
    if full_name is not None and not from_view:
        frame = queries.get_repository_stats(engine, full_name=full_name)
    else:
        frame = queries.repository_stats(engine, full_name=full_name, language=language, sort=sort, limit=limit)
    _emit(frame, fmt)


@query.command()
@click.option("--report", type=click.Choice(["distribution", "versions", "low-share", "tags"]),
              default="distribution", show_default=True)
@click.option("--type", "insight_type")
@click.option("--model-version")
@click.option("--threshold", type=float, default=0.5, show_default=True, help="low-share: below this")
@click.option("--freq", default="week", show_default=True, help="low-share: day, week or month")
@click.option("--as-of")
@click.option("--window-days", type=int, default=365, show_default=True)
@click.option("--limit", type=int, default=20, show_default=True, help="tags: how many")
@_format_option
def confidence(report: str, insight_type: str | None, model_version: str | None, threshold: float, freq: str,
               as_of: str | None, window_days: int, limit: int, fmt: str) -> None:
    """Confidence analysis: distribution, model versions compared, low-confidence share, tags."""
    engine = common.read_engine()
    if report == "distribution":
        frame = queries.confidence_distribution(engine, insight_type=insight_type, model_version=model_version)
    elif report == "versions":
        frame = queries.model_version_comparison(engine, insight_type=insight_type)
    elif report == "low-share":
        frame = queries.low_confidence_share(engine, threshold=threshold, freq=freq, as_of=as_of,
                                             window_days=window_days, insight_type=insight_type)
    else:
        frame = queries.tag_summary(engine, limit=limit)
    _emit(frame, fmt)


@query.command()
@click.option("--report", type=click.Choice(["throughput", "failures", "failure-rates", "backlog", "durations"]),
              default="throughput", show_default=True)
@click.option("--type", "job_type")
@click.option("--freq", default="day", show_default=True, help="throughput: day, week or month")
@click.option("--as-of")
@click.option("--window-days", type=int, default=30, show_default=True)
@click.option("--limit", type=int, default=20, show_default=True, help="failures: how many messages")
@_format_option
def jobs(report: str, job_type: str | None, freq: str, as_of: str | None, window_days: int, limit: int,
         fmt: str) -> None:
    """Job analytics: throughput, failures, failure rates, queue backlog, durations."""
    engine = common.read_engine()
    if report == "throughput":
        frame = queries.job_throughput(engine, freq=freq, as_of=as_of, window_days=window_days, job_type=job_type)
    elif report == "failures":
        frame = queries.job_failures(engine, limit=limit, job_type=job_type)
    elif report == "failure-rates":
        frame = queries.job_failure_rates(engine, job_type=job_type)
    elif report == "backlog":
        frame = queries.queue_backlog(engine)
    else:
        frame = queries.job_durations(engine, job_type=job_type)
    _emit(frame, fmt)


@query.command()
@click.argument("full_names", nargs=-1, required=True, metavar="OWNER/NAME OWNER/NAME [...]")
@click.option("--metric", type=click.Choice(list(options.METRICS)), default="stars", show_default=True)
@click.option("--align", type=click.Choice(list(options.ALIGNS)), default="calendar", show_default=True,
              help="calendar dates, or days since each repository was first seen")
@click.option("--from", "start", help="first snapshot day, YYYY-MM-DD (default: the start of the history)")
@click.option("--to", "end", help="last snapshot day, YYYY-MM-DD (default: the end of the history)")
@_format_option
def compare(full_names: tuple[str, ...], metric: str, align: str, start: str | None, end: str | None,
            fmt: str) -> None:
    """Compare 2 to 10 repositories' history side by side (gains, growth, rank in language)."""
    _emit(queries.compare_repositories(common.engine(), list(full_names), metric=metric, align=align, start=start,
                                       end=end), fmt)


@click.command()
@common.audited("refresh", "materialized_view")
@click.option("--concurrently/--blocking", default=None,
              help="default: CONCURRENTLY when the view is populated (readers are not blocked)")
def refresh(concurrently: bool | None) -> None:
    """Refresh the materialized views (repository_stats and the insight aggregates)."""
    result = queries.refresh_stats(common.engine(analyses=True), concurrently=concurrently)
    views = ", ".join(f"{name} {seconds:.2f}s" for name, seconds in result.views)
    mode = "concurrently" if result.concurrently else "blocking"
    click.echo(f"refreshed ({mode}) in {result.seconds:.2f}s: {views}; refreshed_at {result.refreshed_at}")


def register(cli: click.Group) -> None:
    cli.add_command(query)
    cli.add_command(refresh)
