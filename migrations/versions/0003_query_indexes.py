"""Query layer (issue 4): repository_stats V2, aggregate views for the confidence and tag analyses, a refresh
marker, and covering indexes chosen with EXPLAIN (see docs/seed-deviations.md).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gitinsight_analytics import objects as o

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

NEW_VIEWS = (o.INSIGHT_CONFIDENCE_HIST, o.INSIGHT_CONFIDENCE_DAILY, o.INSIGHT_TAG_VIEW, o.SNAPSHOT_DELTAS_VIEW,
             o.ANALYSIS_REFRESH_MARKER)


def _grant_select(names: list[str]) -> None:
    op.execute(f"GRANT SELECT ON {', '.join(names)} TO {o.APPLICATION_ROLE_NAME}")


def upgrade() -> None:
    # repository_stats per (repository, type) in index order, get_repository_stats() and the dashboard's insight
    # counts: index-only scans instead of reading the 400 MB heap of a million insights.
    op.create_index("idx_insights_repo_type_cover", "insights", ["repository_id", "type"], unique=False,
                    postgresql_include=["confidence_score", "generated_at"])
    # The latest job of a repository (dashboard, view): the first entry of this index for the repository.
    op.create_index("idx_analysis_jobs_repo_created", "analysis_jobs",
                    ["repository_id", sa.literal_column("created_at DESC NULLS LAST"), sa.literal_column("id DESC")],
                    unique=False, postgresql_include=["status"])
    # Recent insights per repository for trending: an index-only range scan.
    op.create_index("idx_insights_generated_cover", "insights", ["generated_at"], unique=False,
                    postgresql_include=["repository_id", "confidence_score"])
    # Search: the ORDER BY of search_repositories, with and without a language, so LIMIT stops early.
    op.create_index("idx_repositories_search_order", "repositories",
                    [sa.literal_column("stars DESC NULLS LAST"), sa.literal_column("updated_at DESC NULLS LAST"),
                     "id"], unique=False)
    op.create_index("idx_repositories_language_search_order", "repositories",
                    ["language", sa.literal_column("stars DESC NULLS LAST"),
                     sa.literal_column("updated_at DESC NULLS LAST"), "id"], unique=False)
    # Dashboard: a user's newest follows first.
    op.create_index("idx_user_repo_follows_user_followed", "user_repository_follows",
                    ["user_id", sa.literal_column("followed_at DESC NULLS LAST")], unique=False)
    op.execute(o.REPOSITORY_STATS_VIEW.drop)
    op.execute(o.REPOSITORY_STATS_VIEW_V2.create)
    for view in NEW_VIEWS:
        op.execute(view.create)
    _grant_select(["repository_stats", *(v.name for v in NEW_VIEWS)])


def downgrade() -> None:
    for view in reversed(NEW_VIEWS):
        op.execute(view.drop)
    op.execute(o.REPOSITORY_STATS_VIEW_V2.drop)
    op.execute(o.REPOSITORY_STATS_VIEW.create)
    _grant_select(["repository_stats"])
    op.drop_index("idx_user_repo_follows_user_followed", table_name="user_repository_follows")
    op.drop_index("idx_repositories_language_search_order", table_name="repositories")
    op.drop_index("idx_repositories_search_order", table_name="repositories")
    op.drop_index("idx_insights_generated_cover", table_name="insights")
    op.drop_index("idx_analysis_jobs_repo_created", table_name="analysis_jobs")
    op.drop_index("idx_insights_repo_type_cover", table_name="insights")
