"""Policy changes across instances: announce on Redis, subscribe, and poll the database.

- Announce: after every local load (`engine.on_change`, triggers other than "remote" and
  "poll") the new revision is written to `{prefix}:policy:rev` (never lowered) and published
  on `{prefix}:policy:changes`. Processes without an engine (the CLI's `policy push`) call
  `announce_revision(settings, revision)` after their commit.
- Subscribe: an asyncio pub/sub reader (redis.asyncio) reloads with
  `engine.load(trigger="remote", bump=False)` when an announced revision is newer than the
  one served, and after every (re)subscription catches up with the database, since pub/sub
  drops messages sent while a subscriber is disconnected.
- Poll: every `policy_poll_interval` seconds the database revision (the authority) is
  compared with the served one, whether or not Redis is up; a newer one is loaded with
  trigger "poll". This covers Redis outages, lost messages and writers that did not announce.

Each load swaps a whole snapshot, so a racing check sees the old or the new policy, never a mix.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from loguru import logger

from app.adapters.redis.availability import RedisAvailability, is_redis_failure
from app.adapters.redis.client import RedisClient, close_redis, make_redis, subscription
from app.cache.keys import CacheKeys
from app.cache.metrics import CacheMetrics
from app.config import Settings
from app.observability.outages import OutageLog
from app.policy.engine import PolicyEngine
from app.policy.snapshot import PolicySnapshot
from app.store.database import Database
from app.store.revisions import DatabaseRevisionStore

LOCAL_ONLY_TRIGGERS = frozenset({"remote", "poll", "entities-remote"})
ENTITY_TRIGGER = "entities"  # a local entity store change (admin API, CLI via announce)
ENTITY_MESSAGE = "entities:"  # pub/sub payload prefix for entity revisions

# Raise the mirrored revision (never lower it) and announce, in one round trip.
_ANNOUNCE = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > current then redis.call('SET', KEYS[1], ARGV[1]) end
redis.call('PUBLISH', ARGV[2], ARGV[1])
return current
"""


async def publish_revision(redis: RedisClient, *, keys: CacheKeys, revision: int) -> None:
    """Mirror `revision` to `{prefix}:policy:rev` and publish it. Raises on Redis errors."""
    await redis.eval(_ANNOUNCE, 1, keys.policy_rev, str(revision), keys.policy_channel)


async def announce_revision(settings: Settings, revision: int) -> bool:
    """For processes without a running service (CLI): announce a committed revision.

    Returns False when Redis is not configured or unreachable; instances then pick the change
    up from the database within `policy_poll_interval` seconds.
    """
    return await _announce_once(
        settings,
        lambda redis: publish_revision(
            redis, keys=CacheKeys(settings.key_prefix), revision=revision
        ),
        "policy.announce.failed",
        revision=revision,
    )


async def announce_entity_revision(settings: Settings, revision: int) -> bool:
    """For the CLI: announce an entity store revision it committed (instances reload the
    entities; without Redis they find it within `policy_poll_interval`)."""
    channel = CacheKeys(settings.key_prefix).policy_channel
    return await _announce_once(
        settings,
        lambda redis: redis.publish(channel, f"{ENTITY_MESSAGE}{revision}"),
        "entities.announce.failed",
        entity_revision=revision,
    )


async def _announce_once(
    settings: Settings,
    publish: Callable[[RedisClient], Awaitable[object]],
    failed_event: str,
    **fields: int,
) -> bool:
    """One announcement from a short-lived client (the CLI's): False without Redis or when
    Redis is unreachable, which the instances' database poll then covers."""
    redis = make_redis(settings)
    if redis is None:
        return False
    try:
        await publish(redis)
    except Exception as exc:
        if not is_redis_failure(exc):
            raise
        logger.warning(failed_event, error=str(exc), **fields)
        return False
    finally:
        await close_redis(redis)
    return True


async def announce_current_revision(settings: Settings, db: Database) -> bool:
    """`announce_revision` for the revision the database holds now (after a CLI commit)."""
    return await announce_revision(settings, await DatabaseRevisionStore(db).current())


