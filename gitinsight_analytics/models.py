"""The schema: SQLAlchemy 2 models of the spec's seven tables plus the star-history extension.

These models are the one definition of tables, columns, constraints and indexes; Alembic autogenerate reads
them (``alembic check`` must stay clean). What a model cannot express (functions, triggers, the materialized
view, row-level security, partitions, extensions) lives in :mod:`gitinsight_analytics.objects` and is applied
by migrations.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, INET, JSONB, TIMESTAMP, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "Base",
    "metadata",
    "User",
    "Repository",
    "Insight",
    "AnalysisJob",
    "UserRepositoryFollow",
    "ApiKey",
    "AuditLog",
    "RepositorySnapshot",
    "GithubRankingFile",
    "Alert",
    "ALERT_KINDS",
    "InsightOutcome",
    "SUBSCRIPTION_TIERS",
    "ANALYSIS_STATUSES",
    "JOB_STATUSES",
]

#: Constraint names as PostgreSQL itself would pick them for the spec's unnamed constraints.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "%(table_name)s_%(column_0_name)s_key",
    "ck": "%(table_name)s_%(constraint_name)s_check",
    "fk": "%(table_name)s_%(column_0_name)s_fkey",
    "pk": "%(table_name)s_pkey",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

SUBSCRIPTION_TIERS = ("free", "premium", "enterprise")
ANALYSIS_STATUSES = ("pending", "in_progress", "completed", "failed")
JOB_STATUSES = ("queued", "in_progress", "completed", "failed", "cancelled")
#: What an alert is about (see gitinsight_analytics.alerts.rules and docs/analyses.md "Alerts").
ALERT_KINDS = ("milestone", "growth", "rank_enter", "rank_leave", "insight")

TZ = TIMESTAMP(timezone=True)
NOW = text("now()")
EMPTY_JSONB = text("'{}'::jsonb")
EMPTY_TEXT_ARRAY = text("'{}'::text[]")
GEN_UUID = text("gen_random_uuid()")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    metadata = metadata


class User(Base):
    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, server_default=GEN_UUID)
    github_id: Mapped[int] = mapped_column(BigInteger, unique=True, nullable=False)
    username: Mapped[str] = mapped_column(String(255), nullable=False)
    email: Mapped[str | None] = mapped_column(String(255))
    avatar_url: Mapped[str | None] = mapped_column(Text)
    name: Mapped[str | None] = mapped_column(String(255))
    bio: Mapped[str | None] = mapped_column(Text)
    location: Mapped[str | None] = mapped_column(String(255))
    company: Mapped[str | None] = mapped_column(String(255))
    subscription_tier: Mapped[str | None] = mapped_column(String(20), server_default=text("'free'"))
    created_at: Mapped[dt.datetime | None] = mapped_column(TZ, server_default=NOW)
    updated_at: Mapped[dt.datetime | None] = mapped_column(TZ, server_default=NOW)
    last_login: Mapped[dt.datetime | None] = mapped_column(TZ)

    __table_args__ = (
        CheckConstraint(_in("subscription_tier", SUBSCRIPTION_TIERS), name="subscription_tier"),
        Index("idx_users_github_id", "github_id"),
        Index("idx_users_username", "username"),
        Index("idx_users_email", "email"),
        Index("idx_users_subscription", "subscription_tier"),
    )


class Repository(Base):
    __tablename__ = "repositories"

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, server_default=GEN_UUID)
    github_id: Mapped[int] = mapped_column(BigInteger, unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    full_name: Mapped[str] = mapped_column(String(255), unique=True, nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    url: Mapped[str] = mapped_column(Text, nullable=False)
    clone_url: Mapped[str] = mapped_column(Text, nullable=False)
    language: Mapped[str | None] = mapped_column(String(50))
    stars: Mapped[int | None] = mapped_column(Integer, server_default=text("0"))
    forks: Mapped[int | None] = mapped_column(Integer, server_default=text("0"))
    watchers: Mapped[int | None] = mapped_column(Integer, server_default=text("0"))
    size: Mapped[int | None] = mapped_column(Integer, server_default=text("0"))
    owner_id: Mapped[uuid.UUID] = mapped_column(
        UUID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    last_analyzed: Mapped[dt.datetime | None] = mapped_column(TZ)
    analysis_status: Mapped[str | None] = mapped_column(String(20), server_default=text("'pending'"))
    settings: Mapped[dict[str, Any] | None] = mapped_column(JSONB, server_default=EMPTY_JSONB)
    created_at: Mapped[dt.datetime | None] = mapped_column(TZ, server_default=NOW)
    updated_at: Mapped[dt.datetime | None] = mapped_column(TZ, server_default=NOW)

    __table_args__ = (
        CheckConstraint(_in("analysis_status", ANALYSIS_STATUSES), name="analysis_status"),
        Index("idx_repositories_github_id", "github_id"),
        Index("idx_repositories_full_name", "full_name"),
        Index("idx_repositories_owner_id", "owner_id"),
        Index("idx_repositories_language", "language"),
        Index("idx_repositories_stars", text("stars DESC")),
        Index("idx_repositories_analysis_status", "analysis_status"),
        Index("idx_repositories_last_analyzed", "last_analyzed"),
        Index("idx_repositories_settings", "settings", postgresql_using="gin"),
        Index("idx_repositories_language_stars", "language", text("stars DESC")),
        Index("idx_repositories_owner_status", "owner_id", "analysis_status"),
        # Extension (issue 4): trigram indexes serve the search's ILIKE '%term%' on name and description.
        Index("idx_repositories_name_trgm", "name", postgresql_using="gin",
              postgresql_ops={"name": "gin_trgm_ops"}),
        Index("idx_repositories_description_trgm", "description", postgresql_using="gin",
              postgresql_ops={"description": "gin_trgm_ops"}),
        # Extension (issue 4, migration 0003): the search's ORDER BY, so a LIMIT stops early for common terms.
        Index("idx_repositories_search_order", text("stars DESC NULLS LAST"), text("updated_at DESC NULLS LAST"),
              "id"),
        Index("idx_repositories_language_search_order", "language", text("stars DESC NULLS LAST"),
              text("updated_at DESC NULLS LAST"), "id"),
    )


class Insight(Base):
    __tablename__ = "insights"

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, server_default=GEN_UUID)
    repository_id: Mapped[uuid.UUID] = mapped_column(
        UUID, ForeignKey("repositories.id", ondelete="CASCADE"), nullable=False
    )
    type: Mapped[str] = mapped_column(String(50), nullable=False)
    title: Mapped[str] = mapped_column(String(255), nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    confidence_score: Mapped[Decimal] = mapped_column(Numeric(3, 2), nullable=False)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    model_version: Mapped[str | None] = mapped_column(String(50))
    tags: Mapped[list[str] | None] = mapped_column(ARRAY(Text), server_default=EMPTY_TEXT_ARRAY)
    generated_at: Mapped[dt.datetime | None] = mapped_column(TZ, server_default=NOW)
    created_at: Mapped[dt.datetime | None] = mapped_column(TZ, server_default=NOW)
    updated_at: Mapped[dt.datetime | None] = mapped_column(TZ, server_default=NOW)
    # Extension (issue 11, migration 0005): "type:model_version:as_of:hN" of an engine insight (NULL for the
    # synthetic ones); unique per repository, so re-running a job writes no duplicate.
    analysis_key: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        CheckConstraint("confidence_score >= 0 AND confidence_score <= 1", name="confidence_score"),
        Index("uq_insights_repository_analysis_key", "repository_id", "analysis_key", unique=True),
        Index("idx_insights_repository_id", "repository_id"),
        Index("idx_insights_type", "type"),
        Index("idx_insights_confidence", text("confidence_score DESC")),
        Index("idx_insights_generated_at", text("generated_at DESC")),
        Index("idx_insights_tags", "tags", postgresql_using="gin"),
        Index("idx_insights_data", "data", postgresql_using="gin"),
        Index("idx_insights_repo_type", "repository_id", "type"),
        Index("idx_insights_type_confidence", "type", text("confidence_score DESC")),
        # Extension (issue 4, migration 0003): covering index for the per-repository aggregates.
        Index("idx_insights_repo_type_cover", "repository_id", "type",
              postgresql_include=["confidence_score", "generated_at"]),
        # Extension (issue 4, migration 0003): recent insights per repository (trending) without heap reads.
        Index("idx_insights_generated_cover", "generated_at", postgresql_include=["repository_id", "confidence_score"]),
    )


class AnalysisJob(Base):
    __tablename__ = "analysis_jobs"

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, server_default=GEN_UUID)
    repository_id: Mapped[uuid.UUID] = mapped_column(
        UUID, ForeignKey("repositories.id", ondelete="CASCADE"), nullable=False
    )
    status: Mapped[str | None] = mapped_column(String(20), server_default=text("'queued'"))
    type: Mapped[str] = mapped_column(String(50), nullable=False)
    options: Mapped[dict[str, Any] | None] = mapped_column(JSONB, server_default=EMPTY_JSONB)
    progress: Mapped[int | None] = mapped_column(Integer, server_default=text("0"))
    error_message: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[dt.datetime | None] = mapped_column(TZ)
    completed_at: Mapped[dt.datetime | None] = mapped_column(TZ)
    created_at: Mapped[dt.datetime | None] = mapped_column(TZ, server_default=NOW)
    updated_at: Mapped[dt.datetime | None] = mapped_column(TZ, server_default=NOW)
    # Extension (issue 11, migration 0005): the analysis engine's queue columns. ``analysis_key`` makes enqueueing
    # idempotent per repository; a worker holds a claimed job until ``lease_expires_at`` (renewed while it runs),
    # after which another worker takes it over; failures are retried up to ``max_attempts``, not before
    # ``run_after`` (backoff; NULL when nothing waits, so rows written without it, e.g. the seed's, stay as given).
    analysis_key: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    max_attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("3"))
    run_after: Mapped[dt.datetime | None] = mapped_column(TZ)  # NULL: due now (no retry waiting)
    locked_by: Mapped[str | None] = mapped_column(Text)
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(TZ)

    __table_args__ = (
        CheckConstraint(_in("status", JOB_STATUSES), name="status"),
        CheckConstraint("attempts >= 0 AND max_attempts >= 1", name="attempts"),
        Index("uq_analysis_jobs_repository_analysis_key", "repository_id", "analysis_key", unique=True),
        # The workers' claim: due queued jobs in order, and in-progress jobs whose lease has expired.
        Index("idx_analysis_jobs_claim", "created_at", postgresql_where=text("status = 'queued'")),
        Index("idx_analysis_jobs_lease", "lease_expires_at", postgresql_where=text("status = 'in_progress'")),
        CheckConstraint("progress >= 0 AND progress <= 100", name="progress"),
        Index("idx_analysis_jobs_repository_id", "repository_id"),
        Index("idx_analysis_jobs_status", "status"),
        Index("idx_analysis_jobs_type", "type"),
        Index("idx_analysis_jobs_created_at", text("created_at DESC")),
        Index("idx_analysis_jobs_repo_status", "repository_id", "status"),
        Index("idx_analysis_jobs_status_created", "status", text("created_at DESC")),
        # Extension (issue 4, migration 0003): a repository's latest job is the first entry of this index.
        Index("idx_analysis_jobs_repo_created", "repository_id", text("created_at DESC NULLS LAST"), text("id DESC"),
              postgresql_include=["status"]),
    )


class UserRepositoryFollow(Base):
    __tablename__ = "user_repository_follows"

    user_id: Mapped[uuid.UUID] = mapped_column(UUID, ForeignKey("users.id", ondelete="CASCADE"))
    repository_id: Mapped[uuid.UUID] = mapped_column(
        UUID, ForeignKey("repositories.id", ondelete="CASCADE")
    )
    followed_at: Mapped[dt.datetime | None] = mapped_column(TZ, server_default=NOW)
    notification_settings: Mapped[dict[str, Any] | None] = mapped_column(
        JSONB, server_default=text("""'{"email": true, "push": false}'::jsonb""")
    )

    __table_args__ = (
        PrimaryKeyConstraint("user_id", "repository_id"),
        Index("idx_user_repo_follows_user_id", "user_id"),
        Index("idx_user_repo_follows_repository_id", "repository_id"),
        Index("idx_user_repo_follows_followed_at", text("followed_at DESC")),
        # Extension (issue 4, migration 0003): a user's newest follows first (dashboard pages).
        Index("idx_user_repo_follows_user_followed", "user_id", text("followed_at DESC NULLS LAST")),
    )


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, server_default=GEN_UUID)
    user_id: Mapped[uuid.UUID] = mapped_column(UUID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    key_hash: Mapped[str] = mapped_column(String(255), unique=True, nullable=False)
    permissions: Mapped[list[str] | None] = mapped_column(ARRAY(Text), server_default=EMPTY_TEXT_ARRAY)
    rate_limit: Mapped[int | None] = mapped_column(Integer, server_default=text("1000"))
    last_used: Mapped[dt.datetime | None] = mapped_column(TZ)
    expires_at: Mapped[dt.datetime | None] = mapped_column(TZ)
    is_active: Mapped[bool | None] = mapped_column(Boolean, server_default=text("true"))
    created_at: Mapped[dt.datetime | None] = mapped_column(TZ, server_default=NOW)
    # The spec adds this column in its "Data Encryption" section; we always create it (pgcrypto or not).
    encrypted_key: Mapped[bytes | None] = mapped_column(LargeBinary)

    __table_args__ = (
        Index("idx_api_keys_user_id", "user_id"),
        Index("idx_api_keys_key_hash", "key_hash"),
        Index("idx_api_keys_is_active", "is_active"),
        Index("idx_api_keys_expires_at", "expires_at"),
        # One active (not revoked) key per user and name, enforced by the database: two `keys create` at once
        # cannot both pass (issue 12).
        Index("uq_api_keys_user_name_active", "user_id", "name", unique=True, postgresql_where=text("is_active")),
    )


class AuditLog(Base):
    """Range-partitioned by month on ``created_at``; partitions are made by migrations and maintenance."""

    __tablename__ = "audit_logs"

    id: Mapped[uuid.UUID] = mapped_column(UUID, server_default=GEN_UUID)
    user_id: Mapped[uuid.UUID | None] = mapped_column(UUID, ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(100), nullable=False)
    resource_type: Mapped[str] = mapped_column(String(50), nullable=False)
    resource_id: Mapped[uuid.UUID | None] = mapped_column(UUID)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSONB, server_default=EMPTY_JSONB)
    ip_address: Mapped[str | None] = mapped_column(INET)
    user_agent: Mapped[str | None] = mapped_column(Text)
    # NOT NULL and part of the primary key: PostgreSQL requires the partition key in every unique constraint.
    created_at: Mapped[dt.datetime] = mapped_column(TZ, server_default=NOW, nullable=False)

    __table_args__ = (
        PrimaryKeyConstraint("id", "created_at"),
        Index("idx_audit_logs_user_id", "user_id"),
        Index("idx_audit_logs_action", "action"),
        Index("idx_audit_logs_resource", "resource_type", "resource_id"),
        Index("idx_audit_logs_created_at", text("created_at DESC")),
        {"postgresql_partition_by": "RANGE (created_at)"},
    )


class RepositorySnapshot(Base):
    """Extension of the spec: one row per repository and day of the imported GitHub ranking data.

    Real star growth (trending by stars) is computed from it. ``full_name`` is the name seen that day, so
    renames and transfers stay visible in the history.
    """

    __tablename__ = "repository_snapshots"

    repository_id: Mapped[uuid.UUID] = mapped_column(
        UUID, ForeignKey("repositories.id", ondelete="CASCADE")
    )
    snapshot_date: Mapped[dt.date] = mapped_column(Date)
    full_name: Mapped[str] = mapped_column(String(255), nullable=False)
    stars: Mapped[int] = mapped_column(Integer, nullable=False)
    forks: Mapped[int] = mapped_column(Integer, nullable=False)
    open_issues: Mapped[int | None] = mapped_column(Integer)
    best_rank: Mapped[int | None] = mapped_column(Integer)
    lists: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, server_default=EMPTY_TEXT_ARRAY)
    last_commit: Mapped[dt.datetime | None] = mapped_column(TZ)

    __table_args__ = (
        PrimaryKeyConstraint("repository_id", "snapshot_date"),
        CheckConstraint("stars >= 0 AND forks >= 0", name="counts"),
        Index("idx_repository_snapshots_date", "snapshot_date", "repository_id"),
    )


class GithubRankingFile(Base):
    """Extension of the spec: one row per imported GitHub ranking file (its date, name and SHA-256).

    Re-importing a file with the same date and content is skipped; different content for an imported date is
    refused. ``imported_at`` is audit only: the data's date is ``snapshot_date``, taken from the file name.
    """

    __tablename__ = "github_ranking_files"

    snapshot_date: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    file_name: Mapped[str] = mapped_column(Text, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    rows: Mapped[int] = mapped_column(Integer, nullable=False)
    imported_at: Mapped[dt.datetime | None] = mapped_column(TZ, server_default=NOW)


class Alert(Base):
    """Extension of the spec (issue 13): one alert for one user about one repository, of one kind, on one day.

    The primary key (repository first, so a cluster sharded on the repository id keeps it local) makes every
    alert exist once: a re-run stores and sends nothing new. ``as_of`` is the snapshot day the event happened
    on (for insights: the UTC day they were generated). ``sent_at`` stays NULL until the user's digest was
    delivered; ``attempts`` and ``last_error`` record failed deliveries, retried on the next run.
    """

    __tablename__ = "alerts"

    repository_id: Mapped[uuid.UUID] = mapped_column(UUID, ForeignKey("repositories.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(UUID, ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    as_of: Mapped[dt.date] = mapped_column(Date)
    full_name: Mapped[str] = mapped_column(String(255), nullable=False)
    message: Mapped[str] = mapped_column(Text, nullable=False)
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default=EMPTY_JSONB)
    created_at: Mapped[dt.datetime] = mapped_column(TZ, nullable=False, server_default=NOW)
    sent_at: Mapped[dt.datetime | None] = mapped_column(TZ)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    last_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        PrimaryKeyConstraint("repository_id", "user_id", "kind", "as_of"),
        CheckConstraint(_in("kind", ALERT_KINDS), name="kind"),
        Index("idx_alerts_user_as_of", "user_id", text("as_of DESC")),
        Index("idx_alerts_unsent", "user_id", postgresql_where=text("sent_at IS NULL")),
    )


class InsightOutcome(Base):
    """Extension of the spec (issue 11): what happened after an engine insight's horizon ended.

    Keyed like the insight it resolves, ``(repository_id, analysis_key)`` (repository first: the table is per
    repository and shards with it), and deleted with it. ``outcome`` is whether the predicted event happened;
    ``observed_value`` the measured quantity (e.g. stars gained), ``observed_on`` the snapshot day it comes from.
    """

    __tablename__ = "insight_outcomes"

    repository_id: Mapped[uuid.UUID] = mapped_column(UUID)
    analysis_key: Mapped[str] = mapped_column(Text)
    outcome: Mapped[bool] = mapped_column(Boolean, nullable=False)
    observed_value: Mapped[Decimal | None] = mapped_column(Numeric)
    observed_on: Mapped[dt.date] = mapped_column(Date, nullable=False)
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default=EMPTY_JSONB)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(TZ, server_default=NOW)

    __table_args__ = (
        PrimaryKeyConstraint("repository_id", "analysis_key"),
        ForeignKeyConstraint(["repository_id", "analysis_key"], ["insights.repository_id", "insights.analysis_key"],
                             ondelete="CASCADE", name="insight_outcomes_insight_fkey"),
    )
