"""Every operation of /openapi.json shows an example of each request body, each success
response and each documented error (with the details the service really sends)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.integration


def _resolve(schema: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str):
        resolved: dict[str, Any] = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
        return resolved
    return schema


def _examples(content: dict[str, Any]) -> list[Any]:
    if "example" in content:
        return [content["example"]]
    return [e["value"] for e in content.get("examples", {}).values()]


def _required_present(example: Any, schema: dict[str, Any], spec: dict[str, Any]) -> list[str]:
    schema = _resolve(schema, spec)
    if not isinstance(example, dict) or "properties" not in schema:
        return []
    return [name for name in schema.get("required", []) if name not in example]


async def test_every_operation_has_examples(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    problems: list[str] = []
    operations = 0
    for path, item in spec["paths"].items():
        for method, op in item.items():
            operations += 1
            where = f"{method.upper()} {path}"
            for media, content in op.get("requestBody", {}).get("content", {}).items():
                examples = _examples(content)
                if not examples or examples[0] in (None, {}):
                    problems.append(f"{where}: request body {media} has no example")
                for example in examples:
                    missing = _required_present(example, content.get("schema", {}), spec)
                    if missing:
                        problems.append(f"{where}: body example lacks {missing}")
            errors = [code for code in op["responses"] if code[0] in "45"]
            if not errors:
                problems.append(f"{where}: documents no error response")
            for code, response in op["responses"].items():
                for media, content in response.get("content", {}).items():
                    examples = _examples(content)
                    if not examples or examples[0] is None:
                        problems.append(f"{where}: {code} {media} has no example")
                        continue
                    if code[0] == "2":
                        for example in examples:
                            missing = _required_present(example, content.get("schema", {}), spec)
                            if missing:
                                problems.append(f"{where}: {code} example lacks {missing}")
                    elif path.startswith(("/api/", "/access/")) and media == "application/json":
                        for example in examples:
                            error = example.get("error") if isinstance(example, dict) else None
                            if (
                                isinstance(error, dict)
                                and error.get("code") == "REQ_001"
                                and not error["details"].get("fields")
                            ):
                                problems.append(f"{where}: REQ_001 example has no details")
    assert operations >= 30
    assert problems == [], "\n".join(problems)


async def test_error_examples_carry_real_details(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    check = spec["paths"]["/api/v1/authz/check"]["post"]["responses"]
    req = check["422"]["content"]["application/json"]["examples"]["REQ_001"]["value"]
    assert req["error"]["details"]["fields"][0]["field"] == "action"
    rate = check["429"]["content"]["application/json"]["examples"]["RATE_001"]["value"]
    assert rate["error"]["details"]["limit"] and rate["error"]["details"]["retry_after"]
    # the documented REQ_001 shape is the one the service sends
    sent = await client.post("/api/v1/authz/check", json={"subject": "a", "resource": "b"})
    assert sent.status_code == 422
    assert set(sent.json()["error"]["details"]["fields"][0]) == set(
        req["error"]["details"]["fields"][0]
    )
