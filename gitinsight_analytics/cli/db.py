"""``gitinsight db``: the embedded server and schema migrations."""

from __future__ import annotations

import click

from .. import migrate, pooler, server
from ..db import libpq_url, resolve_url
from . import common

__all__ = ["db", "register"]


@click.group()
def db() -> None:
    """Run the embedded PostgreSQL server and migrate the schema."""


@db.command()
@click.option("--archive/--no-archive", default=None,
              help="Switch WAL archiving on/off (kept for later starts; restarts a running server to apply it). "
                   "Default: GITINSIGHT_WAL_ARCHIVE, else unchanged.")
def start(archive: bool | None) -> None:
    """Start the embedded server (no-op with DATABASE_URL)."""
    cfg = common.settings()
    if cfg.database_url:
        click.echo("DATABASE_URL is set: using that server, nothing to start")
        return
    state = server.start(cfg, archive=archive if archive is not None else cfg.wal_archive)
    if state.restarted:
        click.echo(f"restarted the server to switch WAL archiving {'on' if state.archiving else 'off'} "
                   "(open sessions were disconnected)")
    click.echo(state.describe())


@db.command()
def stop() -> None:
    """Stop the embedded server (and its pooler)."""
    cfg = common.settings()
    if cfg.database_url:
        click.echo("DATABASE_URL is set: the embedded server is not used, nothing to stop")
        return
    if pooler.status(cfg).running:  # it would only refuse connections without the server
        click.echo(pooler.stop(cfg).describe())
    click.echo(server.stop(cfg).describe())


@db.command()
def status() -> None:
    """Say whether the embedded server runs (exit code 3 when it does not)."""
    cfg = common.settings()
    if cfg.database_url:
        common.engine()
        click.echo("DATABASE_URL is set and reachable")
        return
    state = server.status(cfg)
    click.echo(state.describe())
    if not state.running:
        raise click.exceptions.Exit(3)


@db.command()
@click.option("--direct", is_flag=True, help="The server itself, even when the pooler runs.")
def url(direct: bool) -> None:
    """Print the URL notebooks use, for psql and SQLAlchemy (the pooler's when it runs; starts the embedded
    server if needed)."""
    click.echo(libpq_url(resolve_url(common.settings(), pooled=False if direct else None)))


@db.group(name="pooler")
def pooler_group() -> None:
    """PgBouncer (transaction mode) in front of the embedded server, for many concurrent notebooks and reports."""


@pooler_group.command(name="start")
def pooler_start() -> None:
    """Start PgBouncer (and the embedded server if needed); notebooks and reports then connect through it."""
    click.echo(pooler.start(common.settings()).describe())


@pooler_group.command(name="stop")
def pooler_stop() -> None:
    """Stop PgBouncer; connections go to the server directly again."""
    click.echo(pooler.stop(common.settings()).describe())


@pooler_group.command(name="status")
def pooler_status() -> None:
    """Say whether PgBouncer runs (exit code 3 when it does not)."""
    state = pooler.status(common.settings())
    click.echo(state.describe())
    if not state.running:
        raise click.exceptions.Exit(3)


@db.command()
@common.audited("migrate.upgrade", "schema")
@click.argument("revision", default="head")
def upgrade(revision: str) -> None:
    """Migrate the schema up to REVISION (default: head)."""
    engine = common.engine()
    for action in migrate.upgrade(engine, revision):
        click.echo(f"citus: {action}")
    click.echo(f"database at revision {migrate.current_revision(engine)}")


@db.command()
@common.audited("migrate.downgrade", "schema")
@click.argument("revision")
def downgrade(revision: str) -> None:
    """Migrate the schema down to REVISION (e.g. base, -1)."""
    engine = common.engine()
    for action in migrate.downgrade(engine, revision):
        click.echo(f"citus: {action}")
    click.echo(f"database at revision {migrate.current_revision(engine) or 'base'}")


@db.command()
def check() -> None:
    """Fail when the models and the migrated database differ (as `alembic check`)."""
    diffs = migrate.drift(common.engine())
    if diffs:
        for diff in diffs:
            click.echo(f"drift: {diff}", err=True)
        raise click.exceptions.Exit(1)
    click.echo("no drift: models match the database")


@db.group()
def replica() -> None:
    """A streaming read replica of the embedded server (reads go there through GITINSIGHT_READ_URL)."""


@replica.command("start")
def replica_start() -> None:
    """Clone the primary (pg_basebackup) or resume the kept replica, and start it as a hot standby."""
    from .. import replica as replicas

    cfg = common.settings()
    done = replicas.start(cfg)
    for line in done.actions:
        click.echo(line)
    click.echo(done.status.describe())
    if cfg.read_url != replicas.replica_url(cfg):
        click.echo(f"reads use it once set: export GITINSIGHT_READ_URL={replicas.replica_url(cfg)}")


@replica.command("stop")
@click.option("--remove", is_flag=True,
              help="Also delete the replica's data directory and the primary's slot (default: keep them).")
def replica_stop(remove: bool) -> None:
    """Stop the replica (the primary keeps running); its data directory is kept unless --remove."""
    from .. import replica as replicas

    for line in replicas.stop(common.settings(), remove=remove):
        click.echo(line)


@replica.command("status")
def replica_status() -> None:
    """Say whether the replica runs and how far behind the primary it is (exit code 3 when stopped)."""
    from .. import replica as replicas

    state = replicas.status(common.settings())
    click.echo(state.describe())
    if not state.running:
        raise click.exceptions.Exit(3)


@replica.command("url")
def replica_url() -> None:
    """Print the replica's URL (for GITINSIGHT_READ_URL or psql); does not start anything."""
    from .. import replica as replicas

    click.echo(replicas.replica_url(common.settings()))


def register(cli: click.Group) -> None:
    cli.add_command(db)
