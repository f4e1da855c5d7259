"""Records the token service reads and writes, independent of how they are stored."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

CLIENT_SUBJECT_PREFIX = "client:"


def client_subject(client_id: str) -> str:
    """The policy subject (and token `sub`) of a client acting on its own behalf."""
    return CLIENT_SUBJECT_PREFIX + client_id


def split_subjects(subjects: Iterable[str]) -> tuple[set[str], set[str]]:
    """(usernames, client ids) of a mix of user subjects and `client:<id>` subjects."""
    users: set[str] = set()
    clients: set[str] = set()
    for name in subjects:
        if name.startswith(CLIENT_SUBJECT_PREFIX):
            clients.add(name.removeprefix(CLIENT_SUBJECT_PREFIX))
        else:
            users.add(name)
    return users, clients


@dataclass(frozen=True)
class UserRecord:
    id: str
    username: str
    password_hash: str
    is_admin: bool = False
    disabled: bool = False
    tokens_valid_after: datetime | None = None


@dataclass(frozen=True)
class ClientRecord:
    client_id: str
    secret_hash: str | None
    name: str = ""
    grant_types: frozenset[str] = frozenset()
    scopes: tuple[str, ...] = ()  # what the client may ask for (patterns allowed)
    audience: str | None = None
    token_endpoint_auth_method: str = "client_secret_basic"  # noqa: S105
    disabled: bool = False
    created_at: datetime | None = None


@dataclass(frozen=True)
class RefreshRecord:
    token_hash: str
    family_id: str
    user_id: str | None
    client_id: str
    scope: str  # the scope the client asked for at login ("" = everything the user may)
    token_version: str
    fingerprint_hash: str | None
    issued_at: datetime
    expires_at: datetime
    rotated_at: datetime | None = None
    revoked_at: datetime | None = None
    replaced_by: str | None = None  # hash of the token it was rotated into
    successor_sealed: bytes | None = None  # that token, sealed (see refresh_tokens.seal)


@dataclass(frozen=True)
class StoredKey:
    kid: str
    alg: str
    private_pem: str  # PKCS#8 PEM, encrypted when an encryption key is configured
    public_jwk: dict[str, Any]
    status: str  # active | previous | retired
    created_at: datetime
    retired_at: datetime | None = None


@dataclass
class RevocationState:
    """What makes a token dead, keyed the way a token names itself.

    - `jtis`: revoked access-token ids -> epoch seconds until which it matters (the token's exp)
    - `sessions`: revoked refresh families (`sid` claim) -> epoch seconds until which it matters
    - `valid_after`: subject -> epoch milliseconds; its tokens issued earlier are dead.
      A user's key is its username; `client:<id>` covers every token naming that client
      (its own, whose subject is the same key, and those of users who logged in through it)
    """

    jtis: dict[str, float] = field(default_factory=dict)
    sessions: dict[str, float] = field(default_factory=dict)
    valid_after: dict[str, int] = field(default_factory=dict)

    def merge(self, other: RevocationState) -> None:
        self.jtis.update(other.jtis)
        self.sessions.update(other.sessions)
        for subject, ms in other.valid_after.items():
            self.valid_after[subject] = max(ms, self.valid_after.get(subject, 0))

    def __bool__(self) -> bool:
        return bool(self.jtis or self.sessions or self.valid_after)


@dataclass(frozen=True)
class TokenRef:
    """The parts of a verified access token that revocation looks at."""

    jti: str
    subject: str
    session: str | None
    issued_ms: int
    client_id: str = ""
