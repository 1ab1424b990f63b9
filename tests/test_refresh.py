"""Refreshing the materialized views: readers during a refresh, and refreshes on the report schedule."""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from gitinsight_analytics.cli import main
from gitinsight_analytics.exceptions import ValidationError
from gitinsight_analytics.maintenance.refresh import RefreshResult, refresh_repository_stats, view_refreshed_at
from gitinsight_analytics.reports import schedule
from gitinsight_analytics.settings import PROJECT_ROOT

from . import factories as f

UTC = dt.UTC
NOW = dt.datetime(2026, 8, 22, 7, 0, tzinfo=UTC)

# The refresher's backend: running a REFRESH of repository_stats, holding its lock on the view (granted, in
# the given mode) and waiting for a lock on insights (held by the test), i.e. caught in the middle of the refresh.
_REFRESH_IN_PROGRESS = sa.text("""
SELECT a.pid FROM pg_stat_activity a
WHERE a.datname = current_database() AND a.query ILIKE 'REFRESH MATERIALIZED VIEW%repository_stats'
  AND a.wait_event_type = 'Lock'
  AND EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND l.relation = 'repository_stats'::regclass
              AND l.granted AND l.mode = :mode)
  AND EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND l.relation = 'insights'::regclass AND NOT l.granted)
""")


def _wait_for_refresh(engine: Engine, mode: str) -> int:
    """The pid of the refresher once it is caught mid-refresh (a generous limit, only so a bug cannot hang)."""
    with engine.connect() as conn:
        for _ in range(600):
            pid = conn.execute(_REFRESH_IN_PROGRESS, {"mode": mode}).scalar()
            if pid:
                return pid
            conn.rollback()
            time.sleep(0.05)
    raise AssertionError("the refresh never reached its wait on insights")


@pytest.mark.parametrize(("concurrently", "mode"), [(True, "ExclusiveLock"), (False, "AccessExclusiveLock")],
                         ids=["concurrently", "blocking"])
def test_readers_are_not_blocked_by_a_concurrent_refresh(engine: Engine, concurrently: bool, mode: str) -> None:
    """Hold the refresh in the middle (it waits for insights, locked by the test, while holding its own lock on
    the view), then read the view with a short lock_timeout: CONCURRENTLY (EXCLUSIVE) lets the reader through
    and it sees the old contents; a blocking refresh (ACCESS EXCLUSIVE) makes it time out."""
    with engine.begin() as conn:
        f.fan_out(conn)
    refresh_repository_stats(engine, concurrently=False)  # populated, with the three repositories
    with engine.begin() as conn:
        f.repository(conn, f.user(conn), "newcomer")

    outcome: dict[str, RefreshResult | BaseException] = {}

    def refresh() -> None:
        try:
            outcome["result"] = refresh_repository_stats(engine, concurrently=concurrently)
        except BaseException as exc:  # handed to the test thread
            outcome["error"] = exc

    with engine.connect() as blocker:
        blocker.execute(sa.text("LOCK TABLE insights IN ACCESS EXCLUSIVE MODE"))
        worker = threading.Thread(target=refresh)
        worker.start()
        try:
            pid = _wait_for_refresh(engine, mode)
            with engine.connect() as reader:
                reader.execute(sa.text("SET lock_timeout = '200ms'"))
                if concurrently:
                    names = reader.execute(sa.text("SELECT full_name FROM repository_stats")).scalars().all()
                    assert sorted(n.split("/")[1] for n in names) == ["busy", "private", "quiet"]  # old contents
                else:
                    with pytest.raises(OperationalError, match="lock timeout"):
                        reader.execute(sa.text("SELECT full_name FROM repository_stats")).all()
                reader.rollback()
            assert _wait_for_refresh(engine, mode) == pid  # still the same refresh, still in progress
        finally:
            blocker.rollback()
            worker.join(timeout=120)
    assert "error" not in outcome, outcome.get("error")
    result = outcome["result"]
    assert isinstance(result, RefreshResult) and result.concurrently is concurrently
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM repository_stats")).scalar_one() == 4


# ---------------------------------------------------------------- refresh entries in schedule.yml


def test_checked_in_schedule_refreshes_the_views() -> None:
    refresh = schedule.read_schedule(PROJECT_ROOT / "schedule.yml").refresh
    assert refresh and all(e.every or e.at for e in refresh)


def _due(engine: Engine, path: Path, reports: Path, now: dt.datetime, lines: list[str]) -> schedule.DueOutcome:
    return schedule.run_due(path, database_url=engine.url.render_as_string(hide_password=False),
                            reports_dir=reports, notebooks_dir=PROJECT_ROOT / "notebooks", retention_days=30,
                            engine=engine, now=now, echo=lines.append)


def _refreshed(engine: Engine) -> tuple[dt.datetime | None, int]:
    with engine.connect() as conn:
        return view_refreshed_at(conn), conn.execute(sa.text("SELECT count(*) FROM repository_stats")).scalar_one()


