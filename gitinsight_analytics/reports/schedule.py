"""Scheduled reports and view refreshes: the checked-in ``schedule.yml``, what is due, a lock, and retention.

``schedule.yml`` has two lists, each entry with its own timing::

    refresh:                       # the materialized views (all of them, CONCURRENTLY when populated)
      - id: views-hourly           # unique across both lists; names the entry in the state file
        every: 1h
    reports:
      - id: trending-weekly
        report: trending           # a notebook in notebooks/
        parameters: {window_days: 7}
        every: 1h                  # 15m, 6h, 1d ...   or:  at: "06:00"  (daily, UTC)
    alerts:                        # `gitinsight alerts run` (after the refresh, before the reports)
      - id: alerts-daily
        days: 7                    # optional: the events of this many days up to the data's newest day
        at: "06:30"

``gitinsight report due`` (cron every few minutes) runs what is due, the refresh before the reports (so they
read fresh views), holding an exclusive ``fcntl`` lock on ``<reports_dir>/.schedule.lock`` so that overlapping
invocations cannot collide (the second one exits at once, saying so). When each entry last ran is kept in
``<reports_dir>/.schedule-state.json``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .. import atomic
from ..checkpoints import checkpoint
from ..exceptions import GitInsightError, ScheduleLocked, ValidationError
from . import params as _params
from .index import load_runs

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from ..maintenance.refresh import RefreshResult
    from .runner import RunResult

__all__ = ["Entry", "RefreshEntry", "AlertsEntry", "Schedule", "ScheduleLocked", "load_schedule", "read_schedule",
           "due_entries", "schedule_lock", "read_state", "write_state", "run_due", "DueOutcome", "RefreshRun",
           "prune",
           "LOCK_NAME", "STATE_NAME"]

LOCK_NAME = ".schedule.lock"
STATE_NAME = ".schedule-state.json"
_EVERY = re.compile(r"^\s*(\d+)\s*([mhd])\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
_E = TypeVar("_E", "Entry", "RefreshEntry", "AlertsEntry")


@dataclass(frozen=True)
class RefreshRun:
    """The refresh of the materialized views made for the refresh entries due in one ``report due``."""

    entries: tuple[str, ...]
    result: RefreshResult | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def describe(self) -> str:
        """One line in the style of :func:`runner.describe`."""
        if self.result is None:
            return f"{'failed':<9} {'refresh':<17} {'':>7}  {self.error}"
        views = ", ".join(name for name, _ in self.result.views)
        mode = "concurrently" if self.result.concurrently else "blocking"
        return f"{'succeeded':<9} {'refresh':<17} {self.result.seconds:6.1f}s  {mode}: {views}"


@dataclass
class DueOutcome:
    """What one ``report due`` did: the refresh, the alert runs (entry id -> error or None), the report runs, the
    entries whose parameters failed, the runs pruned."""

    results: list[RunResult] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)
    pruned: list[Path] = field(default_factory=list)
    refresh: RefreshRun | None = None
    alerts: dict[str, str | None] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return (not self.invalid and all(r.ok for r in self.results) and (self.refresh is None or self.refresh.ok)
                and all(error is None for error in self.alerts.values()))


class _Timed:
    """The timing shared by both kinds of entry: ``every`` (an interval) or ``at`` (daily, UTC)."""

    every: dt.timedelta | None
    at: dt.time | None

    def describe(self) -> str:
        if self.every is not None:
            minutes = int(self.every.total_seconds() // 60)
            for size, unit in ((1440, "d"), (60, "h"), (1, "m")):
                if minutes % size == 0:
                    return f"every {minutes // size}{unit}"
        return f"daily at {self.at:%H:%M} UTC"

    def is_due(self, last_run: dt.datetime | None, now: dt.datetime) -> bool:
        """Never run → due. ``every``: the interval has passed. ``at``: today's (or yesterday's) slot is newer."""
        if last_run is None:
            return True
        if self.every is not None:
            return now - last_run >= self.every
        assert self.at is not None
        slot = dt.datetime.combine(now.date(), self.at, tzinfo=dt.UTC)
        if slot > now:
            slot -= dt.timedelta(days=1)
        return last_run < slot


@dataclass(frozen=True)
class Entry(_Timed):
    """One scheduled report: which notebook, with which parameters, how often."""

    id: str
    report: str
    parameters: dict[str, Any] = field(default_factory=dict)
    every: dt.timedelta | None = None
    at: dt.time | None = None


@dataclass(frozen=True)
class RefreshEntry(_Timed):
    """One scheduled refresh of the materialized views (``refresh_repository_stats``: every analysis view,
    CONCURRENTLY when populated, so reports can read them meanwhile)."""

    id: str
    every: dt.timedelta | None = None
    at: dt.time | None = None


@dataclass(frozen=True)
class AlertsEntry(_Timed):
    """One scheduled ``gitinsight alerts run`` (every user with follows; ``days`` of events up to the data's
    newest day)."""

    id: str
    lookback_days: int = 7
    every: dt.timedelta | None = None
    at: dt.time | None = None


@dataclass(frozen=True)
class Schedule:
    """The parsed ``schedule.yml``: refresh entries (run first), alert runs, and report entries."""

    reports: list[Entry] = field(default_factory=list)
    refresh: list[RefreshEntry] = field(default_factory=list)
    alerts: list[AlertsEntry] = field(default_factory=list)


def _parse_every(value: Any, where: str) -> dt.timedelta:
    match = _EVERY.match(str(value))
    if not match or int(match.group(1)) == 0:
        raise ValidationError(f"{where}.every", f"{value!r} is not an interval", "e.g. 15m, 1h, 1d")
    return dt.timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def _parse_at(value: Any, where: str) -> dt.time:
    if isinstance(value, int):  # YAML 1.1 reads 06:00 unquoted as a sexagesimal integer (360)
        value = f"{value // 60:02d}:{value % 60:02d}"
    try:
        if not re.fullmatch(r"\d{1,2}:\d{2}", str(value)):
            raise ValueError
        return dt.time.fromisoformat(str(value).zfill(5))
    except ValueError:
        raise ValidationError(f"{where}.at", f"{value!r} is not a time of day", "HH:MM in UTC") from None


def _timing(item: Mapping[str, Any], where: str) -> dict[str, Any]:
    if ("every" in item) == ("at" in item):
        raise ValidationError(where, "needs exactly one of 'every' and 'at'", "every: 1h or at: \"06:00\"")
    return {"every": _parse_every(item["every"], where) if "every" in item else None,
            "at": _parse_at(item["at"], where) if "at" in item else None}


def _items(data: Mapping[str, Any], key: str, path: Path) -> list[Any]:
    items = data.get(key)
    if items is None:  # absent, or the key with nothing under it
        return []
    if not isinstance(items, list):
        raise ValidationError(f"schedule.{key}", f"in {path} is not a list", "a list of entries")
    return items


def read_schedule(path: Path) -> Schedule:
    """Parse and validate ``path``: reports, parameters, intervals and refresh entries (data lookups are not)."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ValidationError("schedule", f"{path} does not exist", "a schedule.yml file") from None
    except yaml.YAMLError as exc:
        raise ValidationError("schedule", f"{path} is not valid YAML ({str(exc).splitlines()[0]})") from None
    unknown = set(data) - {"reports", "refresh", "alerts"} if isinstance(data, Mapping) else set()
    if unknown:
        raise ValidationError("schedule", f"unknown top-level keys {sorted(map(str, unknown))}",
                              "reports, refresh, alerts")
    if not isinstance(data, Mapping) or not data:
        raise ValidationError("schedule", f"{path} has no 'reports:', 'refresh:' or 'alerts:' list",
                              "see docs/operations.md")
    schedule, seen = Schedule(), set()
    for number, item in enumerate(_items(data, "refresh", path), 1):
        where = f"refresh[{number}]"
        if not isinstance(item, Mapping):
            raise ValidationError(where, "is not a mapping", "id, every or at")
        unknown = set(item) - {"id", "every", "at"}
        if unknown:
            raise ValidationError(where, f"unknown keys {sorted(unknown)}", "id, every, at")
        entry_id = str(item.get("id") or "refresh")
        if entry_id in seen:
            raise ValidationError(f"{where}.id", f"duplicate id {entry_id!r}", "unique ids")
        seen.add(entry_id)
        schedule.refresh.append(RefreshEntry(id=entry_id, **_timing(item, where)))
    for number, item in enumerate(_items(data, "alerts", path), 1):
        where = f"alerts[{number}]"
        if not isinstance(item, Mapping):
            raise ValidationError(where, "is not a mapping", "id, days, every or at")
        unknown = set(item) - {"id", "days", "every", "at"}
        if unknown:
            raise ValidationError(where, f"unknown keys {sorted(unknown)}", "id, days, every, at")
        entry_id = str(item.get("id") or "alerts")
        if entry_id in seen:
            raise ValidationError(f"{where}.id", f"duplicate id {entry_id!r}", "unique ids")
        seen.add(entry_id)
        days = item.get("days", 7)
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 366:
            raise ValidationError(f"{where}.days", f"{days!r} is not a number of days", "an integer 1..366")
        schedule.alerts.append(AlertsEntry(id=entry_id, lookback_days=days, **_timing(item, where)))
    for number, item in enumerate(_items(data, "reports", path), 1):
        where = f"reports[{number}]"
        if not isinstance(item, Mapping):
            raise ValidationError(where, "is not a mapping", "id, report, parameters, every or at")
        unknown = set(item) - {"id", "report", "parameters", "every", "at"}
        if unknown:
            raise ValidationError(where, f"unknown keys {sorted(unknown)}", "id, report, parameters, every, at")
        report = str(item.get("report", ""))
        if report not in _params.SPECS:
            raise ValidationError(f"{where}.report", f"unknown report {report!r}", ", ".join(sorted(_params.SPECS)))
        entry_id = str(item.get("id") or report)
        if entry_id in seen:
            raise ValidationError(f"{where}.id", f"duplicate id {entry_id!r}", "unique ids")
        seen.add(entry_id)
        timing = _timing(item, where)
        parameters = dict(item.get("parameters") or {})
        _params.validate_parameters(report, parameters)
        schedule.reports.append(Entry(id=entry_id, report=report, parameters=parameters, **timing))
    return schedule


