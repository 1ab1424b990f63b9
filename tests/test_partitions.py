"""Monthly audit_logs partitions: rows of any month land and stay, retention, refusals that change nothing."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gitinsight_analytics import audit
from gitinsight_analytics.cli import main
from gitinsight_analytics.exceptions import GitInsightError, LockUnavailable, ValidationError
from gitinsight_analytics.maintenance import partitions
from gitinsight_analytics.maintenance.partitions import maintain_partitions, partition_name

UTC = dt.UTC
MARK = "test.row"  # the action of the rows these tests write (the CLI adds its own audit rows)


def _add_months(month: dt.date, n: int) -> dt.date:
    index = month.year * 12 + month.month - 1 + n
    return dt.date(index // 12, index % 12 + 1, 1)


def _this_month(engine: Engine) -> dt.date:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT date_trunc('month', current_date)::date")).scalar_one()


def _insert(engine: Engine, stamps: list[dt.datetime | str]) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO audit_logs (action, resource_type, created_at) "
                             "VALUES (:a, 'test', CAST(:c AS timestamptz))"), [{"a": MARK, "c": s} for s in stamps])


def _placement(engine: Engine) -> Counter[tuple[str, str]]:
    """(month, partition holding the row) -> rows, for the rows the test wrote."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT date_trunc('month', created_at)::text, tableoid::regclass::text, count(*) "
                                    "FROM audit_logs WHERE action = :a GROUP BY 1, 2"), {"a": MARK})
        return Counter({(month, part): n for month, part, n in rows})


def _by_month(engine: Engine) -> Counter[str]:
    months: Counter[str] = Counter()
    for (month, _), n in _placement(engine).items():
        months[month] += n
    return months


def _partitions(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.execute(sa.text("SELECT inhrelid::regclass::text FROM pg_inherits "
                                           "WHERE inhparent = 'audit_logs'::regclass")).scalars())


def _snapshot(engine: Engine) -> tuple[list[str], Counter[tuple[str, str]]]:
    return _partitions(engine), _placement(engine)


def _stamp(month: dt.date, day: int = 15) -> dt.datetime:
    return dt.datetime(month.year, month.month, day, 12, tzinfo=UTC)


def _month_key(month: dt.date) -> str:
    return f"{month} 00:00:00+00"


def test_rows_of_every_month_land_in_their_partition_and_stay(engine: Engine) -> None:
    this = _this_month(engine)
    stamps = {
        dt.date(1970, 1, 1): [dt.datetime(1970, 1, 1, tzinfo=UTC)],  # older than any partition
        dt.date(2019, 3, 1): [dt.datetime(2019, 3, 31, 23, 59, 59, 999999, tzinfo=UTC)] * 2,  # its last instant
        this: [_stamp(this, 1)] * 3,  # present: the migration made this month
        _add_months(this, 2): [_stamp(_add_months(this, 2))] * 4,  # future, inside the window
        _add_months(this, 9): [_stamp(_add_months(this, 9))] * 5,  # beyond the window: default, then moved
        dt.date(2040, 2, 1): [dt.datetime(2040, 2, 29, 23, 0, tzinfo=UTC)] * 6,  # far future
    }
    _insert(engine, [s for group in stamps.values() for s in group] + ["infinity"])
    before = _by_month(engine)
    assert _placement(engine)[(_month_key(dt.date(2040, 2, 1)), "audit_logs_default")] == 6

    report = maintain_partitions(engine, months_ahead=3)

    assert _by_month(engine) == before  # nothing lost, nothing doubled
    expected = Counter({(_month_key(m), partition_name(m)): len(s) for m, s in stamps.items()})
    expected[("infinity", "audit_logs_default")] = 1  # no month to put it in: it stays, reported
    assert _placement(engine) == expected
    strays = [dt.date(1970, 1, 1), dt.date(2019, 3, 1), _add_months(this, 9), dt.date(2040, 2, 1)]
    assert set(report.created) == {partition_name(m) for m in strays}  # the migration made this month .. +3
    assert report.moved == 1 + 2 + 5 + 6 and report.outside_rows == 1 and report.as_of.replace(day=1) == this
    assert {p.name: p.moved for p in report.partitions if p.created}[partition_name(dt.date(2040, 2, 1))] == 6

    again = maintain_partitions(engine, months_ahead=3)  # idempotent
    assert again.created == [] and again.moved == 0 and again.dropped == []
    assert _placement(engine) == expected and [p.name for p in again.partitions] == [
        p.name for p in report.partitions]


@pytest.mark.parametrize("drop", [False, True], ids=["dry-run", "drop-expired"])
def test_retention_drops_only_expired_months(engine: Engine, drop: bool) -> None:
    this = _this_month(engine)
    rows = {_add_months(this, k): 1 + (k % 3) for k in range(-6, 2)}  # six months back to next month
    _insert(engine, [_stamp(m) for m, n in rows.items() for _ in range(n)])
    maintain_partitions(engine, months_ahead=3)  # the old months get their partitions first
    before_partitions, before_months = _partitions(engine), _by_month(engine)

    report = maintain_partitions(engine, months_ahead=3, retain_months=3, drop_expired=drop)

    expired = [_add_months(this, k) for k in (-6, -5, -4)]  # ending on or before this month - 3
    assert report.cutoff == _add_months(this, -3)
    assert report.expired == [partition_name(m) for m in expired]
    assert {p.name: p.rows for p in report.partitions if p.expired} == {partition_name(m): rows[m] for m in expired}
    if drop:
        assert report.dropped == report.expired and report.dropped_rows == sum(rows[m] for m in expired)
        assert _partitions(engine) == sorted(set(before_partitions) - set(report.dropped))
        assert _by_month(engine) == Counter({k: n for k, n in before_months.items()
                                             if k not in {_month_key(m) for m in expired}})
        assert maintain_partitions(engine, retain_months=3, drop_expired=True).expired == []
    else:
        assert report.dropped == [] and _partitions(engine) == before_partitions
        assert _by_month(engine) == before_months
    assert "audit_logs_default" in _partitions(engine)


