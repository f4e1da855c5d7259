"""The app's source parsed for tests that read it (layering, composition): once per file.

The cyclic collector is paused while a file is parsed. CPython 3.11's AST constructor can
fail with `SystemError: AST constructor recursion depth mismatch` when a collection it
triggers runs a finalizer that warns (CPython issue 106905): a test leaking an unclosed
connection would then fail an unrelated source test. Leaks are caught where they happen
(every ResourceWarning is an error); this keeps the parse itself out of their way.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

from app.heap import collector_paused


@functools.cache
def parse(path: Path) -> ast.Module:
    source = path.read_text(encoding="utf-8")
    with collector_paused():
        return ast.parse(source, filename=str(path))
