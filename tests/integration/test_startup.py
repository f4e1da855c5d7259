"""The garbage-collector policy is process-wide, so an app applies it only when asked
(`OMS_AUTH_GC_FREEZE`): by default start-up leaves the collector as it found it; opted in,
the collector paused for the first policy load (`app.heap.collector_paused`) is running again
once the app serves, load failed or not."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

import pytest

from app.errors import InvalidPolicy
from app.main import create_app
from tests.conftest import SettingsFactory
from tests.support.apps import running, serve

pytestmark = pytest.mark.integration


async def test_by_default_start_up_leaves_the_collector_alone(
    make_settings: SettingsFactory,
) -> None:
    """Watched from the loop while the start-up runs (the policy load runs in threads, so
    the watcher runs during it): the collector is never off, and nothing is frozen."""
    threshold, frozen = gc.get_threshold(), gc.get_freeze_count()
    seen: set[bool] = set()
    started = asyncio.Event()

    async def watch() -> None:
        while not started.is_set():
            seen.add(gc.isenabled())
            await asyncio.sleep(0)

    watcher = asyncio.create_task(watch())
    try:
        async with serve(make_settings()) as (_, http):
            started.set()
            assert (await http.get("/readyz")).status_code == 200
            assert (gc.get_threshold(), gc.get_freeze_count()) == (threshold, frozen)
    finally:
        started.set()
        await watcher
    assert seen == {True}


@pytest.mark.usefixtures("restored_gc")
async def test_opted_in_the_heap_is_frozen_and_the_collector_runs_again(
    make_settings: SettingsFactory,
) -> None:
    app = create_app(make_settings(gc_freeze=True))
    async with running(app) as http:
        assert (await http.get("/readyz")).status_code == 200
        assert gc.isenabled()
        assert gc.get_freeze_count() > 0


async def test_opted_in_the_collector_runs_again_after_a_failed_start(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    broken = tmp_path / "policies"
    broken.mkdir()
    (broken / "model.conf").write_text("[request_definition]\nr = sub, obj\n")
    app = create_app(make_settings(policy_dir=broken, policy_source="files", gc_freeze=True))
    with pytest.raises(InvalidPolicy, match="policy_definition"):  # the first load fails
        async with app.router.lifespan_context(app):
            pass
    assert gc.isenabled()
