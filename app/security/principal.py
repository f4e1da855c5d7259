"""Who is calling: the identity every authenticated route sees, however it was proven.

Authentication methods (bearer JWTs, the admin API key, ...) each implement
`app.adapters.http.principal.PrincipalResolver`; the API asks them in order and takes the
first answer. Routes depend on `Principal` only, never on how it was established.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

POLICY_ADMIN_SCOPE = "authz:policies:write"


@dataclass(frozen=True)
class Principal:
    subject: str  # user name, or `client:<id>` for OAuth clients
    method: str  # "bearer", "api_key", ...
    roles: tuple[str, ...] = ()
    scopes: frozenset[str] = field(default_factory=frozenset)
    is_admin: bool = False
    client_id: str | None = None
    token_id: str | None = None  # the access token's jti, when a token was used
    scoped: bool = False  # the token carries a `scope` claim (v2, OAuth): it bounds `scopes`

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    @property
    def is_service(self) -> bool:
        """A machine caller: an API key or a client-credentials token (subject `client:...`),
        as opposed to a token issued to a person."""
        return self.method == "api_key" or self.subject.startswith("client:")

    @property
    def may_administer_policies(self) -> bool:
        return self.is_admin or self.has_scope(POLICY_ADMIN_SCOPE)


# Work for once the caller is known (charging its rate limit), run by a resolver alongside
# its own remaining I/O (a token's revocation lookup): one Redis round trip for both.
Alongside = Callable[[Principal], Awaitable[None]]