def load_schedule(path: Path) -> list[Entry]:
    """The report entries of ``path``, validated (see :func:`read_schedule`, which also has the refreshes)."""
    return read_schedule(path).reports


def read_state(reports_dir: Path) -> dict[str, dict[str, Any]]:
    try:
        return json.loads((Path(reports_dir) / STATE_NAME).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}


def write_state(reports_dir: Path, state: Mapping[str, Any]) -> None:
    atomic.write_text(Path(reports_dir) / STATE_NAME, json.dumps(state, indent=2, sort_keys=True) + "\n")


def due_entries(entries: list[_E], state: Mapping[str, Any], now: dt.datetime) -> list[_E]:
    """The entries to run at ``now`` given when each last ran (``state[id]['last_run']``, ISO UTC)."""
    due = []
    for entry in entries:
        raw = (state.get(entry.id) or {}).get("last_run")
        last = dt.datetime.fromisoformat(raw.replace("Z", "+00:00")) if raw else None
        if entry.is_due(last, now):
            due.append(entry)
    return due


@contextlib.contextmanager
def schedule_lock(reports_dir: Path) -> Iterator[None]:
    """Hold the scheduler's exclusive lock or raise :class:`ScheduleLocked` at once (never waits)."""
    reports_dir = Path(reports_dir)
    reports_dir.mkdir(parents=True, exist_ok=True)
    with open(reports_dir / LOCK_NAME, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise ScheduleLocked(f"another `gitinsight report due` run holds the lock (pid {holder}); "
                                 "nothing done") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)


