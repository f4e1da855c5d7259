"""The entity store: entities {type, id, properties, parents} and their own revision.

Revision ID: 0005_entities
Revises: 0004_audit_retention
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.store.models import UTCDateTime

revision: str = "0005_entities"
down_revision: str | None = "0004_audit_retention"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "entities",
        sa.Column("type", sa.String(255), primary_key=True),
        sa.Column("id", sa.String(255), primary_key=True),
        sa.Column("properties", sa.JSON(), nullable=False),
        sa.Column("parents", sa.JSON(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.add_column(
        "policy_state",
        sa.Column("entity_revision", sa.BigInteger(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    with op.batch_alter_table("policy_state") as batch:
        batch.drop_column("entity_revision")
    op.drop_table("entities")
