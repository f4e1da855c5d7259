"""Verify oms-auth access tokens locally, against the service's published JWKS.

A resource server verifies every request's token; doing it here, with keys fetched once and
refreshed when an unknown `kid` appears (after a key rotation), costs no round trip. What a
local check cannot see is a revocation made since the token was issued: tokens are short
lived (15 minutes by default); where that window matters, ask the service
(`AuthClient.validate_token`).

    verifier = TokenVerifier(issuer="https://auth.example.com", audience="oms-api")
    claims = await verifier.verify(token)          # raises TokenExpired / TokenInvalid
    if claims.allows("api:schemas", "write"): ...
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from oms_auth.errors import DeviceMismatch, TokenExpired, TokenInvalid, TransportError

__all__ = ["AccessToken", "TokenVerifier"]

ALGORITHMS = ("RS256", "ES256", "EdDSA")
_TYPES = ("at+jwt", "application/at+jwt")
_REQUIRED = ("iss", "sub", "aud", "exp", "iat", "jti")


def _registry() -> JWSRegistry:
    # The service signs Ed25519 keys as `EdDSA` (what PyJWT, jose4j and go-jose know);
    # joserfc warns about that name, so this registry accepts it quietly.
    eddsa = copy.copy(JWSRegistry.algorithms["EdDSA"])
    eddsa.security_warning = None

    class Registry(JWSRegistry):
        algorithms = {**JWSRegistry.algorithms, "EdDSA": eddsa}

    return Registry(algorithms=list(ALGORITHMS))


_REGISTRY = _registry()


@dataclass(frozen=True)
class AccessToken:
    """Verified claims of an access token."""

    claims: Mapping[str, Any]

    @property
    def subject(self) -> str:
        return str(self.claims["sub"])

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(str(self.claims.get("scope") or "").split())

    @property
    def roles(self) -> tuple[str, ...]:
        return tuple(self.claims.get("roles") or ())

    @property
    def is_admin(self) -> bool:
        return bool(self.claims.get("is_admin", False))

    def allows(self, resource: str, action: str) -> bool | None:
        """True when the token's scope grants exactly `resource:action`; None when the scope
        cannot say (v1 tokens, pattern scopes, or absent): then ask the service. Never False:
        a scope only ever carries grants, so its silence is not a denial."""
        return True if f"{resource}:{action}" in self.scopes else None


@dataclass
class TokenVerifier:
    issuer: str
    audience: str
    jwks_url: str | None = None
    leeway: int = 30  # seconds of clock skew tolerated on exp / nbf / iat
    refresh_cooldown: float = 5.0  # at most one JWKS fetch per this many seconds
    timeout: float = 5.0
    transport: httpx.AsyncBaseTransport | None = None
    _keys: KeySet | None = field(default=None, init=False, repr=False)
    _fetched_at: float = field(default=0.0, init=False, repr=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        self.issuer = self.issuer.rstrip("/")
        if self.jwks_url is None:
            self.jwks_url = f"{self.issuer}/.well-known/jwks.json"

    async def verify(self, token: str, *, fingerprint: str | None = None) -> AccessToken:
        """Signature, `typ`, issuer, audience, time claims and device binding (`fingerprint`
        is the client's `X-Device-Fingerprint`); raises on any failure."""
        header = _header(token)
        keys = await self._keys_with(header["kid"])
        try:
            decoded = jwt.decode(token, keys, algorithms=[header["alg"]], registry=_REGISTRY)
        except (JoseError, ValueError, TypeError) as exc:
            raise TokenInvalid(f"signature does not verify: {type(exc).__name__}") from None
        claims = dict(decoded.claims)
        self._check_claims(claims)
        bound = claims.get("fpt")
        if bound is not None and not _same_device(str(bound), fingerprint):
            raise DeviceMismatch("token is bound to another device")
        return AccessToken(claims)

    def _check_claims(self, claims: dict[str, Any]) -> None:
        missing = [name for name in _REQUIRED if name not in claims]
        if missing:
            raise TokenInvalid(
                f"token lacks claims: {', '.join(missing)} (expected {', '.join(_REQUIRED)})"
            )
        if claims["iss"] != self.issuer:
            raise TokenInvalid(
                f"token was issued by {claims['iss']!r}, but this verifier expects "
                f"{self.issuer!r}: TokenVerifier(issuer=...) must be the service's "
                "OMS_AUTH_ISSUER exactly (localhost and 127.0.0.1 differ)",
                details={"expected": self.issuer, "found": claims["iss"]},
            )
        aud = claims["aud"]
        if self.audience not in (aud if isinstance(aud, list) else [aud]):
            raise TokenInvalid(
                f"token is meant for audience {aud!r}, but this verifier expects "
                f"{self.audience!r} (the service's OMS_AUTH_AUDIENCE, or the client's)",
                details={"expected": self.audience, "found": aud},
            )
        now = time.time()
        if not isinstance(claims["exp"], int | float) or claims["exp"] + self.leeway < now:
            raise TokenExpired("token has expired", details={"expired_at": claims["exp"]})
        nbf = claims.get("nbf", claims["iat"])
        if not isinstance(nbf, int | float) or nbf - self.leeway > now:
            raise TokenInvalid("token is not valid yet")

    async def _keys_with(self, kid: str) -> KeySet:
        keys = self._keys
        if keys is not None and _has_kid(keys, kid):
            return keys
        async with self._lock:
            keys = self._keys
            fresh = time.monotonic() - self._fetched_at < self.refresh_cooldown
            if keys is None or (not _has_kid(keys, kid) and not fresh):
                keys = self._keys = await self._fetch()
                self._fetched_at = time.monotonic()
        if not _has_kid(keys, kid):
            raise TokenInvalid(
                f"token is signed with key {kid!r}, which {self.jwks_url} does not publish "
                f"(it has {', '.join(k.kid or '?' for k in keys.keys) or 'no keys'})"
            )
        return keys

    async def _fetch(self) -> KeySet:
        assert self.jwks_url is not None
        try:
            async with httpx.AsyncClient(timeout=self.timeout, transport=self.transport) as http:
                response = await http.get(self.jwks_url)
                response.raise_for_status()
                return KeySet.import_key_set(response.json())
        except (httpx.HTTPError, ValueError, JoseError) as exc:
            raise TransportError(f"cannot load {self.jwks_url}: {exc}") from exc


def _same_device(bound_hash: str, fingerprint: str | None) -> bool:
    value = (fingerprint or "").strip()[:512]
    if not value:
        return False
    return hmac.compare_digest(bound_hash, hashlib.sha256(value.encode()).hexdigest())


def _has_kid(keys: KeySet, kid: str) -> bool:
    return any(k.kid == kid for k in keys.keys)


def _header(token: str) -> dict[str, Any]:
    if not token or token.count(".") != 2 or len(token) > 16_384:
        raise TokenInvalid("not a compact JWS (expected three base64url parts joined by '.')")
    try:
        header = dict(jws.extract_compact(token.encode("ascii")).protected)
    except (JoseError, ValueError, TypeError, UnicodeError):
        raise TokenInvalid("token cannot be decoded") from None
    if header.get("alg") not in ALGORITHMS:
        raise TokenInvalid(
            f"algorithm {header.get('alg')!r} is not accepted (expected one of "
            f"{', '.join(ALGORITHMS)})"
        )
    if str(header.get("typ", "")).lower() not in _TYPES:
        raise TokenInvalid(f"not an access token: typ is {header.get('typ')!r}, expected 'at+jwt'")
    if not isinstance(header.get("kid"), str):
        raise TokenInvalid("header has no kid")
    return header
