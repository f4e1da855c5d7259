"""Signing keys in the `signing_keys` table (the default key store)."""

from __future__ import annotations

from datetime import datetime

import orjson
from sqlalchemy import select, update

from app.store.database import Database
from app.store.models import SigningKey
from app.tokens.models import StoredKey


class DatabaseKeyStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def load(self) -> list[StoredKey]:
        async with self.db.sessions() as s:
            rows = (await s.scalars(select(SigningKey).where(SigningKey.status != "retired"))).all()
        return [
            StoredKey(
                kid=r.kid,
                alg=r.alg,
                private_pem=r.private_key,
                public_jwk=orjson.loads(r.public_jwk),
                status=r.status,
                created_at=r.created_at,
                retired_at=r.retired_at,
            )
            for r in rows
        ]

    async def activate(self, key: StoredKey, *, at: datetime) -> None:
        async with self.db.transaction() as s:
            await s.execute(
                update(SigningKey)
                .where(SigningKey.status == "active")
                .values(status="previous", retired_at=at)
            )
            s.add(
                SigningKey(
                    kid=key.kid,
                    alg=key.alg,
                    private_key=key.private_pem,
                    public_jwk=orjson.dumps(key.public_jwk).decode(),
                    status="active",
                    created_at=key.created_at,
                )
            )
