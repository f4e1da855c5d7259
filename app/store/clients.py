"""OAuth clients: who may ask for tokens, with which grants and up to which scopes."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.errors import Conflict
from app.store.audit_log import AuditLog, AuditNote
from app.store.cut_offs import advance_cut_off
from app.store.database import Database
from app.store.models import OAuthClient
from app.tokens.models import ClientRecord


def _record(row: OAuthClient) -> ClientRecord:
    return ClientRecord(
        client_id=row.client_id,
        secret_hash=row.secret_hash,
        name=row.name,
        grant_types=frozenset(row.grant_types.split()),
        scopes=tuple(row.scope.split()),
        audience=row.audience,
        token_endpoint_auth_method=row.token_endpoint_auth_method,
        disabled=row.disabled,
        created_at=row.created_at,
    )


class ClientRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, client_id: str) -> ClientRecord | None:
        async with self.db.sessions() as s:
            row = await s.scalar(select(OAuthClient).where(OAuthClient.client_id == client_id))
        return _record(row) if row is not None else None

    async def all(self) -> list[ClientRecord]:
        async with self.db.sessions() as s:
            rows = (await s.scalars(select(OAuthClient).order_by(OAuthClient.client_id))).all()
        return [_record(r) for r in rows]

    async def create(
        self,
        *,
        client_id: str,
        secret_hash: str,
        grant_types: Sequence[str],
        scopes: Sequence[str],
        name: str = "",
        audience: str | None = None,
        audit: AuditNote | None = None,
    ) -> ClientRecord:
        row = OAuthClient(
            client_id=client_id,
            secret_hash=secret_hash,
            name=name,
            grant_types=" ".join(grant_types),
            scope=" ".join(scopes),
            audience=audience,
            token_endpoint_auth_method="client_secret_basic",  # noqa: S106
            disabled=False,
        )
        try:
            async with self.db.transaction() as s:
                s.add(row)
                await s.flush()
                if audit is not None:
                    await AuditLog().write(
                        s,
                        audit,
                        action="client.created",
                        target=f"client:{client_id}",
                        after={
                            "client_id": client_id,
                            "grant_types": list(grant_types),
                            "scope": list(scopes),
                            "audience": audience,
                        },
                    )
        except IntegrityError:
            raise Conflict(f"client {client_id!r} already exists") from None
        return _record(row)

    async def disable(
        self, *, client_id: str, at: datetime, audit: AuditNote | None = None
    ) -> bool:
        """Disable the client and cut off every access token naming it issued so far."""
        async with self.db.transaction() as s:
            row = await s.scalar(select(OAuthClient).where(OAuthClient.client_id == client_id))
            if row is None:
                return False
            row.disabled = True
            if row.tokens_valid_after is None or row.tokens_valid_after < at:
                row.tokens_valid_after = at
            if audit is not None:
                await AuditLog().write(
                    s,
                    audit,
                    action="client.disabled",
                    target=f"client:{client_id}",
                    after={"disabled": True, "tokens_valid_after": at.isoformat()},
                )
        return True

    async def cut_off(self, *, client_ids: Collection[str], at: datetime) -> list[str]:
        """Move `tokens_valid_after` forward to `at` (never back); returns the clients found."""
        async with self.db.transaction() as s:
            return await advance_cut_off(s, OAuthClient, OAuthClient.client_id, client_ids, at)
