"""The documentation's examples, extracted and run (see docs/README-testing.md).

A fenced block runs when its info string starts with `sh`, `bash`, `shell` or `python`.
`no-run` after the language keeps it from running and must say why:

    ```sh no-run: starts a second copy of the service on the human's port

Blocks of a document run in order, sharing one fresh state: a temporary folder holding a
copy of `policies/`, a migrated SQLite database and one real `oms-auth serve` on a free
port. `localhost:8001` / `127.0.0.1:8001` in a block are rewritten to that port.
"""

from __future__ import annotations

import ast
import asyncio
import re
import sys
from dataclasses import dataclass
from pathlib import Path

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
        out.append(_snippet(document, i + 1, info, "\n".join(body) + "\n"))
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
