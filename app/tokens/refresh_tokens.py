"""Opaque refresh tokens: random strings handed out once, stored only as SHA-256."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from datetime import datetime, timedelta

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

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


_SEAL_LABEL = b"oms-auth refresh successor v1"


def _seal_key(presented: str) -> bytes:
    # Derived from the raw token, which is never stored (the database has its SHA-256 only).
    return hmac.new(presented.encode(), _SEAL_LABEL, hashlib.sha256).digest()


def seal_successor(presented: str, successor: str) -> bytes:
    """`successor` encrypted so that only a holder of `presented` can read it back."""
    nonce = os.urandom(12)
    return nonce + AESGCM(_seal_key(presented)).encrypt(nonce, successor.encode(), _SEAL_LABEL)


def open_successor(presented: str, sealed: bytes) -> str | None:
    try:
        plain = AESGCM(_seal_key(presented)).decrypt(sealed[:12], sealed[12:], _SEAL_LABEL)
    except (InvalidTag, ValueError):
        return None
    return plain.decode()
