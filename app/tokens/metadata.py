"""RFC 8414 authorization server metadata (`/.well-known/oauth-authorization-server`)."""

from __future__ import annotations

from typing import Any

from app.tokens.oauth.clients import AUTH_METHODS
from app.tokens.oauth.server import GRANT_TYPES


def server_metadata(issuer: str, *, signing_alg: str) -> dict[str, Any]:
    return {
        "issuer": issuer,
        "token_endpoint": f"{issuer}/oauth/token",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "revocation_endpoint": f"{issuer}/oauth/revoke",
        "introspection_endpoint": f"{issuer}/oauth/introspect",
        "grant_types_supported": list(GRANT_TYPES),
        # No authorization endpoint, so no redirect-based response type is offered. RFC 8414
        # requires the member; "none" (OAuth 2.0 Multiple Response Types) says exactly that.
        "response_types_supported": ["none"],
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
        "introspection_endpoint_auth_methods_supported": AUTH_METHODS,
        "access_token_signing_alg_values_supported": [signing_alg],
        "service_documentation": f"{issuer}/docs",
    }
