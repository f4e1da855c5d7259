"""The OpenAPI contract of the AuthZEN API (evaluations, searches, metadata, per tenant),
in open and token mode.

Run by schemathesis against a live server; the rules shared by every area are in
tests.support.contract.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import contract

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(600)]

AREA = "authzen"


@pytest.mark.parametrize("mode", contract.modes(AREA))
def test_authzen_operations_keep_their_contract(mode: str, tmp_path: Path) -> None:
    with contract.live_server(mode, tmp_path) as (server, key):
        contract.check_contract(AREA, server, key)
