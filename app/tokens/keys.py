"""Signing keys: generated per algorithm, stored encrypted, rotated, published as a JWKS.

One key is active (it signs); keys demoted by a rotation stay "previous" and keep being
published while a token they signed can still be alive (`max_token_lifetime` after their
retirement), so a rotation never breaks a token already handed out. Every instance reloads
the key set every `reload_interval` seconds in the background (never on a request), and at
once (at most once a second) when it meets a token signed with a key it does not know, so a
rotation made by the CLI or by another instance is picked up without a restart. Reloads are
single-flight: requests that meet the same unknown key while one runs wait for that one.
The `kid` is the RFC 7638 thumbprint of the key.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from joserfc.jwk import ECKey, Key, OKPKey, RSAKey
from loguru import logger

from app.errors import DependencyUnavailable
from app.observability.outages import OutageLog
from app.security.secrets import UnwrapError, is_wrapped, unwrap_private_pem, wrap_private_pem
from app.tokens.models import StoredKey
from app.tokens.ports import KeyStore

RSA_BITS = 2048
UNKNOWN_KID_RELOAD_SECONDS = 1.0
PUBLIC_KEY_TYPES: dict[str, type[Key]] = {"RS256": RSAKey, "ES256": ECKey, "EdDSA": OKPKey}


class KeyDecryptionError(Exception):
    """A stored private key cannot be opened with the configured encryption key."""


AsymmetricKey = RSAKey | ECKey | OKPKey


def generate_key(alg: str) -> AsymmetricKey:
    if alg == "RS256":
        return RSAKey.generate_key(RSA_BITS)
    if alg == "ES256":
        return ECKey.generate_key("P-256")
    if alg == "EdDSA":
        return OKPKey.generate_key("Ed25519")
    raise ValueError(f"unsupported signing algorithm {alg!r}")


def new_stored_key(alg: str, *, password: str | None, now: datetime) -> StoredKey:
    key = generate_key(alg)
    kid = key.thumbprint()
    public = {**key.as_dict(private=False), "kid": kid, "alg": alg, "use": "sig"}
    pem = key.as_pem(private=True).decode()
    if password:
        pem = wrap_private_pem(pem, password)
    else:
        logger.warning(
            "auth.keys.stored_unencrypted",
            kid=kid,
            reason="OMS_AUTH_ENCRYPTION_KEY is unset: the private key is stored in clear",
        )
    return StoredKey(kid, alg, pem, public, "active", now)


def open_private_key(stored: StoredKey, *, password: str | None) -> Key:
    key_type = PUBLIC_KEY_TYPES[stored.alg]
    if is_wrapped(stored.private_pem):
        if not password:
            raise KeyDecryptionError(
                f"signing key {stored.kid} is encrypted: set OMS_AUTH_ENCRYPTION_KEY"
            )
        try:
            return key_type.import_key(unwrap_private_pem(stored.private_pem, password))
        except (UnwrapError, ValueError, TypeError) as exc:
            raise KeyDecryptionError(
                f"signing key {stored.kid} cannot be opened with OMS_AUTH_ENCRYPTION_KEY"
            ) from exc
    # PKCS#8 PEM: clear, or encrypted the old way (PBKDF2); still read, never written.
    encrypted = "ENCRYPTED" in stored.private_pem.split("\n", 1)[0]
    if encrypted and not password:
        raise KeyDecryptionError(
            f"signing key {stored.kid} is encrypted: set OMS_AUTH_ENCRYPTION_KEY"
        )
    try:
        return key_type.import_key(stored.private_pem, password=password if encrypted else None)
    except (ValueError, TypeError) as exc:
        raise KeyDecryptionError(
            f"signing key {stored.kid} cannot be opened with OMS_AUTH_ENCRYPTION_KEY"
        ) from exc


def public_key(stored: StoredKey) -> Key:
    return PUBLIC_KEY_TYPES[stored.alg].import_key(dict(stored.public_jwk))


async def rotate(store: KeyStore, *, alg: str, password: str | None) -> StoredKey:
    """Make a new active key; the old active key becomes previous (still published)."""
    now = datetime.now(UTC)
    stored = await asyncio.to_thread(new_stored_key, alg, password=password, now=now)
    await store.activate(stored, at=now)
    logger.info("auth.keys.rotated", kid=stored.kid, alg=alg)
    return stored


@dataclass(frozen=True)
class Signer:
    kid: str
    alg: str
    key: Key


@dataclass(frozen=True)
class _Published:
    stored: StoredKey
    key: Key


class KeyRing:
    def __init__(
        self,
        store: KeyStore,
        *,
        alg: str,
        password: str | None,
        reload_interval: float,
        max_token_lifetime: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.alg = alg
        self.password = password
        self.reload_interval = reload_interval
        self.max_token_lifetime = max_token_lifetime
        self.clock = clock
        self._signer: Signer | None = None
        self._published: dict[str, _Published] = {}
        self._loaded_at = 0.0
        self._forced_at = 0.0  # last reload caused by an unknown kid (at most one a second)
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        """Load the keys; make one when there is none or the active one uses another alg."""
        keys = await self.store.load()
        active = newest_active(keys)
        if active is None or active.alg != self.alg:
            await rotate(self.store, alg=self.alg, password=self.password)
        await self.reload()

    async def check_readable(self) -> None:
        """Raise KeyDecryptionError when the active key cannot be opened (start-up check)."""
        active = newest_active(await self.store.load())
        if active is not None and active.alg == self.alg:
            await asyncio.to_thread(open_private_key, active, password=self.password)

    async def reload(self, *, unless_since: float | None = None) -> None:
        """Read the key set again. With `unless_since`, skip it when a reload that started
        after that moment has finished meanwhile (the caller queued behind it)."""
        async with self._lock:
            if unless_since is not None and self._loaded_at >= unless_since:
                return
            started = self.clock()
            keys = await self.store.load()
            now = self.clock()
            active = newest_active(keys)
            if active is None:
                raise DependencyUnavailable("no active signing key: run `oms-auth keys rotate`")
            if self._signer is None or self._signer.kid != active.kid:
                private = await asyncio.to_thread(open_private_key, active, password=self.password)
                self._signer = Signer(active.kid, active.alg, private)
            published = {}
            for stored in keys:
                if self._is_published(stored, now):
                    old = self._published.get(stored.kid)
                    key = old.key if old is not None else public_key(stored)
                    published[stored.kid] = _Published(stored, key)
            self._published = published
            self._loaded_at = started

    def _is_published(self, stored: StoredKey, now: float) -> bool:
        if stored.status == "active":
            return True
        if stored.status != "previous" or stored.retired_at is None:
            return False
        return stored.retired_at.timestamp() + self.max_token_lifetime > now

    async def _fresh(self) -> None:
        """Requests only wait for a load when nothing was ever loaded (then single-flight)."""
        if self._signer is None:
            await self.reload(unless_since=self.clock())

    async def refresh_forever(self) -> None:
        """Reload every `reload_interval` seconds, off the request path, until cancelled."""
        outage = OutageLog("auth.keys.reload_failed", "auth.keys.reload_recovered")
        while True:
            await asyncio.sleep(max(0.0, self._loaded_at + self.reload_interval - self.clock()))
            if self.clock() - self._loaded_at < self.reload_interval:
                continue  # an unknown kid reloaded meanwhile
            try:
                await self.reload()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                outage.failed(type(exc).__name__)
                await asyncio.sleep(min(self.reload_interval, 5.0))
                continue
            outage.succeeded()

    async def signer(self) -> Signer:
        await self._fresh()
        if self._signer is None:
            raise DependencyUnavailable("signing keys are not loaded")
        return self._signer

    async def verification_key(self, kid: str) -> tuple[Key, str] | None:
        """The public key and alg for `kid`; reloads once when the kid is unknown."""
        await self._fresh()
        entry = self._published.get(kid)
        if entry is None:
            asked = self.clock()
            if asked - self._forced_at >= UNKNOWN_KID_RELOAD_SECONDS:
                self._forced_at = asked
                await self.reload(unless_since=asked)
            elif self._lock.locked():
                async with self._lock:  # join the reload in flight instead of starting one
                    pass
            entry = self._published.get(kid)
        if entry is None:
            return None
        return entry.key, entry.stored.alg

    async def jwks(self) -> dict[str, Any]:
        await self._fresh()
        ordered = sorted(
            self._published.values(),
            key=lambda p: (p.stored.status != "active", -p.stored.created_at.timestamp()),
        )
        return {"keys": [dict(p.stored.public_jwk) for p in ordered]}

    @property
    def published_kids(self) -> list[str]:
        return list(self._published)


def newest_active(keys: list[StoredKey]) -> StoredKey | None:
    active = [k for k in keys if k.status == "active"]
    return max(active, key=lambda k: k.created_at) if active else None
