"""The admin API key: `X-API-Key: <OMS_AUTH_ADMIN_API_KEY>` proves a policy administrator.

A stop-gap credential for automation until scoped tokens exist, and never a default: with no
key configured this resolver answers nobody, so unless another method (a token) proves an
administrator, admin routes answer 401. Keys are compared as SHA-256
digests in constant time, so neither content nor length leaks through timing.
"""

from __future__ import annotations

import hashlib
import hmac

from loguru import logger
from pydantic import SecretStr
from starlette.requests import HTTPConnection

from app.errors import AuthenticationFailed, Challenge
from app.security.principal import Alongside, Principal

HEADER = "x-api-key"
CHALLENGE = Challenge("ApiKey", (("header", "X-API-Key"),))
ACTOR = "api-key:admin"
PRINCIPAL = Principal(subject=ACTOR, method="api_key", is_admin=True)  # frozen: shared


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).digest()


class AdminApiKeyResolver:
    def __init__(self, key: SecretStr | None) -> None:
        secret = key.get_secret_value() if key is not None else ""
        self._digest = _digest(secret) if secret else None

    async def resolve(
        self, connection: HTTPConnection, *, alongside: Alongside | None = None
    ) -> Principal | None:
        presented = connection.headers.get(HEADER)
        if presented is None or self._digest is None:
            return None
        if not hmac.compare_digest(_digest(presented), self._digest):
            client = connection.client
            logger.warning("auth.api_key.rejected", client_ip=client.host if client else None)
            raise AuthenticationFailed("Invalid API key", challenge=CHALLENGE)
        principal = PRINCIPAL
        if alongside is not None:
            await alongside(principal)
        return principal
