"""``gitinsight import github-ranking PATH...``: the real GitHub ranking snapshots."""

from __future__ import annotations

from pathlib import Path

import click

from . import common

__all__ = ["register", "import_group"]


@click.group(name="import")
def import_group() -> None:
    """Import real data (GitHub ranking snapshots)."""


@import_group.command(name="github-ranking")
@common.audited("import.github-ranking", "database")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar.")
def github_ranking(paths: tuple[Path, ...], progress: bool) -> None:
    """Import github-ranking-YYYY-MM-DD.csv files, or folders of them, in one transaction.

    Files already imported (same date and content) are skipped; a malformed file stops the import with its
    name, line and the reason, and nothing is written.
    """
    from ..seed.github_ranking import import_github_ranking

    result = import_github_ranking(common.engine(), list(paths), progress=progress)
    common.audit_note(summary=result.describe())
    click.echo(result.describe())


def register(cli: click.Group) -> None:
    cli.add_command(import_group)
