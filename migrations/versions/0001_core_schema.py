"""Core schema: the spec's seven tables with every column, constraint and index, plus repository_snapshots.

Revision ID: 0001
Revises:
Create Date: 2026-11-27 14:47:08.547525
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from gitinsight_analytics.objects import EXTENSION_PG_TRGM

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(EXTENSION_PG_TRGM.create)  # for the trigram indexes on repositories
    op.create_table('users',
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('github_id', sa.BigInteger(), nullable=False),
    sa.Column('username', sa.String(length=255), nullable=False),
    sa.Column('email', sa.String(length=255), nullable=True),
    sa.Column('avatar_url', sa.Text(), nullable=True),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('bio', sa.Text(), nullable=True),
    sa.Column('location', sa.String(length=255), nullable=True),
    sa.Column('company', sa.String(length=255), nullable=True),
    sa.Column('subscription_tier', sa.String(length=20), server_default=sa.text("'free'"), nullable=True),
    sa.Column('created_at', postgresql.TIMESTAMP(timezone=True), server_default=sa.text('now()'), nullable=True),
    sa.Column('updated_at', postgresql.TIMESTAMP(timezone=True), server_default=sa.text('now()'), nullable=True),
    sa.Column('last_login', postgresql.TIMESTAMP(timezone=True), nullable=True),
    sa.CheckConstraint("subscription_tier IN ('free', 'premium', 'enterprise')", name=op.f('users_subscription_tier_check')),
    sa.PrimaryKeyConstraint('id', name=op.f('users_pkey')),
    sa.UniqueConstraint('github_id', name=op.f('users_github_id_key'))
    )
    op.create_index('idx_users_email', 'users', ['email'], unique=False)
    op.create_index('idx_users_github_id', 'users', ['github_id'], unique=False)
    op.create_index('idx_users_subscription', 'users', ['subscription_tier'], unique=False)
    op.create_index('idx_users_username', 'users', ['username'], unique=False)
    op.create_table('api_keys',
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('user_id', sa.UUID(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('key_hash', sa.String(length=255), nullable=False),
    sa.Column('permissions', postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'::text[]"), nullable=True),
    sa.Column('rate_limit', sa.Integer(), server_default=sa.text('1000'), nullable=True),
    sa.Column('last_used', postgresql.TIMESTAMP(timezone=True), nullable=True),
    sa.Column('expires_at', postgresql.TIMESTAMP(timezone=True), nullable=True),
    sa.Column('is_active', sa.Boolean(), server_default=sa.text('true'), nullable=True),
    sa.Column('created_at', postgresql.TIMESTAMP(timezone=True), server_default=sa.text('now()'), nullable=True),
    sa.Column('encrypted_key', sa.LargeBinary(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('api_keys_user_id_fkey'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('api_keys_pkey')),
    sa.UniqueConstraint('key_hash', name=op.f('api_keys_key_hash_key'))
    )
    op.create_index('idx_api_keys_expires_at', 'api_keys', ['expires_at'], unique=False)
    op.create_index('idx_api_keys_is_active', 'api_keys', ['is_active'], unique=False)
    op.create_index('idx_api_keys_key_hash', 'api_keys', ['key_hash'], unique=False)
    op.create_index('idx_api_keys_user_id', 'api_keys', ['user_id'], unique=False)
    op.create_table('audit_logs',
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('user_id', sa.UUID(), nullable=True),
    sa.Column('action', sa.String(length=100), nullable=False),
    sa.Column('resource_type', sa.String(length=50), nullable=False),
    sa.Column('resource_id', sa.UUID(), nullable=True),
    sa.Column('details', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=True),
    sa.Column('ip_address', postgresql.INET(), nullable=True),
    sa.Column('user_agent', sa.Text(), nullable=True),
    sa.Column('created_at', postgresql.TIMESTAMP(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('audit_logs_user_id_fkey')),
    sa.PrimaryKeyConstraint('id', 'created_at', name=op.f('audit_logs_pkey')),
    postgresql_partition_by='RANGE (created_at)'
    )
    op.create_index('idx_audit_logs_action', 'audit_logs', ['action'], unique=False)
    op.create_index('idx_audit_logs_created_at', 'audit_logs', [sa.literal_column('created_at DESC')], unique=False)
    op.create_index('idx_audit_logs_resource', 'audit_logs', ['resource_type', 'resource_id'], unique=False)
    op.create_index('idx_audit_logs_user_id', 'audit_logs', ['user_id'], unique=False)
    op.create_table('repositories',
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('github_id', sa.BigInteger(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('full_name', sa.String(length=255), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('clone_url', sa.Text(), nullable=False),
    sa.Column('language', sa.String(length=50), nullable=True),
    sa.Column('stars', sa.Integer(), server_default=sa.text('0'), nullable=True),
    sa.Column('forks', sa.Integer(), server_default=sa.text('0'), nullable=True),
    sa.Column('watchers', sa.Integer(), server_default=sa.text('0'), nullable=True),
    sa.Column('size', sa.Integer(), server_default=sa.text('0'), nullable=True),
    sa.Column('owner_id', sa.UUID(), nullable=False),
    sa.Column('last_analyzed', postgresql.TIMESTAMP(timezone=True), nullable=True),
    sa.Column('analysis_status', sa.String(length=20), server_default=sa.text("'pending'"), nullable=True),
    sa.Column('settings', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=True),
    sa.Column('created_at', postgresql.TIMESTAMP(timezone=True), server_default=sa.text('now()'), nullable=True),
    sa.Column('updated_at', postgresql.TIMESTAMP(timezone=True), server_default=sa.text('now()'), nullable=True),
    sa.CheckConstraint("analysis_status IN ('pending', 'in_progress', 'completed', 'failed')", name=op.f('repositories_analysis_status_check')),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('repositories_owner_id_fkey'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('repositories_pkey')),
    sa.UniqueConstraint('full_name', name=op.f('repositories_full_name_key')),
    sa.UniqueConstraint('github_id', name=op.f('repositories_github_id_key'))
    )
    op.create_index('idx_repositories_analysis_status', 'repositories', ['analysis_status'], unique=False)
    op.create_index('idx_repositories_description_trgm', 'repositories', ['description'], unique=False, postgresql_using='gin', postgresql_ops={'description': 'gin_trgm_ops'})
    op.create_index('idx_repositories_full_name', 'repositories', ['full_name'], unique=False)
    op.create_index('idx_repositories_github_id', 'repositories', ['github_id'], unique=False)
    op.create_index('idx_repositories_language', 'repositories', ['language'], unique=False)
    op.create_index('idx_repositories_language_stars', 'repositories', ['language', sa.literal_column('stars DESC')], unique=False)
    op.create_index('idx_repositories_last_analyzed', 'repositories', ['last_analyzed'], unique=False)
    op.create_index('idx_repositories_name_trgm', 'repositories', ['name'], unique=False, postgresql_using='gin', postgresql_ops={'name': 'gin_trgm_ops'})
    op.create_index('idx_repositories_owner_id', 'repositories', ['owner_id'], unique=False)
    op.create_index('idx_repositories_owner_status', 'repositories', ['owner_id', 'analysis_status'], unique=False)
    op.create_index('idx_repositories_settings', 'repositories', ['settings'], unique=False, postgresql_using='gin')
    op.create_index('idx_repositories_stars', 'repositories', [sa.literal_column('stars DESC')], unique=False)
    op.create_table('analysis_jobs',
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('repository_id', sa.UUID(), nullable=False),
    sa.Column('status', sa.String(length=20), server_default=sa.text("'queued'"), nullable=True),
    sa.Column('type', sa.String(length=50), nullable=False),
    sa.Column('options', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=True),
    sa.Column('progress', sa.Integer(), server_default=sa.text('0'), nullable=True),
    sa.Column('error_message', sa.Text(), nullable=True),
    sa.Column('started_at', postgresql.TIMESTAMP(timezone=True), nullable=True),
    sa.Column('completed_at', postgresql.TIMESTAMP(timezone=True), nullable=True),
    sa.Column('created_at', postgresql.TIMESTAMP(timezone=True), server_default=sa.text('now()'), nullable=True),
    sa.Column('updated_at', postgresql.TIMESTAMP(timezone=True), server_default=sa.text('now()'), nullable=True),
    sa.CheckConstraint("status IN ('queued', 'in_progress', 'completed', 'failed', 'cancelled')", name=op.f('analysis_jobs_status_check')),
    sa.CheckConstraint('progress >= 0 AND progress <= 100', name=op.f('analysis_jobs_progress_check')),
    sa.ForeignKeyConstraint(['repository_id'], ['repositories.id'], name=op.f('analysis_jobs_repository_id_fkey'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('analysis_jobs_pkey'))
    )
    op.create_index('idx_analysis_jobs_created_at', 'analysis_jobs', [sa.literal_column('created_at DESC')], unique=False)
    op.create_index('idx_analysis_jobs_repo_status', 'analysis_jobs', ['repository_id', 'status'], unique=False)
    op.create_index('idx_analysis_jobs_repository_id', 'analysis_jobs', ['repository_id'], unique=False)
    op.create_index('idx_analysis_jobs_status', 'analysis_jobs', ['status'], unique=False)
    op.create_index('idx_analysis_jobs_status_created', 'analysis_jobs', ['status', sa.literal_column('created_at DESC')], unique=False)
    op.create_index('idx_analysis_jobs_type', 'analysis_jobs', ['type'], unique=False)
    op.create_table('insights',
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('repository_id', sa.UUID(), nullable=False),
    sa.Column('type', sa.String(length=50), nullable=False),
    sa.Column('title', sa.String(length=255), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('confidence_score', sa.Numeric(precision=3, scale=2), nullable=False),
    sa.Column('data', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('model_version', sa.String(length=50), nullable=True),
    sa.Column('tags', postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'::text[]"), nullable=True),
    sa.Column('generated_at', postgresql.TIMESTAMP(timezone=True), server_default=sa.text('now()'), nullable=True),
    sa.Column('created_at', postgresql.TIMESTAMP(timezone=True), server_default=sa.text('now()'), nullable=True),
    sa.Column('updated_at', postgresql.TIMESTAMP(timezone=True), server_default=sa.text('now()'), nullable=True),
    sa.CheckConstraint('confidence_score >= 0 AND confidence_score <= 1', name=op.f('insights_confidence_score_check')),
    sa.ForeignKeyConstraint(['repository_id'], ['repositories.id'], name=op.f('insights_repository_id_fkey'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('insights_pkey'))
    )
    op.create_index('idx_insights_confidence', 'insights', [sa.literal_column('confidence_score DESC')], unique=False)
    op.create_index('idx_insights_data', 'insights', ['data'], unique=False, postgresql_using='gin')
    op.create_index('idx_insights_generated_at', 'insights', [sa.literal_column('generated_at DESC')], unique=False)
    op.create_index('idx_insights_repo_type', 'insights', ['repository_id', 'type'], unique=False)
    op.create_index('idx_insights_repository_id', 'insights', ['repository_id'], unique=False)
    op.create_index('idx_insights_tags', 'insights', ['tags'], unique=False, postgresql_using='gin')
    op.create_index('idx_insights_type', 'insights', ['type'], unique=False)
    op.create_index('idx_insights_type_confidence', 'insights', ['type', sa.literal_column('confidence_score DESC')], unique=False)
    op.create_table('repository_snapshots',
    sa.Column('repository_id', sa.UUID(), nullable=False),
    sa.Column('snapshot_date', sa.Date(), nullable=False),
    sa.Column('full_name', sa.String(length=255), nullable=False),
    sa.Column('stars', sa.Integer(), nullable=False),
    sa.Column('forks', sa.Integer(), nullable=False),
    sa.Column('open_issues', sa.Integer(), nullable=True),
    sa.Column('best_rank', sa.Integer(), nullable=True),
    sa.Column('lists', postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'::text[]"), nullable=False),
    sa.Column('last_commit', postgresql.TIMESTAMP(timezone=True), nullable=True),
    sa.CheckConstraint('stars >= 0 AND forks >= 0', name=op.f('repository_snapshots_counts_check')),
    sa.ForeignKeyConstraint(['repository_id'], ['repositories.id'], name=op.f('repository_snapshots_repository_id_fkey'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('repository_id', 'snapshot_date', name=op.f('repository_snapshots_pkey'))
    )
    op.create_index('idx_repository_snapshots_date', 'repository_snapshots', ['snapshot_date', 'repository_id'], unique=False)
    op.create_table('github_ranking_files',
    sa.Column('snapshot_date', sa.Date(), nullable=False),
    sa.Column('file_name', sa.Text(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('rows', sa.Integer(), nullable=False),
    sa.Column('imported_at', postgresql.TIMESTAMP(timezone=True), server_default=sa.text('now()'), nullable=True),
    sa.PrimaryKeyConstraint('snapshot_date', name=op.f('github_ranking_files_pkey'))
    )
    op.create_table('user_repository_follows',
    sa.Column('user_id', sa.UUID(), nullable=False),
    sa.Column('repository_id', sa.UUID(), nullable=False),
    sa.Column('followed_at', postgresql.TIMESTAMP(timezone=True), server_default=sa.text('now()'), nullable=True),
    sa.Column('notification_settings', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text('\'{"email": true, "push": false}\'::jsonb'), nullable=True),
    sa.ForeignKeyConstraint(['repository_id'], ['repositories.id'], name=op.f('user_repository_follows_repository_id_fkey'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('user_repository_follows_user_id_fkey'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'repository_id', name=op.f('user_repository_follows_pkey'))
    )
    op.create_index('idx_user_repo_follows_followed_at', 'user_repository_follows', [sa.literal_column('followed_at DESC')], unique=False)
    op.create_index('idx_user_repo_follows_repository_id', 'user_repository_follows', ['repository_id'], unique=False)
    op.create_index('idx_user_repo_follows_user_id', 'user_repository_follows', ['user_id'], unique=False)


def downgrade() -> None:
    op.drop_index('idx_user_repo_follows_user_id', table_name='user_repository_follows')
    op.drop_index('idx_user_repo_follows_repository_id', table_name='user_repository_follows')
    op.drop_index('idx_user_repo_follows_followed_at', table_name='user_repository_follows')
    op.drop_table('user_repository_follows')
    op.drop_index('idx_repository_snapshots_date', table_name='repository_snapshots')
    op.drop_table('repository_snapshots')
    op.drop_table('github_ranking_files')
    op.drop_index('idx_insights_type_confidence', table_name='insights')
    op.drop_index('idx_insights_type', table_name='insights')
    op.drop_index('idx_insights_tags', table_name='insights', postgresql_using='gin')
    op.drop_index('idx_insights_repository_id', table_name='insights')
    op.drop_index('idx_insights_repo_type', table_name='insights')
    op.drop_index('idx_insights_generated_at', table_name='insights')
    op.drop_index('idx_insights_data', table_name='insights', postgresql_using='gin')
    op.drop_index('idx_insights_confidence', table_name='insights')
    op.drop_table('insights')
    op.drop_index('idx_analysis_jobs_type', table_name='analysis_jobs')
    op.drop_index('idx_analysis_jobs_status_created', table_name='analysis_jobs')
    op.drop_index('idx_analysis_jobs_status', table_name='analysis_jobs')
    op.drop_index('idx_analysis_jobs_repository_id', table_name='analysis_jobs')
    op.drop_index('idx_analysis_jobs_repo_status', table_name='analysis_jobs')
    op.drop_index('idx_analysis_jobs_created_at', table_name='analysis_jobs')
    op.drop_table('analysis_jobs')
    op.drop_index('idx_repositories_stars', table_name='repositories')
    op.drop_index('idx_repositories_settings', table_name='repositories', postgresql_using='gin')
    op.drop_index('idx_repositories_owner_status', table_name='repositories')
    op.drop_index('idx_repositories_owner_id', table_name='repositories')
    op.drop_index('idx_repositories_name_trgm', table_name='repositories', postgresql_using='gin', postgresql_ops={'name': 'gin_trgm_ops'})
    op.drop_index('idx_repositories_last_analyzed', table_name='repositories')
    op.drop_index('idx_repositories_language_stars', table_name='repositories')
    op.drop_index('idx_repositories_language', table_name='repositories')
    op.drop_index('idx_repositories_github_id', table_name='repositories')
    op.drop_index('idx_repositories_full_name', table_name='repositories')
    op.drop_index('idx_repositories_description_trgm', table_name='repositories', postgresql_using='gin', postgresql_ops={'description': 'gin_trgm_ops'})
    op.drop_index('idx_repositories_analysis_status', table_name='repositories')
    op.drop_table('repositories')
    op.drop_index('idx_audit_logs_user_id', table_name='audit_logs')
    op.drop_index('idx_audit_logs_resource', table_name='audit_logs')
    op.drop_index('idx_audit_logs_created_at', table_name='audit_logs')
    op.drop_index('idx_audit_logs_action', table_name='audit_logs')
    op.drop_table('audit_logs')
    op.drop_index('idx_api_keys_user_id', table_name='api_keys')
    op.drop_index('idx_api_keys_key_hash', table_name='api_keys')
    op.drop_index('idx_api_keys_is_active', table_name='api_keys')
    op.drop_index('idx_api_keys_expires_at', table_name='api_keys')
    op.drop_table('api_keys')
    op.drop_index('idx_users_username', table_name='users')
    op.drop_index('idx_users_subscription', table_name='users')
    op.drop_index('idx_users_github_id', table_name='users')
    op.drop_index('idx_users_email', table_name='users')
    op.drop_table('users')
    op.execute(EXTENSION_PG_TRGM.drop)
