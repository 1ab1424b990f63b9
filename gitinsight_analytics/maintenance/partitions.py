"""Monthly partitions of ``audit_logs``: create the coming months, empty the default partition, retention.

``audit_logs`` is RANGE-partitioned by ``created_at``, one partition per month (``audit_logs_yYYYYmMM``, made
by the SQL function ``create_audit_log_partition``) plus ``audit_logs_default`` for rows of months that have
none. The traps this module works around:

* A month cannot get a partition while rows of its range sit in the default partition; the SQL function
  moves them out first, under an ACCESS EXCLUSIVE lock on ``audit_logs``, in the caller's transaction.
* Creating (or attaching) a partition scans the default partition to prove it holds no row of the new range,
  so the default partition is kept small: every run moves its rows into their months.
* ``DETACH PARTITION ... CONCURRENTLY`` is refused while a default partition exists, so expired months are
  detached with a plain ``DETACH`` (a short ACCESS EXCLUSIVE lock: no scan, the table is dropped next) inside
  the same transaction as everything else.

Month boundaries are midnight in the session's ``TimeZone`` (UTC on the embedded server), as in the function.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from psycopg import sql
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from ..exceptions import LockUnavailable, PartitionError, ValidationError
from ..objects import AUDIT_DEFAULT_PARTITION
from ..validation import parse_date

__all__ = [
    "PartitionStatus",
    "PartitionReport",
    "check_options",
    "maintain_partitions",
    "ensure_audit_partitions",
    "audit_partitions",
    "partition_name",
    "LOCK_TIMEOUT",
    "MAX_MONTHS_FROM_DEFAULT",
]

#: How long a run waits for its locks (another maintenance run, a long transaction on audit_logs) before it
#: gives up and changes nothing. A waiting ACCESS EXCLUSIVE request queues every later audit insert behind it.
LOCK_TIMEOUT = "10s"
#: Rows in the default partition get a partition for their month wherever it is (1970, 2040...), but not more
#: than this many new months in one run: thousands of distinct months mean broken timestamps to look at first.
MAX_MONTHS_FROM_DEFAULT = 600
#: Months with a 4-digit year get partitions (names stay unique); rows outside (BC, year 10000+, +-infinity)
#: stay in the default partition, where they remain queryable, and are reported.
FIRST_MONTH, LAST_MONTH = dt.date(1, 1, 1), dt.date(9999, 12, 1)
_ADVISORY_KEY = "gitinsight:maintain-partitions"

_PARTITIONS = text(r"""
SELECT c.relname AS name,
       c.oid = pt.partdefid AS is_default,
       (b.m[1]::timestamptz)::date AS lo,
       (b.m[2]::timestamptz)::date AS hi,
       COALESCE(b.m[2]::timestamptz <= CAST(CAST(:cutoff AS date) AS timestamptz), false) AS expired,
       c.reltuples::bigint AS estimate
FROM pg_partitioned_table pt
JOIN pg_inherits i ON i.inhparent = pt.partrelid
JOIN pg_class c ON c.oid = i.inhrelid
LEFT JOIN LATERAL regexp_match(pg_get_expr(c.relpartbound, c.oid),
                               'FROM \(''([^'']*)''\) TO \(''([^'']*)''\)') AS b(m) ON true
