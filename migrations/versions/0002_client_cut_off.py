"""Clients get a token cut-off, like users: disabling a client ends its live tokens.

Revision ID: 0002_client_cut_off
Revises: 0001_initial
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.store.models import UTCDateTime

revision: str = "0002_client_cut_off"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("oauth_clients", sa.Column("tokens_valid_after", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("oauth_clients") as batch:
        batch.drop_column("tokens_valid_after")
