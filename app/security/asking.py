"""Who may ask the decision service what (`OMS_AUTH_DECISION_AUTH=token`).

The rule, in one place (compare Keycloak, where only a client with the UMA/authorization
scope may evaluate permissions for others, and OpenFGA, where `Check` needs an API
credential of the store and users never call it directly):

- an administrator (an `is_admin` user, the admin API key) may ask anything;
- a caller holding `authz:query` may ask anything, reverse queries and permission listings
  included (`authz:query` implies `authz:check`);
- a caller holding `authz:check` (a decision client: typically a resource server's
  client-credentials token) may ask for decisions about any subject;
- anyone else (an end user's token) may only ask about itself: every subject of the
  question must be the caller's own `sub`. Reverse queries over everybody
  (`/authz/subjects`) are therefore closed to it.

"Holding" a scope is a policy question like any other (`p, decision-client, authz, check,
allow`): a token with a `scope` claim holds what the claim covers, a token without one (v1)
holds what the policy grants its subject now.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Literal

from app.errors import PermissionDenied
from app.security.principal import Principal

DECISION_SCOPE = "authz:check"
QUERY_SCOPE = "authz:query"

Question = Literal["decide", "query"]


def check_asker(
    principal: Principal,
    question: Question,
    *,
    subjects: Collection[str],
    holds: Callable[[str], bool],
) -> None:
    """Return when `principal` may ask `question` about `subjects`; raise RBAC_002 else.

    `subjects` are the subjects the question names; empty means "about everybody" (or a
    question whose subjects could not be read), which only scoped callers may ask."""
    if principal.is_admin or holds(QUERY_SCOPE):
        return
    if question == "decide" and holds(DECISION_SCOPE):
        return
    if subjects and all(s == principal.subject for s in subjects):
        return
    needed = DECISION_SCOPE if question == "decide" else QUERY_SCOPE
    raise PermissionDenied(
        f"This caller may only ask about itself; asking about others needs the {needed} scope",
        details={"required_scope": needed, "subject": principal.subject},
    )
