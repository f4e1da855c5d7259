"""Our client records as Authlib `ClientMixin`s, and tokens as Authlib token objects."""

from __future__ import annotations

from dataclasses import dataclass

from authlib.oauth2.rfc6749 import ClientMixin
from authlib.oauth2.rfc6749.errors import InvalidClientError

from app.security.client_secrets import client_secret_matches
from app.tokens.claims import AccessClaims
from app.tokens.issuer import ClientContext
from app.tokens.models import ClientRecord, RefreshRecord

AUTH_METHODS = ["client_secret_basic", "client_secret_post"]


class OAuthClient(ClientMixin):  # type: ignore[misc]
    def __init__(self, record: ClientRecord) -> None:
        self.record = record

    @property
    def context(self) -> ClientContext:
        r = self.record
        return ClientContext(r.client_id, allowed_scopes=r.scopes, audience=r.audience)

    def get_client_id(self) -> str:
        return self.record.client_id

    def get_default_redirect_uri(self) -> None:
        return None

    def get_allowed_scope(self, scope: str) -> str:
        return scope

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        matches = client_secret_matches(self.record.secret_hash, client_secret)
        if matches and self.record.disabled:
            # Said only to a caller that proved it holds the secret (no enumeration).
            raise InvalidClientError(
                status_code=401,
                description=f"client {self.record.client_id!r} is disabled "
                "(`oms-auth clients disable`); its credentials are no longer accepted",
            )
        return matches

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in AUTH_METHODS and self.record.secret_hash is not None

    def check_response_type(self, response_type: str) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.record.grant_types


@dataclass(frozen=True)
class AccessTokenHandle:
    """A verified access token, for the revocation and introspection endpoints."""

    claims: AccessClaims

    def check_client(self, client: OAuthClient) -> bool:
        return bool(self.claims.client_id == client.get_client_id())

    def is_expired(self) -> bool:
        return False  # checked when it was verified

    def is_revoked(self) -> bool:
        return False  # checked when it was verified


@dataclass(frozen=True)
class RefreshTokenHandle:
    record: RefreshRecord
    username: str | None
    live: bool

    def check_client(self, client: OAuthClient) -> bool:
        return bool(self.record.client_id == client.get_client_id())

    def is_expired(self) -> bool:
        return not self.live

    def is_revoked(self) -> bool:
        return not self.live
