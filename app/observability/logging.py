"""Structured JSON logs through loguru, with the request id bound and PII masked.

Every line is one JSON object: ``{"ts", "level", "event", "logger", "request_id", ...fields}``.
Fields are passed as keyword arguments (``logger.info("auth.token.created", user_id=...)``).
Secrets (passwords, tokens, keys, authorization headers) never reach the output: the masking
runs on every record, whatever the caller passed, including stdlib and uvicorn records.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import sys
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

import orjson
from loguru import logger

if TYPE_CHECKING:
    from loguru import Message, Record

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

_SECRET_KEYS = re.compile(
    r"pass(word|wd)?|secret|token|authorization|cookie|api[_-]?key|private|credential|fingerprint",
    re.IGNORECASE,
)
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}")
_EMAIL = re.compile(r"\b([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})\b")
_MASK = "***"
_RESERVED = {"ts", "level", "event", "logger", "request_id"}
_INFO = 20


# Every pattern above needs one of these; one search rules out most texts (a log line per
# request passes here several times, so the common case must be cheap).
_MAYBE_SECRET = re.compile(r"eyJ|(?i:bearer|basic)|@")


def mask_text(text: str) -> str:
    """Hide tokens, credentials and e-mail local parts inside free text."""
    if _MAYBE_SECRET.search(text) is None:
        return text
    text = _JWT.sub("eyJ" + _MASK, text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {_MASK}", text)
    return _EMAIL.sub(lambda m: f"{m.group(1)}{_MASK}@{m.group(2)}", text)


@functools.lru_cache(maxsize=4096)
def _secret_key(key: str) -> bool:
    return bool(_SECRET_KEYS.search(key)) and not key.endswith(("_count", "_type", "_id_hash"))


def mask_value(key: str, value: Any) -> Any:
    if _secret_key(key):
        return _MASK if value not in (None, "", [], {}) else value
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, Mapping):
        return {str(k): mask_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [mask_value(key, v) for v in value]
    return value


def _json_default(value: Any) -> Any:
    return str(value)


def render(record: Record) -> bytes:
    """One masked JSON object for a loguru record."""
    out: dict[str, Any] = {
        "ts": record["time"].astimezone(UTC).isoformat(timespec="milliseconds"),
        "level": record["level"].name,
        "event": mask_text(record["message"]),
        "logger": record["extra"].get("logger_name") or record["name"],
        "request_id": record["extra"].get("request_id") or request_id_var.get(),
    }
    for key, value in record["extra"].items():
        if key in ("logger_name", "request_id"):
            continue
        out[f"field_{key}" if key in _RESERVED else key] = mask_value(key, value)
    if record["exception"] is not None:
        exc_type, exc_value, _ = record["exception"]
        out["exception"] = {
            "type": getattr(exc_type, "__name__", str(exc_type)),
            "message": mask_text(str(exc_value)),
            "traceback": mask_text(_format_traceback(record)),
        }
    return orjson.dumps(out, default=_json_default, option=orjson.OPT_NON_STR_KEYS)


def _format_traceback(record: Record) -> str:
    import traceback

    exc = record["exception"]
    if exc is None:
        return ""
    return "".join(traceback.format_exception(exc.type, exc.value, exc.traceback))


class _JsonSink:
    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def __call__(self, message: Message) -> None:
        self.write_line(render(message.record))

    def write_line(self, line: bytes) -> None:
        self._stream.write(line.decode() + "\n")
        self._stream.flush()


_second: tuple[int, str] = (-1, "")  # an epoch second and its ISO text, swapped whole


def _utc_timestamp() -> str:
    """`datetime.now(UTC).isoformat(timespec="milliseconds")`, formatted once per second."""
    global _second
    now = time.time()
    second, text = _second
    if int(now) != second:
        second = int(now)
        text = datetime.fromtimestamp(second, UTC).isoformat()[:-6]
        _second = (second, text)
    return f"{text}.{int((now - second) * 1000):03d}+00:00"


@dataclass(frozen=True)
class _Direct:
    sink: _JsonSink
    sink_id: int
    level_no: int


_direct: _Direct | None = None  # the JSON sink of `setup_logging`, while it is installed


def info_event(event: str, logger_name: str, **fields: Any) -> None:
    """The line `logger.info(event, **fields)` would write from module `logger_name`.

    For per-request events: loguru's per-call machinery costs ~30 µs, a third of a fast
    decision request. While the JSON sink of `setup_logging` is loguru's only sink, the same
    masked line is rendered and written here directly; otherwise (text logs, extra sinks
    such as a test's) the event goes through loguru as usual.
    """
    direct = _direct
    handlers = getattr(getattr(logger, "_core", None), "handlers", None)
    if (
        direct is None
        or not isinstance(handlers, dict)
        or len(handlers) != 1
        or direct.sink_id not in handlers
    ):
        logger.opt(depth=1).info(event, **fields)
        return
    if direct.level_no > _INFO:
        return
    out: dict[str, Any] = {
        "ts": _utc_timestamp(),
        "level": "INFO",
        "event": mask_text(event),
        "logger": logger_name,
        "request_id": request_id_var.get(),
    }
    for key, value in fields.items():
        out[f"field_{key}" if key in _RESERVED else key] = mask_value(key, value)
    direct.sink.write_line(orjson.dumps(out, default=_json_default, option=orjson.OPT_NON_STR_KEYS))


def _console_value(value: Any) -> str:
    if isinstance(value, str) and value and " " not in value and '"' not in value:
        return value
    return orjson.dumps(value, default=_json_default).decode()


def _plain_format(record: Record) -> str:
    """A console line for people: `12:00:01.123 INFO  event key=value ... [request id]`."""
    rid = record["extra"].get("request_id") or request_id_var.get()
    fields = {
        k: v
        for k, v in record["extra"].items()
        if k not in ("logger_name", "request_id") and not k.startswith("_")
    }
    masked = mask_value("", fields)
    pairs = " ".join(f"{k}={_console_value(v)}" for k, v in masked.items())
    record["extra"]["_fields"] = (" " + pairs if pairs else "") + (f" [{rid}]" if rid else "")
    record["extra"]["_msg"] = mask_text(record["message"])
    return "{time:HH:mm:ss.SSS} {level:<7} {extra[_msg]}{extra[_fields]}\n{exception}"


class InterceptHandler(logging.Handler):
    """Route stdlib logging (uvicorn, sqlalchemy, alembic, casbin) into loguru."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        message = record.getMessage()
        logger.opt(depth=0, exception=record.exc_info).bind(logger_name=record.name).log(
            level, message
        )


def setup_logging(
    *, level: str = "INFO", json: bool | None = True, stream: TextIO | None = None
) -> Callable[[], None]:
    """Configure loguru and stdlib logging; returns a function that removes the sink.
    `json=None`: JSON lines unless the stream is a terminal (then readable console lines)."""
    global _direct
    target = stream or sys.stdout
    if json is None:
        isatty = getattr(target, "isatty", None)
        json = not (callable(isatty) and isatty())
    logger.remove()
    _direct = None
    if json:
        sink = _JsonSink(target)
        sink_id = logger.add(sink, level=level, format="{message}", backtrace=False, diagnose=False)
        _direct = _Direct(sink, sink_id, logger.level(level).no)
    else:
        sink_id = logger.add(target, level=level, format=_plain_format, diagnose=False)

    logging.basicConfig(handlers=[InterceptHandler()], level=0, force=True)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "fastapi"):
        std = logging.getLogger(name)
        std.handlers = []
        std.propagate = True
    # uvicorn's access log is replaced by our own `http.request` event.
    logging.getLogger("uvicorn.access").disabled = True
    # Casbin logs every single decision at INFO/WARNING; our own events cover decisions.
    logging.getLogger("casbin").setLevel(logging.ERROR)
    logging.getLogger("casbin").propagate = False
    for noisy in (
        "sqlalchemy",
        "alembic",
        "watchfiles",
        "httpx",
        "httpcore",
        "asyncio",
        "aiosqlite",  # logs every statement with its parameters at DEBUG
        "authlib",  # its DEBUG lines may print client credentials and tokens
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    def remove() -> None:
        global _direct
        if _direct is not None and _direct.sink_id == sink_id:
            _direct = None
        with contextlib.suppress(ValueError):
            logger.remove(sink_id)

    return remove
