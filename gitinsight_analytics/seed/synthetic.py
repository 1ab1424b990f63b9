"""Synthetic GitInsight data at any scale, deterministic for a seed, loaded with the streaming COPY loader.

``load_synthetic(engine, scale="small", seed=42)`` fills all seven tables of the spec. The same seed gives the
same rows, ids and timestamps included: every value comes from numpy generators seeded with the seed, and
time is anchored at :data:`AS_OF` (2026-08-22, the end of the real GitHub ranking data), never the clock.
How the data is shaped (power-law stars, weekly rhythm, consistent job states...) is described in
``docs/data.md``.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterator

from psycopg import sql
from sqlalchemy.engine import Connection, Engine

from ..audit import USER_AGENT_PREFIX
from ..exceptions import ValidationError
from ..maintenance.partitions import ensure_audit_partitions
from ..maintenance.refresh import refresh_repository_stats
from . import synthetic_activity as activity
from . import synthetic_rows as rows
from .copy_stream import CopySource
from .loader import KeepRows, LoadResult, bulk_load
from .synthetic_world import AS_OF, DAY, Sizes, World

__all__ = [
    "SCALES",
    "Sizes",
    "LoadResult",
    "AS_OF_DATE",
    "load_synthetic",
    "synthetic_sources",
    "audit_month_range",
    "check_scale",
    "prepare_load",
]

#: Users / repositories / insights / follows / analysis jobs / audit log rows per scale (issue 3).
SCALES: dict[str, Sizes] = {
    "tiny": Sizes(100, 200, 2_000, 500, 400, 1_000),
    "small": Sizes(2_000, 5_000, 50_000, 15_000, 10_000, 20_000),
    "medium": Sizes(50_000, 100_000, 1_000_000, 300_000, 200_000, 500_000),
    "large": Sizes(500_000, 1_000_000, 10_000_000, 3_000_000, 2_000_000, 5_000_000),
}
#: The data's "today" (as a date): the day the real GitHub ranking data ends.
AS_OF_DATE = dt.datetime.fromtimestamp(AS_OF, dt.UTC).date()

_GENERATORS: tuple[tuple[str, Callable[[World], Iterator[tuple[bytes, int]]]], ...] = (
    ("users", rows.users),
    ("repositories", rows.repositories),
    ("insights", activity.insights),
    ("analysis_jobs", activity.analysis_jobs),
    ("user_repository_follows", rows.follows),
    ("api_keys", rows.api_keys),
    ("audit_logs", rows.audit_logs),
)


def check_scale(scale: str) -> Sizes:
    """The sizes of ``scale``; :class:`ValidationError` naming the allowed scales otherwise."""
    if scale not in SCALES:
        raise ValidationError("scale", f"unknown scale {scale!r}", ", ".join(SCALES))
    return SCALES[scale]


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ValidationError("seed", f"{seed!r} is not a valid seed", "an integer from 0 to 4294967295")
    return seed


def audit_month_range() -> tuple[dt.date, dt.date]:
    """First and last day covered by the synthetic audit logs (their monthly partitions must exist)."""
    first = dt.datetime.fromtimestamp(AS_OF - rows.AUDIT_DAYS * DAY, dt.UTC).date()
    return first, AS_OF_DATE


def synthetic_sources(scale: str, seed: int = 42) -> list[CopySource]:
    """The data set as COPY sources in load order (parents first); rows are generated when iterated."""
    sizes = check_scale(scale)
    seed = _check_seed(seed)
    world = World(sizes, seed)
    expected = {"users": sizes.users, "repositories": sizes.repositories, "insights": sizes.insights,
                "analysis_jobs": sizes.jobs, "user_repository_follows": sizes.follows, "api_keys": world.api_keys,
                "audit_logs": sizes.audit_logs}
    return [
        CopySource(table, rows.COLUMNS[table], functools.partial(generate, world), expected[table])
        for table, generate in _GENERATORS
    ]


def prepare_load(conn: Connection) -> None:
    """What the load's transaction does first: the audit_logs partitions of the data's months."""
    ensure_audit_partitions(conn, *audit_month_range())


def _refresh(engine: Engine) -> None:
    # Plain REFRESH after a bulk load: CONCURRENTLY would diff every row against the old contents.
    refresh_repository_stats(engine, concurrently=False)


#: The audit rows of gitinsight's own commands: not data (the empty check ignores them) and kept by every seed,
#: --replace included (their user_id set to NULL where that user is not in the new data).
AUDIT_TRAIL = KeepRows("audit_logs", sql.SQL("starts_with(user_agent, {})").format(sql.Literal(USER_AGENT_PREFIX)),
                       {"user_id": "users"})


def load_synthetic(
    engine: Engine, *, scale: str, seed: int = 42, replace: bool = False, progress: bool = True
) -> LoadResult:
    """Generate the ``scale`` data set for ``seed`` and load it in one transaction, then refresh the view.

    Raises :class:`~gitinsight_analytics.exceptions.DataExistsError` if the database already holds data and
    ``replace`` is false (with ``replace`` the old data is truncated in the same transaction).
    """
    sources = synthetic_sources(scale, seed)
    return bulk_load(engine, sources, replace=replace, progress=progress, prepare=prepare_load, after_commit=_refresh,
                     description=f"seed {scale}", keep=(AUDIT_TRAIL,))
