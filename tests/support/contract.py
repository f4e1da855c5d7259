"""The OpenAPI contract, checked by schemathesis against a live server, one API area at a time.

The contract is split by area (`AREAS`, by OpenAPI tag) so that the test files
`tests/e2e/test_contract_*.py` run side by side under `pytest -n`: each starts its own server
and runs schemathesis on its area's operations only. Every run checks that the areas still
cover every operation of the live schema, so a new route cannot slip out of the contract.

Operations whose answers depend on `OMS_AUTH_DECISION_AUTH` (the tags in `MODE_DEPENDENT`)
run in open and token mode; the others answer the same in both and run once, in open mode.
Each run is bounded and reproducible: a fixed seed, `MAX_EXAMPLES` generated cases per
operation in the fuzzing phase, plus the examples and coverage phases, and no crash cache
(schemathesis would otherwise replay, and rewrite, crashes kept from earlier runs).
"""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.server import Server, serve

# area -> the OpenAPI tags it covers (an operation belongs to the area of any of its tags)
AREAS: dict[str, tuple[str, ...]] = {
    "decisions": ("decisions", "permissions", "tokens"),
    "authzen": ("authzen",),
    "administration": ("policy administration", "operations"),
    "directory": ("user administration", "entity store"),
    "sign-in": ("oauth", "auth"),
}
# Tags whose routes admit their caller by `OMS_AUTH_DECISION_AUTH` (app.api.principals).
MODE_DEPENDENT = frozenset({"decisions", "permissions", "tokens", "authzen"})

CHECKS = (
    "not_a_server_error,status_code_conformance,response_schema_conformance,"
    "content_type_conformance"
)
MAX_EXAMPLES = 6
SEED = "20261130"
FAST = {
    "OMS_AUTH_ARGON2_TIME_COST": "1",
    "OMS_AUTH_ARGON2_MEMORY_KIB": "1024",
    "OMS_AUTH_ARGON2_PARALLELISM": "1",
    "OMS_AUTH_POLICY_WATCH": "false",
    "OMS_AUTH_LOG_LEVEL": "WARNING",
    # GET /api/v1/decisions answers 503 while the decision log is off: run it for real.
    "OMS_AUTH_DECISION_LOG_ENABLED": "true",
}
_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def modes(area: str) -> list[str]:
    """The decision-auth modes `area` runs in: both if any of its tags depends on the mode."""
    return ["open", "token"] if MODE_DEPENDENT & set(AREAS[area]) else ["open"]


@contextmanager
def live_server(mode: str, tmp_path: Path) -> Iterator[tuple[Server, str]]:
    """A server in decision-auth `mode` on a fresh SQLite database, and its admin key."""
    key = secrets.token_urlsafe(32)
    env = {
        "OMS_AUTH_DATABASE_URL": f"sqlite:///{tmp_path}/oms.db",
        "OMS_AUTH_DECISION_AUTH": mode,
        "OMS_AUTH_ADMIN_API_KEY": key,
        "OMS_AUTH_RATE_LIMIT_CHECK": "1000000/minute",
        "OMS_AUTH_RATE_LIMIT_LOGIN_IP": "1000000/minute",
        **FAST,
    }
    with serve(env, log_dir=tmp_path, timeout=120) as server:
        yield server, key


def operations_by_area(schema: dict[str, object]) -> dict[str, set[str]]:
    """`METHOD path` of every operation of `schema`, by area; "" holds those of no area."""
    out: dict[str, set[str]] = {area: set() for area in (*AREAS, "")}
    paths = schema["paths"]
    assert isinstance(paths, dict)
    for path, item in paths.items():
        for method, operation in item.items():
            if method not in _METHODS:
                continue
            tags = set(operation.get("tags", ()))
            areas = [area for area, covered in AREAS.items() if tags & set(covered)] or [""]
            for area in areas:
                out[area].add(f"{method.upper()} {path}")
    return out


def check_contract(area: str, server: Server, key: str) -> None:
    """Run schemathesis on `area`'s operations; fail with its report on any finding."""
    schema = httpx.get(f"{server.url}/openapi.json", timeout=30).json()
    expected = operations_by_area(schema)
    assert not expected[""], (
        f"operations in no contract area (tests.support.contract): {expected['']}"
    )
    assert expected[area], f"no operation is tagged {AREAS[area]}"
    tags = [arg for tag in AREAS[area] for arg in ("--include-tag", tag)]
    # No crash cache: a run depends on its seed only, and parallel runs share no files.
    config = server.log_path.with_name("schemathesis.toml")
    config.write_text("[cache]\nenabled = false\n", encoding="utf-8")
    done = subprocess.run(
        [
            str(Path(sys.executable).with_name("st")),
            "--config-file",
            str(config),
            "run",
            f"{server.url}/openapi.json",
            *tags,
            "--checks",
            CHECKS,
            "--max-examples",
            str(MAX_EXAMPLES),
            "--phases",
            "examples,coverage,fuzzing",
            "--seed",
            SEED,
            "--generation-database",
            "none",
            "--request-timeout",
            "30",
            "--no-color",
            "-H",
            f"X-API-Key: {key}",
        ],
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    report = done.stdout[-8000:] + done.stderr[-2000:]
    print(done.stdout[-3000:])  # the phases' counts and times (`pytest -rP` shows them)
    assert done.returncode == 0, report
    assert "generated" in done.stdout, report
    selected = re.search(r"Operations:\s+(\d+) selected / (\d+) total", done.stdout)
    assert selected is not None, report
    assert int(selected[1]) == len(expected[area]), (sorted(expected[area]), report)
    assert "Traceback" not in server.logs()
