"""v2 checks: answer from the bearer token's `scope` when it settles the question.

- the exact `resource:action` is in the scope: allowed, no engine call;
- a pattern scope covers it: the engine decides (a deny rule may carve an exception out of
  the pattern, so a pattern never grants locally);
- nothing in the scope covers it: denied, no engine call; the token was not granted it (the
  user lacks it, or the login or client narrowed the scope), and falling back to the engine
  would let a narrowed token exceed its grant;
- a token without `scope` (v1), or a question with a domain: the engine decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from app.tokens.scopes import covers, is_scope_token

Path = Literal["token_scope", "engine"]


@dataclass(frozen=True)
class ScopeVerdict:
    path: Path
    allowed: bool | None  # None: the engine must decide
    reason: str
    matched_scope: str | None = None


def from_scope(
    scope: tuple[str, ...] | None, *, resource: str, action: str, domain: str | None = None
) -> ScopeVerdict:
    if scope is None:
        return ScopeVerdict("engine", None, "token carries no scope (v1)")
    if domain is not None:
        return ScopeVerdict("engine", None, "scopes do not name domains")
    wanted = f"{resource}:{action}"
    if is_scope_token(wanted) and wanted in scope:
        return ScopeVerdict("token_scope", True, "exact scope in token", wanted)
    pattern = next((s for s in scope if covers(s, wanted)), None)
    if pattern is not None:
        return ScopeVerdict("engine", None, "only a pattern scope covers the request", pattern)
    return ScopeVerdict("token_scope", False, "outside the token's scope")
