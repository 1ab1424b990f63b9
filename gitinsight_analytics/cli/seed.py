"""``gitinsight seed``: load the synthetic data set (thin: options in, one library call, a summary out)."""

from __future__ import annotations

import click

from ..seed.synthetic import SCALES, check_scale, load_synthetic
from . import common

__all__ = ["register", "seed"]


@click.command()
@common.audited("seed", "database")
@click.option("--scale", default="small", show_default=True, metavar="|".join(SCALES),
              help="Data set size (tiny for tests, small for demos, medium/large for benchmarks).")
@click.option("--seed", "seed_value", default=42, show_default=True, type=int,
              help="Random seed: the same seed gives identical rows, ids included.")
@click.option("--replace", is_flag=True, help="Replace the data already in the database (in one transaction).")
def seed(scale: str, seed_value: int, replace: bool) -> None:
    """Generate synthetic users, repositories, insights, jobs, follows, API keys and audit logs, and load them."""
    check_scale(scale)  # before connecting: a typo should not start a server
    result = load_synthetic(common.engine(), scale=scale, seed=seed_value, replace=replace, progress=True)
    common.audit_note(rows=result.rows, seconds=round(result.seconds, 1))
    click.echo(
        f"loaded {result.total_rows:,} rows into {len(result.rows)} tables in {result.seconds:.1f} s "
        f"({result.rows_per_second:,.0f} rows/s): "
        + ", ".join(f"{table} {count:,}" for table, count in result.rows.items())
    )


def register(cli: click.Group) -> None:
    cli.add_command(seed)
