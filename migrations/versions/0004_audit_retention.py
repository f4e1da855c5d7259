"""Audit retention: events older than a purge's cut-off may be deleted, nothing else.

The audit table stays append-only for everything but retention: a purge first records itself
in `audit_purges` (cut-off, who, when) inside its transaction, and the triggers let a DELETE
through only for events older than the cut-off of a purge active in that transaction (other
transactions cannot see the uncommitted marker). Updates are still refused.

Revision ID: 0004_audit_retention
Revises: 0003_idempotency_grace
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.store.models import BigId, UTCDateTime

revision: str = "0004_audit_retention"
down_revision: str | None = "0003_idempotency_grace"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_purges",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("cutoff", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("removed", sa.Integer(), nullable=True),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger AS $$
            BEGIN
              IF TG_OP = 'DELETE' AND EXISTS (
                SELECT 1 FROM audit_purges WHERE active AND OLD.occurred_at < cutoff
              ) THEN
                RETURN OLD;
              END IF;
              RAISE EXCEPTION 'audit_events is append-only';
            END;
            $$ LANGUAGE plpgsql;
            """
        )
    else:
        op.execute("DROP TRIGGER audit_events_no_delete")
        op.execute(
            "CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events "
            "WHEN NOT EXISTS (SELECT 1 FROM audit_purges WHERE active = 1 "
            "AND OLD.occurred_at < cutoff) "
            "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger AS $$
            BEGIN
              RAISE EXCEPTION 'audit_events is append-only';
            END;
            $$ LANGUAGE plpgsql;
            """
        )
    else:
        op.execute("DROP TRIGGER audit_events_no_delete")
        op.execute(
            "CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events "
            "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;"
        )
    op.drop_table("audit_purges")
