"""Start-up leaves the process as it found it: the collector paused for the first policy
load (`app.heap.collector_paused`) is running again once the app serves, load failed or not."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from app.errors import InvalidPolicy
from app.main import create_app
from tests.conftest import SettingsFactory
from tests.support.apps import serve

pytestmark = pytest.mark.integration


async def test_the_collector_runs_again_once_the_app_serves(
    make_settings: SettingsFactory,
) -> None:
    async with serve(make_settings()) as (_, http):
        assert (await http.get("/readyz")).status_code == 200
        assert gc.isenabled()


async def test_the_collector_runs_again_after_a_failed_start(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    broken = tmp_path / "policies"
    broken.mkdir()
    (broken / "model.conf").write_text("[request_definition]\nr = sub, obj\n")
    app = create_app(make_settings(policy_dir=broken, policy_source="files"))
    with pytest.raises(InvalidPolicy, match="policy_definition"):  # the first load fails
        async with app.router.lifespan_context(app):
            pass
    assert gc.isenabled()
