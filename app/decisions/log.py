"""Decision logs: every authorization decision as one record, written off the request path.

The decision service calls `DecisionLog.decided(...)` once per check or batch. That call only
appends a tuple (the snapshot, the requests, the results, timings and the request's context)
to a bounded queue; when the queue is full the entry is dropped and counted, never waited
for. A background task turns queued tuples into records: it samples allows (every deny and
every error is kept), finds the deciding rule and role path (re-evaluating with explain on the
snapshot that decided, when the answer did not carry them), masks the configured fields and
hands each record to the sinks:

* a JSON-lines stream (a file, or stdout), separate from the application log;
* an optional batched HTTP push modelled on OPA's decision-log protocol (a gzip-compressed
  JSON array POSTed per batch) with its own bounded buffer that drops and counts;
* an in-memory ring of recent records, queried by `GET /api/v1/decisions`.

`oms-auth decisions` reads the stream file, which holds every worker's records.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import os
import random
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from loguru import logger
from prometheus_client import CollectorRegistry, Counter

from app.errors import AuthzError
from app.observability.logging import request_id_var

if TYPE_CHECKING:
    import httpx

    from app.decisions.service import DecisionResult
    from app.policy.request import DecisionRequest
    from app.policy.snapshot import PolicySnapshot

MASK = "***"
EXPLAIN_CACHE_SIZE = 50_000

# Who asked and through which API; set by the HTTP layer, read when a decision is queued.
# (request id, kind, caller): kind is "authzen" or "v2" (None: "check"/"batch" by the
# service's own call); caller a subject or None. Tied to the request id, so a value can never
# outlive the request that set it.
_NO_ORIGIN: tuple[str | None, str | None, str | None] = (None, None, None)
decision_origin: ContextVar[tuple[str | None, str | None, str | None]] = ContextVar(
    "decision_origin", default=_NO_ORIGIN
)


def _origin() -> tuple[str | None, str | None, str | None]:
    origin = decision_origin.get()
    return origin if origin[0] == request_id_var.get() else _NO_ORIGIN


def set_caller(caller: str | None) -> None:
    """The authenticated caller of the current request's decisions."""
    decision_origin.set((request_id_var.get(), _origin()[1], caller))


def set_kind(kind: str) -> None:
    """Which API the current request's decisions come through ("authzen", "v2")."""
    decision_origin.set((request_id_var.get(), kind, _origin()[2]))


class DecisionLogMetrics:
    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.records = Counter(
            "oms_auth_decision_log_records_total",
            "Decision-log records by outcome (logged, sampled_out, dropped, pushed, push_dropped)",
            ["outcome"],
            registry=registry,
        )
        self.push_failures = Counter(
            "oms_auth_decision_log_push_failures_total",
            "Failed HTTP pushes of decision-log batches (the batch is retried)",
            registry=registry,
        )
        self._children = {
            name: self.records.labels(outcome=name)
            for name in ("logged", "sampled_out", "dropped", "pushed", "push_dropped")
        }

    def count(self, outcome: str, n: int = 1) -> None:
        if n > 0:
            self._children[outcome].inc(n)


@dataclass(frozen=True)
class DecisionLogConfig:
    enabled: bool = False
    path: str | None = None  # a file, "-" for stdout, None for no stream
    allow_sample_rate: float = 1.0
    mask: tuple[str, ...] = ()
    queue_size: int = 10_000  # decisions waiting to be formatted
    recent: int = 10_000  # records kept in memory for queries
    push_url: str | None = None
    push_buffer: int = 10_000
    push_batch: int = 500
    flush_interval: float = 0.2
    explain: bool = True  # find the deciding rule off the path when the answer lacks it


# One queued call: (time, request id, kind, caller, snapshot, requests, results, seconds)
_Pending = tuple[
    float,
    str | None,
    str,
    str | None,
    "PolicySnapshot",
    Sequence["DecisionRequest"],
    Sequence["DecisionResult | AuthzError"],
    float,
]


# An explanation: (rule, role path, missing properties, `,"rule":...,"role_path":...` as JSON).
_Explained = tuple[Any, list[str], tuple[str, ...], bytes]

_get = object.__getattribute__
_dumps = orjson.dumps
_RESULT = {True: b',"result":"allow"', False: b',"result":"deny"'}


