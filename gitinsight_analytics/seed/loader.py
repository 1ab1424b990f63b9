"""Bulk loading with PostgreSQL COPY: streamed, all-or-nothing, indexes and constraints rebuilt afterwards.

Generic machinery shared by the synthetic generator and the importers. A :class:`CopySource` yields ready
COPY-text blocks for one table; :func:`bulk_load` writes every source in ONE transaction:

1. lock the target tables (and the tables whose foreign keys point at them), refuse to load into data (rows
   other than the caller's ``keep`` rows, which are set aside and come back after the COPY) unless
   ``replace`` (then TRUNCATE, in the same transaction), run the caller's ``prepare`` step;
2. drop foreign keys, primary/unique constraints and secondary indexes of the targets, remembering their exact
   definitions (``pg_get_constraintdef`` / ``pg_get_indexdef``), because building an index once over loaded
   rows is several times faster than maintaining it row by row;
3. COPY each source (``FREEZE`` where PostgreSQL allows it: the table was truncated in this transaction); a
   writer thread (:mod:`.copy_stream`) sends each block while the caller's thread generates the next one, so
   that Python and the server backend work in parallel (one block queued at most: memory stays bounded);
4. recreate constraints and indexes from the captured text, so the schema is exactly what the migrations made
   (``alembic check`` stays clean; each step's seconds are in :attr:`LoadResult.step_seconds` and logged at
   DEBUG), COMMIT;
5. ANALYZE the tables (in parallel sessions: statistics do not need the load's transaction, and a failed
   ANALYZE loses no data), then run ``after_commit`` (e.g. refresh the views).

Any failure up to the COMMIT rolls everything back: tables, indexes and constraints are as they were.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from psycopg import sql
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from .. import citus
from ..checkpoints import checkpoint
from ..db import driver_connection
from ..exceptions import DataExistsError
from .copy_stream import CopySource, copy_source

__all__ = [
    "KeepRows",
    "DEFER_MIN_ROWS",
    "LoadResult",
    "SchemaObject",
    "bulk_load",
    "dependent_tables",
    "deferrable_objects",
]

log = logging.getLogger(__name__)

#: Below this many rows, dropping and rebuilding indexes costs more than it saves.
DEFER_MIN_ROWS = 50_000
#: Sessions running ANALYZE side by side after the load (the machine this is sized for has 2 cores).
ANALYZE_WORKERS = 2

@dataclass(frozen=True)
class LoadResult:
    """What a load wrote: rows per table, and where the time went (seconds per table and per phase)."""

    rows: Mapping[str, int]
    seconds: float
    table_seconds: Mapping[str, float] = field(default_factory=dict)
    phase_seconds: Mapping[str, float] = field(default_factory=dict)
    #: Seconds of each recreated index/constraint and of each ANALYZE ("analyze <table>"; on Citus "vacuum analyze
    #: <table>"), in execution order.
    step_seconds: Mapping[str, float] = field(default_factory=dict)

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())

    @property
    def rows_per_second(self) -> float:
        return self.total_rows / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class SchemaObject:
    """An index or constraint dropped for the load, with the SQL that recreates it exactly."""

    kind: str  # 'index', 'key' (primary/unique) or 'fkey'
    table: str
    name: str
    definition: str

    def drop_sql(self) -> sql.Composable:
        if self.kind == "index":
            return sql.SQL("DROP INDEX {}").format(sql.Identifier(self.name))
        return sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
            sql.Identifier(self.table), sql.Identifier(self.name)
        )

    def create_sql(self) -> sql.Composable:
        if self.kind == "index":
            # A partitioned table's index is reported "ON ONLY parent"; recreated that way it would not cascade
            # to the partitions (and stay invalid), so create it on the whole tree.
            return sql.SQL(re.sub(r" ON ONLY ", " ON ", self.definition, count=1))  # catalog text
        return sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} ").format(
            sql.Identifier(self.table), sql.Identifier(self.name)
        ) + sql.SQL(self.definition)


_DEPENDENTS = text(
    """
    WITH RECURSIVE dep(oid) AS (
        SELECT c.oid FROM pg_class c
        WHERE c.relnamespace = current_schema()::regnamespace AND c.relname = ANY(:tables)
        UNION
        SELECT con.conrelid FROM pg_constraint con JOIN dep ON con.confrelid = dep.oid
        WHERE con.contype = 'f' AND con.conparentid = 0
    )
    SELECT c.relname FROM dep JOIN pg_class c ON c.oid = dep.oid WHERE NOT c.relispartition ORDER BY c.relname
    """
)

_CONSTRAINTS = text(
    """
    SELECT CASE con.contype WHEN 'f' THEN 'fkey' ELSE 'key' END, t.relname, con.conname,
           pg_get_constraintdef(con.oid)
    FROM pg_constraint con JOIN pg_class t ON t.oid = con.conrelid
    LEFT JOIN pg_class r ON r.oid = con.confrelid
    WHERE con.conparentid = 0 AND t.relnamespace = current_schema()::regnamespace
      AND ((con.contype IN ('p', 'u') AND t.relname = ANY(:tables))
        OR (con.contype = 'f' AND (t.relname = ANY(:tables) OR r.relname = ANY(:tables))))
    ORDER BY t.relname, con.conname
    """
)

_INDEXES = text(
    """
    SELECT 'index', t.relname, ic.relname, pg_get_indexdef(i.indexrelid)
    FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid JOIN pg_class ic ON ic.oid = i.indexrelid
    WHERE t.relnamespace = current_schema()::regnamespace AND t.relname = ANY(:tables)
      AND NOT ic.relispartition
      AND NOT EXISTS (SELECT 1 FROM pg_constraint con
                      WHERE con.conindid = i.indexrelid AND con.conrelid = i.indrelid
                        AND con.contype IN ('p', 'u', 'x'))
    ORDER BY t.relname, ic.relname
    """
)


@dataclass(frozen=True)
class KeepRows:
    """Rows of ``table`` that are not data (the audit trail of earlier commands, say): they do not make a target
    count as holding data, and they survive the load, with or without ``replace``: set aside before the TRUNCATE
    and put back after the COPY, in the same transaction. Each ``detach`` column (column -> the table whose ``id``
    it references) is set to NULL where the row it referenced did not come back."""

    table: str
    where: sql.Composable  # built from constants, never from input
    detach: Mapping[str, str] = field(default_factory=dict)


def _set_aside(conn: Connection, keep: Sequence[KeepRows]) -> list[tuple[sql.Identifier, KeepRows]]:
    kept = []
    for number, rule in enumerate(keep):
        aside = sql.Identifier(f"_gitinsight_keep_{number}")
        _execute(conn, sql.SQL("CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT * FROM {} WHERE {}").format(
            aside, sql.Identifier(rule.table), rule.where))
        kept.append((aside, rule))
    return kept


def _put_back(conn: Connection, kept: Sequence[tuple[sql.Identifier, KeepRows]]) -> None:
    for aside, rule in kept:
        for column, referenced in rule.detach.items():
            # In three steps rather than one NOT EXISTS: on Citus a statement that mixes this temporary table with
            # a distributed or reference table is sent to a worker, where the temporary table does not exist.
            col = sql.Identifier(column)
            ids = conn.exec_driver_sql(sql.SQL("SELECT array_agg(DISTINCT {}) FROM {}").format(col, aside).as_string(
                conn.connection.driver_connection)).scalar() or []
            present = conn.execute(text(sql.SQL("SELECT array_agg(id) FROM {} WHERE id = ANY (:ids)").format(
                sql.Identifier(referenced)).as_string(conn.connection.driver_connection)), {"ids": ids}).scalar()
            conn.execute(text(sql.SQL("UPDATE {} SET {} = NULL WHERE {} IS NOT NULL AND NOT ({} = ANY (:present))")
                              .format(aside, col, col, col).as_string(conn.connection.driver_connection)),
                         {"present": present or []})
        _execute(conn, sql.SQL("INSERT INTO {} SELECT * FROM {}").format(sql.Identifier(rule.table), aside))


def dependent_tables(conn: Connection, tables: Sequence[str]) -> list[str]:
    """``tables`` plus every table whose foreign keys (transitively) reference them: what TRUNCATE must cover."""
    return list(conn.execute(_DEPENDENTS, {"tables": list(tables)}).scalars())


def deferrable_objects(conn: Connection, tables: Sequence[str], *, constraints: bool = True) -> list[SchemaObject]:
    """Secondary indexes of ``tables`` and (if ``constraints``) their keys and the foreign keys touching them.

    Ordered for dropping: foreign keys, then indexes, then primary/unique keys (recreate in reverse).
    """
    objects = [SchemaObject(*row) for row in conn.execute(_INDEXES, {"tables": list(tables)})]
    if constraints:
        found = [SchemaObject(*row) for row in conn.execute(_CONSTRAINTS, {"tables": list(tables)})]
        objects = [o for o in found if o.kind == "fkey"] + objects + [o for o in found if o.kind == "key"]
    return objects


def _partitioned(conn: Connection, table: str) -> bool:
    return bool(
        conn.execute(
            text("SELECT relkind = 'p' FROM pg_class "
                 "WHERE relname = :t AND relnamespace = current_schema()::regnamespace"),
            {"t": table},
        ).scalar()
    )


def _holding_data(conn: Connection, tables: Sequence[str], keep: Sequence[KeepRows]) -> list[str]:
    """The ``tables`` holding rows other than the ``keep`` rows."""
    kept = {rule.table: rule.where for rule in keep}
    found = []
    for table in tables:
        other = sql.SQL("({}) IS NOT TRUE").format(kept[table]) if table in kept else sql.SQL("TRUE")
        query = sql.SQL("SELECT EXISTS (SELECT 1 FROM {} WHERE {})").format(sql.Identifier(table), other)
        if conn.exec_driver_sql(query.as_string(conn.connection.driver_connection)).scalar():
            found.append(table)
    return found


def _execute(conn: Connection, statement: sql.Composable) -> None:
    conn.exec_driver_sql(statement.as_string(conn.connection.driver_connection))


def _progress_bar(total: int | None, enabled: bool, desc: str):  # tqdm, lines, or None
    if not enabled:
        return None
    from ..progress import progress_bar

    return progress_bar(total=total, unit="rows", desc=desc, unit_scale=True, dynamic_ncols=True, leave=True)


def bulk_load(
    engine: Engine,
    sources: Sequence[CopySource],
    *,
    replace: bool = False,
    progress: bool = True,
    prepare: Callable[[Connection], None] | None = None,
    after_commit: Callable[[Engine], None] | None = None,
    defer_indexes: bool | None = None,
    defer_constraints: bool = True,
    maintenance_work_mem: str = "1GB",
    description: str = "loading",
    keep: Sequence[KeepRows] = (),
) -> LoadResult:
    """COPY ``sources`` into their tables in one transaction (see the module docstring for the steps).

    ``defer_indexes`` (default: when at least :data:`DEFER_MIN_ROWS` rows are expected) drops and rebuilds the
    targets' indexes, and with ``defer_constraints`` also their keys and foreign keys. Raises
    :class:`DataExistsError` if a target (or a table referencing one) holds rows other than ``keep`` rows and
    ``replace`` is false; :class:`DataLoadError` if a block is rejected. Either way nothing is written.
    """
    started = time.perf_counter()
    phases: dict[str, float] = {}
    rows: dict[str, int] = {}
    table_seconds: dict[str, float] = {}
    steps: dict[str, float] = {}
    targets = list(dict.fromkeys(s.table for s in sources))
    expected = sum(s.expected_rows or 0 for s in sources)
    if defer_indexes is None:
        defer_indexes = expected >= DEFER_MIN_ROWS
    bar = None
    mark = time.perf_counter()
    try:
        with engine.connect() as conn, conn.begin():
            raw = conn.connection.driver_connection
            # On Citus: DDL (TRUNCATE of reference tables) after multi-shard reads in one transaction needs one
            # connection per worker; COPY then streams each worker's rows over it, and the deferred indexes and
            # keys are rebuilt on every shard (the workers side by side) after it, as on one node: maintaining
            # ten insights indexes row by row cost the workers more than building them (medium: 133 s -> 87 s).
            # COPY FREEZE does not reach the shards: it is not used there.
            distributed = citus.is_citus(conn)
            if distributed:
                conn.exec_driver_sql("SET LOCAL citus.multi_shard_modify_mode TO 'sequential'")
            covered = dependent_tables(conn, targets)
            for table in covered:
                _execute(conn, sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(sql.Identifier(table)))
            filled = _holding_data(conn, covered, keep)
            if filled and not replace:
                raise DataExistsError(
                    f"the database already holds data in {', '.join(filled)} "
                    "(allowed: an empty database, or replace=True / --replace to replace it)"
                )
            # TRUNCATE even empty tables: it is cheap, and it lets COPY ... FREEZE write frozen rows. The keep rows
            # come back after the COPY.
            kept = _set_aside(conn, keep)
            _execute(conn, sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(map(sql.Identifier, covered))))
            conn.exec_driver_sql(f"SET LOCAL maintenance_work_mem = '{_check_mem(maintenance_work_mem)}'")
            if prepare is not None:
                prepare(conn)
            deferred = deferrable_objects(conn, targets, constraints=defer_constraints) if defer_indexes else []
            for obj in deferred:
                _execute(conn, obj.drop_sql())
            phases["prepare"] = time.perf_counter() - mark

            mark = time.perf_counter()
            bar = _progress_bar(expected or None, progress, description)
            for source in sources:
                t0 = time.perf_counter()
                freeze = not distributed and not _partitioned(conn, source.table)
                rows[source.table] = rows.get(source.table, 0) + copy_source(raw, source, freeze, bar)
                table_seconds[source.table] = table_seconds.get(source.table, 0.0) + time.perf_counter() - t0
            _put_back(conn, kept)
            citus.sync_repository_keys(conn)
            phases["copy"] = time.perf_counter() - mark
            checkpoint("load.copied")

            mark = time.perf_counter()
            for obj in reversed(deferred):
                if bar is not None:
                    bar.set_description(f"{description}: {obj.kind} {obj.name}")
                t0 = time.perf_counter()
                _execute(conn, obj.create_sql())
                steps[f"{obj.kind} {obj.name}"] = time.perf_counter() - t0
                log.debug("recreated %s %s in %.2f s", obj.kind, obj.name, steps[f"{obj.kind} {obj.name}"])
            phases["index"] = time.perf_counter() - mark

            mark = time.perf_counter()
        phases["commit"] = time.perf_counter() - mark
        mark = time.perf_counter()
        if bar is not None:
            bar.set_description(f"{description}: analyze")
        steps.update(_analyze(engine, covered, vacuum=distributed))
        phases["analyze"] = time.perf_counter() - mark
        if after_commit is not None:
            mark = time.perf_counter()
            if bar is not None:
                bar.set_description(f"{description}: refresh")
            after_commit(engine)
            phases["refresh"] = time.perf_counter() - mark
    except BaseException:
        if bar is not None and hasattr(bar, "stop"):  # lines, not a bar: the last one must not say "done"
            bar.stop()
        raise
    finally:
        if bar is not None:
            bar.close()
    return LoadResult(rows, time.perf_counter() - started, table_seconds, phases, steps)


def _analyze_one(engine: Engine, table: str, only: bool, vacuum: bool) -> float:
    started = time.perf_counter()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        keyword = sql.SQL("ANALYZE ONLY {}" if only else "VACUUM (ANALYZE) {}" if vacuum else "ANALYZE {}")
        _execute(conn, keyword.format(sql.Identifier(table)))
    return time.perf_counter() - started


def _analyze_plan(engine: Engine, tables: Sequence[str]) -> list[tuple[str, bool]]:
    """(relation, ONLY) to ANALYZE, largest first: every table, a partitioned table's leaves each on their own so
    that the sessions share the work evenly, and the parent ``ONLY`` (PostgreSQL >= 18; before, the parent
    recurses). pg_partition_tree() has no rows for a table that is neither partitioned nor a partition: such a
    table is its own single row here."""
    with engine.connect() as conn:
        only = driver_connection(conn).info.server_version >= 180000
        rows = conn.execute(
            text(
                "SELECT c.relname, COALESCE(t.isleaf, TRUE), pg_relation_size(c.oid), c.oid = p.oid "
                "FROM unnest(CAST(:tables AS text[])) AS n(name) "
                "JOIN pg_class p ON p.oid = to_regclass(quote_ident(n.name)) "
                "LEFT JOIN LATERAL pg_partition_tree(p.oid) AS t ON TRUE "
                "JOIN pg_class c ON c.oid = COALESCE(t.relid, p.oid) "
                "WHERE t.relid IS NULL OR t.isleaf OR t.relid = p.oid"
            ),
            {"tables": list(tables)},
        ).all()
    if not only:  # each requested table as a whole (a partitioned one recurses into its leaves)
        return [(name, False) for name, _, _, is_root in sorted(rows, key=lambda r: -r[2]) if is_root]
    return [(name, is_root and not leaf) for name, leaf, _, is_root in sorted(rows, key=lambda r: -r[2])]


def _analyze(engine: Engine, tables: Sequence[str], *, vacuum: bool = False) -> dict[str, float]:
    """ANALYZE the loaded tables after the commit, in ANALYZE_WORKERS sessions side by side (seconds by step).

    ``vacuum`` (Citus, where COPY FREEZE does not reach the shards): VACUUM (ANALYZE), so the shards' visibility
    maps and hint bits are set now, by the load, rather than by autovacuum under the first queries."""
    plan = _analyze_plan(engine, tables)
    label = "vacuum analyze" if vacuum else "analyze"
    with ThreadPoolExecutor(max_workers=ANALYZE_WORKERS) as pool:
        futures = {name: pool.submit(_analyze_one, engine, name, only, vacuum) for name, only in plan}
    return {f"{label} {name}": future.result() for name, future in futures.items()}


def _check_mem(value: str) -> str:
    if not re.fullmatch(r"\d+\s*(kB|MB|GB)", value):
        from ..exceptions import ValidationError

        raise ValidationError("maintenance_work_mem", f"{value!r} is not a memory size", "e.g. 256MB, 1GB")
    return value


