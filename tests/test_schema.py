"""Behaviour of the database objects on the real server: triggers, partitions, stats, the view, checks (row-level
security: test_rls.py)."""

from __future__ import annotations

import datetime as dt
import time
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gitinsight_analytics.maintenance.partitions import audit_partitions, ensure_audit_partitions
from gitinsight_analytics.maintenance.refresh import refresh_repository_stats

from . import factories as f

UTC = dt.UTC


@pytest.mark.parametrize("table", ["users", "repositories", "insights", "analysis_jobs"])
def test_update_trigger_bumps_updated_at(engine: Engine, table: str) -> None:
    with engine.begin() as conn:
        data = f.fan_out(conn)
        row_id = {"users": data.alice, "repositories": data.busy}.get(table)
        if row_id is None:
            row_id = conn.execute(sa.text(f"SELECT id FROM {table} LIMIT 1")).scalar_one()
        conn.execute(sa.text(f"UPDATE {table} SET updated_at = '2000-01-01', created_at = '2000-01-01' "
                             "WHERE id = :i"), {"i": row_id})
    time.sleep(0.01)
    with engine.begin() as conn:
        before = conn.execute(sa.text("SELECT clock_timestamp()")).scalar_one()
        conn.execute(sa.text(f"UPDATE {table} SET created_at = created_at WHERE id = :i"), {"i": row_id})
    with engine.connect() as conn:
        created, updated = conn.execute(sa.text(f"SELECT created_at, updated_at FROM {table} WHERE id = :i"),
                                        {"i": row_id}).one()
    assert created.year == 2000
    assert updated >= before - dt.timedelta(seconds=1) and updated.year > 2000


def _partition_of(conn: sa.Connection, created_at: dt.datetime) -> str:
    row_id = uuid.uuid4()
    conn.execute(sa.text("INSERT INTO audit_logs (id, action, resource_type, created_at) "
                         "VALUES (:i, 'login', 'user', :c)"), {"i": row_id, "c": created_at})
    return conn.execute(sa.text("SELECT tableoid::regclass::text FROM audit_logs WHERE id = :i"),
                        {"i": row_id}).scalar_one()


@pytest.mark.parametrize(
    "created_at",
    [
        dt.datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC),
        dt.datetime(2025, 8, 1, 0, 0, tzinfo=UTC),
        dt.datetime(2025, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        dt.datetime(2031, 1, 15, tzinfo=UTC),
    ],
)
def test_audit_row_lands_in_its_month_partition(engine: Engine, created_at: dt.datetime) -> None:
    expected = f"audit_logs_y{created_at:%Y}m{created_at:%m}"
    with engine.begin() as conn:
        assert _partition_of(conn, created_at) == "audit_logs_default"  # no partition for that month yet
        assert ensure_audit_partitions(conn, created_at.date(), created_at.date()) == [expected]
        # the row waiting in the default partition was moved, and new rows go straight to the month
        assert conn.execute(sa.text(f"SELECT count(*) FROM {expected}")).scalar() == 1
        assert conn.execute(sa.text("SELECT count(*) FROM audit_logs_default")).scalar() == 0
        assert _partition_of(conn, created_at) == expected
        assert ensure_audit_partitions(conn, created_at.date(), created_at.date()) == [expected]  # idempotent


def _months_from(first: dt.date, count: int = 4) -> set[str]:
    months, month = set(), first.replace(day=1)
    for _ in range(count):
        months.add(f"audit_logs_y{month:%Y}m{month:%m}")
        month = (month + dt.timedelta(days=32)).replace(day=1)
    return months


def test_migration_made_current_and_coming_months(engine: Engine) -> None:
    """The month the template was migrated in and the three after it (that month is this one, or the one before
    when the session crossed a month's end since)."""
    with engine.connect() as conn:
        names = {name for name, _, _ in audit_partitions(conn)}
        today = conn.execute(sa.text("SELECT current_date")).scalar_one()
    migrated_in = [today, today.replace(day=1) - dt.timedelta(days=1)]
    assert any(_months_from(day) <= names for day in migrated_in), sorted(names)
    assert "audit_logs_default" in names


