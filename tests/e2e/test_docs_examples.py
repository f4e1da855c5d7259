"""README.md and docs/*.md: every `sh` and `python` example runs against a real server in a
fresh state (rules: docs/README-testing.md)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from tests.support.server import REPO, cli_env, free_port, serve
from tests.support.snippets import Snippet, SnippetError, extract, for_port, output_mismatch

pytestmark = pytest.mark.e2e

DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
ADMIN_KEY = "docs-examples-admin-key-0123456789abcdef"
BLOCK_TIMEOUT = 120


def _runnable(document: Path) -> list[Snippet]:
    return [s for s in extract(document) if s.runs]


def test_the_readme_has_runnable_examples() -> None:
    runnable = _runnable(REPO / "README.md")
    assert {s.language for s in runnable} == {"sh", "python"}
    assert len(runnable) >= 8
    skipped = [
        s for s in extract(REPO / "README.md") if not s.runs and s.language in ("sh", "python")
    ]
    assert all(s.reason for s in skipped)


def test_no_run_needs_a_reason(tmp_path: Path) -> None:
    doc = tmp_path / "x.md"
    doc.write_text("text\n\n```sh no-run\nmake run\n```\n")
    with pytest.raises(SnippetError, match=r"x\.md:3: `no-run` needs a reason"):
        extract(doc)
    doc.write_text("```sh no-run: starts a server\nmake run\n```\n```json\n{}\n```\n")
    first, second = extract(doc)
    assert not first.runs and first.reason == "starts a server" and not second.runs
    doc.write_text(
        '```sh\necho \'{"id": "dec_1", "n": [1]}\'\n```\n```json output\n'
        '{"id": "dec_…", "n": [1]}\n```\n'
    )
    (block, shown) = extract(doc)
    assert block.expected is not None and not shown.runs
    expected = orjson.loads(block.expected)
    assert output_mismatch(expected, {"id": "dec_9", "n": [1]}) is None
    assert output_mismatch(expected, {"id": "req_9", "n": [1]}) == "$.id: 'dec_…', got 'req_9'"
    assert output_mismatch(expected, {"id": "dec_9", "n": [2]}) is not None
    assert output_mismatch(expected, {"id": "dec_9"}) is not None
    assert for_port("curl localhost:8001/x http://127.0.0.1:8001", 5555) == (
        "curl localhost:5555/x http://127.0.0.1:5555"
    )


def _run(snippet: Snippet, code: str, workdir: Path, env: dict[str, str]) -> None:
    """Run one block; it must exit 0 and print its documented output, if any."""
    if snippet.language == "sh":
        command = ["bash", "-euo", "pipefail", "-c", code]
    else:
        script = workdir / f"snippet_{snippet.line}.py"
        script.write_text(code, encoding="utf-8")
        command = [sys.executable, "-m", "tests.support.snippets", str(script)]
    done = subprocess.run(
        command,
        cwd=workdir,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, (
        f"{snippet.where} ({snippet.language}) exited {done.returncode}\n"
        f"--- block ---\n{code}--- stdout ---\n{done.stdout[-4000:]}\n"
        f"--- stderr ---\n{done.stderr[-4000:]}"
    )
    if snippet.expected is not None:
        try:
            actual = orjson.loads(done.stdout)
        except orjson.JSONDecodeError:
            actual = done.stdout
        mismatch = output_mismatch(orjson.loads(snippet.expected), actual)
        assert mismatch is None, f"{snippet.where}: output differs from the README: {mismatch}"


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("document", [d for d in DOCUMENTS if _runnable(d)], ids=lambda d: d.name)
def test_document_examples_run(document: Path, tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    shutil.copytree(REPO / "policies", workdir / "policies")
    port = free_port()
    settings = {
        "OMS_AUTH_DATABASE_URL": f"sqlite:///{workdir}/var/oms_auth.db",
        "OMS_AUTH_POLICY_DIR": str(workdir / "policies"),
        "OMS_AUTH_ISSUER": f"http://127.0.0.1:{port}",
        "OMS_AUTH_ADMIN_API_KEY": ADMIN_KEY,
        "OMS_AUTH_ARGON2_TIME_COST": "1",
        "OMS_AUTH_ARGON2_MEMORY_KIB": "1024",
        "OMS_AUTH_ARGON2_PARALLELISM": "1",
        "OMS_AUTH_LOG_LEVEL": "WARNING",
    }
    with serve(settings, log_dir=tmp_path, port=port, timeout=120) as srv:
        env = cli_env(srv.env)
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        env["PYTHONPATH"] = str(REPO)
        for snippet in _runnable(document):
            started = time.monotonic()
            _run(snippet, for_port(snippet.code, port), workdir, env)
            print(f"{snippet.where}: {time.monotonic() - started:.1f} s", flush=True)