def _attrs(value: Any) -> dict[str, Any]:
    try:
        attrs: dict[str, Any] = _get(value, "__dict__")
    except AttributeError:
        return {}
    return attrs


def _entity(value: Any) -> Any:
    """A plain id as a string; an entity with a type or properties as an object."""
    attrs = _attrs(value)
    props = attrs.get("properties")
    kind = attrs.get("type")
    if not props and not kind:
        return value  # a str (or an Entity, which orjson writes as its id)
    if props or kind:
        out: dict[str, Any] = {"id": str(value)}
        if kind:
            out["type"] = kind
        if props:
            out["properties"] = _plain(props)
        return out
    return str(value)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def mask_fields(record: dict[str, Any], paths: Iterable[str]) -> None:
    """Replace each dotted path present in `record` with `***`. Nested objects on the way are
    copied first (they may be shared between records), the record itself is changed."""
    for path in paths:
        parts = path.split(".")
        node: Any = record
        for part in parts[:-1]:
            child = node.get(part) if isinstance(node, dict) else None
            if not isinstance(child, dict):
                node = None
                break
            node[part] = node = dict(child)
        if isinstance(node, dict) and node.get(parts[-1]) is not None:
            node[parts[-1]] = MASK


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _rule_json(rule: Any, role_path: list[str]) -> bytes:
    return b',"rule":' + _dumps(rule) + b',"role_path":' + _dumps(role_path)


def _error_record(
    request: DecisionRequest,
    error: AuthzError,
    request_id: str | None,
    at: str,
    instance: str,
    kind: str,
    caller: str | None,
    snapshot: PolicySnapshot,
    per_ms: float,
) -> dict[str, Any]:
    return {
        "decision_id": None,
        "request_id": request_id,
        "timestamp": at,
        "instance": instance,
        "kind": kind,
        "caller": caller,
        "subject": _entity(request.subject),
        "resource": _entity(request.resource),
        "action": _entity(request.action),
        "domain": request.domain,
        "result": "error",
        "error": {"code": error.code, "message": error.message},
        "rule": None,
        "role_path": [],
        "policy_revision": snapshot.revision,
        "evaluator": snapshot.evaluator_name,
        "cached": False,
        "latency_ms": per_ms,
    }