def prune(reports_dir: Path, *, retention_days: int, now: dt.datetime | None = None,
          dry_run: bool = False) -> list[Path]:
    """Delete runs that started more than ``retention_days`` ago, always keeping each report's newest run.

    Runs still ``running`` are kept (:func:`.index.load_runs` records those whose process died as failed).
    Returns the run directories removed (or that would be).
    """
    if retention_days < 1:
        raise ValidationError("retention_days", f"{retention_days} is too small", "1 or more days")
    now = now or dt.datetime.now(dt.UTC)
    cutoff = now - dt.timedelta(days=retention_days)
    newest: set[str] = set()
    removed = []
    for run in load_runs(reports_dir):  # newest first
        name = str(run.get("name"))
        if name not in newest:
            newest.add(name)
            continue
        raw = str(run.get("started_at") or "")
        try:
            started = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            continue
        if started >= cutoff or run.get("status") == "running":  # a live run (a dead one reads as failed)
            continue
        removed.append(run["_dir"])
        if not dry_run:
            atomic.remove_tree(run["_dir"])  # renamed away first: never seen half-deleted
    return removed


def _refresh(entries: list[RefreshEntry], *, engine: Engine | None, database_url: str) -> RefreshRun:
    """REFRESH the materialized views (CONCURRENTLY when populated); an error is kept, not raised."""
    from sqlalchemy.exc import SQLAlchemyError

    from .. import audit
    from ..db import make_engine
    from ..maintenance.refresh import refresh_repository_stats
    from .runner import scrub

    ids = tuple(e.id for e in entries)
    bind = engine if engine is not None else make_engine(database_url)
    own = bind if engine is None else None
    try:
        run = RefreshRun(ids, refresh_repository_stats(bind, concurrently=None))
    except (GitInsightError, SQLAlchemyError) as exc:
        first = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        run = RefreshRun(ids, error=scrub(f"{type(exc).__name__}: {first}", database_url))
    try:  # on the audit trail like `gitinsight refresh`; a database that cannot take the row already failed above
        details = {"outcome": "ok" if run.ok else "failed", "command": "gitinsight report due", "entries": list(ids)}
        if run.error:
            details["error"] = run.error
        audit.record(bind, "refresh", "materialized_view", details=details)
    except (GitInsightError, SQLAlchemyError):
        pass
    finally:
        if own is not None:
            own.dispose()
    return run


