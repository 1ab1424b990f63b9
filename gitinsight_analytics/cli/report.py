"""``gitinsight report`` (run, all, due, list, prune) and ``gitinsight lab``."""

from __future__ import annotations

import os
from pathlib import Path

import click

from ..exceptions import ValidationError
from . import common

__all__ = ["register", "report", "lab"]

_SCHEDULE_HELP = "The schedule file (default: the workspace's schedule.yml, else the one shipped with the package)."


@click.group()
def report() -> None:
    """Render notebook reports into reports/ (HTML without code, plus the executed notebook)."""
    from ..reports.runner import skip_slow_imports

    skip_slow_imports()


def _parameters(pairs: tuple[tuple[str, str], ...]) -> dict[str, str]:
    values: dict[str, str] = {}
    for key, value in pairs:
        if key in values:
            raise ValidationError(key, "given twice", "each parameter once")
        values[key] = value
    return values


def _url_and_engine():
    engine = common.engine()
    return common.notebook_url(), engine  # the kernels connect through the pooler when it runs


def _read_url() -> str | None:
    """GITINSIGHT_READ_URL (where the notebooks read), or None: they read the primary."""
    from ..db import resolve_read_url

    cfg = common.settings()
    return resolve_read_url(cfg) if cfg.read_url else None


@report.command("run")
@click.argument("name")
@click.option("-p", "--parameter", "pairs", type=(str, str), multiple=True, metavar="KEY VALUE",
              help="A notebook parameter (repeatable). 'none' or '' unsets an optional one.")
def run_cmd(name: str, pairs: tuple[tuple[str, str], ...]) -> None:
    """Run report NAME (see `gitinsight report list`); exit 2 on bad parameters, 1 if the notebook fails."""
    from ..reports import params
    from ..reports.runner import ReportFailed, catch_up, describe, run_report

    cfg = common.settings()
    given = _parameters(pairs)
    params.validate_parameters(name, given)  # cheap checks first: no database needed to reject a typo
    url, engine = _url_and_engine()
    read_url = _read_url()
    catch_up(url, read_url)
    result = run_report(name, given, database_url=url, reports_dir=cfg.reports_dir,
                        notebooks_dir=cfg.notebooks_dir, engine=engine, read_url=read_url)
    click.echo(describe(result))
    click.echo(f"index: {cfg.reports_dir / 'index.html'}")
    if not result.ok:
        if result.notebook.exists():
            raise ReportFailed(f"report {name} failed; its executed notebook is {result.notebook}")
        raise ReportFailed(f"report {name} failed: {result.error}")


@report.command("all")
def all_cmd() -> None:
    """Run every report with its default parameters and print the path of reports/index.html."""
    from ..reports.runner import render_all

    cfg = common.settings()
    render_all(cfg, reports_dir=cfg.reports_dir, notebooks_dir=cfg.notebooks_dir, echo=click.echo)


@report.command("due")
@click.option("--schedule", "schedule_path", type=click.Path(dir_okay=False, path_type=Path), help=_SCHEDULE_HELP)
def due_cmd(schedule_path: Path | None) -> None:
    """Run the scheduled view refreshes, then the reports, that are due (for cron); prune old runs. Holds a lock."""
    from ..reports.runner import ReportFailed
    from ..reports.schedule import ScheduleLocked, load_schedule, run_due

    cfg = common.settings()
    schedule_path = schedule_path or cfg.schedule_path
    load_schedule(schedule_path)  # a broken schedule fails before the database is touched
    try:
        url, engine = _url_and_engine()
        outcome = run_due(schedule_path, database_url=url, reports_dir=cfg.reports_dir,
                          notebooks_dir=cfg.notebooks_dir, retention_days=cfg.report_retention_days,
                          engine=engine, echo=click.echo, read_url=_read_url(), smtp_url=cfg.smtp_url)
    except ScheduleLocked as exc:
        click.echo(str(exc))
        return
    if not outcome.ok:
        failed = [f"refresh: {outcome.refresh.error}"] if outcome.refresh and not outcome.refresh.ok else []
        failed += [f"{k}: {v}" for k, v in outcome.alerts.items() if v]
        failed += [r.name for r in outcome.results if not r.ok] + outcome.invalid
        raise ReportFailed(f"{len(failed)} scheduled entries failed: {'; '.join(failed)}")


