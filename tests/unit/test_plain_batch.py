"""`parse_plain_batch` builds exactly the requests `BatchCheckRequest` would, or declines.

Differential against the pydantic model: for every body, either the fast parser declines
(None: the model then decides, errors included) or the model accepts the body too and both
give equal requests. Bodies that the model refuses must never be accepted by the fast parser.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from app.api.schemas.decisions import BatchCheckRequest, parse_plain_batch
from app.policy.request import DecisionRequest

MODEL = TypeAdapter(BatchCheckRequest)


def model_requests(body: bytes) -> list[DecisionRequest] | None:
    try:
        parsed = MODEL.validate_json(body)
    except ValidationError:
        return None
    return [item.to_request() for item in parsed.checks]


def same(a: DecisionRequest, b: DecisionRequest) -> bool:
    return a.describe() == b.describe() and a.fingerprint() == b.fingerprint()


def assert_agrees(body: bytes) -> list[DecisionRequest] | None:
    fast = parse_plain_batch(body)
    if fast is None:
        return None
    expected = model_requests(body)
    assert expected is not None, body[:200]
    assert len(fast) == len(expected)
    assert all(same(a, b) for a, b in zip(fast, expected, strict=True))
    assert all(r.subject._kind == "subject" and r.action._kind == "action" for r in fast)
    return fast


def test_plain_items_are_parsed_directly() -> None:
    checks: list[dict[str, object]] = [
        {"subject": f"user-{i}", "resource": f"data-{i}", "action": "read"} for i in range(1000)
    ]
    checks[3]["domain"] = "tenant-1"
    checks[4]["explain"] = False
    checks[5]["unknown"] = {"ignored": True}
    parsed = assert_agrees(orjson.dumps({"checks": checks}))
    assert parsed is not None and len(parsed) == 1000
    assert parsed[3].domain == "tenant-1" and parsed[0].domain is None
    assert assert_agrees(b'{"checks": []}') == []


def test_everything_else_is_left_to_the_model() -> None:
    item = {"subject": "a", "resource": "r", "action": "read"}
    declined: list[Any] = [
        {"checks": [item] * 1001},  # too many: REQ_002 from the model
        {"checks": [{**item, "subject": ""}]},
        {"checks": [{**item, "subject": "x" * 256}]},
        {"checks": [{**item, "subject": "a\x00b"}]},
        {"checks": [{**item, "subject": 5}]},
        {"checks": [{**item, "subject": {"id": "alice"}}]},  # entity objects: the model's job
        {"checks": [{**item, "explain": True}]},
        {"checks": [{**item, "domain": ""}]},
        {"checks": [{"subject": "a", "resource": "r"}]},
        {"checks": [item], "explain": True},
        {"checks": [item], "explain": None},
        {"checks": "nope"},
        {"checks": [[1]]},
        [item],
    ]
    for value in declined:
        assert parse_plain_batch(json.dumps(value).encode()) is None, value
    for raw in (b"", b"{", b'{"checks": [] } x', b'{"checks": [{"subject": "\\ud800"}]}', b"NaN"):
        assert parse_plain_batch(raw) is None, raw


TEXT = st.sampled_from(["alice", "bob", "", "api:schemas", "read", "x" * 256, "\u00a0", "é"])
FIELD = TEXT | st.none() | st.integers() | st.booleans() | st.text(max_size=6)
ITEM = st.fixed_dictionaries(
    {},
    optional={
        "subject": FIELD | st.fixed_dictionaries({"id": TEXT}),
        "resource": FIELD,
        "action": FIELD,
        "domain": FIELD,
        "explain": st.none() | st.booleans() | st.integers(),
        "other": FIELD,
    },
)


@settings(max_examples=300, deadline=None)
@given(items=st.lists(ITEM, max_size=4), explain=st.sampled_from([None, True, False, 1, "x"]))
def test_random_batches_agree_with_the_model(items: list[dict[str, Any]], explain: Any) -> None:
    body: dict[str, Any] = {"checks": items}
    if explain is not None:
        body["explain"] = explain
    assert_agrees(json.dumps(body).encode())
