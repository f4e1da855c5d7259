"""How an authentication method finds the caller in a request (HTTP-bound, so not in the
domain's `app.security.principal`)."""

from __future__ import annotations

from typing import Protocol

from starlette.requests import HTTPConnection

from app.security.principal import Alongside, Principal


class PrincipalResolver(Protocol):
    """Returns the caller's principal, None when its credentials are absent, and raises an
    `AuthzError` (AUTH_00x) when credentials are present but wrong. When it returns a
    principal it has awaited `alongside(principal)` (whose errors it raises after its own)."""

    async def resolve(
        self, connection: HTTPConnection, *, alongside: Alongside | None = None
    ) -> Principal | None: ...
