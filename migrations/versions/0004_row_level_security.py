"""Row-level security in practice (issue 6): policies V2 on every table the application role can reach, FORCE ROW
LEVEL SECURITY, the view visible_repository_stats, and no per-user-blind materialized view for the role.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import op

from gitinsight_analytics import objects as o
from gitinsight_analytics.security.rls import check_rls_bypass

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # FORCE holds a table owner without BYPASSRLS to the policies: such an admin would then load, refresh and
    # analyse nothing. Refuse before changing anything (the migration is one transaction anyway).
    check_rls_bypass(op.get_bind())
    op.execute(o.ROW_LEVEL_SECURITY.drop)
    op.execute(o.ROW_LEVEL_SECURITY_V2.create)
    op.execute(o.VISIBLE_REPOSITORY_STATS.create)
    op.execute(o.APPLICATION_ROLE_LIMITS.create)


def downgrade() -> None:
    op.execute(o.APPLICATION_ROLE_LIMITS.drop)
    op.execute(o.VISIBLE_REPOSITORY_STATS.drop)
    op.execute(o.ROW_LEVEL_SECURITY_V2.drop)
    op.execute(o.ROW_LEVEL_SECURITY.create)
