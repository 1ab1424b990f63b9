"""Alerts for followed repositories (issue 13): the alerts table and its row-level security.

Written in parallel with 0005 and chained after it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from gitinsight_analytics import objects as o

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("repository_id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("full_name", sa.String(length=255), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("details", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"),
                  nullable=False),
        sa.Column("created_at", postgresql.TIMESTAMP(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        sa.Column("sent_at", postgresql.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.CheckConstraint("kind IN ('milestone', 'growth', 'rank_enter', 'rank_leave', 'insight')",
                           name=op.f("alerts_kind_check")),
        sa.ForeignKeyConstraint(["repository_id"], ["repositories.id"], name=op.f("alerts_repository_id_fkey"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("alerts_user_id_fkey"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("repository_id", "user_id", "kind", "as_of", name=op.f("alerts_pkey")),
    )
    op.create_index("idx_alerts_user_as_of", "alerts", ["user_id", sa.literal_column("as_of DESC")], unique=False)
    op.create_index("idx_alerts_unsent", "alerts", ["user_id"], unique=False,
                    postgresql_where=sa.text("sent_at IS NULL"))
    op.execute(o.ALERTS_ACCESS.create)


def downgrade() -> None:
    op.execute(o.ALERTS_ACCESS.drop)
    op.drop_index("idx_alerts_unsent", table_name="alerts", postgresql_where=sa.text("sent_at IS NULL"))
    op.drop_index("idx_alerts_user_as_of", table_name="alerts")
    op.drop_table("alerts")