@pytest.mark.parametrize(("args", "message"), [
    (["--months-ahead", "121"], "error: months_ahead: 121 is out of range (allowed: 0..120)"),
    (["--months-ahead", "-1"], "error: months_ahead: -1 is out of range (allowed: 0..120)"),
    (["--retain-months", "0"], "error: retain_months: 0 is out of range (allowed: 1..600)"),
    (["--retain-months", "601", "--drop-expired"], "error: retain_months: 601 is out of range (allowed: 1..600)"),
    (["--drop-expired"], "error: drop_expired: needs retain_months"),
    (["--as-of", "2026-02-30"], "error: as_of: '2026-02-30' is not a date (allowed: YYYY-MM-DD)"),
    (["--as-of", "9999-11-01"], "error: as_of: 9999-11-01 plus 3 months is past year 9999"),
], ids=["ahead-too-far", "ahead-negative", "retain-zero", "retain-too-long", "drop-without-retain", "bad-date",
        "past-9999"])
def test_bad_options_exit_2_and_change_nothing(cli_env: Engine, capsys: pytest.CaptureFixture, args: list[str],
                                               message: str) -> None:
    _insert(cli_env, [dt.datetime(2040, 5, 1, tzinfo=UTC)])  # a valid run would move it
    before = _snapshot(cli_env)
    assert main(["maintain", "partitions", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(message) and "\n" not in err
    assert _snapshot(cli_env) == before
    with cli_env.connect() as conn:
        assert audit.recent(conn, action="maintain.partitions")[0]["details"]["outcome"] == "failed"


def _dependent_view(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> dict:
    with engine.begin() as conn:  # an expired partition that cannot be dropped: a view reads it
        partitions.ensure_audit_partitions(conn, dt.date(2019, 1, 1), dt.date(2019, 1, 1))
        conn.execute(sa.text("CREATE VIEW old_rows AS SELECT * FROM audit_logs_y2019m01"))
    return {"retain_months": 12, "drop_expired": True}


def _squatter(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> dict:
    with engine.begin() as conn:  # a plain table with the name the 2040-05 partition needs
        conn.execute(sa.text("CREATE TABLE audit_logs_y2040m05 (id int)"))
    return {}


def _too_many_months(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> dict:
    monkeypatch.setattr(partitions, "MAX_MONTHS_FROM_DEFAULT", 2)  # the test's rows need three (2019 included)
    return {}


@pytest.mark.parametrize(("setup", "message"), [
    (_dependent_view, "nothing changed: cannot drop table audit_logs_y2019m01 because other objects depend on it"),
    (_squatter, "audit_logs_y2040m05 exists but is not a partition of audit_logs"),
    (_too_many_months, r"holds rows of 3 months without a partition \(2019-01-01 .. 2040-05-01\), more than 2"),
], ids=["drop-fails-after-moves", "name-taken", "too-many-months"])
def test_a_failure_midway_changes_nothing(engine: Engine, monkeypatch: pytest.MonkeyPatch, setup,
                                          message: str) -> None:
    options = setup(engine, monkeypatch)
    _insert(engine, [dt.datetime(2019, 1, 5, tzinfo=UTC), dt.datetime(2039, 12, 5, tzinfo=UTC),
                     dt.datetime(2040, 5, 5, tzinfo=UTC), dt.datetime(2040, 5, 6, tzinfo=UTC)])
    before = _snapshot(engine)
    with pytest.raises(GitInsightError, match=message):
        maintain_partitions(engine, months_ahead=3, **options)
    assert _snapshot(engine) == before  # with the view: the partitions made before the DROP are gone again


def test_a_busy_table_is_a_clear_error(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(partitions, "LOCK_TIMEOUT", "100ms")
    _insert(engine, [dt.datetime(2040, 5, 1, tzinfo=UTC)])
    before = _snapshot(engine)
    with engine.connect() as reader:
        reader.execute(sa.text("SELECT count(*) FROM audit_logs"))  # a long transaction holds ACCESS SHARE
        with pytest.raises(LockUnavailable, match="lock was not granted within 100ms.*nothing changed"):
            maintain_partitions(engine)
        reader.rollback()
    assert _snapshot(engine) == before


def test_cli_creates_months_and_records_what_it_did(cli_env: Engine, capsys: pytest.CaptureFixture) -> None:
    this = _this_month(cli_env)
    _insert(cli_env, [dt.datetime(2040, 5, 1, tzinfo=UTC)])
    assert main(["maintain", "partitions", "--months-ahead", "6"]) == 0
    out = capsys.readouterr().out
    new = [partition_name(_add_months(this, k)) for k in (4, 5, 6)] + ["audit_logs_y2040m05"]
    assert "partition" in out.splitlines()[1] and "audit_logs_default" in out
    assert f"{'audit_logs_y2040m05':<22} 2040-05-01 .. 2040-06-01" in out and "moved 1 rows from default" in out
    with cli_env.connect() as conn:
        details = audit.recent(conn, action="maintain.partitions")[0]["details"]
    assert details["outcome"] == "ok" and details["created"] == new and details["moved_rows"] == 1


def test_partition_range_is_validated(engine: Engine) -> None:
    with engine.begin() as conn, pytest.raises(ValidationError, match="end: .* is before start"):
        partitions.ensure_audit_partitions(conn, dt.date(2026, 5, 1), dt.date(2026, 1, 1))
