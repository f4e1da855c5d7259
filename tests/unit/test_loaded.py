"""`python -m tests.loaded` (make test-loaded): the command's exit code, and no hog left."""

from __future__ import annotations

import os
import re
import sys

import pytest

from tests import loaded


def test_runs_the_command_beside_hogs_and_stops_them(capsys: pytest.CaptureFixture[str]) -> None:
    code = loaded.main(["--hogs", "2", "--", sys.executable, "-c", "raise SystemExit(3)"])
    assert code == 3
    out = capsys.readouterr().out
    found = re.search(r"PIDs (\d+) (\d+)\)", out)
    assert found is not None, out
    for pid in map(int, found.groups()):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # terminated and reaped
    assert "exit 3 after" in out
