"""Decision logs: every decision becomes one record, off the request path, in every sink."""

from __future__ import annotations

import gzip
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from typer.testing import CliRunner

from app.cli import cli
from app.decisions.log import DecisionLog, DecisionLogConfig, DecisionQuery
from app.main import create_app
from tests.conftest import SettingsFactory
from tests.support.apps import running
from tests.support.policies import EXAMPLES
from tests.support.tokens import AppFactory, bearer
from tests.support.waiting import wait_for

KEY = "decision-log-admin-key-0123456789"
ADMIN = {"X-API-Key": KEY}


def _records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


async def _until_records(path: Path, count: int) -> list[dict[str, Any]]:
    async def enough() -> bool:
        return len(_records(path)) >= count

    await wait_for(enough, timeout=20)
    return _records(path)


def _metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_single_batch_and_authzen_decisions_are_recorded(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    stream = tmp_path / "log" / "decisions.jsonl"
    app = create_app(
        make_settings(
            decision_log_enabled=True,
            decision_log_path=str(stream),
            decision_log_flush_interval=0.05,
            admin_api_key=KEY,
        )
    )
    async with running(app) as client:
        one = await client.post(
            "/api/v1/authz/check",
            json={"subject": "alice", "resource": "api:schemas", "action": "write"},
            headers={"X-Request-Id": "req-single-1"},
        )
        assert one.status_code == 200 and one.json()["allowed"] is True
        batch = await client.post(
            "/api/v1/authz/check/batch",
            json={
                "checks": [
                    {"subject": "bob", "resource": "api:schemas", "action": "read"},
                    {"subject": "bob", "resource": "api:schemas", "action": "write"},
                ]
            },
        )
        assert batch.status_code == 200
        zen = await client.post(
            "/access/v1/evaluation",
            json={
                "subject": {"type": "user", "id": "bob"},
                "resource": {"type": "api", "id": "api:ontologies"},
                "action": {"name": "read"},
            },
        )
        assert zen.status_code == 200 and zen.json()["decision"] is True
        after = await client.post(
            "/api/v1/authz/check",
            json={"subject": "bob", "resource": "api:ontologies", "action": "read"},
        )
        assert after.status_code == 200

        records = await _until_records(stream, 5)
        by_id = {r["decision_id"]: r for r in records}
        first = by_id[one.json()["decision_id"]]
        assert first["request_id"] == "req-single-1" == one.headers["x-request-id"]
        assert first["kind"] == "check" and first["result"] == "allow"
        assert (first["subject"], first["resource"], first["action"]) == (
            "alice",
            "api:schemas",
            "write",
        )
        assert first["rule"]["rule"][:3] == ["developer", "api:schemas", "write"]
        assert first["role_path"] == ["alice", "developer"]
        assert first["policy_revision"] == app.state.services.engine.revision
        assert first["evaluator"] == "indexed" and first["latency_ms"] >= 0
        assert first["timestamp"].endswith("Z") and first["caller"] is None
        batch_ids = [r["decision_id"] for r in batch.json()["results"]]
        kinds = {by_id[i]["kind"] for i in batch_ids}
        assert kinds == {"batch"}
        assert [by_id[i]["result"] for i in batch_ids] == ["allow", "deny"]
        assert by_id[batch_ids[1]]["rule"] is None  # nothing matched: default deny
        zen_records = [r for r in records if r["kind"] == "authzen"]
        assert len(zen_records) == 1 and zen_records[0]["subject"]["id"] == "bob"
        assert zen_records[0]["subject"]["type"] == "user"
        assert by_id[after.json()["decision_id"]]["kind"] == "check"  # nothing carried over

        # queries: the admin endpoint (this instance) and the CLI (the stream file)
        denies = await client.get("/api/v1/decisions", params={"result": "deny"}, headers=ADMIN)
        assert denies.status_code == 200
        assert [r["decision_id"] for r in denies.json()["items"]] == [batch_ids[1]]
        by_subject = await client.get(
            "/api/v1/decisions", params={"subject": "alice"}, headers=ADMIN
        )
        assert [r["decision_id"] for r in by_subject.json()["items"]] == [one.json()["decision_id"]]
        assert (await client.get("/api/v1/decisions")).status_code == 401
        bad = await client.get(
            "/api/v1/decisions", params={"since": "2026-01-01T00:00"}, headers=ADMIN
        )
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "REQ_001"

        metrics = (await client.get("/metrics")).text
        assert _metric(metrics, "oms_auth_decision_log_records_total", outcome="logged") >= 5

    result = CliRunner().invoke(
        cli, ["decisions", "--file", str(stream), "--resource", "api:schemas", "--result", "allow"]
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in result.stdout.splitlines()]
    assert {r["decision_id"] for r in lines} == {one.json()["decision_id"], batch_ids[0]}
    missing = CliRunner().invoke(cli, ["decisions", "--file", str(tmp_path / "nope.jsonl")])
    assert missing.exit_code == 2 and "does not exist" in missing.output


async def test_allows_are_sampled_every_deny_is_kept_and_fields_masked(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    stream = tmp_path / "decisions.jsonl"
    app = create_app(
        make_settings(
            decision_log_enabled=True,
            decision_log_path=str(stream),
            decision_log_allow_sample_rate=0.0,
            decision_log_mask="subject,caller",
            decision_log_flush_interval=0.05,
        )
    )
    async with running(app) as client:
        checks = [
            {"subject": "bob", "resource": "api:schemas", "action": a}
            for a in ("read", "write") * 20
        ]
        r = await client.post("/api/v1/authz/check/batch", json={"checks": checks})
        assert r.status_code == 200
        denied = {x["decision_id"] for x in r.json()["results"] if not x["allowed"]}
        records = await _until_records(stream, 20)
        metrics = (await client.get("/metrics")).text
    assert {x["decision_id"] for x in records} == denied and len(denied) == 20
    assert all(x["result"] == "deny" and x["subject"] == "***" for x in records)
    assert _metric(metrics, "oms_auth_decision_log_records_total", outcome="sampled_out") == 20


async def test_v2_scope_decisions_are_recorded_with_the_caller(
    token_app_factory: AppFactory, tmp_path: Path
) -> None:
    stream = tmp_path / "decisions.jsonl"
    async with token_app_factory(
        decision_log_enabled=True,
        decision_log_path=str(stream),
        decision_log_flush_interval=0.05,
    ) as env:
        token = (await env.login("alice"))["access_token"]
        r = await env.http.post(
            "/api/v2/authz/check",
            json={"resource": "api:schemas", "action": "write"},
            headers=bearer(token),
        )
        assert r.status_code == 200 and r.json()["decided_by"] == "token_scope"
        records = await _until_records(stream, 1)
    record = next(x for x in records if x["decision_id"] == r.json()["decision_id"])
    assert record["kind"] == "v2" and record["evaluator"] == "token_scope"
    assert record["caller"] == "alice" and record["result"] == "allow"
    assert record["rule"] == {"scope": r.json()["matched_scope"]}


class _Receiver(http.server.BaseHTTPRequestHandler):
    batches: list[list[dict[str, Any]]]
    status = 200

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        assert self.headers["Content-Encoding"] == "gzip"
        type(self).batches.append(json.loads(gzip.decompress(body)))
        self.send_response(type(self).status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, type[_Receiver]]]:
    handler = type("Receiver", (_Receiver,), {"batches": [], "status": 200})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/logs", handler
    server.shutdown()
    server.server_close()


async def test_http_push_batches_and_a_full_buffer_drops_and_counts(
    make_settings: SettingsFactory, receiver: tuple[str, type[_Receiver]]
) -> None:
    url, handler = receiver
    app = create_app(
        make_settings(
            decision_log_enabled=True,
            decision_log_push_url=url,
            decision_log_push_buffer=10,
            decision_log_push_batch=4,
            decision_log_flush_interval=0.05,
        )
    )
    async with running(app) as client:
        checks = [{"subject": "bob", "resource": "api:schemas", "action": "read"}] * 6
        r = await client.post("/api/v1/authz/check/batch", json={"checks": checks})
        ids = {x["decision_id"] for x in r.json()["results"]}

        async def pushed() -> bool:
            return sum(len(b) for b in handler.batches) >= 6

        await wait_for(pushed, timeout=20)
        assert {x["decision_id"] for b in handler.batches for x in b} == ids
        assert max(len(b) for b in handler.batches) <= 4  # batched by push_batch

        handler.status = 503  # the collector is down: records pile up, then are dropped
        checks = [{"subject": "bob", "resource": "api:schemas", "action": "read"}] * 30
        r = await client.post("/api/v1/authz/check/batch", json={"checks": checks})
        assert r.status_code == 200  # never blocked by the sink

        async def dropped(c: httpx.AsyncClient = client) -> bool:
            text = (await c.get("/metrics")).text
            return _metric(text, "oms_auth_decision_log_push_failures_total") >= 1

        await wait_for(dropped, timeout=20)
        text = (await client.get("/metrics")).text
        assert _metric(text, "oms_auth_decision_log_records_total", outcome="push_dropped") == 20
        assert _metric(text, "oms_auth_decision_log_records_total", outcome="pushed") == 6


def test_a_full_queue_drops_and_counts_without_formatting() -> None:
    from app.decisions.service import DecisionResult
    from app.policy.decision import Decision
    from app.policy.request import DecisionRequest
    from app.policy.snapshot import PolicySnapshot
    from app.policy.sources import FileRuleSource, PolicyLoader
    from tests.conftest import POLICY_DIR

    model, rules = PolicyLoader(POLICY_DIR, [FileRuleSource(POLICY_DIR)]).read()
    snapshot = PolicySnapshot.build(model, rules, revision=7)
    log = DecisionLog(DecisionLogConfig(enabled=True, queue_size=3))
    request = DecisionRequest.of("viewer", "api:schemas", "read")
    result = DecisionResult(Decision(True, 7, "indexed"), "dec_x", False)
    log.decided(snapshot, [request, request], [result, result], 0.001, "batch")
    log.decided(snapshot, [request, request], [result, result], 0.001, "batch")  # over: dropped
    assert log.metrics.records.labels(outcome="dropped")._value.get() == 2
    found = log.recent(DecisionQuery(subject="viewer"))
    assert len(found) == 2 and found[0]["rule"]["rule"][:2] == ["viewer", "api:schemas"]
    assert found[0]["role_path"] == ["viewer"] and found[0]["policy_revision"] == 7


async def test_a_missing_property_is_recorded_with_the_decision(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    """A rule that reads a property nobody supplied does not match; the record says which."""
    stream = tmp_path / "decisions.jsonl"
    settings = make_settings(
        policy_dir=EXAMPLES / "abac",
        policy_source="files",
        decision_log_enabled=True,
        decision_log_path=str(stream),
        decision_log_flush_interval=0.05,
    )
    async with running(create_app(settings)) as client:
        stranger = {
            "subject": {"type": "user", "id": "sam"},
            "resource": {"type": "doc", "id": "doc:plan", "properties": {"owner": "alice"}},
            "action": "read",
        }
        answer = await client.post("/api/v1/authz/check", json=stranger)
        assert answer.status_code == 200 and answer.json()["allowed"] is False
        (record,) = await _until_records(stream, 1)
        assert record["result"] == "deny"
        assert record["missing_properties"] == ["subject.department"]


def test_lines_are_the_encoded_records_of_every_kind_of_decision() -> None:
    """The writer's direct encoding gives the same bytes as encoding each record's dict:
    allows, denies, cached answers, explained answers, domains, errors, typed entities."""
    import orjson

    from app.decisions.service import DecisionResult
    from app.errors import AuthzError, InvalidPolicy
    from app.policy.decision import Decision
    from app.policy.request import DecisionRequest, Entity
    from app.policy.snapshot import PolicySnapshot
    from app.policy.sources import FileRuleSource, PolicyLoader
    from tests.conftest import POLICY_DIR

    model, rules = PolicyLoader(POLICY_DIR, [FileRuleSource(POLICY_DIR)]).read()
    snapshot = PolicySnapshot.build(model, rules, revision=7)
    allow = DecisionRequest.of("viewer", "api:schemas", "read")
    deny = DecisionRequest.of("viewer", "api:schemas", "write")
    typed = DecisionRequest.of(
        Entity.typed("user", "viewer", {"team": "a"}, kind="subject"), "api:schemas", "read"
    )
    scoped = DecisionRequest.of("viewer", 'api:"quoted"', "read", domain="acme")
    requests = [allow, deny, allow, allow, typed, scoped, deny]
    results: list[DecisionResult | AuthzError] = [
        DecisionResult(snapshot.decide(allow), "dec_1", False),
        DecisionResult(snapshot.decide(deny), "dec_2", False),
        DecisionResult(Decision(True, 7, "indexed"), "dec_3", True),
        DecisionResult(snapshot.decide(allow, explain=True), "dec_4", False),
        DecisionResult(Decision(False, 7, "indexed", missing=("subject.x",)), "dec_5", False),
        DecisionResult(Decision(False, 7, "indexed"), "dec_6", False),
        InvalidPolicy("bad request"),
    ]
    log = DecisionLog(DecisionLogConfig(enabled=True), instance='oms-auth@"h":1')
    item = (1.5e9, "req-1", "batch", "alice", snapshot, requests, results, 0.0123)
    records = log.records_of(item)
    assert [orjson.loads(line) for line in log.lines_of(item)] == orjson.loads(
        orjson.dumps(records)
    )
    assert log.lines_of(item) == [orjson.dumps(r) for r in records]
    outcomes = ["allow", "deny", "allow", "allow", "deny", "deny", "error"]
    assert [r["result"] for r in records] == outcomes
    assert records[0]["rule"] is not None and records[4]["subject"]["type"] == "user"
    log.decided(snapshot, requests, results, 0.0123, "batch")
    found = log.recent(DecisionQuery(limit=3))
    assert [r["result"] for r in found] == ["error", "deny", "deny"]  # newest first
