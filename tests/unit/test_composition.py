"""The composition root: one frozen object, built wired; routes see narrow dependencies only."""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app.adapters.http.callers import Callers
from app.config import Settings
from app.services import Services, compose
from tests.support.source import parse

REPO = Path(__file__).resolve().parents[2]
API = REPO / "app" / "api"
# The modules of the HTTP layer allowed to read the composition root.
ROOT_READERS = {API / "deps.py"}
ROOT_MODULES = {"app.services", "app.token_services"}


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Services]:
    settings = Settings(
        environment="test",
        database_url=f"sqlite:///{tmp_path / 'oms_auth.db'}",
        policy_dir=REPO / "policies",
        policy_watch=False,
        service_name="oms-auth-composition-test",
        log_json=True,
        log_level="WARNING",
    )
    built = await compose(settings)  # builds, wires and starts no I/O: no database needed
    try:
        yield built
    finally:
        await built.close()


async def test_the_root_is_frozen(services: Services) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        services.tokens = services.tokens  # type: ignore[misc]
    other = Callers(resolvers=(), open=True, engine=services.engine)
    with pytest.raises(dataclasses.FrozenInstanceError):
        services.callers = other  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        services.tokens.oauth = services.tokens.oauth  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        services.callers.open = False  # type: ignore[misc]


async def test_every_part_is_built_by_compose(services: Services) -> None:
    for field in dataclasses.fields(Services):
        assert field.init, f"{field.name} would be set after construction"
        optional = ("redis", "redis_cluster")  # absent without Redis / without a cluster
        assert getattr(services, field.name) is not None or field.name in optional, field.name


async def test_the_token_service_is_built_wired_to_the_audit_trail(services: Services) -> None:
    token_service = services.tokens.service
    writer = services.audit_writer
    assert token_service.events is writer
    assert token_service.issuer.events is writer
    assert token_service.cutoff.events is writer
    assert token_service.accounts.events is writer
    assert token_service.accounts.observer is services.detector
    assert services.entities.audit is services.audit
    assert [type(r).__name__ for r in services.callers.resolvers] == [
        "AdminApiKeyResolver",
        "BearerTokenResolver",
    ]
    assert services.callers.limits is services.tokens.rate_limits
    assert services.scope_checks.metrics is services.tokens.metrics


def _api_modules() -> list[Path]:
    return sorted(p for p in API.rglob("*.py") if p not in ROOT_READERS)


@pytest.mark.parametrize("path", _api_modules(), ids=lambda p: str(p.relative_to(API)))
def test_routes_do_not_reach_into_the_root(path: Path) -> None:
    """Routes depend on the parts they use (`app.api.deps`), never on the whole."""
    tree = parse(path)
    offences: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in ROOT_MODULES:
            offences.append(f"line {node.lineno}: imports {node.module}")
        elif isinstance(node, ast.Import):
            offences += [
                f"line {node.lineno}: imports {a.name}"
                for a in node.names
                if a.name in ROOT_MODULES
            ]
        elif isinstance(node, ast.Attribute) and node.attr == "services":
            offences.append(f"line {node.lineno}: reads .services")
        elif isinstance(node, ast.Name) and node.id in ("services", "Services"):
            offences.append(f"line {node.lineno}: uses {node.id}")
    assert not offences, offences
