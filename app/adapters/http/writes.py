"""Admin writes that are never reported wrongly: run to completion, replayable by key.

- A write runs in its own task, shielded from the request: a client that disconnects, or a
  server that cancels the request, cannot stop it between its commit and its answer, and
  the real answer is still sent when the write finishes within a few seconds. (What
  follows a commit, like making the change live on this instance, never fails the request:
  the domain reports it as `live: false`.)
- With an `Idempotency-Key` header (1-255 printable ASCII characters), the first answer
  (status and body, errors included) is stored with the key for `OMS_AUTH_IDEMPOTENCY_TTL`
  and replayed to every retry carrying the same key and the same request (method, path,
  query and body), with `Idempotent-Replayed: true`. The same key with another request is
  422 `REQ_007`; a retry while the first request is still running is 409 `REQ_006` with
  `Retry-After`. Keys are per caller.
- A write that failed without effect (a dependency down: 5xx) forgets its key, so a retry
  runs again.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import Request
from loguru import logger
from starlette.responses import Response

from app.adapters.http.responses import FastJSONResponse, error_response, http_status
from app.errors import AuthzError, Conflict, IdempotencyMismatch, RequestInvalid
from app.security.principal import Principal
from app.store.availability import is_unavailable
from app.store.idempotency import STALE_RESERVATION_SECONDS, IdempotencyStore

HEADER = "idempotency-key"
REPLAYED = "Idempotent-Replayed"
_VALID_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")

Work = Callable[[], Awaitable[Response]]
T = TypeVar("T")
FINISH_AFTER_CANCEL_SECONDS = 5.0


def _request_hash(request: Request, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (request.method, request.url.path, request.url.query):
        digest.update(part.encode())
        digest.update(b"\0")
    digest.update(body)
    return digest.hexdigest()


async def _answer(work: Work) -> Response:
    """The work's response; its domain errors as their envelope (client errors are answers)."""
    try:
        return await work()
    except AuthzError as exc:
        if http_status(exc) >= 500:
            raise
        return error_response(exc)


async def _shielded(job: Callable[[], Awaitable[Response]]) -> Response:
    """The job's response. If the request is cancelled meanwhile, the job goes on, and its
    real answer is still sent when it finishes within `FINISH_AFTER_CANCEL_SECONDS`: a write
    is never answered as failed because its request was cancelled."""
    task = asyncio.ensure_future(job())
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        logger.info("admin.write.continues_after_cancel")
        try:
            async with asyncio.timeout(FINISH_AFTER_CANCEL_SECONDS):
                return await asyncio.shield(task)
        except TimeoutError:
            raise asyncio.CancelledError from None


# A reservation whose release failed (database down) is released again in the background, so
# a retry after the outage is not told "still in progress" until the stale takeover.
RELEASE_RETRY_LIMIT = 1000  # pending background releases; beyond it the stale takeover acts
RELEASE_RETRY_SECONDS = STALE_RESERVATION_SECONDS / 2  # never races a later takeover


class Writes:
    def __init__(self, store: IdempotencyStore) -> None:
        self.store = store
        self._releases: set[asyncio.Task[None]] = set()

    async def run(self, request: Request, principal: Principal, work: Work) -> Response:
        key = request.headers.get(HEADER)
        if key is None:
            return await _shielded(lambda: _answer(work))
        if not _VALID_KEY.match(key):
            raise RequestInvalid(
                "Idempotency-Key must be 1-255 printable ASCII characters",
                details={"fields": [{"field": "Idempotency-Key", "message": "invalid"}]},
            )
        request_hash = _request_hash(request, await request.body())
        scope = principal.subject
        reservation = await self.store.reserve(scope=scope, key=key, request_hash=request_hash)
        if not reservation.new:
            if reservation.request_hash and reservation.request_hash != request_hash:
                raise IdempotencyMismatch(details={"idempotency_key": key})
            if reservation.status is None or reservation.response is None:
                raise Conflict(
                    "A request with this Idempotency-Key is still in progress",
                    details={"idempotency_key": key},
                    retry_after=1,
                )
            return Response(
                reservation.response,
                status_code=reservation.status,
                media_type="application/json",
                headers={REPLAYED: "true"},
            )

        async def run_and_record() -> Response:
            try:
                response = await _answer(work)
            except BaseException as exc:
                await self._forget(scope, key, exc)
                raise
            body = bytes(response.body)
            try:
                await self.store.complete(
                    scope=scope, key=key, status=response.status_code, response=body
                )
            except Exception as exc:  # the write stands; only its replay is lost
                logger.warning("admin.idempotency.store_failed", error=type(exc).__name__)
            return response

        return await _shielded(run_and_record)

    async def _forget(self, scope: str, key: str, cause: BaseException) -> None:
        try:
            await self.store.release(scope=scope, key=key)
        except Exception as exc:
            logger.warning(
                "admin.idempotency.release_failed",
                error=type(exc).__name__,
                cause=type(cause).__name__,
                unavailable=is_unavailable(exc),
            )
            if len(self._releases) < RELEASE_RETRY_LIMIT:
                task = asyncio.create_task(self._release_later(scope, key))
                self._releases.add(task)
                task.add_done_callback(self._releases.discard)

    async def _release_later(self, scope: str, key: str) -> None:
        """Retry the release with backoff until it works (the failed write never committed,
        so its key must not stay "in progress")."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + RELEASE_RETRY_SECONDS
        delay = 0.25
        while loop.time() < deadline:
            await asyncio.sleep(delay)
            try:
                await self.store.release(scope=scope, key=key)
            except Exception:
                delay = min(delay * 2, 2.0)
                continue
            logger.info("admin.idempotency.released_late")
            return


@dataclass(frozen=True)
class AdminWrite:
    """One admin write request: the caller, and the `Writes` that runs the change for it."""

    request: Request
    principal: Principal
    writes: Writes

    async def run(
        self, change: Callable[[], Awaitable[T]], render: Callable[[T], Response]
    ) -> Response:
        """Run `change` under `Writes` and answer with `render` of its outcome."""

        async def work() -> Response:
            return render(await change())

        return await self.writes.run(self.request, self.principal, work)

    async def json(
        self, change: Callable[[], Awaitable[dict[str, Any]]], status: int = 200
    ) -> Response:
        """`run`, answering the change's outcome as the JSON body with `status`."""
        return await self.run(change, lambda body: FastJSONResponse(body, status_code=status))
