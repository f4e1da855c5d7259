"""Cache key names (docs/architecture.md, "Cache keys"): `{service}:{version}:{kind}:...`.

Raw tokens never appear in a key, a log line or Redis. Tokens are not cached in Redis at all:
verifying a signature (~80 µs) costs less than a round trip (~250 µs); the validator keeps
verified signatures in process instead. A decision key holds the policy revision, so entries
of an older policy are never read once a newer one is live.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


def decision_digest(policy_digest: str, request_fingerprint: str) -> str:
    """The `sha256(...)` of a decision key: the request (sub|obj|act|dom and properties, see
    `DecisionRequest.fingerprint`) under one policy content. The revision in the key orders
    policies; the content digest keeps instances that label different content with the
    same revision (files differing during a rolling deploy) from sharing answers."""
    return hashlib.sha256(f"{policy_digest}\x1d{request_fingerprint}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class CacheKeys:
    prefix: str  # "{service}:{version}", e.g. "oms-auth:v1"

    def decision(self, revision: int, fingerprint: str) -> str:
        """`fingerprint` is `decision_digest(...)` of the request under the policy."""
        return f"{self.prefix}:decision:{revision}:{fingerprint}"

    def user_permissions(self, user_id: str) -> str:
        """A hash: one field per domain ("" = none), each value carrying its revision."""
        return f"{self.prefix}:user:permissions:{user_id}"

    @property
    def policy_rev(self) -> str:
        """The latest policy revision announced (mirror of the database's `policy_state`)."""
        return f"{self.prefix}:policy:rev"

    @property
    def policy_channel(self) -> str:
        """Pub/sub channel carrying each new policy revision."""
        return f"{self.prefix}:policy:changes"

    @property
    def active_subjects(self) -> str:
        """Sorted set: subjects by number of checks (drives cache warming)."""
        return f"{self.prefix}:stats:active_subjects"
