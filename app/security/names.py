"""Names of users and OAuth clients.

A username is a Casbin subject (`g, alice, developer`) and a client is the subject
`client:<id>`; both are written to rule files and to `casbin_rule`, whose adapter joins values
with ", ". A name that holds a comma, a colon, a space or a control character would be read
back as something else, so only letters, digits and `_ . @ + -` are accepted.
"""

from __future__ import annotations

import re

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


def check_username(value: str) -> str:
    return _check("username", value, MAX_USERNAME)


def check_client_id(value: str) -> str:
    return _check("client id", value, MAX_CLIENT_ID)
