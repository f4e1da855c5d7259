"""The three grants of `POST /oauth/token`: password, client_credentials, refresh_token.

Authlib does the protocol (client authentication, grant-type checks, error shapes); issuing is
delegated to `TokenIssuer`, so OAuth tokens and `/api/*/auth/login` tokens are the same
thing. Resource-owner credentials that fail give `invalid_grant` (RFC 6749 §5.2), not the
`invalid_request` Authlib uses by default.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from authlib.oauth2.rfc6749 import (
    InvalidRequestError,
    InvalidScopeError,
    UnauthorizedClientError,
    grants,
)

from app.errors import AuthzError
from app.tokens.models import UserRecord
from app.tokens.oauth.clients import AUTH_METHODS, OAuthClient
from app.tokens.oauth.errors import safe_description, to_oauth_error
from app.tokens.oauth.requests import FormRequest
from app.tokens.scopes import parse_scope

if TYPE_CHECKING:
    from app.tokens.oauth.server import OAuthServer

Response = tuple[int, dict[str, Any], list[tuple[str, str]]]


class _OurGrant:
    """What every grant shares: our request type, scope parsing, error translation."""

    request: FormRequest
    server: OAuthServer

    def requested_scope(self) -> tuple[str, ...] | None:
        try:
            return parse_scope(self.request.form.get("scope"))
        except ValueError as exc:
            raise InvalidScopeError(description=safe_description(str(exc))) from None

    def call(self, coro: Any) -> Any:
        try:
            return self.server.bridge.run(coro)
        except AuthzError as exc:
            raise to_oauth_error(exc) from None


class PasswordGrant(_OurGrant, grants.ResourceOwnerPasswordCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

    def authenticate_user(self, username: str, password: str) -> UserRecord:
        accounts = self.server.accounts
        user: UserRecord = self.call(
            accounts.authenticate(
                username,
                password,
                ip=self.request.client_ip,
                fingerprint=self.request.fingerprint,
                still_wanted=self.request.still_wanted,
            )
        )
        return user

    def validate_requested_scope(self) -> None:
        self.requested_scope()

    def create_token_response(self) -> Response:
        client: OAuthClient = self.request.client
        issued = self.call(
            self.server.issuer.for_user(
                self.request.user,
                client=client.context,
                version="v2",
                requested=self.requested_scope(),
                fingerprint=self.request.fingerprint,
                ip=self.request.client_ip,
                grant="password",
            )
        )
        return 200, issued.body(), self.TOKEN_RESPONSE_HEADER


class ClientCredentialsGrant(_OurGrant, grants.ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

    def validate_requested_scope(self) -> None:
        self.requested_scope()

    def create_token_response(self) -> Response:
        client: OAuthClient = self.request.client
        issued = self.call(
            self.server.issuer.for_client(
                client.context, requested=self.requested_scope(), ip=self.request.client_ip
            )
        )
        return 200, issued.body(), self.TOKEN_RESPONSE_HEADER


class RefreshTokenGrant(_OurGrant, grants.RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def validate_token_request(self) -> None:
        client = self.authenticate_token_endpoint_client()
        if not client.check_grant_type(self.GRANT_TYPE):
            raise UnauthorizedClientError(
                description=f"The client is not authorized to use grant_type={self.GRANT_TYPE}"
            )
        self.request.client = client
        if not self.request.form.get("refresh_token"):
            raise InvalidRequestError(description="Missing 'refresh_token' in request.")
        self.requested_scope()

    def create_token_response(self) -> Response:
        client: OAuthClient = self.request.client
        issued = self.call(
            self.server.tokens.rotation.refresh(
                self.request.form["refresh_token"],
                client=client.context,
                requested=self.requested_scope(),
                fingerprint=self.request.fingerprint,
                ip=self.request.client_ip,
            )
        )
        return 200, issued.body(), self.TOKEN_RESPONSE_HEADER