class PolicySync:
    def __init__(
        self,
        engine: PolicyEngine,
        *,
        keys: CacheKeys,
        poll_interval: float,
        redis: RedisClient | None = None,
        availability: RedisAvailability | None = None,
        metrics: CacheMetrics | None = None,
    ) -> None:
        self.engine = engine
        self.keys = keys
        self.poll_interval = poll_interval
        self.redis = redis
        self.availability = availability
        self.metrics = metrics
        self.subscribed = False
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._retry_at = 0.0
        self._failures = 0
        self._stopping = False

    # -- announcing -------------------------------------------------------------------------
    async def on_change(self, snapshot: PolicySnapshot, trigger: str) -> None:
        """`engine.on_change` listener: announce changes this instance made."""
        if trigger == ENTITY_TRIGGER:
            await self.announce_entities(snapshot.entities.revision)
        elif trigger not in LOCAL_ONLY_TRIGGERS:
            await self.announce(snapshot.revision)

    async def announce_entities(self, revision: int) -> bool:
        """Tell other instances the entity store moved to `revision` (they reload entities,
        not the policy)."""
        if self.redis is None or (self.availability is not None and not self.availability.usable):
            return False
        try:
            await self.redis.publish(self.keys.policy_channel, f"{ENTITY_MESSAGE}{revision}")
        except Exception as exc:
            if not is_redis_failure(exc):
                raise
            if self.availability is not None:
                self.availability.failed("publish", exc)
            return False
        logger.info("entities.announced", entity_revision=revision)
        return True

    async def announce(self, revision: int) -> bool:
        if self.redis is None or (self.availability is not None and not self.availability.usable):
            return False
        try:
            await publish_revision(self.redis, keys=self.keys, revision=revision)
        except Exception as exc:
            if not is_redis_failure(exc):
                raise
            if self.availability is not None:
                self.availability.failed("publish", exc)
            return False
        logger.info("policy.announced", revision=revision)
        return True

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._poll_forever(), name="policy-poll"))
        if self.redis is not None:
            self._tasks.append(loop.create_task(self._subscribe_forever(), name="policy-sub"))

    def stop(self) -> None:
        """Signal and cancel the subscriber and the poller at once, without waiting."""
        self._stopping = True
        for task in self._tasks:
            task.cancel()

    async def close(self) -> None:
        self.stop()
        if self._tasks:
            # Bounded: a task that missed its cancellation still sees `_stopping` within a
            # second (its next read timeout), and shutdown never waits longer than this.
            await asyncio.wait(self._tasks, timeout=3)
        self._tasks.clear()

    # -- adopting changes -------------------------------------------------------------------
    async def catch_up(self, source: str) -> bool:
        """Load the database's revision if it is newer than the one served."""
        if time.monotonic() < self._retry_at:
            return False
        async with self._lock:
            latest = await self.engine.revisions.current()
            if self.engine.loaded and latest <= self.engine.revision:
                return await self._catch_up_entities(source)
            trigger = "remote" if source == "pubsub" else "poll"
            try:
                await self.engine.load(trigger=trigger, bump=False, catching_up_to=latest)
            except Exception:
                self._failures += 1
                self._retry_at = time.monotonic() + min(30.0, 2.0 ** min(self._failures, 5))
                self._count(source, "failed")
                raise
            self._failures = 0
            self._retry_at = 0.0
            self._count(source, "reloaded")
            return True

    async def _catch_up_entities(self, source: str) -> bool:
        """Adopt a newer entity store revision (no policy reload)."""
        entity_source = self.engine.entity_source
        if entity_source is None or not self.engine.loaded:
            return False
        if await entity_source.revision() <= self.engine.entity_revision:
            return False
        refreshed = await self.engine.refresh_entities(trigger="entities-remote")
        if refreshed is not None:
            self._count(source, "entities")
        return refreshed is not None

    def _count(self, source: str, result: str) -> None:
        if self.metrics is not None:
            self.metrics.sync_events.labels(source=source, result=result).inc()

    async def _poll_forever(self) -> None:
        outage = OutageLog("policy.sync.poll_failed", "policy.sync.poll_recovered")
        while not self._stopping:
            await asyncio.sleep(self.poll_interval)
            try:
                await self.catch_up("poll")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # DB down or a bad policy: keep serving the current one
                outage.failed(f"{type(exc).__name__}: {exc}")
                continue
            outage.succeeded()

    async def _subscribe_forever(self) -> None:
        assert self.redis is not None
        while not self._stopping:
            if self.availability is not None and not self.availability.usable:
                # (checked every second: the probe's recovery is followed promptly even with
                # a long poll interval; waiting costs no round trip)
                await asyncio.sleep(min(self.poll_interval, 1.0))
                continue
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not is_redis_failure(exc):
                    logger.exception("policy.sync.subscriber_failed")
                elif self.availability is not None:
                    self.availability.failed("subscribe", exc)
            await asyncio.sleep(min(self.poll_interval, 1.0))

    async def _listen(self) -> None:
        assert self.redis is not None
        try:
            async with subscription(self.redis, self.keys.policy_channel) as pubsub:
                self.subscribed = True
                logger.info("policy.sync.subscribed", channel=self.keys.policy_channel)
                await self._catch_up_quietly("resubscribe")
                # redis-py's read timeout can swallow a cancellation that lands as it expires
                # (the read then returns None), so the loop also checks for shutdown itself.
                task = asyncio.current_task()
                while not self._stopping and not (task is not None and task.cancelling()):
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None:
                        await self._handle(message)
                raise asyncio.CancelledError
        finally:
            self.subscribed = False

    async def _handle(self, message: dict[str, object]) -> None:
        channel = _text(message.get("channel"))
        data = _text(message.get("data"))
        if channel != self.keys.policy_channel:
            return
        if data.startswith(ENTITY_MESSAGE):
            try:
                entity_revision = int(data[len(ENTITY_MESSAGE) :])
            except ValueError:
                logger.warning("policy.sync.bad_message", data=data[:64])
                return
            if self.engine.loaded and entity_revision <= self.engine.entity_revision:
                return
            await self._catch_up_quietly("pubsub")
            return
        try:
            revision = int(data)
        except ValueError:
            logger.warning("policy.sync.bad_message", data=data[:64])
            return
        if self.engine.loaded and revision <= self.engine.revision:
            self._count("pubsub", "current")
            return
        await self._catch_up_quietly("pubsub")

    async def _catch_up_quietly(self, source: str) -> None:
        try:
            await self.catch_up(source)
        except Exception as exc:
            logger.warning(
                "policy.sync.reload_failed", source=source, error=f"{type(exc).__name__}: {exc}"
            )


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)
