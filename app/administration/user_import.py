"""Reading a file of users for `oms-auth users import`: CSV or JSON Lines, checked whole.

CSV: a header row with `username` and `password` (or `password_hash`, an argon2 hash made
elsewhere), optionally `roles` (separated by `;` or spaces), `is_admin` (true/false/1/0) and
`attributes` (a JSON object). JSON Lines: one object per line with the same keys (`roles` a
list). Every line is checked (names, password policy, duplicates) before anything is written;
the errors name their line.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from app.security.names import InvalidName, check_username
from app.security.passwords import WeakPassword, check_password_policy

MAX_ERRORS = 20


@dataclass(frozen=True)
class ImportedUser:
    line: int
    username: str
    password: str | None
    password_hash: str | None
    roles: tuple[str, ...] = ()
    is_admin: bool = False
    attributes: dict[str, Any] = field(default_factory=dict)


class UserFileError(ValueError):
    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value or "").strip().lower()
    if text in ("", "0", "false", "no"):
        return False
    if text in ("1", "true", "yes"):
        return True
    raise ValueError(f"is_admin must be true or false, not {value!r}")


def _roles(value: Any) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, list):
        items = [str(v) for v in value]
    else:
        items = str(value).replace(";", " ").split()
    return tuple(dict.fromkeys(items))


def _record(line: int, raw: dict[str, Any]) -> ImportedUser:
    username = str(raw.get("username") or "").strip()
    check_username(username)
    password = raw.get("password") or None
    password_hash = raw.get("password_hash") or None
    if password is None and password_hash is None:
        raise ValueError("needs a password or a password_hash")
    if password is not None:
        check_password_policy(str(password))
    if password_hash is not None and not str(password_hash).startswith("$argon2"):
        raise ValueError("password_hash must be an argon2 hash ($argon2id$...)")
    attributes = raw.get("attributes") or {}
    if isinstance(attributes, str):
        attributes = orjson.loads(attributes)
    if not isinstance(attributes, dict):
        raise ValueError("attributes must be a JSON object")
    return ImportedUser(
        line=line,
        username=username,
        password=str(password) if password is not None else None,
        password_hash=str(password_hash) if password_hash is not None else None,
        roles=_roles(raw.get("roles")),
        is_admin=_bool(raw.get("is_admin")),
        attributes=attributes,
    )


def _rows(path: Path, text: str) -> list[tuple[int, dict[str, Any]]]:
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        rows = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError:
                raise UserFileError([f"line {number}: not valid JSON"]) from None
            if not isinstance(value, dict):
                raise UserFileError([f"line {number}: expected a JSON object"])
            rows.append((number, value))
        return rows
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or "username" not in reader.fieldnames:
        raise UserFileError(["line 1: the CSV header must name a 'username' column"])
    return [(number, dict(row)) for number, row in enumerate(reader, start=2)]


def read_users(path: Path) -> list[ImportedUser]:
    """Every user of the file, or `UserFileError` listing the bad lines (up to 20)."""
    rows = _rows(path, path.read_text(encoding="utf-8-sig"))
    users: list[ImportedUser] = []
    errors: list[str] = []
    seen: dict[str, int] = {}
    for number, raw in rows:
        try:
            user = _record(number, raw)
        except (InvalidName, WeakPassword, ValueError) as exc:
            errors.append(f"line {number}: {exc}")
        else:
            if user.username in seen:
                errors.append(
                    f"line {number}: user {user.username!r} is also on line {seen[user.username]}"
                )
            seen[user.username] = number
            users.append(user)
        if len(errors) >= MAX_ERRORS:
            break
    if errors:
        raise UserFileError(errors)
    if not users:
        raise UserFileError(["the file holds no users"])
    return users
