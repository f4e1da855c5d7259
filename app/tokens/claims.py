"""RFC 9068 access-token claims: what we put in, and what a presented token must satisfy.

`jti` is time-ordered: its first 12 hex digits are the issue time in milliseconds. JWT `iat`
has one-second resolution, which is too coarse to tell a token issued just before a user was
disabled from one issued just after; the signed `jti` carries the precise instant without a
non-standard claim or a fractional `iat` that some verifiers reject.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.errors import TokenExpired, TokenInvalid
from app.tokens.models import CLIENT_SUBJECT_PREFIX

CLOCK_LEEWAY_SECONDS = 5  # for nbf/iat only: instances' clocks differ a little
_JTI_TIME_DIGITS = 12


def new_jti(now_ms: int) -> str:
    return f"{now_ms:0{_JTI_TIME_DIGITS}x}{secrets.token_hex(10)}"


def jti_millis(jti: str, fallback_seconds: int) -> int:
    """The issue instant encoded in one of our `jti`s (ms); `iat` for anything else."""
    head = jti[:_JTI_TIME_DIGITS]
    if len(jti) == _JTI_TIME_DIGITS + 20:
        try:
            return int(head, 16)
        except ValueError:
            pass
    return fallback_seconds * 1000


@dataclass(frozen=True)
class AccessClaims:
    """A verified access token's claims."""

    raw: dict[str, Any]
    subject: str
    jti: str
    client_id: str
    issued_at: int
    expires_at: int
    issued_ms: int
    roles: tuple[str, ...]
    is_admin: bool
    scope: tuple[str, ...] | None  # None for v1 tokens (no `scope` claim)
    fingerprint_hash: str | None
    session: str | None

    @property
    def version(self) -> str:
        return "v1" if self.scope is None else "v2"

    @property
    def is_client_token(self) -> bool:
        return self.subject.startswith(CLIENT_SUBJECT_PREFIX)


def build_claims(
    *,
    issuer: str,
    subject: str,
    audience: str,
    client_id: str,
    now_ms: int,
    ttl: int,
    roles: tuple[str, ...] | list[str],
    is_admin: bool,
    scope: tuple[str, ...] | None,
    fingerprint_hash: str | None,
    session: str | None,
) -> dict[str, Any]:
    now = now_ms // 1000
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": subject,
        "aud": audience,
        "exp": now + ttl,
        "iat": now,
        "nbf": now,
        "jti": new_jti(now_ms),
        "client_id": client_id,
        "roles": list(roles),
        "is_admin": is_admin,
    }
    if scope is not None:
        claims["scope"] = " ".join(scope)
    if fingerprint_hash is not None:
        claims["fpt"] = fingerprint_hash
    if session is not None:
        claims["sid"] = session
    return claims


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def _int_claim(raw: dict[str, Any], name: str) -> int:
    value = raw.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TokenInvalid(f"Token claim {name!r} is missing or not a number")
    return int(value)


def _str_claim(raw: dict[str, Any], name: str) -> str:
    value = raw.get(name)
    if not isinstance(value, str) or not value:
        raise TokenInvalid(f"Token claim {name!r} is missing")
    return value


def check_claims(
    raw: dict[str, Any], *, issuer: str, audiences: tuple[str, ...], now: float
) -> AccessClaims:
    """Validate a verified token's claims against the RFC 9068 profile and the clock."""
    if raw.get("iss") != issuer:
        raise TokenInvalid("Token was not issued by this server", details={"claim": "iss"})
    aud = raw.get("aud")
    token_audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if not any(a in audiences for a in token_audiences):
        raise TokenInvalid("Token is not meant for this audience", details={"claim": "aud"})
    exp, iat = _int_claim(raw, "exp"), _int_claim(raw, "iat")
    nbf = _int_claim(raw, "nbf") if "nbf" in raw else iat
    if exp <= now:
        raise TokenExpired(
            details={"expired_at": _iso(exp), "token_age_seconds": int(now - iat)},
        )
    if nbf > now + CLOCK_LEEWAY_SECONDS or iat > now + CLOCK_LEEWAY_SECONDS:
        raise TokenInvalid(
            "Token is not valid yet", details={"claim": "nbf", "not_before": _iso(nbf)}
        )
    subject, jti = _str_claim(raw, "sub"), _str_claim(raw, "jti")
    scope = raw.get("scope")
    roles = raw.get("roles", [])
    fpt, sid = raw.get("fpt"), raw.get("sid")
    return AccessClaims(
        raw=raw,
        subject=subject,
        jti=jti,
        client_id=_str_claim(raw, "client_id"),
        issued_at=iat,
        expires_at=exp,
        issued_ms=jti_millis(jti, iat),
        roles=tuple(r for r in roles if isinstance(r, str)) if isinstance(roles, list) else (),
        is_admin=raw.get("is_admin") is True,
        scope=tuple(scope.split()) if isinstance(scope, str) else None,
        fingerprint_hash=fpt if isinstance(fpt, str) else None,
        session=sid if isinstance(sid, str) else None,
    )
