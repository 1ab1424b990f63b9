"""``gitinsight demo``: the main job of the README's first command."""

from __future__ import annotations

import click

from ..pipeline import run_main_job
from . import common

__all__ = ["register"]


@click.command()
@common.audited("demo", "database")
@click.option("--scale", type=click.Choice(["tiny", "small", "medium", "large"]), default="small", show_default=True,
              help="Synthetic data size loaded into an empty database.")
@click.option("--seed", type=click.IntRange(0, 2**31 - 1), default=42, show_default=True)
@click.option("--no-import", is_flag=True, help="Skip the import of the real github-ranking data.")
@click.option("--no-reports", is_flag=True, help="Skip rendering the reports.")
@click.option("--no-backtest", is_flag=True, help="Skip the analysis engine's backtest on the real data.")
def demo(scale: str, seed: int, no_import: bool, no_reports: bool, no_backtest: bool) -> None:
    """Start the database, migrate, load data, render every report, print the index path."""
    # ends by printing the path of reports/index.html
    run_main_job(common.settings(), scale=scale, seed=seed, import_real_data=not no_import,
                 reports=not no_reports, backtest=not no_backtest, echo=click.echo)


def register(cli: click.Group) -> None:
    cli.add_command(demo)
