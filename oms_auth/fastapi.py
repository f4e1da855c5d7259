"""FastAPI dependencies for resource servers protected by oms-auth.

    verifier = TokenVerifier(issuer="https://auth.example.com", audience="oms-api")
    authz = Authorizer(verifier, client=AuthClient(base_url="https://auth.example.com"))

    @app.put("/schemas/{id}")
    async def update(token: Annotated[AccessToken, Depends(authz.require("api:schemas", "write"))]):
        ...

The token is verified locally (JWKS). A v2 token whose scope names `resource:action` is
enough; otherwise, when a client is given, the service decides (v1 tokens, pattern scopes,
resource-level rules); without one, the request is refused.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import HTTPException, Request

from oms_auth.client import AuthClient
from oms_auth.errors import ApiError, OmsAuthError, TransportError
from oms_auth.verify import AccessToken, TokenVerifier

__all__ = ["Authorizer"]

Dependency = Callable[[Request], Awaitable[AccessToken]]


def _error(status: int, code: str, message: str) -> HTTPException:
    headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'} if status == 401 else None
    return HTTPException(status, detail={"code": code, "message": message}, headers=headers)


class Authorizer:
    def __init__(self, verifier: TokenVerifier, *, client: AuthClient | None = None) -> None:
        self.verifier = verifier
        self.client = client

    async def token(self, request: Request) -> AccessToken:
        """Dependency: the verified bearer token (401 when missing or not valid)."""
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise _error(401, "AUTH_004", "a bearer token is required")
        try:
            return await self.verifier.verify(
                value.strip(), fingerprint=request.headers.get("x-device-fingerprint")
            )
        except TransportError as exc:
            raise _error(503, "SYS_001", f"cannot verify tokens now: {exc}") from None
        except ApiError as exc:
            raise _error(401, exc.code, exc.message) from None

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
