"""What `make run` shows a person: a readable console and a start banner on a terminal,
JSON lines otherwise; unknown `OMS_AUTH_*` variables are reported."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time
from pathlib import Path

import pytest

from app.config import ConfigError, load_settings
from tests.support.server import CLI, REPO, cli_env, free_port, run_cli, serve
from tests.support.waiting import DEADLINE_SCALE

pytestmark = pytest.mark.e2e


def test_json_when_not_a_terminal_and_unknown_variables_reported(tmp_path: Path) -> None:
    env = {
        "OMS_AUTH_DATABASE_URL": f"sqlite:///{tmp_path}/json.db",
        "OMS_AUTH_DATABSE_URL": "sqlite:///typo.db",
    }
    with serve(env, log_dir=tmp_path, timeout=120) as srv:
        (started,) = srv.events("service.started")
        assert started["url"] == srv.url and started["docs"] == f"{srv.url}/docs"
        (unknown,) = srv.events("config.unknown_variable")
        assert unknown["level"] == "WARNING"
        assert unknown["variable"] == ("OMS_AUTH_DATABSE_URL (did you mean OMS_AUTH_DATABASE_URL?)")
        assert "API docs" not in srv.logs()


def test_unknown_variable_stops_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMS_AUTH_DATABSE_URL", "x")
    with pytest.raises(ConfigError, match=r"OMS_AUTH_DATABSE_URL .did you mean"):
        load_settings(
            environment="production",
            encryption_key="q8Zr3vLx0Tn6Wm2Ys9Kd4Hf7Bp1Cj5Ue+Ga8Ri0No3V=",
            issuer="https://auth.example.com",
        )
    assert load_settings(environment="development").environment == "development"


def test_cli_warns_about_unknown_variables(tmp_path: Path) -> None:
    env = {"OMS_AUTH_DATABASE_URL": f"sqlite:///{tmp_path}/w.db", "OMS_AUTH_POLCY_DIR": "x"}
    done = run_cli("migrate", env=env)
    assert done.returncode == 0
    assert "warning: OMS_AUTH_POLCY_DIR (did you mean OMS_AUTH_POLICY_DIR?)" in done.stderr


def _read_until(fd: int, needle: str, deadline: float) -> str:
    seen = b""
    while time.monotonic() < deadline and needle.encode() not in seen:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    return seen.decode(errors="replace")


def test_terminal_gets_console_lines_and_a_banner(tmp_path: Path) -> None:
    port = free_port()
    env = {
        "OMS_AUTH_DATABASE_URL": f"sqlite:///{tmp_path}/tty.db",
        "OMS_AUTH_PORT": str(port),
    }
    assert run_cli("migrate", env=env).returncode == 0
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [*CLI, "serve"], env=cli_env(env), cwd=REPO, stdout=slave, stderr=slave
    )
    os.close(slave)
    try:
        text = _read_until(master, "Ctrl+C", time.monotonic() + 120 * DEADLINE_SCALE)
    finally:
        process.terminate()
        process.wait(timeout=30)
        os.close(master)
    url = f"http://127.0.0.1:{port}"
    assert f"oms-auth is listening on {url}" in text, text
    assert f"API docs     {url}/docs" in text
    assert "first user   echo 'a long password' | oms-auth users create" in text
    started = [line for line in text.splitlines() if "service.started" in line]
    assert started and not started[0].lstrip().startswith("{"), text
    assert f"url={url}" in started[0] and " INFO " in started[0]
