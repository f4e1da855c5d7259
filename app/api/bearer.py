"""Dependencies of the token routes: the caller's bearer token, its IP, its device.

All `async def`: FastAPI runs a plain `def` dependency in the thread pool, a hop per request
that costs more than the dependency itself.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from app.api.deps import ValidatorDep
from app.errors import AuthenticationFailed
from app.security.bearer import CHALLENGE, verify_bearer
from app.security.passwords import StillWanted
from app.tokens.claims import AccessClaims


async def bearer_claims(request: Request, validator: ValidatorDep) -> AccessClaims:
    claims = await verify_bearer(request, validator)
    if claims is None:
        raise AuthenticationFailed(
            "A bearer access token is required", headers={"WWW-Authenticate": CHALLENGE}
        )
    return claims


async def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


async def device_fingerprint(
    x_device_fingerprint: Annotated[
        str | None,
        Header(
            max_length=512,
            description="Binds the token to this device: later uses must send the same value",
        ),
    ] = None,
) -> str | None:
    return x_device_fingerprint


BearerClaims = Annotated[AccessClaims, Depends(bearer_claims)]
ClientIP = Annotated[str | None, Depends(client_ip)]
DeviceFingerprint = Annotated[str | None, Depends(device_fingerprint)]
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def still_wanted(request: Request) -> StillWanted:
    """False once the client went away: costly work (password hashing) is then not started."""

    async def check() -> bool:
        return not await request.is_disconnected()

    return check


CallerWaiting = Annotated[StillWanted, Depends(still_wanted)]
