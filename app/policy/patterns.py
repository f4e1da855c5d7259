"""What a rule value means under the function the matcher compares it with.

Lint and diff reason about rules without running requests: does one pattern cover another
(every request the narrow one matches, the broad one matches too), is a value valid for its
function, can it ever match a request at all. Each answer here is *sound*: `covers` says True
only when it is certain, so a lint finding built on it is never a false alarm.

A request value (resource, action, domain) is 1-255 characters without control characters:
the API refuses anything else, and rule values pass the same check (`rules.value_problem`).
"""

from __future__ import annotations

import importlib
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from casbin import util as casbin_util

MAX_REQUEST_VALUE = 255
_KEY_MATCH2: re.Pattern[str] = casbin_util.builtin_operators.KEY_MATCH2_PATTERN
_KEY_MATCH3: re.Pattern[str] = casbin_util.builtin_operators.KEY_MATCH3_PATTERN
_KEY_MATCH5: re.Pattern[str] = casbin_util.builtin_operators.KEY_MATCH5_PATTERN
_sre: Any = importlib.import_module("re._parser")  # the stdlib regex parser (no stubs)
_REGEX_META = set(".^$*+?{}[]\\|()")


@dataclass(frozen=True)
class Problem:
    code: str  # a lint code, see app.policy.findings
    message: str


@dataclass(frozen=True)
class PatternFunction:
    """One way of comparing a request value with a rule value."""

    name: str
    match: Callable[[str, str], bool]  # (request value, rule value) -> bool
    regex: Callable[[str], str] | None = None  # the regex it builds, for regex-based ones

    def matches(self, value: str, pattern: str) -> bool:
        try:
            return bool(self.match(value, pattern))
        except Exception:
            return False

    def exact(self, pattern: str) -> str | None:
        """The single value `pattern` matches, when it matches exactly one."""
        if self.name in ("==", "==|*"):
            return None if self.name == "==|*" and pattern == "*" else pattern
        if self.name == "keyMatch":
            return None if "*" in pattern else pattern
        if self.name == "globMatch":
            return None if set(pattern) & set("*?[\\") else pattern
        if self.name == "regexMatch":
            inner = pattern[1:-1] if pattern.startswith("^") and pattern.endswith("$") else None
            return inner if inner and not set(inner) & _REGEX_META else None
        special = set(":*{}") | _REGEX_META
        return None if set(pattern) & special else pattern

    def matches_everything(self, pattern: str) -> bool:
        if self.name == "==|*":
            return pattern == "*"
        if self.name in ("keyMatch", "keyMatch2"):
            return pattern == "*" or (self.name == "keyMatch" and pattern.startswith("*"))
        if self.name == "regexMatch":
            return pattern in (".*", "^.*", "^.*$", "(.*)", "^(.*)$")
        return False

    def covers(self, broad: str, narrow: str) -> bool:
        """True when every request value `narrow` matches is also matched by `broad`."""
        if broad == narrow or self.matches_everything(broad):
            return True
        if self.name == "keyMatch" and "*" in broad:
            if "*" in narrow:
                return narrow[: narrow.find("*")].startswith(broad[: broad.find("*")])
            return self.matches(narrow, broad)
        exact = self.exact(narrow)
        return exact is not None and self.matches(exact, broad)

    def problem(self, pattern: str) -> Problem | None:
        """Why `pattern` is broken or misleading under this function, if it is.

        Under `==` only `*` is reported: `{name}` is how route templates are written
        (`/todos/{todoId}`, what AuthZEN API gateways send as the resource id), and a
        template compared exactly is meant."""
        if self.name == "==" and "*" in pattern:
            return Problem(
                "PL105",
                f"the matcher compares with ==, so {pattern!r} is not a pattern: it matches "
                "only a request carrying exactly that text",
            )
        if self.name == "keyMatch":
            star = pattern.find("*")
            if star >= 0 and pattern[star:].strip("*"):
                return Problem(
                    "PL008",
                    f"keyMatch ignores everything after the first '*': {pattern!r} matches "
                    f"every value starting with {pattern[:star]!r}",
                )
            return None
        if self.regex is None:
            return None
        regex = self.regex(pattern)
        try:
            parsed = _sre.parse(regex)
        except (re.error, OverflowError, RecursionError) as exc:
            return Problem("PL007", f"{self.name} cannot compile {pattern!r}: {exc}")
        why = _never_matches(parsed)
        if why:
            return Problem("PL104", f"{pattern!r} can never match a request: {why}")
        return None


