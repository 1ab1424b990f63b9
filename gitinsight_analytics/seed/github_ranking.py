"""Import the real GitHub ranking snapshots: owners as users, repositories with their latest figures, and the
daily star/fork/open-issue history in ``repository_snapshots`` (so trending uses real star growth).

One transaction for the whole import: every file is validated and COPYed into a temporary staging table,
then set-based statements resolve identities (case-insensitive URLs, renames: see
:mod:`.github_ranking_identity`) and upsert users, repositories and snapshots. Any failure leaves the
database as it was. Files already imported (same date and SHA-256, recorded in ``github_ranking_files``) are
skipped, so importing the same files twice changes nothing. ANALYZE and the materialized view refresh run
after the commit. Choices are documented in docs/data.md ("Real data").
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from ..checkpoints import checkpoint
from ..citus import staging
from ..db import driver_connection
from ..exceptions import DataLoadError
from ..progress import progress_bar
from . import github_ranking_sql as sql
from .github_ranking_csv import (
    RankingFile,
    body,
    discover_files,
    file_date,
    parse_rows,
    read_file,
)
from .github_ranking_identity import DERIVED_GITHUB_ID_FUNCTION, KeySummary, find_renames, group_keys

__all__ = ["ImportResult", "import_github_ranking"]

#: From this many new snapshot rows (and more than half the table) constraints are rebuilt, not maintained.
BULK_ROWS = 20_000
_LOCK_KEY = 7_205_118_301  # pg_advisory_xact_lock: one GitHub ranking import at a time
_COPY_SQL = ("COPY gr_raw (rank, item, repo_name, stars, forks, language, repo_url, username, issues, last_commit, "
             "description) FROM STDIN (FORMAT csv)")


@dataclass(frozen=True)
class ImportResult:
    """What an import did. ``files_read`` counts files imported now; ``renames`` the renames it linked."""

    files_read: int
    files_skipped: int
    users_created: int
    users_updated: int
    repositories_created: int
    repositories_updated: int
    snapshots_added: int
    renames: int
    latest_date: dt.date | None
    seconds: float

    def describe(self) -> str:
        return (f"{self.files_read} files imported, {self.files_skipped} skipped (already imported); "
                f"users +{self.users_created} ~{self.users_updated}; repositories +{self.repositories_created} "
                f"~{self.repositories_updated}; snapshots +{self.snapshots_added}; {self.renames} renames linked; "
                f"data as of {self.latest_date}; {self.seconds:.1f} s")


@dataclass(frozen=True)
class _Staged:
    file_no: int
    name: str
    file: RankingFile
    rows: int


@dataclass
class _Counts:
    files_read: int = 0
    files_skipped: int = 0
    users_created: int = 0
    users_updated: int = 0
    repositories_created: int = 0
    repositories_updated: int = 0
    snapshots_added: int = 0
    renames: int = 0
    latest_date: dt.date | None = None


def _explain(file: RankingFile, fallback: str) -> DataLoadError:
    """The precise error for a file PostgreSQL rejected: the Python validator's, else ``fallback``."""
    try:
        for _ in parse_rows(file):
            pass
    except DataLoadError as exc:
        return exc
    return DataLoadError(f"{file.path}: {fallback}")


def _copy_file(raw: psycopg.Connection, file: RankingFile, file_no: int) -> int:
    """COPY the file's rows (after its checked header) into gr_raw as text; returns the number of rows."""
    data = body(file)
    with raw.cursor() as cur:
        cur.execute("SELECT setval(pg_get_serial_sequence('gr_raw', 'n'), %s, false)",
                    (file_no * sql.RECORDS_PER_FILE + 1,))
        try:
            with cur.copy(_COPY_SQL) as copy:
                copy.write(data)
        except psycopg.Error as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise _explain(file, f"rejected by PostgreSQL: {reason}") from None
        rows = cur.rowcount
    if rows >= sql.RECORDS_PER_FILE:
        raise DataLoadError(f"{file.path}: more than {sql.RECORDS_PER_FILE - 1} rows")
    return rows


