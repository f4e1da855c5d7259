"""Authentication dependencies: routes are authenticated unless they say otherwise."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import orjson
from fastapi import Depends, Request
from starlette.requests import HTTPConnection

from app.adapters.http.bearer import BEARER
from app.adapters.http.callers import Callers
from app.api.deps import CallersDep
from app.decisions.log import set_caller
from app.errors import AuthenticationFailed, PermissionDenied
from app.security.asking import Question, check_asker
from app.security.principal import Principal
from app.tokens.models import client_subject


async def optional_principal(request: Request, callers: CallersDep) -> Principal | None:
    return await callers.resolve(request)


async def require_principal(
    principal: Annotated[Principal | None, Depends(optional_principal)],
) -> Principal:
    if principal is None:
        raise AuthenticationFailed("Authentication required", challenge=BEARER)
    return principal


async def require_policy_admin(
    principal: Annotated[Principal, Depends(require_principal)],
) -> Principal:
    if not principal.may_administer_policies:
        raise PermissionDenied(
            "Policy administration needs an admin or the authz:policies:write scope",
            details={"required_scope": "authz:policies:write"},
        )
    return principal


async def admit_decision_caller(
    callers: Callers, connection: HTTPConnection, subjects: Sequence[str]
) -> Principal | None:
    """Who asks for decisions about `subjects`, and may they: the one place for that rule.

    Open mode (`OMS_AUTH_DECISION_AUTH=open`): nobody in particular. Token mode: an
    authenticated principal (401 otherwise) whose checks (one per subject) are charged to its
    `rate_limit_check`; the charge runs alongside the token's revocation lookup, so both cost
    one Redis round trip at most (none while `OMS_AUTH_CALLER_CACHE_SECONDS` covers them).
    Used by the documented routes and the fast lane alike.
    """
    if callers.open:
        return None
    count = len(subjects)
    # The scope's state dict itself: Starlette's `State` wrapper costs more than this whole
    # function when the attribute is missing (it raises and catches an AttributeError).
    state: dict[str, Any] = connection.scope.setdefault("state", {})
    admitted: tuple[Principal, int] | None = state.get("decision_caller")
    if admitted is not None and admitted[1] >= count:
        set_caller(admitted[0].subject)
        return admitted[0]  # this request was admitted already (a fast-lane fallback)

    async def charge(principal: Principal) -> None:
        await callers.charge(principal, count)

    caller = await require_principal(await callers.resolve(connection, alongside=charge))
    if subjects:  # who may ask about whom: app.security.asking
        check_asker(caller, "decide", subjects=subjects, holds=callers.holder(caller))
    state["decision_caller"] = (caller, count)
    set_caller(caller.subject)
    return caller


async def decision_caller(request: Request, callers: CallersDep) -> Principal | None:
    """Who asks for decisions, for routes that are not checks (nothing charged)."""
    return await admit_decision_caller(callers, request, ())


async def _asker(request: Request, callers: Callers, question: Question) -> Principal | None:
    """Who asks: nobody in particular when the decision API is open; in token mode an
    authenticated principal (401 otherwise) that may ask this question (403 otherwise,
    see `app.security.asking`)."""
    if callers.open:
        return None
    principal = await require_principal(await callers.resolve(request))
    subjects = await asked_subjects(request)
    check_asker(principal, question, subjects=subjects, holds=callers.holder(principal))
    return principal


async def query_caller(request: Request, callers: CallersDep) -> Principal | None:
    return await _asker(request, callers, "query")


async def admit_validation_caller(callers: Callers, connection: HTTPConnection) -> Principal | None:
    """Token validation returns claims: in token mode only to an authenticated client (its
    client-credentials token) or an administrator, as RFC 7662 asks of introspection.
    Used by the documented routes and the fast lane alike."""
    if callers.open:
        return None
    principal = await require_principal(await callers.resolve(connection))
    is_client = principal.client_id is not None and principal.subject == client_subject(
        principal.client_id
    )
    if not (principal.is_admin or is_client):
        raise PermissionDenied(
            "Token validation needs client authentication (a client-credentials token) "
            "or an administrator",
            details={"subject": principal.subject},
        )
    return principal


async def validation_caller(request: Request, callers: CallersDep) -> Principal | None:
    return await admit_validation_caller(callers, request)


_UNREADABLE = "\x00unreadable"  # never anyone's subject: an unreadable question is not "self"


async def asked_subjects(request: Request) -> list[str]:
    """Every subject the request names: path/query `user_id`/`subject`, and in a JSON body
    `subject` (string or `{id}`), `checks[].subject`, `evaluations[].subject`, `user_ids`."""
    out: list[str] = []
    if "user_id" in request.path_params:
        out.append(str(request.path_params["user_id"]))
    out.extend(request.query_params.getlist("subject"))
    if request.method not in ("POST", "PUT", "PATCH"):
        return out
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return [*out, _UNREADABLE]
    if not isinstance(body, dict):
        return [*out, _UNREADABLE]

    def subject_of(item: Any) -> str:
        if isinstance(item, str):
            return item
        if isinstance(item, dict) and isinstance(item.get("id"), str):
            return str(item["id"])
        return _UNREADABLE

    if "subject" in body or not ({"checks", "user_ids", "evaluations"} & body.keys()):
        out.append(subject_of(body.get("subject")))
    for key in ("checks", "evaluations"):
        items = body.get(key)
        if items is None:
            continue
        if not isinstance(items, list):
            return [*out, _UNREADABLE]
        for item in items:
            if not isinstance(item, dict):
                out.append(_UNREADABLE)
            elif "subject" in item or key == "checks":
                out.append(subject_of(item.get("subject")))
    users = body.get("user_ids")
    if users is not None:
        out.extend(
            u if isinstance(u, str) else _UNREADABLE
            for u in (users if isinstance(users, list) else [None])
        )
    return out


DecisionCaller = Annotated[Principal | None, Depends(decision_caller)]
ValidationCaller = Annotated[Principal | None, Depends(validation_caller)]
QueryCaller = Annotated[Principal | None, Depends(query_caller)]
OptionalPrincipal = Annotated[Principal | None, Depends(optional_principal)]
CurrentPrincipal = Annotated[Principal, Depends(require_principal)]
PolicyAdmin = Annotated[Principal, Depends(require_policy_admin)]
