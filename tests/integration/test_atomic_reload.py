"""Reloads swap the whole policy at once: a batch racing a reload sees one policy or the
other for all of its checks, never a mix, and its revision says which."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from app.main import create_app
from app.policy.engine import PolicyEngine
from tests.conftest import SettingsFactory
from tests.support.apps import running

GRANTS = "p, zed, api:schemas, read, allow\np, zed, api:ontologies, read, allow\n"
CHECKS = [
    {"subject": "zed", "resource": "api:schemas", "action": "read"},
    {"subject": "zed", "resource": "api:ontologies", "action": "read"},
] * 50


async def flip(engine: PolicyEngine, extra: Path, stop: asyncio.Event) -> dict[int, bool]:
    """Reload 12 times, granting and withdrawing zed's rules in turn."""
    granted_at: dict[int, bool] = {}
    for i in range(12):
        granted = i % 2 == 0
        extra.write_text(GRANTS if granted else "# nothing for zed\n")
        snapshot = await engine.load(trigger="test")
        granted_at[snapshot.revision] = granted
        await asyncio.sleep(0)
    stop.set()
    return granted_at


async def ask(client: httpx.AsyncClient, stop: asyncio.Event) -> list[tuple[int, set[bool]]]:
    seen = []
    while not stop.is_set():
        r = await client.post("/api/v1/authz/check/batch", json={"checks": CHECKS})
        body = r.json()
        seen.append((body["policy_revision"], {x["allowed"] for x in body["results"]}))
        # The in-process transport never suspends on the fast lane; a real socket would.
        await asyncio.sleep(0)
    return seen


async def test_batches_racing_reloads_never_see_a_mix(
    make_settings: SettingsFactory, policy_dir: Path
) -> None:
    settings = make_settings(policy_dir=policy_dir, policy_source="files")
    app = create_app(settings)
    async with running(app) as client:
        stop = asyncio.Event()
        granted_at, *answers = await asyncio.gather(
            flip(app.state.services.engine, policy_dir / "zed.csv", stop),
            ask(client, stop),
            ask(client, stop),
        )
        observed = [item for batch in answers for item in batch]
        assert len(observed) > 10
        checked = 0
        for revision, outcomes in observed:
            assert len(outcomes) == 1, "one batch saw two policies"
            if revision in granted_at:
                assert outcomes == {granted_at[revision]}
                checked += 1
        assert checked > 0