def _stage_files(conn: Connection, paths: list[Path], counts: _Counts, bar: Any) -> list[_Staged]:
    """COPY each file not yet imported into gr_raw (header checked); skip those imported with the same content."""
    raw = driver_connection(conn)
    known = {row[0]: (row[1], row[2]) for row in conn.execute(text(sql.KNOWN_FILES_SQL))}
    staged: dict[dt.date, _Staged] = {}
    for path in paths:
        bar.set_postfix_str(path.name)
        file = read_file(path)
        if file.snapshot_date in staged:  # the same date twice in this import (e.g. a copy in another folder)
            known[file.snapshot_date] = (staged[file.snapshot_date].file.sha256, staged[file.snapshot_date].name)
        if file.snapshot_date in known:
            sha, name = known[file.snapshot_date]
            if sha != file.sha256:
                raise DataLoadError(f"{path}: file name: {file.snapshot_date} was already imported from {name} "
                                    f"with different content (sha256 {sha[:12]}… vs {file.sha256[:12]}…)")
            counts.files_skipped += 1
            bar.update()
            continue
        file_no = len(staged) + 1
        rows = _copy_file(raw, file, file_no)
        conn.execute(text("INSERT INTO gr_files (file_no, snapshot_date) VALUES (:f, :d)"),
                     {"f": file_no, "d": file.snapshot_date})
        staged[file.snapshot_date] = _Staged(file_no, path.name, file, rows)
        bar.update()
    return list(staged.values())


def _build_days(conn: Connection, staged: list[_Staged]) -> None:
    """gr_days from gr_raw. A value PostgreSQL cannot cast (e.g. 2026-02-30T00:00:00Z) is explained per file."""
    try:
        conn.execute(text(sql.DAYS_SQL))
    except sa_exc.DataError as exc:
        reason = str(exc.orig).strip().splitlines()[0]
        for item in staged:
            error = _explain(item.file, reason)
            if str(error) != f"{item.file.path}: {reason}":
                raise error from None
        raise DataLoadError(f"a value could not be read: {reason}") from None


def _droppable(conn: Connection) -> list[tuple[str, str]]:
    """(drop, create) DDL for repository_snapshots' foreign key and secondary indexes, captured from the DB."""
    rows = conn.execute(text(sql.SNAPSHOT_OBJECTS_SQL)).all()
    return [(drop, create) for drop, create in rows]


def _write_snapshots(conn: Connection, new_rows: int) -> int:
    """Upsert gr_days into repository_snapshots. A big load drops the foreign key and secondary indexes and
    recreates them afterwards from their captured definitions (one validation join and one index build beat
    185k trigger calls and index insertions); the schema ends exactly as the migrations made it."""
    existing = conn.execute(text("SELECT reltuples FROM pg_class WHERE oid = 'repository_snapshots'::regclass"))
    bulk = new_rows >= BULK_ROWS and new_rows > 0.5 * max(existing.scalar() or 0, 0)
    objects = _droppable(conn) if bulk else []
    raw = driver_connection(conn)
    for drop, _ in objects:
        raw.execute(drop)
    added = conn.execute(text(sql.SNAPSHOTS_SQL)).scalar_one()
    for _, create in objects:
        raw.execute(create)
    return added


