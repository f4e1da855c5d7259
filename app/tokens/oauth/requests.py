"""Authlib's request object, built from an already-read form body.

Authlib's own constructor refuses plain-http URLs unless a process-wide environment variable
is set; our HTTPS policy is `OMS_AUTH_REQUIRE_HTTPS`, enforced by the HTTP adapter, so the
request is built without that check (the attributes are the ones `OAuth2Request.__init__`
sets; a unit test keeps them in step with Authlib).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from authlib.oauth2.rfc6749 import OAuth2Payload, OAuth2Request


class FormPayload(OAuth2Payload):  # type: ignore[misc]
    def __init__(self, form: dict[str, str]) -> None:
        self._form = form

    @property
    def data(self) -> dict[str, str]:
        return self._form

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        out: defaultdict[str, list[str]] = defaultdict(list)
        for key, value in self._form.items():
            out[key].append(value)
        return out


class FormRequest(OAuth2Request):  # type: ignore[misc]
    """One token-endpoint request, with the caller's IP and device fingerprint attached."""

    def __init__(
        self,
        *,
        method: str,
        uri: str,
        headers: Mapping[str, str],
        form: dict[str, str],
        client_ip: str | None,
        fingerprint: str | None,
    ) -> None:
        # Same attributes as OAuth2Request.__init__, minus its transport check.
        self.method = method
        self.uri = uri
        self.headers = headers
        self._body = None
        self.payload = FormPayload(form)
        self.client: Any = None
        self.auth_method: str | None = None
        self.user: Any = None
        self.authorization_code: Any = None
        self.refresh_token: Any = None
        self.credential: Any = None
        self._scope: str | None = None
        # Set by the HTTP adapter: False once the caller went away (see PasswordHasher).
        self.still_wanted: Callable[[], Awaitable[bool]] | None = None
        self._form = form
        self.client_ip = client_ip
        self.fingerprint = fingerprint

    @property
    def form(self) -> dict[str, str]:
        return self._form

    @property
    def args(self) -> dict[str, Any]:
        return {}
