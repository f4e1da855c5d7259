"""FastAPI dependencies for resource servers protected by oms-auth.

    verifier = TokenVerifier(issuer="https://auth.example.com", audience="oms-api")
    service = AuthClient(
        base_url="https://auth.example.com", client_id="orders-api", client_secret=SECRET
    )  # or api_key=...: the resource server's own credentials for its calls
    authz = Authorizer(verifier, client=service)

    @app.put("/schemas/{id}")
    async def update(token: Annotated[AccessToken, Depends(authz.require("api:schemas", "write"))]):
        ...

Every request's token is verified locally (JWKS). With a client, the Authorizer also asks
the service whether the token is still valid (`POST /api/v1/tokens/validate`: revocation by
logout, refresh reuse, role changes, disabled users or clients) and remembers the answer
for `revocation_ttl` seconds per token (default 5): a token revoked at time t is refused
by every Authorizer from t + `revocation_ttl` on at the latest. The service being
unreachable then fails closed (503). Without a client, only local verification is done and
a revocation shows only when the token expires.

A v2 token whose scope names `resource:action` is enough for `require`; otherwise, with a
client, the service decides (v1 tokens, pattern scopes, resource-level rules); without
one, the request is refused.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from fastapi import HTTPException, Request

from oms_auth.client import AuthClient
from oms_auth.errors import ApiError, OmsAuthError, TransportError
from oms_auth.verify import AccessToken, TokenVerifier

__all__ = ["Authorizer"]

Dependency = Callable[[Request], Awaitable[AccessToken]]
DEFAULT_REVOCATION_TTL = 5.0


def _error(status: int, code: str, message: str) -> HTTPException:
    headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'} if status == 401 else None
    return HTTPException(status, detail={"code": code, "message": message}, headers=headers)


class Authorizer:
    """`client`: the resource server's own `AuthClient` (with `client_id` + `client_secret`
    or `api_key` where the service runs in token mode). `revocation_ttl`: seconds a token's
    "still valid" answer is reused (None: never ask, local verification only)."""

    def __init__(
        self,
        verifier: TokenVerifier,
        *,
        client: AuthClient | None = None,
        revocation_ttl: float | None = DEFAULT_REVOCATION_TTL,
        cache_size: int = 10_000,
    ) -> None:
        self.verifier = verifier
        self.client = client
        self.revocation_ttl = revocation_ttl
        self._cache_size = cache_size
        # jti -> (monotonic time the answer stops being reused, error or None when valid)
        self._checked: OrderedDict[str, tuple[float, tuple[str, str] | None]] = OrderedDict()

    async def token(self, request: Request) -> AccessToken:
        """Dependency: the verified bearer token (401 when missing, not valid or revoked)."""
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise _error(401, "AUTH_004", "a bearer token is required")
        raw = value.strip()
        fingerprint = request.headers.get("x-device-fingerprint")
        try:
            token = await self.verifier.verify(raw, fingerprint=fingerprint)
        except TransportError as exc:
            raise _error(503, "SYS_001", f"cannot verify tokens now: {exc}") from None
        except ApiError as exc:
            raise _error(401, exc.code, exc.message) from None
        await self._still_valid(raw, token, fingerprint)
        return token

    async def _still_valid(self, raw: str, token: AccessToken, fingerprint: str | None) -> None:
        if self.client is None or self.revocation_ttl is None:
            return
        jti = str(token.claims.get("jti"))
        now = time.monotonic()
        cached = self._checked.get(jti)
        if cached is None or cached[0] <= now:
            try:
                verdict = await self.client.validate_token(
                    raw, audience=self.verifier.audience, device_fingerprint=fingerprint
                )
            except OmsAuthError as exc:
                raise _error(
                    503, "SYS_001", f"cannot check the token with oms-auth: {exc}"
                ) from None
            error = None
            if not verdict.valid:
                details = verdict.error or {}
                error = (str(details.get("code", "AUTH_005")), str(details.get("message", "")))
            cached = (now + self.revocation_ttl, error)
            self._checked[jti] = cached
            self._checked.move_to_end(jti)
            while len(self._checked) > self._cache_size:
                self._checked.popitem(last=False)
        if cached[1] is not None:
            code, message = cached[1]
            raise _error(401, code, message or "token is no longer valid")

    def require(self, resource: str, action: str) -> Dependency:
        """Dependency: the token, when its subject may perform `action` on `resource`."""

        async def dependency(request: Request) -> AccessToken:
            token = await self.token(request)
            if token.allows(resource, action):
                return token
            if self.client is not None:
                try:
                    decision = await self.client.check(token.subject, resource, action)
                except OmsAuthError as exc:
                    raise _error(503, "SYS_001", f"cannot reach oms-auth: {exc}") from None
                if decision.allowed:
                    return token
            raise _error(403, "AUTH_003", f"not allowed to {action} {resource}")

        return dependency
