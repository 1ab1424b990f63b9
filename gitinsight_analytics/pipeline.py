"""The main job: database, schema, data and every report, in the order a fresh machine needs them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from . import migrate
from .db import connect, resolve_read_url
from .settings import Settings

__all__ = ["MainJobResult", "run_main_job"]


@dataclass(frozen=True)
class MainJobResult:
    revision: str | None
    seeded: bool
    imported_files: int
    index_html: Path | None
    backtest_days: int = 0


def run_main_job(
    settings: Settings,
    *,
    scale: str = "small",
    seed: int = 42,
    import_real_data: bool = True,
    reports: bool = True,
    backtest: bool = True,
    progress: bool = True,
    echo: Callable[[str], None] = print,
) -> MainJobResult:
    """Start/connect, migrate to head, seed ``scale`` if the database is empty, import the real github-ranking
    files (idempotent), backtest the analysis engine on them (queue, workers, outcomes; idempotent), refresh the
    views, render every report. Re-running it is safe and cheap."""
    from .maintenance.refresh import refresh_repository_stats
    from .seed import import_github_ranking, load_synthetic

    engine = connect(settings, pooled=False, interactive=False)  # it loads data: no statement timeout
    echo(f"database: {engine.url.render_as_string(hide_password=True)}")
    migrate.upgrade(engine)
    revision = migrate.current_revision(engine)
    echo(f"schema at revision {revision}")

    with engine.connect() as conn:
        empty = not conn.execute(sa.text("SELECT EXISTS (SELECT 1 FROM repositories)")).scalar()
    if empty:
        echo(f"loading the {scale} synthetic data set (seed {seed})")
        load_synthetic(engine, scale=scale, seed=seed, progress=progress)
    else:
        echo("data already present: synthetic load skipped (use `gitinsight seed --replace` to reload)")

    imported = 0
    if import_real_data:
        if settings.github_ranking_dir.is_dir():
            echo(f"importing real data from {settings.github_ranking_dir}")
            result = import_github_ranking(engine, [settings.github_ranking_dir], progress=progress)
            echo(result.describe())
            imported = result.files_read
        else:
            echo(f"no real data at {settings.github_ranking_dir}: import skipped (GITINSIGHT_GITHUB_RANKING_DIR)")
    days = 0
    if backtest:
        from .analysis import run_backtest

        backtested = run_backtest(engine, workers=2, echo=echo)
        echo(backtested.describe())
        days = len(backtested.days)
    refresh_repository_stats(engine)

    index = None
    if reports:
        from .reports import render_all
        from .reports.runner import skip_slow_imports

        skip_slow_imports()

        read_url = resolve_read_url(settings) if settings.read_url else None  # a replica: reports read there
        index = render_all(engine, reports_dir=settings.reports_dir, notebooks_dir=settings.notebooks_dir, echo=echo,
                           read_url=read_url)
    engine.dispose()
    return MainJobResult(revision, empty, imported, index, days)
