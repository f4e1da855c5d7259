"""Names of users and OAuth clients.

A username is a Casbin subject (`g, alice, developer`) and a client is the subject
`client:<id>`; both are written to rule files and to `casbin_rule`, whose adapter joins values
with ", ". A name that holds a comma, a colon, a space or a control character would be read
back as something else, so only letters, digits and `_ . @ + -` are accepted.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

_NAME = re.compile(r"[\w.@+-]+")
MAX_USERNAME = 150
MAX_CLIENT_ID = 100


class InvalidName(ValueError):
    """A user or client name that cannot be stored as a policy subject unchanged."""


def _check(kind: str, value: str, limit: int) -> str:
    if not value:
        raise InvalidName(f"{kind} must not be empty")
    if len(value) > limit:
        raise InvalidName(f"{kind} must have at most {limit} characters")
    if not _NAME.fullmatch(value):
        raise InvalidName(f"{kind} {value!r} may only hold letters, digits and _ . @ + -")
    return value


# Letters of other scripts that read as Latin ones: a name written only in them (Cyrillic
# "a", "c", "e" spelling "ace") passes the one-script rule and still impersonates "ace".
_LATIN_LOOKALIKES = frozenset(
    "аеорсуххіјѕԁһԛԝаԑӏɡɑοαντικρυχεζηιλмнтвкАВЕЗІЈКМНОРСТУХѴΑΒΕΖΗΙΚΜΝΟΡΤΥΧ"
)


def canonical_name(value: str) -> str:
    """The form names are compared in: NFKC, then case-folded (full-width or upper-case
    letters become their plain lower-case form)."""
    return unicodedata.normalize("NFKC", value).casefold()


def _script(ch: str) -> str | None:
    if not ch.isalpha():
        return None  # digits and `_ . @ + -` belong to every script
    name = unicodedata.name(ch, "")
    return name.split(" ", 1)[0] if name else "UNKNOWN"


def check_identity(value: str) -> str:
    """Usernames are stored in canonical form (NFKC, case-folded), in one script, and not
    made only of letters that imitate Latin ones: `Victor` beside `victor`, `alice` with a
    Cyrillic first letter, or `alice` in full-width letters are refused, not stored."""
    canonical = canonical_name(value)
    if canonical != value:
        raise InvalidName(f"username {value!r} must be written in canonical form {canonical!r}")
    scripts = {s for s in map(_script, value) if s is not None}
    if len(scripts) > 1:
        raise InvalidName(f"username {value!r} mixes scripts ({', '.join(sorted(scripts))})")
    if scripts and scripts != {"LATIN"}:
        letters = [ch for ch in value if ch.isalpha()]
        if all(ch in _LATIN_LOOKALIKES for ch in letters):
            raise InvalidName(f"username {value!r} is made of letters that imitate Latin ones")
    return value


def check_username(value: str) -> str:
    return check_identity(_check("username", value, MAX_USERNAME))


def collides(name: str, others: Iterable[str]) -> str | None:
    """The first of `others` that `name` would be read as (same canonical form), or None.
    Users and roles share Casbin's subject namespace, so a user may never be named like a
    role, nor a role like a user."""
    wanted = canonical_name(name)
    return next((o for o in others if canonical_name(o) == wanted), None)


def check_client_id(value: str) -> str:
    return _check("client id", value, MAX_CLIENT_ID)