def _resolve_identities(conn: Connection) -> int:
    """Fill gr_keymap: each new key's existing repository or new group. Returns the renames linked."""
    summaries = [KeySummary(*row[:10]) for row in conn.execute(text(sql.SUMMARY_SQL))]  # columns in field order
    dates = [row[0] for row in conn.execute(text(sql.DATES_SQL))]
    renames = find_renames(summaries, dates)
    groups = group_keys((s.key for s in summaries), renames)
    by_key = {s.key: s for s in summaries}
    group_repos: dict[str, set[str]] = {}
    for key, root in groups.items():
        if by_key[key].repository_id:
            group_repos.setdefault(root, set()).add(by_key[key].repository_id)  # type: ignore[arg-type]
    batch_keys = {row[0] for row in conn.execute(text("SELECT DISTINCT key FROM gr_days"))}
    rows = []
    for key in batch_keys:
        own, root = by_key[key].repository_id, groups[key]
        repos = group_repos.get(root, set())
        if own is None and len(repos) == 1:
            own = next(iter(repos))
        # Two repositories imported separately are never merged afterwards: a key without its own repository
        # in such a group becomes a repository of its own.
        group_key = root if len(repos) <= 1 else key
        rows.append((key, own, group_key, own is not None))
    conn.execute(text(sql.KEYMAP_SQL))
    raw = driver_connection(conn)
    with raw.cursor().copy("COPY gr_keymap (key, repository_id, group_key, existing) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    conn.execute(text(sql.DETACH_SQL))
    # Renames linked now: at least one side had no repository before this import.
    return sum(1 for r in renames if by_key[r.old].repository_id is None or by_key[r.new].repository_id is None)


def _upsert(conn: Connection, counts: _Counts) -> None:
    counts.users_created = conn.execute(text(sql.USERS_INSERT_SQL)).rowcount
    counts.users_updated = conn.execute(text(sql.USERS_UPDATE_SQL)).rowcount
    clash = conn.execute(text(sql.CONFLICT_SQL)).first()
    if clash:
        raise DataLoadError(f"repository {clash[0]} is already in the database but was not created by this "
                            "import (same full_name or derived github_id); nothing was written")
    counts.repositories_created = conn.execute(text(sql.REPOS_INSERT_SQL)).rowcount
    conn.execute(text(sql.KEYMAP_NEW_IDS_SQL))
    counts.repositories_updated = conn.execute(text(sql.REPOS_UPDATE_SQL)).rowcount
    new_rows = conn.execute(text("SELECT count(*) FROM gr_days")).scalar_one()
    counts.snapshots_added = _write_snapshots(conn, new_rows)


def _import(conn: Connection, paths: list[Path], counts: _Counts, bar: Any) -> None:
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
    on_citus = staging.stage(conn)  # on Citus: the tables copied to the coordinator (see citus.staging)
    for statement in (sql.RAW_SQL, sql.FILES_SQL, DERIVED_GITHUB_ID_FUNCTION):
        conn.execute(text(statement))
    staged = _stage_files(conn, paths, counts, bar)
    counts.files_read = len(staged)
    if not staged:
        counts.latest_date = conn.execute(text("SELECT max(snapshot_date) FROM github_ranking_files")).scalar()
        return
    bar.set_postfix_str("building days")
    _build_days(conn, staged)
    conn.execute(text("ANALYZE gr_days"))
    bar.set_postfix_str("resolving identities")
    counts.renames = _resolve_identities(conn)
    conn.execute(text("ANALYZE gr_keymap"))
    bar.set_postfix_str("writing users, repositories, snapshots")
    _upsert(conn, counts)
    conn.execute(text(sql.RECORD_FILES_SQL),
                 [{"d": s.file.snapshot_date, "n": s.name, "s": s.file.sha256, "r": s.rows} for s in staged])
    if on_citus:
        staging.write_back(conn)
    checkpoint("import.written")
    counts.latest_date = conn.execute(text("SELECT max(snapshot_date) FROM github_ranking_files")).scalar()


def import_github_ranking(engine: Engine, paths: Sequence[str | Path], *, progress: bool = True) -> ImportResult:
    """Import GitHub ranking CSV files (or folders of them) in one transaction; see the module docstring.

    Raises :class:`ValidationError` for missing paths and :class:`DataLoadError` (file, line, reason) for a
    malformed file or a failed write; the database is then unchanged.
    """
    from ..maintenance.refresh import refresh_repository_stats

    started = time.perf_counter()
    files = sorted(discover_files(paths), key=lambda p: (file_date(p), p.name))
    counts = _Counts()
    with progress_bar(total=len(files), desc="github-ranking", unit="file", enabled=progress) as bar:
        try:
            with engine.begin() as conn:
                _import(conn, files, counts, bar)
        except (sa_exc.DBAPIError, psycopg.Error) as exc:
            orig = getattr(exc, "orig", None) or exc
            reason = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
            raise DataLoadError(f"github-ranking import failed, nothing was written: {reason}") from None
        if counts.files_read:
            bar.set_postfix_str("analyze, refresh view")
            with engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT").execute(
                    text("ANALYZE users, repositories, repository_snapshots, github_ranking_files"))
            refresh_repository_stats(engine)
        bar.set_postfix_str("done")
    return ImportResult(counts.files_read, counts.files_skipped, counts.users_created, counts.users_updated,
                        counts.repositories_created, counts.repositories_updated, counts.snapshots_added,
                        counts.renames, counts.latest_date, time.perf_counter() - started)
