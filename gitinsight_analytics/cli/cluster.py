"""``gitinsight cluster``: a local Citus cluster (coordinator + workers) for development and tests."""

from __future__ import annotations

import click

from .. import cluster as citus_cluster
from . import common

__all__ = ["register"]


@click.group()
def cluster() -> None:
    """Run a local Citus cluster (needs GITINSIGHT_PG_BINDIR with Citus)."""


@cluster.command()
@click.option("--workers", type=int, default=2, show_default=True, help="Number of worker nodes (1..16).")
@click.option("--shard-count", type=int, default=None,
              help="Shards per distributed table, for a new cluster (default: 2 per CPU core of this machine).")
def start(workers: int, shard_count: int | None) -> None:
    """Start a coordinator and N workers, register the workers, print the coordinator's URL."""
    state = citus_cluster.start(common.settings(), workers=workers, shard_count=shard_count)
    click.echo(state.describe(), err=True)
    click.echo(citus_cluster.coordinator_url(common.settings()))


@cluster.command()
def stop() -> None:
    """Stop every node (the data stays)."""
    click.echo(citus_cluster.stop(common.settings()).describe())


@cluster.command()
def status() -> None:
    """Each node's state (exit code 3 when a node is not running)."""
    state = citus_cluster.status(common.settings())
    click.echo(state.describe())
    if not state.running:
        raise click.exceptions.Exit(3)


@cluster.command()
def url() -> None:
    """The coordinator's URL, for DATABASE_URL."""
    click.echo(citus_cluster.coordinator_url(common.settings()))


def register(cli: click.Group) -> None:
    cli.add_command(cluster)