def test_due_refresh_runs_before_the_reports_and_is_recorded(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "schedule.yml"
    path.write_text("refresh:\n  - id: views\n    every: 1h\n"
                    "reports:\n  - id: bad\n    report: dashboard\n    parameters: {username: nobody}\n"
                    "    every: 1h\n")
    with engine.begin() as conn:
        f.fan_out(conn)
    before, rows = _refreshed(engine)
    assert rows == 0  # the repositories are not in the view until it is refreshed
    reports, lines = tmp_path / "reports", []

    first = _due(engine, path, reports, NOW, lines)

    assert first.refresh is not None and first.refresh.ok and first.refresh.entries == ("views",)
    assert first.refresh.result.concurrently  # the view was populated (empty): CONCURRENTLY
    after, rows = _refreshed(engine)
    assert rows == 3 and after is not None and (before is None or after > before)
    assert lines[0].startswith("succeeded refresh") and lines[1].startswith("invalid   bad: username:")
    state = schedule.read_state(reports)["views"]
    assert state["status"] == "succeeded" and state["kind"] == "refresh" and state["last_run"] == "2026-08-22T07:00:00Z"
    assert not first.ok  # the invalid report entry, not the refresh

    assert _due(engine, path, reports, NOW + dt.timedelta(minutes=30), []).refresh is None  # not due yet
    assert _refreshed(engine)[0] == after
    assert _due(engine, path, reports, NOW + dt.timedelta(hours=1), []).refresh is not None
    with engine.connect() as conn:
        outcomes = conn.execute(sa.text("SELECT details->>'outcome' FROM audit_logs WHERE action = 'refresh'"))
        assert outcomes.scalars().all() == ["ok", "ok"]


def test_failed_refresh_is_recorded_and_the_reports_still_run(engine: Engine, tmp_path: Path) -> None:
    with engine.begin() as conn:  # CONCURRENTLY needs the view's unique index
        conn.execute(sa.text("DROP INDEX idx_repo_stats_id"))
    path = tmp_path / "schedule.yml"
    path.write_text("refresh:\n  - id: views\n    at: '06:00'\n  - id: views-again\n    every: 6h\n"
                    "reports:\n  - id: bad\n    report: dashboard\n    parameters: {username: nobody}\n"
                    "    every: 1h\n")
    outcome = _due(engine, path, tmp_path / "reports", NOW, [])
    assert outcome.refresh is not None and not outcome.refresh.ok and not outcome.ok
    assert "cannot refresh materialized view" in outcome.refresh.error and "\n" not in outcome.refresh.error
    state = schedule.read_state(tmp_path / "reports")
    assert state["views"]["status"] == state["views-again"]["status"] == "failed"  # one refresh served both
    assert state["bad"]["status"] == "invalid"  # the report entry still ran after the failed refresh
    with engine.connect() as conn:  # on the audit trail, as `gitinsight refresh` would be
        details = conn.execute(sa.text("SELECT details FROM audit_logs WHERE action = 'refresh'")).scalar_one()
    assert details["outcome"] == "failed" and details["entries"] == ["views", "views-again"]


@pytest.mark.parametrize(("body", "message"), [
    ("refresh:\n  - every: 0h\n", "refresh[1].every: '0h' is not an interval"),
    ("refresh:\n  - id: r\n", "refresh[1]: needs exactly one of 'every' and 'at'"),
    ("refresh:\n  - id: r\n    at: '6pm'\n", "refresh[1].at: '6pm' is not a time of day"),
    ("refresh:\n  - id: r\n    every: 1h\n    views: all\n", "refresh[1]: unknown keys ['views']"),
    ("refresh: hourly\n", "schedule.refresh: in "),
    ("refresh:\n  - id: trending\n    every: 1h\nreports:\n  - report: trending\n    every: 1h\n",
     "reports[1].id: duplicate id 'trending'"),
    ("refesh:\n  - every: 1h\n", "schedule: unknown top-level keys ['refesh'] (allowed: reports, refresh, alerts)"),
])
def test_bad_refresh_entries_are_rejected(tmp_path: Path, body: str, message: str,
                                          monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "schedule.yml"
    path.write_text(body)
    with pytest.raises(ValidationError, match=re.escape(message)):
        schedule.read_schedule(path)
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")  # never reached
    monkeypatch.setenv("GITINSIGHT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GITINSIGHT_REPORTS_DIR", str(tmp_path / "reports"))
    assert main(["report", "due", "--schedule", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err
    assert not (tmp_path / "reports").exists()


def test_maintain_refresh_is_the_refresh_command(cli_env: Engine, capsys: pytest.CaptureFixture) -> None:
    assert main(["maintain", "refresh"]) == 0
    assert capsys.readouterr().out.startswith("refreshed (concurrently)")
