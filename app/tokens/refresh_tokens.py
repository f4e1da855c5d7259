"""Opaque refresh tokens: random strings handed out once, stored only as SHA-256."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from app.tokens.models import RefreshRecord

# A recognisable prefix lets secret scanners (and our endpoints) tell refresh tokens apart.
REFRESH_TOKEN_PREFIX = "omsrt_"  # noqa: S105


def hash_refresh_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def new_refresh_token(
    *,
    user_id: str,
    client_id: str,
    family: str,
    scope: str,
    version: str,
    fingerprint_hash: str | None,
    now: datetime,
    ttl: int,
) -> tuple[str, RefreshRecord]:
    """A fresh token of `family` and the record to store for it."""
    raw = REFRESH_TOKEN_PREFIX + secrets.token_urlsafe(32)
    record = RefreshRecord(
        token_hash=hash_refresh_token(raw),
        family_id=family,
        user_id=user_id,
        client_id=client_id,
        scope=scope,
        token_version=version,
        fingerprint_hash=fingerprint_hash,
        issued_at=now,
        expires_at=now + timedelta(seconds=ttl),
    )
    return raw, record
