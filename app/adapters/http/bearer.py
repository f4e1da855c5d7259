"""Bearer access tokens (RFC 6750) as a way to authenticate to our own API."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from starlette.requests import HTTPConnection

from app.errors import AuthenticationFailed, Challenge, TokenInvalid
from app.security.fingerprint import FINGERPRINT_HEADER
from app.security.principal import Alongside, Principal
from app.tokens.claims import AccessClaims
from app.tokens.validator import TokenValidator

BEARER = Challenge("Bearer", (("realm", "oms-auth"),))


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The token of an `Authorization: Bearer ...` header; None for any other scheme."""
    header = headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = token.strip()
    if not token:
        raise TokenInvalid("Bearer token is empty", challenge=challenge("invalid_request"))
    return token


def challenge(error: str) -> Challenge:
    """The bearer challenge with an RFC 6750 error code."""
    return BEARER.with_param("error", error)


async def verify_bearer(
    connection: HTTPConnection,
    validator: TokenValidator,
    *,
    alongside: Callable[[AccessClaims], Awaitable[None]] | None = None,
) -> AccessClaims | None:
    """The request's access token claims (cached on the request), None when none was sent.
    `alongside(claims)` runs concurrently with the revocation lookup (see `TokenValidator`)."""
    state = connection.scope.setdefault("state", {})  # not `connection.state`: see principals
    cached = state.get("access_claims")
    if isinstance(cached, AccessClaims):
        if alongside is not None:
            await alongside(cached)
        return cached
    token = bearer_token(connection.headers)
    if token is None:
        return None
    try:
        claims = await validator.validate(
            token, fingerprint=connection.headers.get(FINGERPRINT_HEADER), alongside=alongside
        )
    except AuthenticationFailed as exc:
        exc.challenge = challenge("invalid_token")
        raise
    state["access_claims"] = claims
    return claims


def principal_from_claims(claims: AccessClaims) -> Principal:
    return Principal(
        subject=claims.subject,
        method="bearer",
        roles=claims.roles,
        scopes=frozenset(claims.scope or ()),
        is_admin=claims.is_admin,
        client_id=claims.client_id,
        token_id=claims.jti,
        scoped=claims.scope is not None,
    )


class BearerTokenResolver:
    """`PrincipalResolver` for our access tokens: admin = `is_admin` or the
    `authz:policies:write` scope (see `Principal.may_administer_policies`)."""

    def __init__(self, validator: TokenValidator) -> None:
        self.validator = validator

    async def resolve(
        self, connection: HTTPConnection, *, alongside: Alongside | None = None
    ) -> Principal | None:
        if alongside is None:
            claims = await verify_bearer(connection, self.validator)
            return principal_from_claims(claims) if claims is not None else None
        found: list[Principal] = []

        async def with_principal(claims: AccessClaims) -> None:
            found.append(principal_from_claims(claims))
            await alongside(found[0])

        claims = await verify_bearer(connection, self.validator, alongside=with_principal)
        if claims is None:
            return None
        return found[0] if found else principal_from_claims(claims)
