"""The documentation's examples, extracted and run (see docs/README-testing.md).

A fenced block runs when its info string starts with `sh`, `bash`, `shell` or `python`.
`no-run` after the language keeps it from running and must say why:

    ```sh no-run: starts a second copy of the service on the human's port

A ```` ```json output ```` block right after a running block is what that block prints: its
output must be that JSON (see `output_mismatch`).

Blocks of a document run in order, sharing one fresh state: a temporary folder holding a
copy of `policies/`, a migrated SQLite database and one real `oms-auth serve` on a free
port. `localhost:8001` / `127.0.0.1:8001` in a block are rewritten to that port.
"""

from __future__ import annotations

import ast
import asyncio
import re
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

RUN_LANGUAGES = {"sh": "sh", "bash": "sh", "shell": "sh", "python": "python", "py": "python"}
_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>[^`\n]*)$")
_HUMAN_PORT = re.compile(r"(localhost|127\.0\.0\.1):8001\b")


@dataclass(frozen=True)
class Snippet:
    document: Path
    line: int  # of the opening fence, 1-based
    language: str  # "sh" or "python", or the block's own tag when it does not run
    code: str
    runs: bool
    reason: str = ""  # why a block does not run
    expected: str | None = None  # a ```json output block right after it: what it prints

    @property
    def where(self) -> str:
        return f"{self.document.name}:{self.line}"


class SnippetError(ValueError):
    """A block is malformed for the runner (e.g. `no-run` without a reason)."""


def extract(document: Path) -> list[Snippet]:
    """Every fenced code block of a Markdown file, in order."""
    lines = document.read_text(encoding="utf-8").splitlines()
    out: list[Snippet] = []
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        fence = opening.group("fence")
        info = opening.group("info").strip()
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith(fence[0] * len(fence)):
            body.append(lines[j])
            j += 1
        snippet = _snippet(document, i + 1, info, "\n".join(body) + "\n")
        if info.split()[:2] == ["json", "output"] and out and out[-1].runs:
            previous = out.pop()
            out.append(replace(previous, expected=snippet.code))
        out.append(snippet)
        i = j + 1
    return out


def _snippet(document: Path, line: int, info: str, code: str) -> Snippet:
    tag, _, rest = info.partition(" ")
    language = RUN_LANGUAGES.get(tag.lower())
    if language is None:
        return Snippet(
            document, line, tag or "text", code, runs=False, reason="not a shell or Python block"
        )
    rest = rest.strip()
    if rest.startswith("no-run"):
        reason = rest[len("no-run") :].lstrip(":").strip()
        if not reason:
            raise SnippetError(
                f"{document.name}:{line}: `no-run` needs a reason: ```sh no-run: why"
            )
        return Snippet(document, line, language, code, runs=False, reason=reason)
    return Snippet(document, line, language, code, runs=True)


def output_mismatch(expected: Any, actual: Any, where: str = "$") -> str | None:
    """Where `actual` (a block's JSON output) differs from the documented one, or None.
    Objects need the same keys, arrays the same length; a documented string with `…`
    matches any text starting with what precedes the `…` (ids, timestamps)."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict) or set(expected) != set(actual):
            got = sorted(actual) if isinstance(actual, dict) else type(actual).__name__
            return f"{where}: keys {sorted(expected)} documented, got {got}"
        for key, value in expected.items():
            found = output_mismatch(value, actual[key], f"{where}.{key}")
            if found:
                return found
        return None
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return f"{where}: {expected!r} documented, got {actual!r}"
        for n, (e, a) in enumerate(zip(expected, actual, strict=True)):
            found = output_mismatch(e, a, f"{where}[{n}]")
            if found:
                return found
        return None
    if isinstance(expected, str) and "…" in expected and isinstance(actual, str):
        prefix = expected.split("…", 1)[0]
        return None if actual.startswith(prefix) else f"{where}: {expected!r}, got {actual!r}"
    if expected != actual or type(expected) is not type(actual):
        return f"{where}: {expected!r} documented, got {actual!r}"
    return None


def for_port(code: str, port: int) -> str:
    """The block as run: the human's port 8001 replaced by the test server's."""
    return _HUMAN_PORT.sub(lambda m: f"{m.group(1)}:{port}", code)


def run_python_file(path: str) -> None:
    """Run a Python block; top-level `await` / `async with` are allowed, as in a notebook."""
    source = Path(path).read_text(encoding="utf-8")
    code = compile(source, path, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    scope = {"__name__": "__main__"}
    result = eval(code, scope)  # noqa: S307 - the repository's own documentation
    if asyncio.iscoroutine(result):
        asyncio.run(result)


if __name__ == "__main__":
    run_python_file(sys.argv[1])
