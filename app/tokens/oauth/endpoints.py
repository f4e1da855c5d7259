"""RFC 7009 revocation and RFC 7662 introspection, for access and refresh tokens.

Both require client authentication. Revocation answers 200 for any token it does not know
(or that is already dead), as RFC 7009 §2.2 asks; revoking a refresh token revokes its whole
session, including the access tokens issued from it. Introspection reports a token `active`
only when it would pass validation (signature, expiry, revocation, per-user cut-off); device
binding is checked when the caller passes `device_fingerprint`, and reported as `fpt`.
"""

from __future__ import annotations

from typing import Any, Protocol

from authlib.oauth2.rfc6749.errors import InvalidRequestError
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint

from app.errors import AuthzError
from app.tokens.oauth.bridge import Bridge
from app.tokens.oauth.clients import (
    AUTH_METHODS,
    AccessTokenHandle,
    OAuthClient,
    RefreshTokenHandle,
)
from app.tokens.oauth.errors import to_oauth_error
from app.tokens.oauth.requests import FormRequest
from app.tokens.refresh_tokens import REFRESH_TOKEN_PREFIX
from app.tokens.service import TokenService


class EndpointServer(Protocol):
    """What the endpoints use of the OAuth server (`OAuthServer`, which registers them)."""

    bridge: Bridge
    tokens: TokenService


TokenHandle = AccessTokenHandle | RefreshTokenHandle


def _find(
    server: EndpointServer, token: str, hint: str | None, *, fingerprint: str | None, strict: bool
) -> TokenHandle | None:
    # The hint is only a hint (RFC 7009 §2.1, RFC 7662 §2.1): a wrong or unknown one must not
    # change the answer, and our two kinds of token tell themselves apart by shape anyway.
    if token.startswith(REFRESH_TOKEN_PREFIX):
        return server.bridge.run(server.tokens.find_refresh(token))
    try:
        claims = server.bridge.run(
            server.tokens.inspect_access(token, fingerprint=fingerprint, strict=strict)
        )
    except AuthzError:
        return None
    return AccessTokenHandle(claims)


def _check_params(request: FormRequest) -> None:
    """`token` is required; an unknown `token_type_hint` is ignored, not refused (RFC 7009
    §2.1: "the authorization server ... MAY ignore", RFC 7662 §2.1 likewise)."""
    if "token" not in request.form:
        raise InvalidRequestError("The token parameter is required")


class Revocation(RevocationEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = AUTH_METHODS
    server: EndpointServer

    def check_params(self, request: FormRequest, client: OAuthClient) -> None:
        _check_params(request)

    def query_token(self, token_string: str, token_type_hint: str | None) -> TokenHandle | None:
        return _find(self.server, token_string, token_type_hint, fingerprint=None, strict=False)

    def revoke_token(self, token: TokenHandle, request: FormRequest) -> None:
        client: OAuthClient = request.client
        try:
            self.server.bridge.run(
                self.server.tokens.revoke(token, by_client=client.get_client_id())
            )
        except AuthzError as exc:
            raise to_oauth_error(exc) from None


class Introspection(IntrospectionEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = AUTH_METHODS
    server: EndpointServer

    def check_params(self, request: FormRequest, client: OAuthClient) -> None:
        _check_params(request)

    def authenticate_token(self, request: FormRequest, client: OAuthClient) -> Any:
        self.check_params(request, client)
        return _find(
            self.server,
            request.form["token"],
            request.form.get("token_type_hint"),
            fingerprint=request.form.get("device_fingerprint"),
            strict=True,
        )

    def query_token(self, token_string: str, token_type_hint: str | None) -> TokenHandle | None:
        return _find(self.server, token_string, token_type_hint, fingerprint=None, strict=True)

    def check_permission(self, token: TokenHandle, client: OAuthClient, request: Any) -> bool:
        return True  # any authenticated client may introspect (resource servers do)

    def introspect_token(self, token: TokenHandle) -> dict[str, Any]:
        issuer = self.server.tokens.issuer_url
        if isinstance(token, AccessTokenHandle):
            raw = token.claims.raw
            out: dict[str, Any] = {
                k: raw[k]
                for k in ("scope", "client_id", "exp", "iat", "nbf", "sub", "aud", "iss", "jti")
                if k in raw
            }
            out.update(
                active=True,
                token_type="Bearer",  # noqa: S106
                username=None if token.claims.is_client_token else token.claims.subject,
                roles=list(token.claims.roles),
                is_admin=token.claims.is_admin,
            )
            if token.claims.fingerprint_hash is not None:
                out["fpt"] = token.claims.fingerprint_hash
            return {k: v for k, v in out.items() if v is not None}
        record = token.record
        refresh: dict[str, Any] = {
            "active": True,
            "token_type": "refresh_token",
            "client_id": record.client_id,
            "username": token.username,
            "sub": token.username,
            "iss": issuer,
            "iat": int(record.issued_at.timestamp()),
            "exp": int(record.expires_at.timestamp()),
            "scope": record.scope or None,
        }
        return {k: v for k, v in refresh.items() if v is not None}
