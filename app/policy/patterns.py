"""What a rule value means under the function the matcher compares it with.

Lint and diff reason about rules without running requests: does one pattern cover another
(every request the narrow one matches, the broad one matches too), is a value valid for its
function, can it ever match a request at all. Each answer here is *sound*: `covers` says True
only when it is certain, so a lint finding built on it is never a false alarm.

A request value (resource, action, domain) is 1-255 characters without control characters:
the API refuses anything else, and rule values pass the same check (`rules.value_problem`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from casbin import util as casbin_util

MAX_REQUEST_VALUE = 255
_KEY_MATCH2: re.Pattern[str] = casbin_util.builtin_operators.KEY_MATCH2_PATTERN
_KEY_MATCH3: re.Pattern[str] = casbin_util.builtin_operators.KEY_MATCH3_PATTERN
_KEY_MATCH5: re.Pattern[str] = casbin_util.builtin_operators.KEY_MATCH5_PATTERN
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
            flags = re.compile(regex).flags
        except (re.error, OverflowError, RecursionError) as exc:
            return Problem("PL007", f"{self.name} cannot compile {pattern!r}: {exc}")
        why = _never_matches(regex, flags)
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


_ESCAPED = {"a": 7, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11}
_HEX_DIGITS = {"x": 2, "u": 4, "U": 8}
_OCTAL = "01234567"
_FLAGS = "aiLmsux"


class _Unsure(Exception):
    """The regex uses something `_Reader` does not judge: make no claim about it."""


@dataclass(frozen=True, slots=True)
class _Item:
    """One item of a regex sequence: the fewest characters it matches, and what it is when
    that matters: "begin" / "end" (an anchor), "control" (one required control character)."""

    min_width: int
    kind: str = ""
    inline: tuple[_Item, ...] = ()  # a plain `(?:...)` group's items, part of the sequence


class _Reader:
    """Reads a regex that `re.compile` accepted, for what `_never_matches` needs: the items of
    each sequence with their least width. Anything it does not know gives a width of 0 (a
    lower bound) or `_Unsure`, so every claim built on it stays certain."""

    def __init__(self, regex: str, *, verbose: bool) -> None:
        self.text = regex
        self.at = 0
        self.verbose = verbose

    def branches(self) -> list[list[_Item]]:
        """The alternatives up to the next unmatched `)` or the end."""
        out: list[list[_Item]] = [[]]
        while True:
            self._skip_blank()
            if self.at >= len(self.text) or self.text[self.at] == ")":
                return out
            if self.text[self.at] == "|":
                self.at += 1
                out.append([])
                continue
            item = self._atom()
            if item is None:
                continue
            item = self._quantified(item)
            out[-1].extend(item.inline or (item,))

    def _skip_blank(self) -> None:
        """Whitespace and `#` comments outside classes mean nothing under re.VERBOSE."""
        while self.verbose and self.at < len(self.text):
            char = self.text[self.at]
            if char.isspace():
                self.at += 1
            elif char == "#":
                end = self.text.find("\n", self.at)
                self.at = len(self.text) if end < 0 else end + 1
            else:
                return

    def _quantified(self, item: _Item) -> _Item:
        self._skip_blank()
        text, at = self.text, self.at
        least: int | None = None
        if at < len(text) and text[at] in "*?":
            least, self.at = 0, at + 1
        elif at < len(text) and text[at] == "+":
            least, self.at = 1, at + 1
        elif at < len(text) and text[at] == "{":
            found = re.match(r"\{([0-9]*)(,[0-9]*)?\}", text[at:])
            if found and (found.group(1) or found.group(2)):
                least, self.at = int(found.group(1) or 0), at + found.end()
        if least is None:
            return item
        if self.at < len(text) and text[self.at] in "?+":  # lazy or possessive
            self.at += 1
        return _Item(item.min_width * least)

    def _atom(self) -> _Item | None:
        char = self.text[self.at]
        self.at += 1
        if char == "(":
            return self._group()
        if char == "[":
            return self._class()
        if char == "\\":
            return self._escape()
        if char in "^$":
            return _Item(0, "begin" if char == "^" else "end")
        if char == ".":
            return _Item(1)
        return _Item(1, "control" if _is_control(ord(char)) else "")

    def _inner(self) -> int:
        """The least width of a group's content, with its closing `)` read."""
        return self._inner_item().min_width

    def _inner_item(self) -> _Item:
        """A group's content as one item, with its closing `)` read; one sequence stays
        open to inlining (`inline`), as `(?:ab)` is `ab`."""
        branches = self.branches()
        if self.text[self.at] != ")":
            raise _Unsure
        self.at += 1
        width = min(sum(i.min_width for i in branch) for branch in branches)
        return _Item(width, inline=tuple(branches[0]) if len(branches) == 1 else ())

    def _group(self) -> _Item | None:
        text = self.text
        if not text.startswith("?", self.at):
            return _Item(self._inner())
        self.at += 1
        head = text[self.at]
        if head == "#":
            self.at = text.index(")", self.at) + 1
            return None
        if text.startswith("P<", self.at):
            self.at = text.index(">", self.at) + 1
            return _Item(self._inner())
        if text.startswith("P=", self.at):
            self.at = text.index(")", self.at) + 1
            return _Item(0)  # a back reference: at least nothing
        if head == ":":
            self.at += 1
            return self._inner_item()
        if head == ">":
            self.at += 1
            return _Item(self._inner())
        if head in "=!" or text.startswith(("<=", "<!"), self.at):
            self.at += 1 if head in "=!" else 2
            self._inner()
            return _Item(0)  # a lookaround consumes nothing
        if head == "(":
            self.at = text.index(")", self.at) + 1
            self._inner()
            return _Item(0)  # a conditional: either branch, or nothing
        flags = re.match(rf"([{_FLAGS}]*)(-[{_FLAGS}]*)?([:)])", text[self.at :])
        if flags is None:
            raise _Unsure
        self.at += flags.end()
        if flags.group(3) == ")":
            return None  # global flags: `re.compile` reported them
        if "x" in flags.group(0):
            raise _Unsure  # verbose inside a group only: not read here
        return _Item(self._inner())

    def _class(self) -> _Item:
        text = self.text
        negated = text.startswith("^", self.at)
        self.at += negated
        members: list[tuple[int, int] | None] = []  # code ranges; None for a category
        while not members or text[self.at] != "]":  # a leading `]` is a member
            low = self._class_char()
            if low is not None and text[self.at] == "-" and text[self.at + 1] != "]":
                self.at += 1
                high = self._class_char()
                members.append((low, high) if high is not None else None)
            else:
                members.append((low, low) if low is not None else None)
        self.at += 1
        controls = not negated and all(
            m is not None and all(_is_control(c) for c in range(m[0], min(m[1], m[0] + 512) + 1))
            for m in members
        )
        return _Item(1, "control" if controls else "")

    def _class_char(self) -> int | None:
        """One character of a class as its code; None for a category such as `\\d`."""
        char = self.text[self.at]
        self.at += 1
        if char != "\\":
            return ord(char)
        if self.text[self.at] == "b":
            self.at += 1
            return 8  # backspace inside a class
        item, code = self._escaped()
        return code if item.kind != "class" else None

    def _escape(self) -> _Item:
        item, _ = self._escaped()
        return _Item(item.min_width) if item.kind == "class" else item

    def _escaped(self) -> tuple[_Item, int | None]:
        """The escape after a backslash: its item, and its code when it is one character."""
        text = self.text
        char = text[self.at]
        self.at += 1
        if char == "A":
            return _Item(0, "begin"), None
        if char == "Z":
            return _Item(0, "end"), None
        if char in "bB":
            return _Item(0), None
        if char in "dDsSwW":
            return _Item(1, "class"), None
        if char in _HEX_DIGITS:
            size = _HEX_DIGITS[char]
            code = int(text[self.at : self.at + size], 16)
            self.at += size
        elif char == "N":
            end = text.index("}", self.at)
            code = ord(unicodedata.lookup(text[self.at + 1 : end]))
            self.at = end + 1
        elif char == "0":
            digits = re.match(f"[{_OCTAL}]{{0,2}}", text[self.at :])
            assert digits is not None
            code = int("0" + digits.group(0), 8)
            self.at += digits.end()
        elif char.isdigit():
            octal = re.match(f"[{_OCTAL}]{{2}}", text[self.at :])
            if char in _OCTAL and octal:
                code = int(char + octal.group(0), 8)
                self.at += 2
            else:
                self.at += 1 if text[self.at : self.at + 1].isdigit() else 0
                return _Item(0), None  # a back reference: at least nothing
        else:
            code = _ESCAPED.get(char, ord(char))
        return _Item(1, "control" if _is_control(code) else ""), code


def _never_matches(regex: str, flags: int) -> str | None:
    """A reason no request value can match `regex` (compiled with `flags`), or None (maybe
    it can).

    Checks only the top-level sequence, where every item is required; that keeps the
    answer certain. Multiline regexes are not judged.
    """
    try:
        branches = _Reader(regex, verbose=bool(flags & re.VERBOSE)).branches()
    except (_Unsure, IndexError, ValueError, KeyError):
        return None
    widths = [sum(i.min_width for i in branch) for branch in branches]
    if min(widths) > MAX_REQUEST_VALUE:
        return f"its shortest match is longer than {MAX_REQUEST_VALUE} characters"
    if flags & re.MULTILINE or len(branches) > 1:
        return None
    items = branches[0]
    for i, item in enumerate(items):
        if item.kind == "end" and sum(x.min_width for x in items[i + 1 :]) > 0:
            return "it requires text after the end anchor"
        if item.kind == "begin" and sum(x.min_width for x in items[:i]) > 0:
            return "it requires text before the start anchor"
        if item.kind == "control":
            return "it requires a control character, which no request value contains"
    return None