def test_get_repository_stats_numbers(engine: Engine) -> None:
    with engine.begin() as conn:
        data = f.fan_out(conn)
        total, avg, latest, types = conn.execute(
            sa.text("SELECT * FROM get_repository_stats(:r)"), {"r": data.busy}).one()
        empty = conn.execute(sa.text("SELECT * FROM get_repository_stats(:r)"), {"r": uuid.uuid4()}).one()
    assert total == 3  # not multiplied by the 2 followers or 2 jobs
    assert float(avg) == pytest.approx(sum(data.confidences) / 3)
    assert latest == dt.datetime(2026, 8, 3, tzinfo=UTC)
    assert types == ["performance", "security"]
    assert tuple(empty) == (0, None, None, [])


def test_materialized_view_counts_and_concurrent_refresh(engine: Engine) -> None:
    with engine.begin() as conn:
        data = f.fan_out(conn)
    first = refresh_repository_stats(engine)
    with engine.begin() as conn:
        f.insight(conn, data.busy, type="performance", confidence=0.1)
    second = refresh_repository_stats(engine)
    assert second.concurrently and second.refreshed_at >= first.refreshed_at
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT * FROM repository_stats WHERE id = :r"), {"r": data.busy}).mappings().one()
    assert row["total_insights"] == 4 and row["follower_count"] == 2
    assert row["avg_confidence"] == pytest.approx((sum(data.confidences) + 0.1) / 4)
    assert row["insights_by_type"] == {"performance": 2, "security": 2}
    assert row["total_jobs"] == 2 and row["failed_jobs"] == 1 and row["latest_job_status"] == "completed"
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.execute(sa.text("REFRESH MATERIALIZED VIEW CONCURRENTLY repository_stats"))


@pytest.mark.parametrize(
    ("statement", "constraint"),
    [
        ("UPDATE users SET subscription_tier = 'gold'", "users_subscription_tier_check"),
        ("UPDATE repositories SET analysis_status = 'done'", "repositories_analysis_status_check"),
        ("UPDATE insights SET confidence_score = 1.5", "insights_confidence_score_check"),
        ("UPDATE analysis_jobs SET progress = 101", "analysis_jobs_progress_check"),
        ("UPDATE analysis_jobs SET status = 'paused'", "analysis_jobs_status_check"),
    ],
)
def test_check_constraints(engine: Engine, statement: str, constraint: str) -> None:
    with engine.begin() as conn:
        f.fan_out(conn)
    with pytest.raises(sa.exc.IntegrityError, match=constraint), engine.begin() as conn:
        conn.execute(sa.text(statement))


def test_deleting_a_user_cascades(engine: Engine) -> None:
    with engine.begin() as conn:
        data = f.fan_out(conn)
        conn.execute(sa.text("DELETE FROM users WHERE id = :u"), {"u": data.alice})
        left = conn.execute(sa.text(
            "SELECT (SELECT count(*) FROM repositories WHERE owner_id = :u),"
            " (SELECT count(*) FROM insights WHERE repository_id = :r),"
            " (SELECT count(*) FROM user_repository_follows WHERE user_id = :u OR repository_id = :r),"
            " (SELECT count(*) FROM analysis_jobs WHERE repository_id = :r)"), {"u": data.alice, "r": data.busy}).one()
    assert tuple(left) == (0, 0, 0, 0)


@pytest.mark.parametrize(
    ("table", "column", "expected"),
    [
        ("users", "subscription_tier", "free"),
        ("repositories", "analysis_status", "pending"),
        ("repositories", "settings", {}),
        ("user_repository_follows", "notification_settings", {"email": True, "push": False}),
    ],
)
def test_defaults(engine: Engine, table: str, column: str, expected: object) -> None:
    with engine.begin() as conn:
        f.fan_out(conn)
        value = conn.execute(sa.text(f"SELECT {column} FROM {table} ORDER BY {column}::text DESC LIMIT 1")).scalar()
    assert value == expected