def _alerts(entry: AlertsEntry, *, engine: Engine | None, database_url: str, reports_dir: Path,
            smtp_url: str | None) -> tuple[str | None, str]:
    """Run ``alerts run`` for one entry: (error or None, one line for the terminal); errors are kept, not raised."""
    from sqlalchemy.exc import SQLAlchemyError

    from ..alerts import run_alerts
    from ..db import make_engine
    from .runner import scrub

    bind = engine if engine is not None else make_engine(database_url)
    own = bind if engine is None else None
    try:
        result = run_alerts(bind, reports_dir=reports_dir, lookback_days=entry.lookback_days,
                            smtp_url=smtp_url)
    except (GitInsightError, SQLAlchemyError) as exc:
        first = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        message = scrub(f"{type(exc).__name__}: {first}", database_url)
        return message, f"{'failed':<9} {'alerts':<17} {'':>7}  {message}"
    finally:
        if own is not None:
            own.dispose()
    failed = [u.username for u in result.users if u.error]
    error = f"delivery failed for {', '.join(failed)} (retried next run)" if failed else None
    return error, f"{'failed' if error else 'succeeded':<9} {'alerts':<17} {'':>7}  {result.describe()}"


def _refresh_state(run: RefreshRun, stamp: str) -> dict[str, Any]:
    if run.result is None:
        return {"last_run": stamp, "kind": "refresh", "status": "failed", "error": run.error}
    return {"last_run": stamp, "kind": "refresh", "status": "succeeded", "concurrently": run.result.concurrently,
            "seconds": round(run.result.seconds, 3),
            "refreshed_at": run.result.refreshed_at.isoformat() if run.result.refreshed_at else None}