WHERE pt.partrelid = 'audit_logs'::regclass
ORDER BY c.oid = pt.partdefid, lo, c.relname
""")


@dataclass(frozen=True)
class PartitionStatus:
    """One partition of audit_logs after the run, and what the run did to it."""

    name: str
    lower: dt.date | None  # None for the default partition
    upper: dt.date | None
    rows: int | None  # exact count where the run acted (created, expired, default); else None
    estimate: int | None = None  # the planner's row estimate (-1: never analysed)
    is_default: bool = False
    created: bool = False
    moved: int = 0  # rows moved in from the default partition
    expired: bool = False
    dropped: bool = False

    @property
    def range(self) -> str:
        return "DEFAULT" if self.is_default else f"{self.lower} .. {self.upper}"

    @property
    def action(self) -> str:
        done = []
        if self.created:
            done.append(f"created, moved {self.moved} rows from default" if self.moved else "created")
        if self.dropped:
            done.append("detached and dropped")
        elif self.expired:
            done.append("expired (kept: dry run without --drop-expired)")
        return "; ".join(done) or "kept"


@dataclass(frozen=True)
class PartitionReport:
    """The outcome of :func:`maintain_partitions`."""

    as_of: dt.date
    first_month: dt.date  # the months ensured: as-of month ..
    last_month: dt.date  # .. as-of month + months_ahead
    cutoff: dt.date | None  # partitions ending on or before this are past retention (None: no retention)
    drop_expired: bool
    partitions: tuple[PartitionStatus, ...] = ()
    outside_rows: int = 0  # rows left in the default partition (year outside 1..9999, or +-infinity)

    @property
    def created(self) -> list[str]:
        return [p.name for p in self.partitions if p.created]

    @property
    def moved(self) -> int:
        return sum(p.moved for p in self.partitions)

    @property
    def expired(self) -> list[str]:
        return [p.name for p in self.partitions if p.expired]

    @property
    def dropped(self) -> list[str]:
        return [p.name for p in self.partitions if p.dropped]

    @property
    def dropped_rows(self) -> int:
        return sum(p.rows or 0 for p in self.partitions if p.dropped)


@dataclass
class _Plan:
    parts: dict[str, PartitionStatus] = field(default_factory=dict)
    default_months: dict[dt.date, int] = field(default_factory=dict)
    outside_rows: int = 0
    to_create: list[dt.date] = field(default_factory=list)


def partition_name(month: dt.date) -> str:
    """``audit_logs_yYYYYmMM``, as ``create_audit_log_partition`` names the partition of ``month``."""
    return f"audit_logs_y{month.year:04d}m{month.month:02d}"


def _add_months(month: dt.date, n: int) -> dt.date:
    index = month.year * 12 + month.month - 1 + n
    return dt.date(index // 12, index % 12 + 1, 1)


def _parse_as_of(as_of: dt.date | str | None) -> dt.date | None:
    return parse_date(as_of, "as_of")


def check_options(*, months_ahead: int = 3, retain_months: int | None = None, drop_expired: bool = False,
                  as_of: dt.date | str | None = None) -> dt.date | None:
    """Validate the options of :func:`maintain_partitions` without a database; returns ``as_of`` as a date."""
    if isinstance(months_ahead, bool) or not isinstance(months_ahead, int) or not 0 <= months_ahead <= 120:
        raise ValidationError("months_ahead", f"{months_ahead!r} is out of range", "0..120")
    if retain_months is not None and (isinstance(retain_months, bool) or not isinstance(retain_months, int)
                                      or not 1 <= retain_months <= 600):
        raise ValidationError("retain_months", f"{retain_months!r} is out of range", "1..600")
    if drop_expired and retain_months is None:
        raise ValidationError("drop_expired", "needs retain_months (which months are expired?)",
                              "--drop-expired together with --retain-months M")
    day = _parse_as_of(as_of)
    if day is not None:
        _check_span(day, months_ahead, retain_months)
    return day


def _check_span(day: dt.date, months_ahead: int, retain_months: int | None) -> None:
    index = day.year * 12 + day.month - 1
    if index + months_ahead > LAST_MONTH.year * 12 + LAST_MONTH.month - 1:
        raise ValidationError("as_of", f"{day} plus {months_ahead} months is past year 9999", "an earlier date")
    if index - (retain_months or 0) < FIRST_MONTH.year * 12:
        raise ValidationError("as_of", f"{day} minus {retain_months} months is before year 1", "a later date")


def _execute(conn: Connection, statement: sql.Composable) -> None:
    conn.exec_driver_sql(statement.as_string(conn.connection.driver_connection))


def _count(conn: Connection, name: str) -> int:
    query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(name))
    return int(conn.exec_driver_sql(query.as_string(conn.connection.driver_connection)).scalar_one())


def _plan(conn: Connection, months: Iterable[dt.date], cutoff: dt.date | None) -> _Plan:
    plan = _Plan()
    for r in conn.execute(_PARTITIONS, {"cutoff": cutoff}).mappings():
        plan.parts[r["name"]] = PartitionStatus(r["name"], r["lo"], r["hi"], None, int(r["estimate"]),
                                                is_default=bool(r["is_default"]), expired=bool(r["expired"]))
    if AUDIT_DEFAULT_PARTITION.name in plan.parts:
        rows = conn.execute(text(
            "SELECT date_trunc('month', created_at)::date AS month, count(*) FROM audit_logs_default "
            "WHERE created_at >= DATE '0001-01-01' AND created_at < DATE '10000-01-01' GROUP BY 1"))
        plan.default_months = {month: int(n) for month, n in rows}
        total = _count(conn, AUDIT_DEFAULT_PARTITION.name)
        plan.outside_rows = total - sum(plan.default_months.values())
    wanted = set(months) | set(plan.default_months)
    plan.to_create = sorted(m for m in wanted if partition_name(m) not in plan.parts)
    return plan


def _refuse_foreign_tables(conn: Connection, months: list[dt.date]) -> None:
    """A table with a partition's name that is not a partition (say, one detached by hand) would make the SQL
    function skip the month and leave its rows in the default partition: refuse instead."""
    names = [partition_name(m) for m in months]
    taken = conn.execute(text("SELECT relname FROM pg_class WHERE relname = ANY(:names) "
                              "AND relnamespace = 'public'::regnamespace"), {"names": names}).scalars().all()
    if taken:
        raise PartitionError(f"{taken[0]} exists but is not a partition of audit_logs; rename or drop it "
                             "(nothing changed)")


def _refuse_too_many(plan: _Plan, months: list[dt.date]) -> None:
    stray = [m for m in plan.to_create if m not in months]
    if len(stray) > MAX_MONTHS_FROM_DEFAULT:
        raise PartitionError(f"the default partition holds rows of {len(stray)} months without a partition "
                             f"({stray[0]} .. {stray[-1]}), more than {MAX_MONTHS_FROM_DEFAULT}: check those "
                             "timestamps (nothing changed)")


def _apply(conn: Connection, plan: _Plan, months: list[dt.date], cutoff: dt.date | None,
           drop_expired: bool) -> tuple[dict[str, PartitionStatus], int]:
    _refuse_foreign_tables(conn, plan.to_create)
    created: dict[str, int] = {}
    for month in plan.to_create:
        name = conn.execute(text("SELECT create_audit_log_partition(:m)"), {"m": month}).scalar_one()
        created[name] = _count(conn, name)  # nobody else can insert: the function holds ACCESS EXCLUSIVE
    after = _plan(conn, months, cutoff)
    parts = {}
    for name, part in after.parts.items():
        if part.is_default:
            part = replace(part, rows=_count(conn, name))
        elif name in created:
            part = replace(part, created=True, moved=created[name], rows=created[name])
        if part.expired:
            part = replace(part, rows=_count(conn, name) if part.rows is None else part.rows)
            if drop_expired:
                _execute(conn, sql.SQL("ALTER TABLE audit_logs DETACH PARTITION {}").format(sql.Identifier(name)))
                _execute(conn, sql.SQL("DROP TABLE {}").format(sql.Identifier(name)))
                part = replace(part, dropped=True)
        parts[name] = part
    return parts, after.outside_rows


def maintain_partitions(
    engine: Engine,
    *,
    months_ahead: int = 3,
    retain_months: int | None = None,
    drop_expired: bool = False,
    as_of: dt.date | str | None = None,
) -> PartitionReport:
    """Create the partitions of the as-of month and ``months_ahead`` months after it, move every row of the
    default partition into a partition of its month (created as needed, however far away), and find the
    partitions past retention: those ending on or before the first day of (as-of month - ``retain_months``).
    With ``drop_expired`` they are detached and dropped; without, it is a dry run for them.

    ``as_of`` defaults to the database's ``current_date``. Everything happens in one transaction: an error
    (a lock not granted within :data:`LOCK_TIMEOUT`, a bad table) changes nothing. Rows are never deleted
    except in partitions dropped with ``drop_expired``. Runs are idempotent.
    """
    day = check_options(months_ahead=months_ahead, retain_months=retain_months, drop_expired=drop_expired,
                        as_of=as_of)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": _ADVISORY_KEY})
            if day is None:
                day = conn.execute(text("SELECT current_date")).scalar_one()
                _check_span(day, months_ahead, retain_months)
            first = day.replace(day=1)
            last = _add_months(first, months_ahead)
            cutoff = _add_months(first, -retain_months) if retain_months else None
            months = [_add_months(first, k) for k in range(months_ahead + 1)]
            plan = _plan(conn, months, cutoff)
            _refuse_too_many(plan, months)
            if plan.to_create or (drop_expired and any(p.expired for p in plan.parts.values())):
                conn.exec_driver_sql("LOCK TABLE audit_logs IN ACCESS EXCLUSIVE MODE")
                plan = _plan(conn, months, cutoff)  # stable now: nobody else writes until we commit
                _refuse_too_many(plan, months)
            parts, outside = _apply(conn, plan, months, cutoff, drop_expired)
    except DBAPIError as exc:
        cause = str(getattr(exc, "orig", exc)).splitlines()[0]
        if getattr(getattr(exc, "orig", None), "sqlstate", None) == "55P03":
            raise LockUnavailable(f"audit_logs: a lock was not granted within {LOCK_TIMEOUT} (a long transaction "
                                  f"or another maintenance run); nothing changed") from None
        raise PartitionError(f"partition maintenance failed, nothing changed: {cause}") from None
    return PartitionReport(day, first, last, cutoff, drop_expired, tuple(parts.values()), outside)


def ensure_audit_partitions(conn: Connection, start: dt.date, end: dt.date) -> list[str]:
    """Create the monthly audit_logs partitions covering ``start``..``end`` (inclusive); returns their names.

    Runs in the caller's transaction (the loaders use it before COPY); rows of those months waiting in the
    default partition are moved into them.
    """
    if end < start:
        raise ValidationError("end", f"{end} is before start {start}", "a date on or after start")
    if (end.year - start.year) * 12 + end.month - start.month > 240:
        raise ValidationError("end", "more than 240 months after start", "at most 20 years of partitions")
    names = []
    month = start.replace(day=1)
    while month <= end:
        names.append(conn.execute(text("SELECT create_audit_log_partition(:m)"), {"m": month}).scalar_one())
        month = _add_months(month, 1)
    return names


def audit_partitions(conn: Connection) -> list[tuple[str, str, int]]:
    """(partition, bounds, estimated rows) for every partition of audit_logs."""
    rows = conn.execute(
        text(
            """
            SELECT c.relname, pg_get_expr(c.relpartbound, c.oid), c.reltuples::bigint
            FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = 'audit_logs'::regclass ORDER BY c.relname
            """
        )
    )
    return [(r[0], r[1], max(int(r[2]), 0)) for r in rows]
