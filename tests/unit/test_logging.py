"""JSON log lines: request id bound, stdlib records routed, secrets and PII masked."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from typing import Any

import orjson
from loguru import logger

from app.observability.logging import mask_text, request_id_var, setup_logging

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXZhbHVl"


def capture(emit: Callable[[], object]) -> list[dict[str, Any]]:
    stream = io.StringIO()
    remove = setup_logging(level="DEBUG", json=True, stream=stream)
    try:
        emit()
    finally:
        remove()
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


def test_json_line_with_request_id_and_fields() -> None:
    def emit() -> None:
        token = request_id_var.set("req_test")
        try:
            logger.info("auth.token.created", user_id="u1", scopes=["a:read"])
        finally:
            request_id_var.reset(token)

    (line,) = capture(emit)
    assert line["event"] == "auth.token.created"
    assert line["request_id"] == "req_test"
    assert line["user_id"] == "u1" and line["scopes"] == ["a:read"]
    assert line["level"] == "INFO" and "ts" in line


def test_secrets_are_masked_by_key_and_by_shape() -> None:
    def emit() -> None:
        logger.info(
            f"login with {JWT} and Authorization: Bearer abcdefghijklmnop",
            password="hunter2",
            refresh_token="r-123",
            client_secret="s3cr3t",
            headers={"authorization": "Bearer xyz", "accept": "json"},
            email="alice.smith@example.com",
        )

    (line,) = capture(emit)
    text = orjson.dumps(line).decode()
    for secret in ("hunter2", "r-123", "s3cr3t", "xyz", JWT, "abcdefghijklmnop", "alice.smith"):
        assert secret not in text
    assert line["headers"]["accept"] == "json"
    assert line["email"] == "a***@example.com"


def test_stdlib_records_are_routed() -> None:
    def emit() -> None:
        logging.getLogger("uvicorn.error").warning("Something from uvicorn")

    lines = capture(emit)
    assert any(
        entry["logger"] == "uvicorn.error" and entry["event"] == "Something from uvicorn"
        for entry in lines
    )


def test_exceptions_are_logged_with_traceback_masked() -> None:
    def emit() -> None:
        try:
            raise ValueError(f"bad token {JWT}")
        except ValueError:
            logger.exception("boom")

    (line,) = capture(emit)
    assert line["exception"]["type"] == "ValueError"
    assert JWT not in line["exception"]["traceback"]


def test_mask_text_leaves_ordinary_text() -> None:
    assert mask_text("alice may write api:schemas") == "alice may write api:schemas"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_console_lines_on_a_terminal_json_otherwise() -> None:
    for stream, is_json in ((_Terminal(), False), (io.StringIO(), True)):
        remove = setup_logging(level="INFO", json=None, stream=stream)
        try:
            logger.info("service.started", url="http://127.0.0.1:8001", password="hunter2")
        finally:
            remove()
        (line,) = stream.getvalue().splitlines()
        if is_json:
            assert orjson.loads(line)["url"] == "http://127.0.0.1:8001"
        else:
            assert not line.startswith("{") and " INFO    service.started " in line
            assert "url=http://127.0.0.1:8001" in line and "password=***" in line
            assert "hunter2" not in line
