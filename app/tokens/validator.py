"""Validating access tokens, one or a thousand at a time.

Order of checks (the first failure decides): readable header with an accepted alg, `typ`
at+jwt and a known `kid` (AUTH_004) -> signature (AUTH_004) -> issuer, audience, expiry
(AUTH_002), not-before (AUTH_004) -> device binding (AUTH_006) -> revocation, revoked session,
per-user cut-off (AUTH_005). A batch verifies all signatures in one pass (off the event loop
when it is large) and asks the revocation store once for all of its tokens.

Verified signatures are remembered in process (by SHA-256 of the token, with the key id), so
a token presented again skips the RSA/EC work; every other check runs each time. They are not
shared through Redis: a Redis round trip (~250 µs here) costs more than verifying (~80 µs).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from joserfc.jwk import Key

from app.cache.local import LocalCache
from app.errors import AuthzError, DeviceMismatch, TokenInvalid, TokenRevoked
from app.security.fingerprint import fingerprint_matches
from app.tokens import jose
from app.tokens.claims import AccessClaims, check_claims
from app.tokens.keys import KeyRing
from app.tokens.metrics import TokenMetrics
from app.tokens.models import TokenRef
from app.tokens.revocation import Revocations

INLINE_VERIFY_LIMIT = 16  # larger batches verify in a worker thread
VERIFIED_CACHE_SIZE = 50_000
VERIFIED_CACHE_TTL = 60.0  # seconds, and never beyond the token's `exp`
ACCEPTED_CACHE_SIZE = 10_000  # single tokens accepted recently, keyed by the token itself
ACCEPTED_CACHE_TTL = 60.0

_REVOKED_MESSAGES = {
    "revoked": "Token has been revoked",
    "session_revoked": "The session this token belongs to has been revoked",
    "stale": "Token was issued before its holder's roles or status changed",
    "client_cut_off": "Token was issued before its client was disabled or lost permissions",
}

Outcome = AccessClaims | AuthzError
# Work to do once a token is known good up to its revocation check, alongside that check
# (e.g. charging the caller's rate limit): one Redis round trip for both.
Alongside = Callable[[AccessClaims], Awaitable[None]]


@dataclass
class TokenValidator:
    issuer: str
    audience: str
    keys: KeyRing
    revocations: Revocations
    metrics: TokenMetrics | None = None
    clock: Callable[[], float] = field(default=time.time)
    _verified: LocalCache[str, dict[str, Any]] = field(
        default_factory=lambda: LocalCache(max_entries=VERIFIED_CACHE_SIZE, ttl=VERIFIED_CACHE_TTL),
        repr=False,
    )
    _accepted: LocalCache[str, tuple[str, str, AccessClaims, TokenRef]] = field(
        default_factory=lambda: LocalCache(max_entries=ACCEPTED_CACHE_SIZE, ttl=ACCEPTED_CACHE_TTL),
        repr=False,
    )
    _counters: dict[str, Any] = field(default_factory=dict, repr=False)

    async def validate(
        self,
        token: str,
        *,
        fingerprint: str | None = None,
        audience: str | None = None,
        check_device: bool = True,
        check_revocation: bool = True,
        alongside: Alongside | None = None,
    ) -> AccessClaims:
        """One token's claims, or its error raised. `alongside(claims)` runs once the token
        passed every check but revocation, concurrently with that lookup (its own errors are
        raised after the token's: a revoked token is 401 even when `alongside` failed).

        A token accepted before (same audience) skips decoding and claim parsing: its key must
        still be published, and expiry, device binding and revocation are checked again."""
        outcome: Outcome | None = None
        ref: TokenRef | None = None
        if audience is None:
            seen = await self._seen(token, fingerprint if check_device else None, check_device)
            if seen is not None:
                outcome, ref = seen
        if outcome is None:
            outcome = (
                await self.validate_many(
                    [token],
                    [fingerprint],
                    audience=audience,
                    check_device=check_device,
                    check_revocation=False,
                    count=False,
                )
            )[0]
            if isinstance(outcome, AccessClaims):
                ref = _ref(outcome)
                if audience is None:
                    self._accept(token, outcome, ref)
        out = [outcome]
        if isinstance(outcome, AuthzError) or not check_revocation:
            self._count(out)
            if isinstance(outcome, AuthzError):
                raise outcome
        else:
            claims = outcome
            assert ref is not None
            if alongside is None or self.revocations.answers_at_once(ref):
                await self._check_one(out, ref)  # no I/O, or nothing to run alongside
            else:
                revocation, extra = await asyncio.gather(
                    self._check_one(out, ref), alongside(claims), return_exceptions=True
                )
                if isinstance(revocation, BaseException):
                    raise revocation
                self._count(out)
                if isinstance(out[0], AuthzError):
                    raise out[0]
                if isinstance(extra, BaseException):
                    raise extra
                return claims
            self._count(out)
            if isinstance(out[0], AuthzError):
                raise out[0]
        if alongside is not None:
            await alongside(outcome)
        return outcome

    async def _seen(
        self, token: str, fingerprint: str | None, check_device: bool
    ) -> tuple[Outcome, TokenRef] | None:
        entry = self._accepted.get(token)
        if entry is None:
            return None
        kid, alg, claims, ref = entry
        if claims.expires_at <= self.clock():
            return None  # the full path says how it expired
        key = await self.keys.verification_key(kid)
        if key is None or key[1] != alg:
            return None  # retired since: the full path refuses it
        if check_device and not fingerprint_matches(claims.fingerprint_hash, fingerprint):
            reason = "missing" if not fingerprint else "different"
            mismatch = DeviceMismatch(
                "Token is bound to another device", details={"fingerprint": reason}
            )
            return mismatch, ref
        return claims, ref

    def _accept(self, token: str, claims: AccessClaims, ref: TokenRef) -> None:
        try:
            header = jose.read_header(token)
        except jose.MalformedToken:
            return
        ttl = min(ACCEPTED_CACHE_TTL, claims.expires_at - self.clock())
        if ttl > 0:
            self._accepted.put(token, (header["kid"], header["alg"], claims, ref), ttl=ttl)

    async def validate_many(
        self,
        tokens: Sequence[str],
        fingerprints: Sequence[str | None] | None = None,
        *,
        audience: str | None = None,
        check_device: bool = True,
        check_revocation: bool = True,
        count: bool = True,
    ) -> list[Outcome]:
        started = time.perf_counter()
        prints = list(fingerprints) if fingerprints is not None else [None] * len(tokens)
        keyed = await self._keys_for(tokens)
        verified = await self._verify_all(tokens, keyed)
        now = self.clock()
        audiences = (self.audience,) if audience is None else (self.audience, audience)
        out: list[Outcome] = []
        for raw, fingerprint in zip(verified, prints, strict=True):
            out.append(
                self._claims(
                    raw, fingerprint, audiences=audiences, now=now, check_device=check_device
                )
            )
        if check_revocation:
            await self._check_revocation(out)
        if count:
            self._count(out)
        if self.metrics is not None and out:
            per = (time.perf_counter() - started) / len(out)
            histogram = self.metrics.validation_seconds
            for _ in out:
                histogram.observe(per)
        return out

    async def _keys_for(self, tokens: Sequence[str]) -> list[tuple[Key, str] | AuthzError]:
        resolved: dict[str, tuple[Key, str] | None] = {}
        out: list[tuple[Key, str] | AuthzError] = []
        for token in tokens:
            try:
                header = jose.read_header(token)
            except jose.MalformedToken as exc:
                out.append(TokenInvalid(f"Token is malformed: {exc}"))
                continue
            kid = header["kid"]
            if kid not in resolved:
                resolved[kid] = await self.keys.verification_key(kid)
            entry = resolved[kid]
            if entry is None or entry[1] != header["alg"]:
                out.append(TokenInvalid("Token is signed with an unknown key"))
            else:
                out.append(entry)
        return out

    async def _verify_all(
        self, tokens: Sequence[str], keyed: list[tuple[Key, str] | AuthzError]
    ) -> list[dict[str, Any] | AuthzError]:
        """Signatures, remembered per token. A remembered one is only used once `_keys_for`
        has found the token's key still published, so a retired key ends it at once."""
        out: list[dict[str, Any] | AuthzError | None] = [None] * len(tokens)
        todo: list[int] = []
        for i, (token, entry) in enumerate(zip(tokens, keyed, strict=True)):
            if isinstance(entry, AuthzError):
                out[i] = entry
            elif (seen := self._verified.get(_digest(token))) is not None:
                out[i] = seen
            else:
                todo.append(i)
        if todo:
            batch, batch_keys = [tokens[i] for i in todo], [keyed[i] for i in todo]
            if len(batch) > INLINE_VERIFY_LIMIT:
                verified = await asyncio.to_thread(_verify_pass, batch, batch_keys)
            else:
                verified = _verify_pass(batch, batch_keys)
            now = self.clock()
            for i, result in zip(todo, verified, strict=True):
                out[i] = result
                exp = result.get("exp") if isinstance(result, dict) else None
                if isinstance(result, dict) and isinstance(exp, int | float) and exp > now:
                    ttl = min(VERIFIED_CACHE_TTL, exp - now)
                    self._verified.put(_digest(tokens[i]), result, ttl=ttl)
        return [r for r in out if r is not None]

    def _claims(
        self,
        raw: dict[str, Any] | AuthzError,
        fingerprint: str | None,
        *,
        audiences: tuple[str, ...],
        now: float,
        check_device: bool,
    ) -> Outcome:
        if isinstance(raw, AuthzError):
            return raw
        try:
            claims = check_claims(raw, issuer=self.issuer, audiences=audiences, now=now)
        except AuthzError as exc:
            return exc
        if check_device and not fingerprint_matches(claims.fingerprint_hash, fingerprint):
            reason = "missing" if not fingerprint else "different"
            return DeviceMismatch(
                "Token is bound to another device", details={"fingerprint": reason}
            )
        return claims

    async def _check_one(self, out: list[Outcome], ref: TokenRef) -> None:
        reason = Revocations.reason(ref, await self.revocations.check((ref,)))
        if reason is not None:
            out[0] = TokenRevoked(_REVOKED_MESSAGES[reason], details={"reason": reason})

    async def _check_revocation(self, out: list[Outcome]) -> None:
        live = [(i, c) for i, c in enumerate(out) if isinstance(c, AccessClaims)]
        refs = [_ref(c) for _, c in live]
        state = await self.revocations.check(refs)
        for (i, _), ref in zip(live, refs, strict=True):
            reason = Revocations.reason(ref, state)
            if reason is not None:
                out[i] = TokenRevoked(_REVOKED_MESSAGES[reason], details={"reason": reason})

    def _count(self, out: list[Outcome]) -> None:
        if self.metrics is None:
            return
        for item in out:
            result = "valid" if isinstance(item, AccessClaims) else item.code
            counter = self._counters.get(result)
            if counter is None:
                counter = self._counters[result] = self.metrics.validations.labels(result=result)
            counter.inc()


def _ref(claims: AccessClaims) -> TokenRef:
    return TokenRef(claims.jti, claims.subject, claims.session, claims.issued_ms, claims.client_id)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _verify_pass(
    tokens: Sequence[str], keyed: list[tuple[Key, str] | AuthzError]
) -> list[dict[str, Any] | AuthzError]:
    out: list[dict[str, Any] | AuthzError] = []
    for token, entry in zip(tokens, keyed, strict=True):
        if isinstance(entry, AuthzError):
            out.append(entry)
            continue
        try:
            out.append(jose.verify(token, key=entry[0], alg=entry[1]))
        except jose.BadSignature:
            out.append(TokenInvalid("Token signature is invalid"))
    return out
