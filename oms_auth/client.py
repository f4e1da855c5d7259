"""`AuthClient` (async) and `SyncAuthClient`: the oms-auth HTTP API as Python calls.

Both share one description of every call (`_Call`: method, path, body, how to read the
answer) and one sans-IO session (`_Session`: credentials, the cached service token, the one
retry with a fresh token), so the two clients cannot drift apart: each only sends requests.
Pass `transport=httpx.ASGITransport(app)` to talk to an app in-process (tests), or any httpx
transport.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx

from oms_auth.errors import ApiError, InvalidCredentials, TransportError, error_for
from oms_auth.models import CheckResult, Entity, TokenSet, TokenValidation

__all__ = ["AuthClient", "SyncAuthClient"]

T = TypeVar("T")
EntityLike = str | Entity | Mapping[str, Any]
FINGERPRINT_HEADER = "X-Device-Fingerprint"
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
    context: Mapping[str, Any] | None = None,
    definition: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "subject": _entity(subject),
        "resource": _entity(resource),
        "action": dict(action) if isinstance(action, Mapping) else action,
    }
    if domain is not None:
        body["domain"] = domain
    if context is not None:
        body["context"] = dict(context)
    if definition is not None:
        body["definition"] = definition
    if explain is not None:
        body["explain"] = explain
    return body


def _batch_results(data: Any) -> list[CheckResult]:
    revision = data.get("policy_revision")
    return [CheckResult.from_json(item, revision=revision) for item in data["results"]]


def _bearer(token: str, fingerprint: str | None = None) -> dict[str, str]:
    headers = {"authorization": f"Bearer {token}"}
    if fingerprint:
        headers[FINGERPRINT_HEADER] = fingerprint
    return headers


def _device(fingerprint: str | None) -> dict[str, str] | None:
    return {FINGERPRINT_HEADER: fingerprint} if fingerprint else None


def _validations(data: Any) -> list[TokenValidation]:
    return [TokenValidation.from_json(item) for item in data["results"]]


class _Calls:
    """Every API call the SDK knows, as data."""

    @staticmethod
    def login(
        username: str,
        password: str,
        *,
        version: int = 2,
        scope: str | None = None,
        device_fingerprint: str | None = None,
    ) -> _Call[TokenSet]:
        if version not in (1, 2):
            raise ValueError("version is 1 (classic token) or 2 (scope-carrying token)")
        body: dict[str, Any] = {"username": username, "password": password}
        if scope is not None:
            if version == 1:
                raise ValueError("v1 tokens carry no scope")
            body["scope"] = scope
        return _Call(
            "POST",
            f"/api/v{version}/auth/login",
            TokenSet.from_json,
            json=body,
            headers=_device(device_fingerprint),
        )

    @staticmethod
    def refresh(refresh_token: str, *, device_fingerprint: str | None = None) -> _Call[TokenSet]:
        return _Call(
            "POST",
            "/api/v1/auth/refresh",
            TokenSet.from_json,
            json={"refresh_token": refresh_token},
            headers=_device(device_fingerprint),
        )

    @staticmethod
    def logout(access_token: str, *, refresh_token: str | None = None) -> _Call[None]:
        body = {"refresh_token": refresh_token} if refresh_token else {}
        return _Call(
            "POST", "/api/v1/auth/logout", lambda _: None, json=body, headers=_bearer(access_token)
        )

    @staticmethod
    def me(access_token: str, *, device_fingerprint: str | None = None) -> _Call[dict[str, Any]]:
        headers = _bearer(access_token, device_fingerprint)
        return _Call("GET", "/api/v1/auth/me", dict, headers=headers)

    @staticmethod
    def validate_token(
        token: str, *, audience: str | None = None, device_fingerprint: str | None = None
    ) -> _Call[TokenValidation]:
        body: dict[str, Any] = {"token": token}
        if audience is not None:
            body["audience"] = audience
        if device_fingerprint is not None:
            body["device_fingerprint"] = device_fingerprint
        return _Call("POST", "/api/v1/tokens/validate", TokenValidation.from_json, json=body)

    @staticmethod
    def validate_tokens(
        tokens: Sequence[str], *, audience: str | None = None
    ) -> _Call[list[TokenValidation]]:
        body: dict[str, Any] = {"tokens": list(tokens)}
        if audience is not None:
            body["audience"] = audience
        return _Call("POST", "/api/v1/tokens/validate/batch", _validations, json=body)

    @staticmethod
    def check_with_token(
        access_token: str, resource: str, action: str, *, domain: str | None = None
    ) -> _Call[dict[str, Any]]:
        body: dict[str, Any] = {"resource": resource, "action": action}
        if domain is not None:
            body["domain"] = domain
        return _Call("POST", "/api/v2/authz/check", dict, json=body, headers=_bearer(access_token))

    @staticmethod
    def check(
        subject: EntityLike,
        resource: EntityLike,
        action: ActionLike,
        *,
        domain: str | None = None,
        explain: bool = False,
        context: Mapping[str, Any] | None = None,
        definition: str | None = None,
    ) -> _Call[CheckResult]:
        body = _check_body(
            subject,
            resource,
            action,
            domain=domain,
            explain=explain or None,
            context=context,
            definition=definition,
        )
        return _Call("POST", "/api/v1/authz/check", CheckResult.from_json, json=body)

    @staticmethod
    def check_values(
        values: Sequence[Any], *, definition: str | None = None, explain: bool = False
    ) -> _Call[CheckResult]:
        body: dict[str, Any] = {"values": list(values)}
        if definition is not None:
            body["definition"] = definition
        if explain:
            body["explain"] = True
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


API_KEY_HEADER = "X-API-Key"
TOKEN_PATH = "/oauth/token"  # noqa: S105 (a path, not a secret)
# A cached service token is renewed this long before it expires (or at 90 % of its life).
REFRESH_MARGIN = 30.0
# Codes that mean "this bearer token is no good": drop the cached one, fetch anew, retry once.
_STALE_TOKEN_CODES = ("AUTH_002", "AUTH_004", "AUTH_005")


def _build_headers(
    token: str | None, extra: Mapping[str, str] | None, api_key: str | None = None
) -> dict[str, str]:
    headers = {"user-agent": "oms-auth-sdk/0.1"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    if api_key:
        headers[API_KEY_HEADER] = api_key
    headers.update(extra or {})
    return headers


def _check_credentials(
    token: str | None, client_id: str | None, client_secret: str | None, api_key: str | None
) -> None:
    if (client_id is None) != (client_secret is None):
        given, missing = ("client_id", "client_secret")[:: 1 if client_id else -1]
        raise ValueError(f"{given} was given without {missing}: service callers need both")
    chosen = [
        name
        for name, value in (("token", token), ("client_id", client_id), ("api_key", api_key))
        if value is not None
    ]
    if len(chosen) > 1:
        raise ValueError(
            "give one way to authenticate (token, client_id + client_secret, or api_key); "
            f"got {' and '.join(chosen)}"
        )


@dataclass
class _ServiceToken:
    """A client-credentials access token and when to renew it (shared by both clients)."""

    client_id: str
    client_secret: str
    scope: str | None
    access_token: str | None = None
    renew_at: float = 0.0

    def fresh(self) -> str | None:
        if self.access_token is not None and time.monotonic() < self.renew_at:
            return self.access_token
        return None

    def forget(self, token: str) -> None:
        if self.access_token == token:
            self.access_token = None

    def request_data(self) -> dict[str, str]:
        data = {"grant_type": "client_credentials"}
        if self.scope:
            data["scope"] = self.scope
        return data

    def accept(self, response: httpx.Response, base_url: str) -> str:
        if not response.is_success:
            try:
                body = response.json()
            except ValueError:
                body = {}
            reason = body.get("error_description") or body.get("error") or response.reason_phrase
            raise InvalidCredentials(
                f"{base_url}{TOKEN_PATH} refused the client credentials of "
                f"{self.client_id!r}: {reason}",
                status=response.status_code,
                details={"client_id": self.client_id, "error": body.get("error")},
            )
        tokens = TokenSet.from_json(response.json())
        lifetime = float(tokens.expires_in or 60)
        self.access_token = tokens.access_token
        self.renew_at = time.monotonic() + max(1.0, min(lifetime - REFRESH_MARGIN, lifetime * 0.9))
        return tokens.access_token


def _stale_token(response: httpx.Response) -> bool:
    if response.status_code != 401:
        return False
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return False
    return isinstance(error, dict) and error.get("code") in _STALE_TOKEN_CODES


def _with_auth(call_headers: Mapping[str, str] | None, token: str | None) -> dict[str, str]:
    """The call's own headers win: a call made with a user's token keeps it."""
    headers: dict[str, str] = {}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    for name, value in (call_headers or {}).items():
        if name.lower() == "authorization":
            headers.pop("authorization", None)
        headers[name] = value
    return headers


@dataclass(frozen=True)
class _Request:
    """One HTTP request to send, as the arguments of `httpx.(Async)Client.request`."""

    method: str
    url: str
    kwargs: dict[str, Any]

    def describe(self) -> str:
        return f"{self.method} {self.url}"


class _Session:
    """Everything both clients do around HTTP, without any I/O (sans-IO): which credentials
    were given, the cached service token, what each request carries, when an answer calls for
    one retry with a fresh token, and how an answer becomes a result or an error. Each client
    only sends the requests it is handed, with its own transport and lock."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None,
        client_id: str | None,
        client_secret: str | None,
        scope: str | None,
        api_key: str | None,
        headers: Mapping[str, str] | None,
    ) -> None:
        _check_credentials(token, client_id, client_secret, api_key)
        self.base_url = base_url.rstrip("/")
        self.service = (
            _ServiceToken(client_id, client_secret, scope)
            if client_id is not None and client_secret is not None
            else None
        )
        self.headers = _build_headers(token, headers, api_key)

    def cached_token(self) -> tuple[str | None, bool]:
        """(the service token to send, whether one must be fetched first)."""
        if self.service is None:
            return None, False
        token = self.service.fresh()
        return token, token is None

    def token_request(self) -> _Request:
        service = self.service
        assert service is not None
        return _Request(
            "POST",
            TOKEN_PATH,
            {"data": service.request_data(), "auth": (service.client_id, service.client_secret)},
        )

    def accept_token(self, response: httpx.Response) -> str:
        assert self.service is not None
        return self.service.accept(response, self.base_url)

    @staticmethod
    def request(call: _Call[Any], token: str | None) -> _Request:
        return _Request(
            call.method,
            call.path,
            {
                "json": call.json,
                "params": call.params,
                "headers": _with_auth(call.headers, token),
            },
        )

    def retry_with_new_token(self, response: httpx.Response, token: str | None) -> bool:
        """True when the service refused the cached token (revoked or expired early): it is
        forgotten, and the call is worth one more try with a fresh one."""
        if token is None or self.service is None or not _stale_token(response):
            return False
        self.service.forget(token)
        return True

    @staticmethod
    def result(call: _Call[T], response: httpx.Response) -> T:
        _raise_for_envelope(response)
        return call.parse(response.json() if response.content else None)


