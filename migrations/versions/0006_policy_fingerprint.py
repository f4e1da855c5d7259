"""The policy revision row remembers the content it labels, so a restart adopts it.

Revision ID: 0006_policy_fingerprint
Revises: 0005_entities
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_policy_fingerprint"
down_revision: str | None = "0005_entities"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("policy_state", sa.Column("content_hash", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("policy_state") as batch:
        batch.drop_column("content_hash")
