"""Dependencies of the token routes: the caller's bearer token, its IP, its device, and
`Issuance`, what a route that issues tokens needs.

All `async def`: FastAPI runs a plain `def` dependency in the thread pool, a hop per request
that costs more than the dependency itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, Request, Response
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.requests import HTTPConnection

from app.adapters.http.bearer import BEARER, verify_bearer
from app.api.deps import FastPorts, TokenServiceDep, ValidatorDep
from app.api.fastlane import FastRoute
from app.errors import AuthenticationFailed, Overloaded
from app.security.passwords import StillWanted
from app.tokens.claims import AccessClaims
from app.tokens.issuer import IssuedTokens
from app.tokens.service import TokenService


async def bearer_claims(request: Request, validator: ValidatorDep) -> AccessClaims:
    claims = await verify_bearer(request, validator)
    if claims is None:
        raise AuthenticationFailed("A bearer access token is required", challenge=BEARER)
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


@dataclass(frozen=True)
class Issuance:
    """A request that is issued tokens: the caller's address and device, and the response,
    which carries them and must never be cached."""

    tokens: TokenService
    response: Response
    ip: str | None
    fingerprint: str | None
    still_wanted: StillWanted

    async def login(
        self, username: str, password: str, *, version: str, requested: Sequence[str] | None
    ) -> dict[str, Any]:
        issued = await self.tokens.login(
            username,
            password,
            version=version,
            requested=requested,
            fingerprint=self.fingerprint,
            ip=self.ip,
            still_wanted=self.still_wanted,
        )
        return self._body(issued)

    async def refresh(self, refresh_token: str) -> dict[str, Any]:
        issued = await self.tokens.refresh(refresh_token, fingerprint=self.fingerprint, ip=self.ip)
        return self._body(issued)

    def _body(self, issued: IssuedTokens) -> dict[str, Any]:
        self.response.headers.update(NO_STORE)
        return issued.body()


async def issuance(
    request: Request,
    tokens: TokenServiceDep,
    response: Response,
    ip: ClientIP,
    fingerprint: DeviceFingerprint,
) -> Issuance:
    return Issuance(tokens, response, ip, fingerprint, still_wanted(request))


IssuanceDep = Annotated[Issuance, Depends(issuance)]


def login_admission(path: str, model: type[BaseModel]) -> FastRoute:
    """The lane in front of a login route: while the hashing pool would refuse any login, a
    valid login request is answered 503 `SYS_003` + `Retry-After` right there. In a storm
    most logins are refused; through the documented route each refusal would cost the
    framework's routing, dependencies and error handling, and a burst of them would delay
    the refusals behind it past what a client accepts as fast. Anything else (an invalid
    body, a login the pool admits) continues to the documented route, which takes its
    place in the queue (`PasswordHasher.reservation`) and decides again."""
    adapter = TypeAdapter(model)

    async def refuse_if_full(ports: FastPorts, body: bytes, _: HTTPConnection) -> bytes | None:
        if not ports.logins.would_refuse():
            return None  # admitted: the route validates the body once
        try:
            adapter.validate_json(body)
        except ValidationError:
            return None  # the documented route answers 422
        ports.logins.shed()
        return None

    return FastRoute(path, "POST", refuse_if_full, renders=(Overloaded,))
