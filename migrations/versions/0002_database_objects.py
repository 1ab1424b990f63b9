"""Database objects models cannot express: updated_at triggers, get_repository_stats, the repository_stats
materialized view, audit_logs partitions, row-level security, pgcrypto encryption (where available).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import datetime as dt

from alembic import op

from gitinsight_analytics import objects as o

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

#: Partitions created for the current month and this many months after it; more with `gitinsight maintain partitions`.
MONTHS_AHEAD = 3


def _pgcrypto_available() -> bool:
    bind = op.get_bind()
    return bool(bind.exec_driver_sql("SELECT 1 FROM pg_available_extensions WHERE name = 'pgcrypto'").scalar())


def upgrade() -> None:
    op.execute(o.UPDATED_AT_FUNCTION.create)
    for trigger in o.UPDATED_AT_TRIGGERS:
        op.execute(trigger.create)
    op.execute(o.REPOSITORY_STATS_FUNCTION.create)
    op.execute(o.REPOSITORY_STATS_VIEW.create)

    op.execute(o.AUDIT_PARTITION_FUNCTION.create)
    op.execute(o.AUDIT_DEFAULT_PARTITION.create)
    # The database's clock, as `gitinsight maintain partitions` uses (its TimeZone decides the month boundaries).
    month = op.get_bind().exec_driver_sql("SELECT current_date").scalar_one().replace(day=1)
    for _ in range(MONTHS_AHEAD + 1):
        op.get_bind().exec_driver_sql("SELECT create_audit_log_partition(%(m)s)", {"m": month})
        month = (month + dt.timedelta(days=32)).replace(day=1)

    if _pgcrypto_available():
        op.execute("CREATE EXTENSION IF NOT EXISTS pgcrypto")
        op.execute(o.ENCRYPTION_FUNCTIONS.create)
    else:
        op.execute(o.ENCRYPTION_FUNCTIONS_WITHOUT_PGCRYPTO.create)

    op.execute(o.APPLICATION_ROLE.create)
    op.execute(o.ROW_LEVEL_SECURITY.create)


def downgrade() -> None:
    op.execute(o.ROW_LEVEL_SECURITY.drop)
    op.execute(o.APPLICATION_ROLE.drop)
    op.execute(o.ENCRYPTION_FUNCTIONS.drop)
    op.execute("DROP EXTENSION IF EXISTS pgcrypto")
    # Every partition of audit_logs (monthly and default): dropping them leaves the table as 0001 made it.
    op.execute("""
DO $$
DECLARE part regclass;
BEGIN
    FOR part IN SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = 'audit_logs'::regclass LOOP
        EXECUTE format('DROP TABLE %s', part);
    END LOOP;
END
$$""")
    op.execute(o.AUDIT_PARTITION_FUNCTION.drop)
    op.execute(o.REPOSITORY_STATS_VIEW.drop)
    op.execute(o.REPOSITORY_STATS_FUNCTION.drop)
    for trigger in reversed(o.UPDATED_AT_TRIGGERS):
        op.execute(trigger.drop)
    op.execute(o.UPDATED_AT_FUNCTION.drop)
