"""Whether opening an SQLite URL whose file does not exist creates it.

A module of its own, free of SQLAlchemy, so the CLI's root group can switch it off before
any command runs without importing the database layer (`oms-auth --help` stays light).
"""

from __future__ import annotations

_create_missing = True


def create_missing_sqlite(enabled: bool) -> None:
    """Whether opening an SQLite URL whose file does not exist creates it (the library and
    `migrate` do; every other CLI command refuses, so none leaves a `var/` behind in
    whatever folder it ran from)."""
    global _create_missing
    _create_missing = enabled


def creates_missing_sqlite() -> bool:
    return _create_missing