class AuthClient:
    """Async client. Use as `async with AuthClient(base_url=...) as client:`.

    A service that calls oms-auth on its own behalf authenticates with `client_id` +
    `client_secret` (an OAuth client: its client-credentials token is fetched on first use,
    cached, and renewed before it expires or when the service rejects it) or with `api_key`
    (sent as `X-API-Key`). `token` sends a fixed bearer token.
    """

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8001",
        *,
        token: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        scope: str | None = None,
        api_key: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._core = _Session(
            base_url,
            token=token,
            client_id=client_id,
            client_secret=client_secret,
            scope=scope,
            api_key=api_key,
            headers=headers,
        )
        self.base_url = self._core.base_url
        self._token_lock = asyncio.Lock()
        self._http = httpx.AsyncClient(
            base_url=base_url, timeout=timeout, headers=self._core.headers, transport=transport
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

    async def service_token(self) -> str | None:
        """The cached client-credentials token (fetched or renewed when due); None without
        client credentials."""
        token, due = self._core.cached_token()
        if not due:
            return token
        async with self._token_lock:
            token, due = self._core.cached_token()
            if not due:
                return token
            return self._core.accept_token(await self._exchange(self._core.token_request()))

    async def _exchange(self, request: _Request) -> httpx.Response:
        try:
            return await self._http.request(request.method, request.url, **request.kwargs)
        except httpx.HTTPError as exc:
            raise TransportError(f"{request.describe()}: {exc}") from exc

    async def _send(self, call: _Call[T]) -> T:
        token = await self.service_token()
        response = await self._exchange(self._core.request(call, token))
        if self._core.retry_with_new_token(response, token):
            token = await self.service_token()
            response = await self._exchange(self._core.request(call, token))
        return self._core.result(call, response)

    async def check(
        self,
        subject: EntityLike,
        resource: EntityLike,
        action: ActionLike,
        *,
        domain: str | None = None,
        explain: bool = False,
        context: Mapping[str, Any] | None = None,
        definition: str | None = None,
    ) -> CheckResult:
        """May `subject` do `action` on `resource`? Truthy when allowed. `context` fills the
        model's other request tokens by name; `definition` ("r2") selects r2/p2/m2."""
        return await self._send(
            _Calls.check(
                subject,
                resource,
                action,
                domain=domain,
                explain=explain,
                context=context,
                definition=definition,
            )
        )

    async def check_values(
        self, values: Sequence[Any], *, definition: str | None = None, explain: bool = False
    ) -> CheckResult:
        """A check given as Casbin's `enforce(*values)` takes it (`r = sub, act`: 2 values)."""
        return await self._send(_Calls.check_values(values, definition=definition, explain=explain))

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

    async def login(
        self,
        username: str,
        password: str,
        *,
        version: int = 2,
        scope: str | None = None,
        device_fingerprint: str | None = None,
    ) -> TokenSet:
        """Log in with a password: `version=2` (default) scope-carrying token, 1 classic."""
        return await self._send(
            _Calls.login(
                username,
                password,
                version=version,
                scope=scope,
                device_fingerprint=device_fingerprint,
            )
        )

    async def refresh(
        self, refresh_token: str, *, device_fingerprint: str | None = None
    ) -> TokenSet:
        """A new token pair; the presented refresh token is used up (rotation)."""
        return await self._send(
            _Calls.refresh(refresh_token, device_fingerprint=device_fingerprint)
        )

    async def logout(self, access_token: str, *, refresh_token: str | None = None) -> None:
        """Revoke the access token and its session (refresh tokens included)."""
        return await self._send(_Calls.logout(access_token, refresh_token=refresh_token))

    async def me(
        self, access_token: str, *, device_fingerprint: str | None = None
    ) -> dict[str, Any]:
        """Who the token belongs to, with the roles the policy gives them now."""
        return await self._send(_Calls.me(access_token, device_fingerprint=device_fingerprint))

    async def validate_token(
        self, token: str, *, audience: str | None = None, device_fingerprint: str | None = None
    ) -> TokenValidation:
        """Ask the service (signature, claims, revocation); falsy with `.error` when not valid."""
        return await self._send(
            _Calls.validate_token(token, audience=audience, device_fingerprint=device_fingerprint)
        )

    async def validate_tokens(
        self, tokens: Sequence[str], *, audience: str | None = None
    ) -> list[TokenValidation]:
        """Up to 1000 tokens in one call, results in order."""
        return await self._send(_Calls.validate_tokens(tokens, audience=audience))

    async def check_with_token(
        self, access_token: str, resource: str, action: str, *, domain: str | None = None
    ) -> dict[str, Any]:
        """v2 check for the token's subject: from its scope when it can, else the engine."""
        return await self._send(
            _Calls.check_with_token(access_token, resource, action, domain=domain)
        )


class SyncAuthClient:
    """The same calls, blocking. Use as `with SyncAuthClient(base_url=...) as client:`.
    Takes the same credentials as `AuthClient`."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8001",
        *,
        token: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        scope: str | None = None,
        api_key: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._core = _Session(
            base_url,
            token=token,
            client_id=client_id,
            client_secret=client_secret,
            scope=scope,
            api_key=api_key,
            headers=headers,
        )
        self.base_url = self._core.base_url
        self._token_lock = threading.Lock()
        self._http = httpx.Client(
            base_url=base_url, timeout=timeout, headers=self._core.headers, transport=transport
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

    def service_token(self) -> str | None:
        """The cached client-credentials token (fetched or renewed when due)."""
        token, due = self._core.cached_token()
        if not due:
            return token
        with self._token_lock:
            token, due = self._core.cached_token()
            if not due:
                return token
            return self._core.accept_token(self._exchange(self._core.token_request()))

    def _exchange(self, request: _Request) -> httpx.Response:
        try:
            return self._http.request(request.method, request.url, **request.kwargs)
        except httpx.HTTPError as exc:
            raise TransportError(f"{request.describe()}: {exc}") from exc

    def _send(self, call: _Call[T]) -> T:
        token = self.service_token()
        response = self._exchange(self._core.request(call, token))
        if self._core.retry_with_new_token(response, token):
            token = self.service_token()
            response = self._exchange(self._core.request(call, token))
        return self._core.result(call, response)

    def check(
        self,
        subject: EntityLike,
        resource: EntityLike,
        action: ActionLike,
        *,
        domain: str | None = None,
        explain: bool = False,
        context: Mapping[str, Any] | None = None,
        definition: str | None = None,
    ) -> CheckResult:
        return self._send(
            _Calls.check(
                subject,
                resource,
                action,
                domain=domain,
                explain=explain,
                context=context,
                definition=definition,
            )
        )

    def check_values(
        self, values: Sequence[Any], *, definition: str | None = None, explain: bool = False
    ) -> CheckResult:
        return self._send(_Calls.check_values(values, definition=definition, explain=explain))

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

    def login(
        self,
        username: str,
        password: str,
        *,
        version: int = 2,
        scope: str | None = None,
        device_fingerprint: str | None = None,
    ) -> TokenSet:
        """Log in with a password: `version=2` (default) scope-carrying token, 1 classic."""
        return self._send(
            _Calls.login(
                username,
                password,
                version=version,
                scope=scope,
                device_fingerprint=device_fingerprint,
            )
        )

    def refresh(self, refresh_token: str, *, device_fingerprint: str | None = None) -> TokenSet:
        """A new token pair; the presented refresh token is used up (rotation)."""
        return self._send(_Calls.refresh(refresh_token, device_fingerprint=device_fingerprint))

    def logout(self, access_token: str, *, refresh_token: str | None = None) -> None:
        """Revoke the access token and its session (refresh tokens included)."""
        return self._send(_Calls.logout(access_token, refresh_token=refresh_token))

    def me(self, access_token: str, *, device_fingerprint: str | None = None) -> dict[str, Any]:
        """Who the token belongs to, with the roles the policy gives them now."""
        return self._send(_Calls.me(access_token, device_fingerprint=device_fingerprint))

    def validate_token(
        self, token: str, *, audience: str | None = None, device_fingerprint: str | None = None
    ) -> TokenValidation:
        """Ask the service (signature, claims, revocation); falsy with `.error` when not valid."""
        return self._send(
            _Calls.validate_token(token, audience=audience, device_fingerprint=device_fingerprint)
        )

    def validate_tokens(
        self, tokens: Sequence[str], *, audience: str | None = None
    ) -> list[TokenValidation]:
        """Up to 1000 tokens in one call, results in order."""
        return self._send(_Calls.validate_tokens(tokens, audience=audience))

    def check_with_token(
        self, access_token: str, resource: str, action: str, *, domain: str | None = None
    ) -> dict[str, Any]:
        """v2 check for the token's subject: from its scope when it can, else the engine."""
        return self._send(_Calls.check_with_token(access_token, resource, action, domain=domain))