@dataclass(frozen=True)
class DecisionQuery:
    subject: str | None = None
    resource: str | None = None
    action: str | None = None
    result: str | None = None  # allow, deny or error
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100

    def matches(self, record: Mapping[str, Any]) -> bool:
        if self.subject is not None and _id(record.get("subject")) != self.subject:
            return False
        if self.resource is not None and _id(record.get("resource")) != self.resource:
            return False
        if self.action is not None and _id(record.get("action")) != self.action:
            return False
        if self.result is not None and record.get("result") != self.result:
            return False
        if self.since is not None or self.until is not None:
            at = datetime.fromisoformat(str(record.get("timestamp")).replace("Z", "+00:00"))
            if self.since is not None and at < self.since:
                return False
            if self.until is not None and at >= self.until:
                return False
        return True

    def select(self, records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Newest first (records come oldest first), at most `limit`."""
        out: list[dict[str, Any]] = []
        for record in reversed(list(records)):
            if self.matches(record):
                out.append(dict(record))
                if len(out) >= self.limit:
                    break
        return out


def _id(value: Any) -> Any:
    return value.get("id") if isinstance(value, dict) else value


def read_stream(path: Path) -> Iterator[dict[str, Any]]:
    """Records of a JSON-lines stream file, oldest first; torn or foreign lines skipped."""
    with path.open("rb") as handle:
        for line in handle:
            with contextlib.suppress(orjson.JSONDecodeError):
                record = orjson.loads(line)
                if isinstance(record, dict) and "decision_id" in record:
                    yield record


class DecisionLog:
    """The `DecisionSink` (`app.decisions.service`) of one instance, plus the task that
    formats and ships records."""

    def __init__(
        self,
        config: DecisionLogConfig,
        *,
        registry: CollectorRegistry | None = None,
        instance: str = "oms-auth",
        clock: Callable[[], float] = time.time,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.config = config
        self.instance = instance
        self.metrics = DecisionLogMetrics(registry)
        self.clock = clock
        self._pending: deque[_Pending] = deque()
        self._pending_items = 0
        # Encoded records: evicting bytes costs nothing, evicting dicts with nested values does.
        self._recent: deque[bytes] = deque(maxlen=max(1, config.recent))
        self._push: deque[bytes] = deque()
        self._http = http
        self._own_http = False
        self._task: asyncio.Task[None] | None = None
        self._stream: Any = None
        self._pending_lines: list[bytes] = []
        self._random = random.random
        # Deciding rule and role path per (snapshot, plain request): traffic repeats itself,
        # so most records reuse an explanation instead of evaluating again.
        self._explained: dict[tuple[Any, ...], _Explained] = {}
        self._explained_for: Any = None
        self._bodies: dict[tuple[Any, ...], tuple[bytes, bytes]] = {}

    # -- the hot path ----------------------------------------------------------------------
    def decided(
        self,
        snapshot: PolicySnapshot,
        requests: Sequence[DecisionRequest],
        results: Sequence[DecisionResult | AuthzError],
        seconds: float,
        kind: str,
    ) -> None:
        n = len(results)
        if self._pending_items + n > self.config.queue_size:
            self.metrics.count("dropped", n)
            return
        request_id = request_id_var.get()
        origin = decision_origin.get()
        origin_kind, caller = (origin[1], origin[2]) if origin[0] == request_id else (None, None)
        self._pending.append(
            (
                self.clock(),
                request_id,
                origin_kind or kind,
                caller,
                snapshot,
                requests,
                results,
                seconds,
            )
        )
        self._pending_items += n

    def decided_by_scope(
        self,
        *,
        decision_id: str,
        subject: str,
        resource: str,
        action: str,
        domain: str | None,
        allowed: bool,
        matched_scope: str | None,
        revision: int | None,
    ) -> None:
        """A v2 decision settled by the token's scope (no engine evaluation)."""
        record: dict[str, Any] = {
            "decision_id": decision_id,
            "request_id": request_id_var.get(),
            "timestamp": _iso(self.clock()),
            "instance": self.instance,
            "kind": "v2",
            "caller": subject,
            "subject": subject,
            "resource": resource,
            "action": action,
            "domain": domain,
            "result": "allow" if allowed else "deny",
            "rule": {"scope": matched_scope} if matched_scope else None,
            "role_path": [],
            "policy_revision": revision,
            "evaluator": "token_scope",
            "cached": False,
            "latency_ms": 0.0,
        }
        if allowed and not self._sampled():
            return
        self._emit([record])

    # -- formatting (background) ----------------------------------------------------------
    def _sampled(self) -> bool:
        rate = self.config.allow_sample_rate
        if rate >= 1.0 or self._random() < rate:
            return True
        self.metrics.count("sampled_out")
        return False

    def _explanation(
        self, snapshot: PolicySnapshot, request: DecisionRequest, key: tuple[Any, ...] | None
    ) -> _Explained:
        """The deciding rule and role path of `request`, from the per-snapshot cache."""
        if self._explained_for is not snapshot:
            self._explained, self._explained_for, self._bodies = {}, snapshot, {}
        explained = self._explained
        hit = explained.get(key) if key is not None else None
        if hit is None:
            rule, role_path, missing = self._explain(snapshot, request)
            hit = (rule, role_path, missing, _rule_json(rule, role_path))
            if key is not None:
                if len(explained) >= EXPLAIN_CACHE_SIZE:
                    explained.clear()
                explained[key] = hit
        return hit

    def records_of(self, item: _Pending, per_ms: float | None = None) -> list[dict[str, Any]]:
        """The records of one queued call, as dicts (what `lines_of` writes, field by field);
        `per_ms` overrides the call's time per decision."""
        ts, request_id, kind, caller, snapshot, requests, results, seconds = item
        if per_ms is None:
            per_ms = round(seconds * 1000 / max(1, len(results)), 4)
        at = _iso(ts)
        instance = self.instance
        sample = self.config.allow_sample_rate < 1.0
        explain = self.config.explain
        out: list[dict[str, Any]] = []
        append = out.append
        for request, result in zip(requests, results, strict=False):
            if isinstance(result, AuthzError):
                append(
                    _error_record(
                        request, result, request_id, at, instance, kind, caller, snapshot, per_ms
                    )
                )
                continue
            subject, resource, action = request.subject, request.resource, request.action
            s_attrs, r_attrs = _attrs(subject), _attrs(resource)
            plain = "properties" not in s_attrs and "properties" not in r_attrs
            decision = result.decision
            allowed = decision.allowed
            if allowed and sample and not self._sampled():
                continue
            missing: tuple[str, ...] = decision.missing
            if decision.rule is not None or not explain:
                rule = decision.rule.as_dict() if decision.rule is not None else None
                role_path = list(decision.role_path)
            else:
                key = (subject, resource, action, request.domain) if plain else None
                rule, role_path, missing, _ = self._explanation(snapshot, request, key)
            record = {
                "decision_id": result.decision_id,
                "request_id": request_id,
                "timestamp": at,
                "instance": instance,
                "kind": kind,
                "caller": caller,
                "subject": subject if plain and "type" not in s_attrs else _entity(subject),
                "resource": (resource if plain and "type" not in r_attrs else _entity(resource)),
                "action": _entity(action),
                "domain": request.domain,
                "result": "allow" if allowed else "deny",
                "rule": rule,
                "role_path": role_path,
                "policy_revision": decision.revision,
                "evaluator": decision.evaluator,
                "cached": result.cached,
                "latency_ms": 0.0 if result.cached else per_ms,
            }
            if missing:  # properties a rule read that neither request nor store held
                record["missing_properties"] = list(missing)
            append(record)
        return out

    def lines_of(self, item: _Pending) -> list[bytes]:
        """The records of one queued call as JSON lines, the same bytes as encoding
        `records_of(item)` one by one, without a dict per record: the fields every record of
        the call shares are encoded once, the rest once per distinct request and answer.
        Entities with a type or properties, and errors, take the dict path."""
        ts, request_id, kind, caller, snapshot, requests, results, seconds = item
        per_ms = round(seconds * 1000 / max(1, len(results)), 4)
        at = _iso(ts)
        sample = self.config.allow_sample_rate < 1.0
        explain = self.config.explain
        head = b"".join(
            (
                b',"request_id":',
                _dumps(request_id),
                b',"timestamp":',
                _dumps(at),
                b',"instance":',
                _dumps(self.instance),
                b',"kind":',
                _dumps(kind),
                b',"caller":',
                _dumps(caller),
                b',"subject":',
            )
        )
        timing = {
            True: b',"cached":true,"latency_ms":0.0',
            False: b',"cached":false,"latency_ms":' + _dumps(per_ms),
        }
        if self._explained_for is not snapshot:
            self._explained, self._explained_for, self._bodies = {}, snapshot, {}
        # Per snapshot: the fields from "subject" to "evaluator", and the record's end, per
        # distinct (request, answer): traffic repeats itself, so most records reuse them.
        bodies = self._bodies
        out: list[bytes] = []
        append = out.append
        for request, result in zip(requests, results, strict=False):
            subject, resource, action = request.subject, request.resource, request.action
            s_attrs, r_attrs, a_attrs = _attrs(subject), _attrs(resource), _attrs(action)
            if (
                isinstance(result, AuthzError)
                or "properties" in s_attrs
                or "properties" in r_attrs
                or "type" in s_attrs
                or "type" in r_attrs
                or "type" in a_attrs
                or "properties" in a_attrs
                or (decision := result.decision).rule is not None
            ):
                one = self.records_of(
                    (ts, request_id, kind, caller, snapshot, (request,), (result,), seconds),
                    per_ms,
                )
                out.extend(_dumps(record) for record in one)
                continue
            allowed = decision.allowed
            if allowed and sample and not self._sampled():
                continue
            revision, evaluator = decision.revision, decision.evaluator
            key = (
                (subject, resource, action, request.domain, allowed, revision, evaluator)
                if explain
                else None
            )
            parts = bodies.get(key) if key is not None else None
            if parts is None:
                missing: tuple[str, ...] = decision.missing
                if explain:
                    _, _, missing, rule_json = self._explanation(
                        snapshot, request, (subject, resource, action, request.domain)
                    )
                else:
                    rule_json = _rule_json(None, list(decision.role_path))
                domain = request.domain
                parts = (
                    b"".join(
                        (
                            _dumps(subject),
                            b',"resource":',
                            _dumps(resource),
                            b',"action":',
                            _dumps(action),
                            b',"domain":null' if domain is None else b',"domain":' + _dumps(domain),
                            _RESULT[allowed],
                            rule_json,
                            b',"policy_revision":',
                            _dumps(revision),
                            b',"evaluator":',
                            _dumps(evaluator),
                        )
                    ),
                    b',"missing_properties":' + _dumps(list(missing)) + b"}" if missing else b"}",
                )
                if key is not None:
                    if len(bodies) >= EXPLAIN_CACHE_SIZE:
                        bodies.clear()
                    bodies[key] = parts
            append(
                b"".join(
                    (
                        b'{"decision_id":',
                        _dumps(result.decision_id),
                        head,
                        parts[0],
                        timing[result.cached],
                        parts[1],
                    )
                )
            )
        return out

    @staticmethod
    def _explain(
        snapshot: PolicySnapshot, request: DecisionRequest
    ) -> tuple[Any, list[str], tuple[str, ...]]:
        try:
            explained = snapshot.decide(request, explain=True)
        except Exception:
            return None, [], ()
        rule = explained.rule.as_dict() if explained.rule is not None else None
        return rule, list(explained.role_path), explained.missing

    def _emit(self, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        if self.config.mask:
            for record in records:
                mask_fields(record, self.config.mask)
        self._store([_dumps(r) for r in records])

    def _store(self, encoded: list[bytes]) -> None:
        """Hand encoded records to the recent ring and the sinks."""
        if not encoded:
            return
        self._recent.extend(encoded)
        self.metrics.count("logged", len(encoded))
        if self.config.push_url:
            room = max(0, self.config.push_buffer - len(self._push))
            if room < len(encoded):
                self.metrics.count("push_dropped", len(encoded) - room)
            self._push.extend(encoded[:room])
        if self._stream is not None:
            self._pending_lines.append(b"\n".join(encoded) + b"\n")

    def drain(self) -> None:
        """Format everything queued (the background task calls this each interval)."""
        while self._pending:
            item = self._pending.popleft()
            self._pending_items -= len(item[6])
            if self.config.mask:
                self._emit(self.records_of(item))
            else:
                self._store(self.lines_of(item))

    # -- queries ---------------------------------------------------------------------------
    def recent(self, query: DecisionQuery) -> list[dict[str, Any]]:
        self.drain()
        out: list[dict[str, Any]] = []
        for line in reversed(self._recent):  # newest first
            record = orjson.loads(line)
            if query.matches(record):
                out.append(record)
                if len(out) >= query.limit:
                    break
        return out

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        if not self.config.enabled or self._task is not None:
            return
        path = self.config.path
        if path == "-":
            self._stream = sys.stdout.buffer
        elif path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
            self._stream = os.fdopen(fd, "ab", buffering=0)
        if self.config.push_url and self._http is None:
            import httpx

            self._http = httpx.AsyncClient(timeout=5.0)
            self._own_http = True
        self._task = asyncio.create_task(self._run(), name="decision-log")

    async def _run(self) -> None:
        backoff = self.config.flush_interval
        while True:
            await asyncio.sleep(backoff)
            try:
                await self.flush()
                backoff = self.config.flush_interval
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("decision_log.flush_failed", error=str(exc))
                backoff = min(30.0, backoff * 2)

    async def flush(self) -> None:
        """Format what is queued, write the stream, push one or more batches."""
        self.drain()
        if self._stream is not None and self._pending_lines:
            data, self._pending_lines = b"".join(self._pending_lines), []
            await asyncio.to_thread(self._stream.write, data)
        while self._push and self._http is not None and self.config.push_url:
            n = min(len(self._push), self.config.push_batch)
            batch = [self._push[i] for i in range(n)]
            body = gzip.compress(b"[" + b",".join(batch) + b"]", compresslevel=5)
            try:
                response = await self._http.post(
                    self.config.push_url,
                    content=body,
                    headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
                )
                response.raise_for_status()
            except Exception:
                self.metrics.push_failures.inc()
                raise
            for _ in range(n):
                self._push.popleft()
            self.metrics.count("pushed", n)

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.flush(), timeout=5.0)
        if self._stream is not None and self._stream is not sys.stdout.buffer:
            self._stream.close()
        self._stream = None
        if self._own_http and self._http is not None:
            await self._http.aclose()
            self._http = None
