"""Scopes as `resource:action` strings: what a subject may be granted, and what covers what.

A scope's action is the part after its last colon (`api:branches:*:delete` is resource
`api:branches:*`, action `delete`). Resources may be patterns as written in the policy
(`api:branches:*`, `/api/:id`); a pattern scope says "some of this is allowed", never "all of
it": deny rules can carve exceptions out of a pattern, so only an exact scope may decide a
check locally (see `app.tokens.checks`).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable, Sequence

from casbin import util as casbin_util

from app.errors import AuthzError
from app.policy.request import DecisionRequest
from app.policy.snapshot import PolicySnapshot
from app.security.principal import Principal

# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")
MAX_REQUESTED_SCOPES = 200


def is_scope_token(value: str) -> bool:
    return bool(_SCOPE_TOKEN.match(value))


def parse_scope(text: str | None) -> tuple[str, ...] | None:
    """A space-separated scope parameter as a de-duplicated tuple; None when absent/blank.

    Raises ValueError for characters RFC 6749 does not allow or too many entries.
    """
    if text is None:
        return None
    items = tuple(dict.fromkeys(text.split()))
    if not items:
        return None
    if len(items) > MAX_REQUESTED_SCOPES:
        raise ValueError(f"at most {MAX_REQUESTED_SCOPES} scopes may be requested")
    bad = [s for s in items if not is_scope_token(s)]
    if bad:
        raise ValueError(f"invalid scope token {bad[0]!r}")
    return items


def split_scope(scope: str) -> tuple[str, str] | None:
    resource, sep, action = scope.rpartition(":")
    if not sep or not resource or not action:
        return None
    return resource, action


def is_pattern(resource: str) -> bool:
    return "*" in resource or (resource.startswith("/") and "/:" in resource)


def holds_scope(principal: Principal, scope: str, snapshot: PolicySnapshot) -> bool:
    """Whether `principal` holds the `resource:action` scope: from its token's scope when
    the token carries one, else (bearer tokens without one) from the policy `snapshot`."""
    if principal.scoped:
        return any(covers(granted, scope) for granted in principal.scopes)
    if principal.method != "bearer":
        return False
    resource, _, action = scope.rpartition(":")
    try:
        return snapshot.decide(DecisionRequest.of(principal.subject, resource, action)).allowed
    except AuthzError:
        return False


def covers(granted: str, wanted: str) -> bool:
    """Does holding `granted` include `wanted`? Exact, or `granted` is a pattern over
    `wanted`'s resource (Casbin keyMatch `api:branches:*`; keyMatch2 for URL paths such as
    `/api/:id`) with the same action or `*`."""
    if granted == wanted or granted == "*":
        return True
    g, w = split_scope(granted), split_scope(wanted)
    if g is None or w is None:
        return False
    (g_res, g_act), (w_res, w_act) = g, w
    if g_act not in ("*", w_act):
        return False
    if not is_pattern(g_res):
        return False
    if g_res.startswith("/"):  # URL paths: keyMatch2 (`/api/:id`, `/api/*`)
        return bool(casbin_util.key_match2(w_res, g_res))
    # Colon-separated names: keyMatch (a trailing `*` is a prefix); keyMatch2 would read
    # every `:name` segment as a parameter.
    return bool(casbin_util.key_match(w_res, g_res))


class ScopeResolver:
    """Computes the scope a token gets, cached per (policy revision, subject)."""

    def __init__(self, *, cache_size: int = 10_000) -> None:
        self._cache: OrderedDict[tuple[int, str], tuple[str, ...]] = OrderedDict()
        self._cache_size = cache_size

    def allowed(self, snapshot: PolicySnapshot, subject: str) -> tuple[str, ...]:
        """Everything `subject` may do, as scope tokens (patterns as written)."""
        if not snapshot.model.is_rbac:
            return ()
        key = (snapshot.revision, subject)
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        value = tuple(s for s in snapshot.allowed_scopes(subject) if is_scope_token(s))
        self._cache[key] = value
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return value

    def grant(
        self,
        snapshot: PolicySnapshot,
        subject: str,
        *,
        requested: Sequence[str] | None,
        client_allows: Sequence[str] | None,
    ) -> tuple[str, ...]:
        """The user's (or client's) permissions, intersected with what was requested and
        what the client may hold. A requested or client-listed scope that is not written in
        the policy is still granted when the engine allows it for `subject`."""
        base = self.allowed(snapshot, subject)
        if requested is not None:
            candidates: Iterable[str] = requested
        else:
            candidates = dict.fromkeys([*base, *(client_allows or ())])
        base_set = set(base)
        out: list[str] = []
        for scope in candidates:
            if client_allows is not None and not any(covers(c, scope) for c in client_allows):
                continue
            if scope in base_set or self._engine_allows(snapshot, subject, scope):
                out.append(scope)
        return tuple(out)

    @staticmethod
    def _engine_allows(snapshot: PolicySnapshot, subject: str, scope: str) -> bool:
        parts = split_scope(scope)
        if parts is None or not snapshot.model.is_rbac or snapshot.model.has_domain:
            return False
        try:
            return snapshot.decide(DecisionRequest.of(subject, parts[0], parts[1])).allowed
        except Exception:
            return False
