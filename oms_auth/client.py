"""`AuthClient` (async) and `SyncAuthClient`: the oms-auth HTTP API as Python calls.

Both share one description of every call (`_Call`: method, path, body, how to read the
answer), so the two clients cannot drift apart. Pass `transport=httpx.ASGITransport(app)` to
talk to an app in-process (tests), or any httpx transport.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx

from oms_auth.errors import ApiError, TransportError, error_for
from oms_auth.models import CheckResult, Entity

__all__ = ["AuthClient", "SyncAuthClient"]

T = TypeVar("T")
EntityLike = str | Entity | Mapping[str, Any]
ActionLike = str | Mapping[str, Any]
DEFAULT_TIMEOUT = 5.0


@dataclass(frozen=True)
class _Call(Generic[T]):
    method: str
    path: str
    parse: Callable[[Any], T]
    json: Any = None
    params: Mapping[str, str] | None = None
    headers: Mapping[str, str] | None = None


def _entity(value: EntityLike) -> Any:
    if isinstance(value, Entity):
        return value.to_json()
    return dict(value) if isinstance(value, Mapping) else value


def _check_body(
    subject: EntityLike,
    resource: EntityLike,
    action: ActionLike,
    *,
    domain: str | None = None,
    explain: bool | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "subject": _entity(subject),
        "resource": _entity(resource),
        "action": dict(action) if isinstance(action, Mapping) else action,
    }
    if domain is not None:
        body["domain"] = domain
    if explain is not None:
        body["explain"] = explain
    return body


def _batch_results(data: Any) -> list[CheckResult]:
    revision = data.get("policy_revision")
    return [CheckResult.from_json(item, revision=revision) for item in data["results"]]


class _Calls:
    """Every API call the SDK knows, as data."""

    @staticmethod
    def check(
        subject: EntityLike,
        resource: EntityLike,
        action: ActionLike,
        *,
        domain: str | None = None,
        explain: bool = False,
    ) -> _Call[CheckResult]:
        body = _check_body(subject, resource, action, domain=domain, explain=explain or None)
        return _Call("POST", "/api/v1/authz/check", CheckResult.from_json, json=body)

    @staticmethod
    def check_batch(
        checks: Sequence[Mapping[str, Any]], *, explain: bool = False
    ) -> _Call[list[CheckResult]]:
        items = [
            _check_body(
                c["subject"],
                c["resource"],
                c["action"],
                domain=c.get("domain"),
                explain=c.get("explain"),
            )
            for c in checks
        ]
        body = {"checks": items, "explain": explain}
        return _Call("POST", "/api/v1/authz/check/batch", _batch_results, json=body)

    @staticmethod
    def evaluate(
        *,
        subject: Mapping[str, Any],
        action: Mapping[str, Any],
        resource: Mapping[str, Any],
        context: Mapping[str, Any] | None = None,
    ) -> _Call[dict[str, Any]]:
        body: dict[str, Any] = {"subject": subject, "action": action, "resource": resource}
        if context is not None:
            body["context"] = context
        return _Call("POST", "/access/v1/evaluation", dict, json=body)

    @staticmethod
    def user_permissions(user_id: str, *, domain: str | None = None) -> _Call[dict[str, Any]]:
        params = {"domain": domain} if domain else None
        path = f"/api/v1/users/{quote(user_id, safe='')}/permissions"
        return _Call("GET", path, dict, params=params)

    @staticmethod
    def users_permissions(user_ids: Sequence[str]) -> _Call[list[dict[str, Any]]]:
        return _Call(
            "POST",
            "/api/v1/users/permissions/batch",
            lambda d: list(d["users"]),
            json={"user_ids": list(user_ids)},
        )


def _raise_for_envelope(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        payload = response.json()
    except ValueError:
        payload = None
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):
        details = error.get("details") or {}
        retry = response.headers.get("retry-after")
        if retry is not None and "retry_after" not in details:
            details = {**details, "retry_after": float(retry)}
        raise error_for(
            code=str(error.get("code", "UNKNOWN")),
            message=str(error.get("message", response.reason_phrase)),
            status=response.status_code,
            details=details,
            request_id=error.get("request_id") or response.headers.get("x-request-id"),
        )
    if isinstance(error, str):  # RFC 6749 error JSON from /oauth/*
        raise ApiError(
            str(payload.get("error_description") or error),
            code=error,
            status=response.status_code,
            request_id=response.headers.get("x-request-id"),
        )
    raise ApiError(response.reason_phrase, status=response.status_code)


def _build_headers(token: str | None, extra: Mapping[str, str] | None) -> dict[str, str]:
    headers = {"user-agent": "oms-auth-sdk/0.1"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    headers.update(extra or {})
    return headers


class AuthClient:
    """Async client. Use as `async with AuthClient(base_url=...) as client:`."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8001",
        *,
        token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url,
            timeout=timeout,
            headers=_build_headers(token, headers),
            transport=transport,
        )

    async def __aenter__(self) -> AuthClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(self, call: _Call[T]) -> T:
        try:
            response = await self._http.request(
                call.method, call.path, json=call.json, params=call.params, headers=call.headers
            )
        except httpx.HTTPError as exc:
            raise TransportError(f"{call.method} {call.path}: {exc}") from exc
        _raise_for_envelope(response)
        return call.parse(response.json())

    async def check(
        self,
        subject: EntityLike,
        resource: EntityLike,
        action: ActionLike,
        *,
        domain: str | None = None,
        explain: bool = False,
    ) -> CheckResult:
        """May `subject` do `action` on `resource`? Truthy when allowed."""
        return await self._send(
            _Calls.check(subject, resource, action, domain=domain, explain=explain)
        )

    async def check_batch(
        self, checks: Sequence[Mapping[str, Any]], *, explain: bool = False
    ) -> list[CheckResult]:
        """Up to 1000 checks (`{"subject", "resource", "action", "domain"?}`), in order."""
        return await self._send(_Calls.check_batch(checks, explain=explain))

    async def evaluate(
        self,
        *,
        subject: Mapping[str, Any],
        action: Mapping[str, Any],
        resource: Mapping[str, Any],
        context: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """AuthZEN Access Evaluation; returns `{"decision": bool, ...}`."""
        return await self._send(
            _Calls.evaluate(subject=subject, action=action, resource=resource, context=context)
        )

    async def user_permissions(self, user_id: str, *, domain: str | None = None) -> dict[str, Any]:
        return await self._send(_Calls.user_permissions(user_id, domain=domain))

    async def users_permissions(self, user_ids: Sequence[str]) -> list[dict[str, Any]]:
        return await self._send(_Calls.users_permissions(user_ids))


class SyncAuthClient:
    """The same calls, blocking. Use as `with SyncAuthClient(base_url=...) as client:`."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8001",
        *,
        token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url,
            timeout=timeout,
            headers=_build_headers(token, headers),
            transport=transport,
        )

    def __enter__(self) -> SyncAuthClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, call: _Call[T]) -> T:
        try:
            response = self._http.request(
                call.method, call.path, json=call.json, params=call.params, headers=call.headers
            )
        except httpx.HTTPError as exc:
            raise TransportError(f"{call.method} {call.path}: {exc}") from exc
        _raise_for_envelope(response)
        return call.parse(response.json())

    def check(
        self,
        subject: EntityLike,
        resource: EntityLike,
        action: ActionLike,
        *,
        domain: str | None = None,
        explain: bool = False,
    ) -> CheckResult:
        return self._send(_Calls.check(subject, resource, action, domain=domain, explain=explain))

    def check_batch(
        self, checks: Sequence[Mapping[str, Any]], *, explain: bool = False
    ) -> list[CheckResult]:
        return self._send(_Calls.check_batch(checks, explain=explain))

    def evaluate(
        self,
        *,
        subject: Mapping[str, Any],
        action: Mapping[str, Any],
        resource: Mapping[str, Any],
        context: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        return self._send(
            _Calls.evaluate(subject=subject, action=action, resource=resource, context=context)
        )

    def user_permissions(self, user_id: str, *, domain: str | None = None) -> dict[str, Any]:
        return self._send(_Calls.user_permissions(user_id, domain=domain))

    def users_permissions(self, user_ids: Sequence[str]) -> list[dict[str, Any]]:
        return self._send(_Calls.users_permissions(user_ids))
