"""Our `AuthorizationServer`: Authlib's protocol engine over `TokenService`.

`handle_response` returns the `(status, body, headers)` triple unchanged;
`app.adapters.http.oauth` turns it into a Starlette response, so nothing here depends on a
web framework. Authlib's own RFC 6749 errors carry the status the RFCs give them (400
`invalid_grant`, 401 `invalid_client`...); ours (`DomainOAuthError`) get theirs from
`http_form`, the HTTP edge's one table of statuses and headers per error kind.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from authlib.oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc6749.errors import InvalidRequestError

from app.errors import AuthzError
from app.tokens.accounts import Accounts
from app.tokens.grant_types import GRANT_TYPES
from app.tokens.issuer import TokenIssuer
from app.tokens.oauth.bridge import Bridge
from app.tokens.oauth.clients import OAuthClient
from app.tokens.oauth.endpoints import Introspection, Revocation
from app.tokens.oauth.errors import DomainOAuthError
from app.tokens.oauth.grants import ClientCredentialsGrant, PasswordGrant, RefreshTokenGrant
from app.tokens.ports import ClientStore
from app.tokens.service import TokenService

__all__ = ["GRANT_TYPES", "OAuthServer"]
OAuthResponse = tuple[int, Any, list[tuple[str, str]]]
HttpForm = Callable[[AuthzError], tuple[int, dict[str, str]]]
"""An error's HTTP status and headers (given by the HTTP edge)."""


class OAuthServer(AuthorizationServer):  # type: ignore[misc]
    def __init__(
        self, *, tokens: TokenService, clients: ClientStore, bridge: Bridge, http_form: HttpForm
    ) -> None:
        super().__init__(scopes_supported=None)
        self.tokens = tokens
        self.http_form = http_form
        self.clients = clients
        self.bridge = bridge
        for grant in (PasswordGrant, ClientCredentialsGrant, RefreshTokenGrant):
            self.register_grant(grant)
        self.register_endpoint(Revocation)
        self.register_endpoint(Introspection)

    @property
    def accounts(self) -> Accounts:
        return self.tokens.accounts

    @property
    def issuer(self) -> TokenIssuer:
        return self.tokens.issuer

    def query_client(self, client_id: str) -> OAuthClient | None:
        record = self.bridge.run(self.clients.get(client_id))
        if record is None:
            return None
        # A disabled client is refused after its secret is checked (`check_client_secret`),
        # with its own message.
        return OAuthClient(record)

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        """Tokens are stored by `TokenIssuer` when they are made."""

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """No framework signals: our services log their own audit events."""

    def create_oauth2_request(self, request: OAuth2Request) -> OAuth2Request:
        return request

    def handle_response(
        self, status: int, body: Any, headers: list[tuple[str, str]]
    ) -> OAuthResponse:
        return status, body, headers

    def handle_error_response(self, request: OAuth2Request, error: Any) -> OAuthResponse:
        if not isinstance(error, DomainOAuthError):
            response: OAuthResponse = super().handle_error_response(request, error)
            return response
        status, headers = self.http_form(error.source)
        _, body, own = error(self.get_error_uri(request, error))
        return self.handle_response(status, body, [*own, *headers.items()])

    def token_response(self, request: OAuth2Request) -> OAuthResponse:
        if not request.form.get("grant_type"):
            # RFC 6749 §5.2: a missing parameter is `invalid_request`; Authlib would answer
            # `unsupported_grant_type`.
            error = InvalidRequestError("The grant_type parameter is required")
            failed: OAuthResponse = self.handle_error_response(request, error)
            return failed
        response: OAuthResponse = self.create_token_response(request)
        return response

    def endpoint_response(self, name: str, request: OAuth2Request) -> OAuthResponse:
        response: OAuthResponse = self.create_endpoint_response(name, request)
        return response