def run_due(
    schedule_path: Path,
    *,
    database_url: str,
    reports_dir: Path,
    notebooks_dir: Path,
    retention_days: int,
    engine: Engine | None = None,
    now: dt.datetime | None = None,
    echo: Callable[[str], None] | None = None,
    smtp_url: str | None = None,
    read_url: str | None = None,
) -> DueOutcome:
    """Under the lock: run every due entry, record it in the state file, prune old runs, rebuild the index.

    Due refresh entries come first, then due alert runs (``smtp_url``: e-mail the digests), then the reports.
    Refresh: one refresh of the materialized views serves all of them, and a failed
    refresh is recorded (status ``failed``) without stopping the reports, which then show the older
    ``analysis_views_refreshed`` time.

    Raises :class:`ScheduleLocked` when another invocation holds the lock. A parameter that fails its data
    lookup fails that entry only (recorded as failed in the state file), not the others. The refresh writes on
    the primary; with a ``read_url`` (a replica) the reports start once it has replayed the refresh, and read there.
    """
    from .index import write_index
    from .runner import catch_up, run_report

    schedule = read_schedule(schedule_path)
    outcome = DueOutcome()
    with schedule_lock(reports_dir):
        checkpoint("due.locked")
        now = now or dt.datetime.now(dt.UTC)
        stamp = now.isoformat(timespec="seconds").replace("+00:00", "Z")
        state = read_state(reports_dir)
        due_refresh = due_entries(schedule.refresh, state, now)
        due = due_entries(schedule.reports, state, now)
        due_alerts = due_entries(schedule.alerts, state, now)
        if echo and not due and not due_refresh and not due_alerts:
            echo("nothing due")
        if due_refresh:
            outcome.refresh = _refresh(due_refresh, engine=engine, database_url=database_url)
            for refresh_entry in due_refresh:
                state[refresh_entry.id] = _refresh_state(outcome.refresh, stamp)
            write_state(reports_dir, state)
            if echo:
                echo(outcome.refresh.describe())
        for alerts_entry in due_alerts:
            error, line = _alerts(alerts_entry, engine=engine, database_url=database_url, reports_dir=reports_dir,
                                  smtp_url=smtp_url)
            outcome.alerts[alerts_entry.id] = error
            state[alerts_entry.id] = {"last_run": stamp, "kind": "alerts", "status": "failed" if error else
                                      "succeeded", **({"error": error} if error else {})}
            write_state(reports_dir, state)
            if echo:
                echo(line)
        if due:
            catch_up(database_url, read_url)
        for entry in due:
            try:
                result = run_report(entry.report, entry.parameters, database_url=database_url,
                                    reports_dir=reports_dir, notebooks_dir=notebooks_dir, engine=engine,
                                    trigger=f"schedule:{entry.id}", update_index=False, read_url=read_url)
            except ValidationError as exc:
                state[entry.id] = {"last_run": stamp, "status": "invalid", "error": str(exc)}
                outcome.invalid.append(f"{entry.id}: {exc}")
                if echo:
                    echo(f"invalid   {entry.id}: {exc}")
                continue
            state[entry.id] = {"last_run": stamp, "status": result.status, "run_id": result.run_id}
            outcome.results.append(result)
            write_state(reports_dir, state)
            if echo:
                from .runner import describe

                echo(describe(result))
        write_state(reports_dir, state)
        outcome.pruned = prune(reports_dir, retention_days=retention_days, now=now)
        if echo and outcome.pruned:
            echo(f"pruned {len(outcome.pruned)} runs older than {retention_days} days")
        write_index(reports_dir)
    return outcome
