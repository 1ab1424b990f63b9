"""Many analysts at once (issue 14): repository_star_trends, trending_by_stars precomputed for the newest snapshot
day and the usual windows (objects.STAR_TRENDS_VIEW), refreshed with repository_snapshot_deltas.

Like the other analysis views it holds every user's repositories: the application role is given no privilege on it.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

from gitinsight_analytics import objects as o

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(o.STAR_TRENDS_VIEW.create)


def downgrade() -> None:
    op.execute(o.STAR_TRENDS_VIEW.drop)
