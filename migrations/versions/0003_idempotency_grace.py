"""Idempotency keys for admin writes; refresh tokens remember their successor; user
attributes.

Revision ID: 0003_idempotency_grace
Revises: 0002_client_cut_off
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.store.models import UTCDateTime

revision: str = "0003_idempotency_grace"
down_revision: str | None = "0002_client_cut_off"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("scope", sa.String(255), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("response", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_idempotency_keys_expires_at", "idempotency_keys", ["expires_at"])
    op.add_column("refresh_tokens", sa.Column("replaced_by", sa.String(64), nullable=True))
    op.add_column("refresh_tokens", sa.Column("successor_sealed", sa.LargeBinary(), nullable=True))
    op.add_column("users", sa.Column("attributes", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("attributes")
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.drop_column("successor_sealed")
        batch.drop_column("replaced_by")
    op.drop_index("ix_idempotency_keys_expires_at", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
