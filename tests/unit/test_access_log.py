"""The per-request log line written directly equals the line loguru writes."""

from __future__ import annotations

import io
import json
from typing import Any

from loguru import logger

from app.observability.logging import info_event, request_id_var, setup_logging

FIELDS: dict[str, Any] = {
    "method": "POST",
    "route": "/api/v1/authz/check",
    "status": 200,
    "duration_ms": 0.25,
    "client_ip": "127.0.0.1",
    "authorization": "Bearer abcdefghijklmnop",
    "note": "mail bob@example.com token eyJhbGciOi.eyJzdWIi.c2ln",
    "level": "shadowed",
}


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    out = [json.loads(line) for line in stream.getvalue().splitlines()]
    for line in out:
        assert line.pop("ts").endswith("+00:00")
    return out


def test_direct_line_equals_loguru_line() -> None:
    stream = io.StringIO()
    remove = setup_logging(level="INFO", json=True, stream=stream)
    token = request_id_var.set("req_test")
    try:
        info_event("http.request", "app.api.middleware", **FIELDS)  # direct
        extra = logger.add(lambda _: None, level="INFO")
        try:
            info_event("http.request", "app.api.middleware", **FIELDS)  # through loguru
        finally:
            logger.remove(extra)
    finally:
        request_id_var.reset(token)
        remove()
    direct, through_loguru = lines(stream)
    through_loguru["logger"] = "app.api.middleware"  # loguru names the calling module
    assert direct == through_loguru
    assert direct["authorization"] == "***"
    assert "bob@" not in direct["note"] and "eyJzdWIi" not in direct["note"]
    assert direct["field_level"] == "shadowed" and direct["level"] == "INFO"
    assert direct["request_id"] == "req_test"


def test_direct_path_respects_the_level() -> None:
    stream = io.StringIO()
    remove = setup_logging(level="WARNING", json=True, stream=stream)
    try:
        info_event("http.request", "app.api.middleware", **FIELDS)
    finally:
        remove()
    assert stream.getvalue() == ""
