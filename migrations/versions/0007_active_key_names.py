"""One active API key per user and name, as a partial unique index (issue 12, "faults lose nothing").

Before, ``keys create`` checked for a clash in Python, so two runs at once could both pass. Keys already sharing
an active name (e.g. made that way) keep working: all but the oldest get `` (2)``, `` (3)``... appended to their
name, so every row is kept. The downgrade drops the index (the new names stay).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_RENAME_DUPLICATES = """
WITH ranked AS (
    SELECT id, name, row_number() OVER (PARTITION BY user_id, name ORDER BY created_at NULLS FIRST, id) AS n
    FROM api_keys WHERE is_active
)
UPDATE api_keys k SET name = left(r.name, 240) || ' (' || r.n || ')'
FROM ranked r WHERE k.id = r.id AND r.n > 1
"""


def upgrade() -> None:
    op.execute(_RENAME_DUPLICATES)
    op.create_index("uq_api_keys_user_name_active", "api_keys", ["user_id", "name"], unique=True,
                    postgresql_where=sa.text("is_active"))


def downgrade() -> None:
    op.drop_index("uq_api_keys_user_name_active", table_name="api_keys", postgresql_where=sa.text("is_active"))