@report.command("list")
@click.option("--schedule", "schedule_path", type=click.Path(dir_okay=False, path_type=Path), help=_SCHEDULE_HELP)
def list_cmd(schedule_path: Path | None) -> None:
    """Reports with their parameters (default, allowed values), the schedule and the latest runs."""
    from ..reports import params
    from ..reports.index import load_runs
    from ..reports.runner import report_names
    from ..reports.schedule import read_schedule, read_state

    cfg = common.settings()
    schedule_path = schedule_path or cfg.schedule_path
    latest: dict[str, dict] = {}
    for run in load_runs(cfg.reports_dir):
        latest.setdefault(run["name"], run)
    for name in report_names(cfg.notebooks_dir):
        defaults = params.notebook_defaults(cfg.notebooks_dir / f"{name}.ipynb")
        last = latest.get(name)
        tail = f"last run {last['started_at']} {last['status']}" if last else "never run"
        click.echo(f"{name}  ({tail})")
        for p in params.SPECS[name]:
            click.echo(f"    {p.name} = {defaults.get(p.name)!r}  [{p.allowed()}]  {p.help}")
    if schedule_path.exists():
        state = read_state(cfg.reports_dir)
        click.echo(f"schedule ({schedule_path}):")
        scheduled = read_schedule(schedule_path)
        for refresh in scheduled.refresh:
            last_run = (state.get(refresh.id) or {}).get("last_run", "never")
            click.echo(f"    {refresh.id}: refresh materialized views {refresh.describe()}, last run {last_run}")
        for entry in scheduled.reports:
            last_run = (state.get(entry.id) or {}).get("last_run", "never")
            click.echo(f"    {entry.id}: {entry.report} {entry.parameters or ''} {entry.describe()}, "
                       f"last run {last_run}")


@report.command("prune")
@click.option("--days", type=click.IntRange(1, 3650), default=None,
              help="Keep runs younger than this (default: GITINSIGHT_REPORT_RETENTION_DAYS, 30).")
@click.option("--dry-run", is_flag=True, help="Only list what would be removed.")
def prune_cmd(days: int | None, dry_run: bool) -> None:
    """Delete old runs (each report's newest run is always kept) and rebuild the index."""
    from ..reports.index import write_index
    from ..reports.schedule import prune

    cfg = common.settings()
    days = days or cfg.report_retention_days
    removed = prune(cfg.reports_dir, retention_days=days, dry_run=dry_run)
    for path in removed:
        click.echo(f"{'would remove' if dry_run else 'removed'} {path}")
    if not dry_run:
        write_index(cfg.reports_dir)
    click.echo(f"{len(removed)} runs older than {days} days {'to prune' if dry_run else 'pruned'}")


@click.command()
@click.option("--port", type=click.IntRange(1024, 65535), default=8888, show_default=True)
@click.option("--no-browser", is_flag=True, help="Do not open a browser; print the URL instead.")
def lab(port: int, no_browser: bool) -> None:
    """Open JupyterLab on notebooks/ with the database started and DATABASE_URL set for the kernels."""
    from .. import migrate
    from ..reports.lab import lab_command

    cfg = common.settings()
    if not cfg.notebooks_dir.is_relative_to(cfg.workspace):  # the package's own copies are not for editing
        raise ValidationError("workspace", f"{cfg.workspace} has no notebooks/",
                              "a workspace made by `gitinsight init DIR` (run lab there)")
    engine = common.engine()  # starts the embedded server if DATABASE_URL is not set
    if migrate.current_revision(engine) is None:
        click.echo("note: the database has no schema yet; run `gitinsight db upgrade` (or `gitinsight demo`)",
                   err=True)
    argv, env = lab_command(common.notebook_url(), cfg.notebooks_dir, port=port,
                            open_browser=not no_browser, base_env=os.environ, as_root=os.geteuid() == 0,
                            read_url=_read_url())
    engine.dispose()
    click.echo(f"JupyterLab on {cfg.notebooks_dir} at http://127.0.0.1:{port}/lab (Ctrl-C stops it)")
    os.execvpe(argv[0], argv, env)


def register(cli: click.Group) -> None:
    cli.add_command(report)
    cli.add_command(lab)
