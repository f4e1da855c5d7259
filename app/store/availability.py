"""Telling "the database is unreachable" apart from a bug, for 503 instead of 500."""

from __future__ import annotations

from sqlalchemy import exc as sa_exc

CONNECTION_ERRORS: tuple[type[Exception], ...] = (
    sa_exc.OperationalError,  # connection refused, dropped, database gone, locked
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,  # no pooled connection within pool_timeout
)


def is_unavailable(exc: BaseException) -> bool:
    return isinstance(exc, CONNECTION_ERRORS)
