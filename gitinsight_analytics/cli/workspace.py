"""``gitinsight init [DIR]``: an analyst's workspace, where every command then runs."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["register", "init"]


@click.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=".", required=False)
def init(directory: Path) -> None:
    """Create a workspace: schedule.yml, editable notebooks, reports/ and the data folder."""
    from ..workspace import init_workspace

    result = init_workspace(directory)
    for path in result.created:
        click.echo(f"created {path}")
    if result.kept:
        click.echo(f"kept {len(result.kept)} existing file(s) and folder(s) as they were")
    click.echo(f"workspace {result.workspace}: run gitinsight there (or set GITINSIGHT_WORKSPACE), e.g. "
               "gitinsight demo, or gitinsight db upgrade && gitinsight seed --scale tiny && gitinsight report all")


def register(cli: click.Group) -> None:
    cli.add_command(init)
