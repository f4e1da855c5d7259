"""OpenAPI texts and the documented error responses of each route."""

from __future__ import annotations

from typing import Any

from app.adapters.http.responses import http_status
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
            http_status(err),
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
                    "details": ERROR_DETAILS.get(err.code, {}),
                    "request_id": "req_4f0c2a9e1b7d3c5a8e6f0a1b",
                }
            },
        }
    return out


# -- examples everywhere ---------------------------------------------------------------
# Real-looking details for each error code's documented example (what the service sends).
ERROR_DETAILS: dict[str, dict[str, Any]] = {
    "REQ_001": {"fields": [{"field": "action", "message": "Field required", "type": "missing"}]},
    "REQ_002": {"field": "checks", "limit": 1000},
    "REQ_003": {"limit_bytes": 2097152},
    "REQ_006": {"source": "policy.csv:17"},
    "AUTH_002": {"expired_at": 1764504000, "token_age_seconds": 912},
    "AUTH_003": {"required": "api:policies:write"},
    "AUTH_005": {"reason": "logout"},
    "RBAC_001": {"role": "developer"},
    "RBAC_003": {
        "file": "policy.csv",
        "line": 44,
        "code": "PL003",
        "reason": "p rules need 4 values, got 3",
    },
    "RATE_001": {"limit": "10/minute", "window": 60, "retry_after": 42},
    "SYS_001": {"dependency": "database"},
}
REQUEST_ID_EXAMPLE = "req_4f0c2a9e1b7d3c5a8e6f0a1b"
# An example shape, not a credential: its signature is the text "sig".
_TOKEN_EXAMPLE_TEXT = "eyJhbGciOiJSUzI1NiIsInR5cCI6ImF0K2p3dCJ9.eyJzdWIiOiJhbGljZSJ9.c2ln"  # noqa: S105
# Example strings by property name, for schemas that give none.
_NAMED_STRINGS = {
    "subject": "alice",
    "user_id": "alice",
    "username": "alice",
    "resource": "api:schemas",
    "action": "write",
    "role": "developer",
    "domain": "tenant-a",
    "request_id": REQUEST_ID_EXAMPLE,
    "decision_id": "dec_9b1f3c2d4e5f6a7b8c9d0e1f",
    "access_token": "eyJhbGciOiJSUzI1NiIsInR5cCI6ImF0K2p3dCJ9.eyJzdWIiOiJhbGljZSJ9.c2ln",
    "refresh_token": "rt_3q2-1vNfVx8dQpZ0",
    "token": "eyJhbGciOiJSUzI1NiIsInR5cCI6ImF0K2p3dCJ9.eyJzdWIiOiJhbGljZSJ9.c2ln",
    "token_type": "Bearer",
    "scope": "api:schemas:read api:schemas:write",
    "client_id": "reports",
    "client_secret": "s3cr3t-shown-once",
    "grant_type": "client_credentials",
    "token_type_hint": "access_token",
    "password": "a long password",
    "status": "ok",
    "issuer": "http://127.0.0.1:8001",
    "kid": "k-2026-11-30",
    "alg": "RS256",
    "kty": "RSA",
    "source": "policy.csv:17",
    "ptype": "p",
    "actor": "admin",
    "reason": "matched",
    "effect": "allow",
    "roles": "developer",
    "scopes": "api:schemas:read",
    "tokens": _TOKEN_EXAMPLE_TEXT,
}
_TOKEN_EXAMPLE = _TOKEN_EXAMPLE_TEXT
_PERMISSION_SET_ITEM = {
    "user_id": "alice",
    "roles": ["developer", "viewer"],
    "permissions": [
        {
            "ptype": "p",
            "rule": ["developer", "api:schemas", "write", "allow"],
            "source": "policy.csv:17",
        }
    ],
    "scopes": ["api:schemas:write", "api:schemas:read"],
    "cached": False,
}
_PERMISSION_SET = {**_PERMISSION_SET_ITEM, "policy_revision": 3}
# Routes whose bodies are not pydantic models (RFC 6749 forms, JWKS, metadata documents).
EXPLICIT_EXAMPLES: dict[tuple[str, str, str], Any] = {
    ("post", "/oauth/token", "body"): {
        "grant_type": "client_credentials",
        "scope": "api:schemas:read",
    },
    ("post", "/oauth/token", "200"): {
        "access_token": _TOKEN_EXAMPLE,
        "token_type": "Bearer",
        "expires_in": 900,
        "scope": "api:schemas:read",
    },
    ("post", "/oauth/revoke", "body"): {"token": _TOKEN_EXAMPLE, "token_type_hint": "access_token"},
    ("post", "/oauth/revoke", "200"): {},
    ("post", "/oauth/introspect", "body"): {"token": _TOKEN_EXAMPLE},
    ("post", "/oauth/introspect", "200"): {
        "active": True,
        "sub": "alice",
        "client_id": "reports",
        "scope": "api:schemas:read",
        "token_type": "Bearer",
        "exp": 1764504900,
        "iat": 1764504000,
        "iss": "http://127.0.0.1:8001",
        "aud": "oms-api",
    },
    ("get", "/.well-known/jwks.json", "200"): {
        "keys": [
            {
                "kty": "RSA",
                "kid": "k-2026-11-30",
                "use": "sig",
                "alg": "RS256",
                "n": "0vx7ago…",
                "e": "AQAB",
            }
        ]
    },
    ("get", "/.well-known/oauth-authorization-server", "200"): {
        "issuer": "http://127.0.0.1:8001",
        "token_endpoint": "http://127.0.0.1:8001/oauth/token",
        "revocation_endpoint": "http://127.0.0.1:8001/oauth/revoke",
        "introspection_endpoint": "http://127.0.0.1:8001/oauth/introspect",
        "jwks_uri": "http://127.0.0.1:8001/.well-known/jwks.json",
        "grant_types_supported": ["password", "client_credentials", "refresh_token"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
    },
    ("get", "/.well-known/authzen-configuration", "200"): {
        "policy_decision_point": "http://127.0.0.1:8001",
        "access_evaluation_endpoint": "http://127.0.0.1:8001/access/v1/evaluation",
        "access_evaluations_endpoint": "http://127.0.0.1:8001/access/v1/evaluations",
    },
    ("get", "/healthz", "200"): {"status": "ok"},
    ("delete", "/api/v1/admin/users/{username}", "200"): {
        "username": "dora",
        "deleted": True,
        "policy_revision": 12,
        "live": True,
    },
    ("get", "/readyz", "200"): {
        "status": "ready",
        "checks": {
            "database": "ok",
            "policy": {"status": "ok", "revision": 3},
            "cache": {"status": "local"},
        },
    },
    ("get", "/api/v1/authz/subjects", "200"): {
        "resource": "api:schemas",
        "action": "write",
        "users": ["alice", "carol"],
        "roles": ["admin", "developer"],
        "policy_revision": 3,
    },
    ("get", "/api/v1/authz/objects", "200"): {
        "subject": "alice",
        "action": "delete",
        "allowed": ["api:branches:*"],
        "denied": ["api:branches:main"],
        "policy_revision": 3,
    },
    ("get", "/api/v1/users/{user_id}/permissions", "200"): _PERMISSION_SET,
    ("post", "/api/v1/users/permissions/batch", "200"): {
        "users": [_PERMISSION_SET_ITEM],
        "policy_revision": 3,
    },
    ("post", "/access/v1/evaluation", "200"): {
        "decision": True,
        "context": {"decision_id": "dec_9b1f3c2d4e5f6a7b8c9d0e1f", "policy_revision": 3},
    },
    ("post", "/access/v1/evaluations", "200"): {
        "evaluations": [
            {
                "decision": True,
                "context": {"decision_id": "dec_9b1f3c2d4e5f6a7b", "policy_revision": 3},
            },
            {
                "decision": False,
                "context": {"decision_id": "dec_0c2e4a6b8d1f3a5c", "policy_revision": 3},
            },
        ]
    },
}


def _resolve(schema: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
        resolved = spec.get("components", {}).get("schemas", {}).get(ref.rsplit("/", 1)[1], {})
        return resolved if isinstance(resolved, dict) else {}
    return schema


def example_from_schema(
    schema: dict[str, Any], spec: dict[str, Any], name: str = "", depth: int = 0
) -> Any:
    """An example value for `schema`: the examples it gives, else one built from its
    properties (their own examples first, then a value by name and type)."""
    if depth > 8:
        return None
    schema = _resolve(schema, spec)
    if "example" in schema:
        return schema["example"]
    examples = schema.get("examples")
    if isinstance(examples, list) and examples:
        return examples[0]
    if isinstance(examples, dict) and examples:
        first = next(iter(examples.values()))
        return first.get("value") if isinstance(first, dict) else first
    if schema.get("default") is not None:
        return schema["default"]
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for union in ("anyOf", "oneOf"):
        options = [o for o in schema.get(union, []) if _resolve(o, spec).get("type") != "null"]
        if options:
            return example_from_schema(options[0], spec, name, depth + 1)
        if union in schema:
            return None
    if schema.get("allOf"):
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            value = example_from_schema(part, spec, name, depth + 1)
            if isinstance(value, dict):
                merged.update(value)
        return merged
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        required = set(schema.get("required", []))
        props = schema.get("properties", {})
        chosen = [p for p, sub in props.items() if p in required or _gives_example(sub, spec)]
        return {
            prop: example_from_schema(props[prop], spec, prop, depth + 1)
            for prop in chosen or list(props)
        }
    if kind == "array":
        return [example_from_schema(schema.get("items", {}), spec, name, depth + 1)]
    if kind == "string":
        if schema.get("format") == "date-time":
            return "2026-11-30T12:00:00Z"
        return _NAMED_STRINGS.get(name, name or "text")
    if kind == "integer":
        return 1
    if kind == "number":
        return 1.0
    if kind == "boolean":
        return True
    return None


def _gives_example(schema: dict[str, Any], spec: dict[str, Any]) -> bool:
    schema = _resolve(schema, spec)
    return (
        "example" in schema
        or bool(schema.get("examples"))
        or schema.get("default") not in (None, [], {})
    )


def _has_example(content: dict[str, Any]) -> bool:
    return "example" in content or bool(content.get("examples"))


def _error_example(status: str, operation: dict[str, Any]) -> None:
    from app.errors import InternalError

    response = operation["responses"].setdefault(
        status,
        {
            "description": f"Unexpected error ({InternalError.code}); never a stack trace",
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}
            },
        },
    )
    content = response.setdefault("content", {}).setdefault("application/json", {})
    if not _has_example(content):
        content["examples"] = {
            InternalError.code: {
                "summary": InternalError.default_message,
                "value": {
                    "error": {
                        "code": InternalError.code,
                        "message": InternalError.default_message,
                        "details": {},
                        "request_id": REQUEST_ID_EXAMPLE,
                    }
                },
            }
        }


def complete_examples(spec: dict[str, Any]) -> dict[str, Any]:
    """Give every request body, success response and error response an example, and every
    operation at least one documented error (any route may answer 500 `SYS_002`)."""
    for path, operations in spec.get("paths", {}).items():
        for method, operation in operations.items():
            body = operation.get("requestBody", {})
            for content in body.get("content", {}).values():
                explicit = EXPLICIT_EXAMPLES.get((method, path, "body"))
                if explicit is not None:
                    content["example"] = explicit
                elif not _has_example(content):
                    content["example"] = example_from_schema(content.get("schema", {}), spec)
            responses = operation.setdefault("responses", {})
            if not any(code[0] in "45" for code in responses):
                _error_example("500", operation)
            for code, response in responses.items():
                for media, content in response.get("content", {}).items():
                    explicit = EXPLICIT_EXAMPLES.get((method, path, code))
                    if explicit is not None:
                        content["example"] = explicit
                        continue
                    if _has_example(content):
                        continue
                    if media.startswith("text/"):
                        content["example"] = "# HELP oms_auth_decisions_total ...\n"
                    elif code[0] in "45":
                        _error_example(code, operation)
                    else:
                        content["example"] = example_from_schema(content.get("schema", {}), spec)
    return spec
