"""OpenAPI texts and the documented error responses of each route."""

from __future__ import annotations

from typing import Any

from app.api.schemas.common import ErrorEnvelope
from app.errors import AuthzError

API_DESCRIPTION = """
Policy-engine based authorization: decisions (one, batch, AuthZEN 1.0), permission queries,
scope-carrying OAuth2 tokens and policy administration.

Every error on `/api/*` uses one envelope:
`{"error": {"code": "REQ_001", "message": "...", "details": {...}, "request_id": "req_..."}}`.
Every response carries `X-Request-ID` (the caller's, or a generated `req_...`).
"""

OPENAPI_TAGS = [
    {"name": "decisions", "description": "Can subject X do action Y on resource Z?"},
    {"name": "permissions", "description": "What a subject may do, and who may do what"},
    {"name": "authzen", "description": "OpenID AuthZEN Authorization API 1.0"},
    {
        "name": "policy administration",
        "description": "Rules, role members, reloads and the audit trail (admin only)",
    },
    {
        "name": "entity store",
        "description": "Entities {type, id, properties, parents} the engine reads attributes "
        "and role links from (a policy information point)",
    },
    {
        "name": "user administration",
        "description": "Create, update, disable, unlock and delete users (audited)",
    },
    {"name": "operations", "description": "Health, readiness and metrics"},
    {"name": "auth", "description": "Log in, refresh, log out; v2 tokens carry scopes"},
    {"name": "tokens", "description": "Access-token validation for resource servers"},
    {"name": "oauth", "description": "OAuth 2.0 token, revocation, introspection, JWKS, metadata"},
]


def document_validation_errors(spec: dict[str, Any]) -> dict[str, Any]:
    """Replace FastAPI's default 422 (`HTTPValidationError`, a shape this service never
    sends) with the envelope it does send: REQ_001, or 400 on the AuthZEN routes."""
    example = {
        "error": {
            "code": "REQ_001",
            "message": "Request validation failed",
            "details": {
                "fields": [{"field": "action", "message": "Field required", "type": "missing"}]
            },
            "request_id": "req_4f0c2a9e1b7d3c5a8e6f0a1b",
        }
    }
    envelope_ref = {"$ref": "#/components/schemas/ErrorEnvelope"}
    for path, operations in spec.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.get("responses", {})
            if "422" not in responses:
                continue
            documented = responses.pop("422")
            code = "400" if path.startswith("/access/") else "422"
            content = documented.get("content", {}).get("application/json", {})
            if "HTTPValidationError" in str(content.get("schema", "")) or code == "400":
                content = {"schema": envelope_ref, "examples": {"REQ_001": {"value": example}}}
            responses[code] = {
                "description": "Request validation failed (REQ_001); `details.fields` names them",
                "content": {"application/json": content},
            }
    schemas = spec.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    schemas.setdefault(
        "ErrorEnvelope",
        ErrorEnvelope.model_json_schema(ref_template="#/components/schemas/{model}"),
    )
    return spec


def error_responses(*errors: type[AuthzError]) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: each error's status with an example envelope."""
    out: dict[int | str, dict[str, Any]] = {}
    for err in errors:
        entry = out.setdefault(
            err.status,
            {
                "model": ErrorEnvelope,
                "description": "",
                "content": {"application/json": {"examples": {}}},
            },
        )
        entry["description"] = ", ".join(filter(None, [entry["description"], err.code]))
        entry["content"]["application/json"]["examples"][err.code] = {
            "summary": err.default_message,
            "value": {
                "error": {
                    "code": err.code,
                    "message": err.default_message,
                    "details": {},
                    "request_id": "req_4f0c2a9e1b7d3c5a8e6f0a1b",
                }
            },
        }
    return out
