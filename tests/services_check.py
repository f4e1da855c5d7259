"""Fail fast, with the service named, when PostgreSQL or Redis is not reachable.

`make test` runs this before the suite: the integration tests use the machine's real
services and must never silently skip.
"""

from __future__ import annotations

import sys

from tests.support.services import PG_ADMIN_DSN, REDIS_URL, check_postgres, check_redis


def main() -> int:
    problems = []
    for name, check, where in (
        ("PostgreSQL", check_postgres, PG_ADMIN_DSN),
        ("Redis", check_redis, REDIS_URL),
    ):
        error = check()
        if error:
            problems.append(f"{name} is not reachable at {where}: {error}")
    for line in problems:
        print(f"services check: {line}", file=sys.stderr)
    if problems:
        print(
            "services check: the test suite needs both services running "
            "(see README, 'Running the tests').",
            file=sys.stderr,
        )
        return 1
    print("services check: PostgreSQL and Redis are reachable")
    return 0


if __name__ == "__main__":
    sys.exit(main())
