"""The durable revocation record: `revoked_tokens` plus the `tokens_valid_after` cut-offs of
`users` and `oauth_clients` (a client's is keyed `client:<id>`).

`revoked_tokens.jti` holds revoked access-token ids and revoked sessions (refresh families,
written as `sid:<family id>`): both mean "a token naming this id is dead until expires_at".
A lookup for a whole batch of tokens is one statement (a UNION ALL over the tables), so
the database fallback costs one round trip however many tokens are checked.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, literal, select, union_all
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.store.database import Database
from app.store.models import OAuthClient, RevokedToken, User
from app.tokens.models import RevocationState, client_subject, split_subjects
from app.tokens.revocation import SESSION_PREFIX


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


class DatabaseRevocationStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def revoke(
        self,
        *,
        ids: Sequence[tuple[str, float]],
        subject: str | None,
        reason: str,
        at: datetime,
    ) -> None:
        rows = [
            {
                "jti": jti,
                "subject": subject,
                "expires_at": datetime.fromtimestamp(until, UTC),
                "revoked_at": at,
                "reason": reason,
            }
            for jti, until in ids
        ]
        insert = pg_insert if self.db.backend == "postgresql" else sqlite_insert
        async with self.db.transaction() as s:
            await s.execute(insert(RevokedToken).values(rows).on_conflict_do_nothing())

    async def lookup(
        self, *, jtis: Collection[str], sessions: Collection[str], subjects: Collection[str]
    ) -> RevocationState:
        ids = [*jtis, *(SESSION_PREFIX + s for s in sessions)]
        parts: list[Any] = []
        if ids:
            parts.append(
                select(
                    literal("r").label("kind"),
                    RevokedToken.jti.label("name"),
                    RevokedToken.expires_at.label("at"),
                ).where(RevokedToken.jti.in_(ids))
            )
        users, clients = split_subjects(subjects)
        if users:
            parts.append(_user_cut_offs().where(User.username.in_(sorted(users))))
        if clients:
            parts.append(_client_cut_offs().where(OAuthClient.client_id.in_(sorted(clients))))
        state = RevocationState()
        if not parts:
            return state
        statement: Any = parts[0] if len(parts) == 1 else union_all(*parts)
        async with self.db.sessions() as s:
            rows: Sequence[Any] = (await s.execute(statement)).all()
        for kind, name, at in rows:
            _add(state, kind, name, _as_utc(at))
        return state

    async def active(self, *, now: datetime, horizon_seconds: int) -> RevocationState:
        revoked = select(
            literal("r").label("kind"),
            RevokedToken.jti.label("name"),
            RevokedToken.expires_at.label("at"),
        ).where(RevokedToken.expires_at > now)
        since = now - timedelta(seconds=horizon_seconds)
        users = _user_cut_offs().where(User.tokens_valid_after > since)
        clients = _client_cut_offs().where(OAuthClient.tokens_valid_after > since)
        state = RevocationState()
        async with self.db.sessions() as s:
            rows: Sequence[Any] = (await s.execute(union_all(revoked, users, clients))).all()
        for kind, name, at in rows:
            _add(state, kind, name, _as_utc(at))
        return state

    async def purge(self, *, before: datetime) -> int:
        async with self.db.transaction() as s:
            result = await s.execute(delete(RevokedToken).where(RevokedToken.expires_at < before))
        return int(getattr(result, "rowcount", 0))


def _user_cut_offs() -> Any:
    return select(
        literal("u").label("kind"),
        User.username.label("name"),
        User.tokens_valid_after.label("at"),
    ).where(User.tokens_valid_after.is_not(None))


def _client_cut_offs() -> Any:
    return select(
        literal("c").label("kind"),
        OAuthClient.client_id.label("name"),
        OAuthClient.tokens_valid_after.label("at"),
    ).where(OAuthClient.tokens_valid_after.is_not(None))


def _as_utc(value: object) -> datetime:
    """UNION results bypass the column type on SQLite (a naive datetime or a string)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _add(state: RevocationState, kind: str, name: str, at: datetime) -> None:
    if kind == "u":
        state.valid_after[name] = _ms(at)
    elif kind == "c":
        state.valid_after[client_subject(name)] = _ms(at)
    elif name.startswith(SESSION_PREFIX):
        state.sessions[name[len(SESSION_PREFIX) :]] = at.timestamp()
    else:
        state.jtis[name] = at.timestamp()
