"""Analysis engine (issue 11): queue columns on analysis_jobs (idempotency key, attempts, backoff, lease), the
idempotency key of engine insights, and insight_outcomes (what happened after a prediction's horizon).

Every new key starts with ``repository_id``, so the tables stay shardable on the repository. No triggers.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_JOB_COLUMNS = ("lease_expires_at", "locked_by", "run_after", "max_attempts", "attempts", "analysis_key")


def upgrade() -> None:
    op.add_column("analysis_jobs", sa.Column("analysis_key", sa.Text(), nullable=True))
    op.add_column("analysis_jobs", sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False))
    op.add_column("analysis_jobs", sa.Column("max_attempts", sa.Integer(), server_default=sa.text("3"),
                                             nullable=False))
    op.add_column("analysis_jobs", sa.Column("run_after", postgresql.TIMESTAMP(timezone=True), nullable=True))
    op.add_column("analysis_jobs", sa.Column("locked_by", sa.Text(), nullable=True))
    op.add_column("analysis_jobs", sa.Column("lease_expires_at", postgresql.TIMESTAMP(timezone=True), nullable=True))
    op.create_check_constraint(op.f("analysis_jobs_attempts_check"), "analysis_jobs", "attempts >= 0 AND max_attempts >= 1")
    op.create_index("uq_analysis_jobs_repository_analysis_key", "analysis_jobs", ["repository_id", "analysis_key"],
                    unique=True)
    op.create_index("idx_analysis_jobs_claim", "analysis_jobs", ["created_at"], unique=False,
                    postgresql_where=sa.text("status = 'queued'"))
    op.create_index("idx_analysis_jobs_lease", "analysis_jobs", ["lease_expires_at"], unique=False,
                    postgresql_where=sa.text("status = 'in_progress'"))

    op.add_column("insights", sa.Column("analysis_key", sa.Text(), nullable=True))
    op.create_index("uq_insights_repository_analysis_key", "insights", ["repository_id", "analysis_key"],
                    unique=True)

    op.create_table(
        "insight_outcomes",
        sa.Column("repository_id", postgresql.UUID(), nullable=False),
        sa.Column("analysis_key", sa.Text(), nullable=False),
        sa.Column("outcome", sa.Boolean(), nullable=False),
        sa.Column("observed_value", sa.Numeric(), nullable=True),
        sa.Column("observed_on", sa.Date(), nullable=False),
        sa.Column("details", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"),
                  nullable=False),
        sa.Column("resolved_at", postgresql.TIMESTAMP(timezone=True), server_default=sa.text("now()"),
                  nullable=True),
        sa.ForeignKeyConstraint(["repository_id", "analysis_key"], ["insights.repository_id", "insights.analysis_key"],
                                name="insight_outcomes_insight_fkey", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("repository_id", "analysis_key", name=op.f("insight_outcomes_pkey")),
    )


def downgrade() -> None:
    op.drop_table("insight_outcomes")
    op.drop_index("uq_insights_repository_analysis_key", table_name="insights")
    op.drop_column("insights", "analysis_key")
    op.drop_index("idx_analysis_jobs_lease", table_name="analysis_jobs", postgresql_where=sa.text(
        "status = 'in_progress'"))
    op.drop_index("idx_analysis_jobs_claim", table_name="analysis_jobs", postgresql_where=sa.text(
        "status = 'queued'"))
    op.drop_index("uq_analysis_jobs_repository_analysis_key", table_name="analysis_jobs")
    op.drop_constraint(op.f("analysis_jobs_attempts_check"), "analysis_jobs", type_="check")
    for column in _JOB_COLUMNS:
        op.drop_column("analysis_jobs", column)