def _keymatch2_regex(pattern: str) -> str:
    p = pattern.replace("/*", "/.*")
    p = _KEY_MATCH2.sub(r"\g<1>[^\/]+\g<2>", p, 0)
    return "^" + ("(.*)" if p == "*" else p) + "$"


def _keymatch3_regex(pattern: str) -> str:
    p = pattern.replace("/*", "/.*")
    return "^" + _KEY_MATCH3.sub(r"\g<1>[^\/]+\g<2>", p) + "$"


def _keymatch45_regex(pattern: str) -> str:
    p = pattern.replace("/*", "/.*")
    return "^" + _KEY_MATCH5.sub("([^/]+)", p) + "$"


def _exact_or_star(value: str, pattern: str) -> bool:
    return pattern == "*" or value == pattern


FUNCTIONS: dict[str, PatternFunction] = {
    f.name: f
    for f in (
        PatternFunction("==", lambda v, p: v == p),
        PatternFunction("==|*", _exact_or_star),
        PatternFunction("keyMatch", casbin_util.key_match),
        PatternFunction("keyMatch2", casbin_util.key_match2, _keymatch2_regex),
        PatternFunction("keyMatch3", casbin_util.key_match3, _keymatch3_regex),
        PatternFunction("keyMatch4", casbin_util.key_match4, _keymatch45_regex),
        PatternFunction("keyMatch5", casbin_util.key_match5, _keymatch45_regex),
        PatternFunction("regexMatch", casbin_util.regex_match, lambda p: p),
        PatternFunction("globMatch", casbin_util.glob_match),
    )
}


def _is_control(code: int) -> bool:
    return unicodedata.category(chr(code)) in ("Cc", "Cf", "Zl", "Zp")


def _needs_control_char(op: Any, arg: Any) -> bool:
    name = str(op)
    if name == "LITERAL":
        return _is_control(arg)
    if name == "IN":
        items = list(arg)
        if not items or any(str(o) not in ("LITERAL", "RANGE") for o, _ in items):
            return False
        for o, a in items:
            codes = [a] if str(o) == "LITERAL" else range(a[0], min(a[1], a[0] + 512) + 1)
            if not all(_is_control(c) for c in codes):
                return False
        return True
    return False


def _never_matches(parsed: Any) -> str | None:
    """A reason no request value can match this parsed regex, or None (maybe it can).

    Checks only the top-level sequence, where every item is required; that keeps the
    answer certain. Multiline regexes are not judged.
    """
    if parsed.getwidth()[0] > MAX_REQUEST_VALUE:
        return f"its shortest match is longer than {MAX_REQUEST_VALUE} characters"
    if parsed.state.flags & re.MULTILINE:
        return None
    items = list(parsed)
    for i, (op, arg) in enumerate(items):
        name = str(op)
        if name == "AT" and str(arg) in ("AT_END", "AT_END_STRING"):
            rest = _sre.SubPattern(parsed.state, items[i + 1 :])
            if rest.getwidth()[0] > 0:
                return "it requires text after the end anchor"
        if name == "AT" and str(arg) in ("AT_BEGINNING", "AT_BEGINNING_STRING") and i > 0:
            before = _sre.SubPattern(parsed.state, items[:i])
            if before.getwidth()[0] > 0:
                return "it requires text before the start anchor"
        if _needs_control_char(op, arg):
            return "it requires a control character, which no request value contains"
    return None
