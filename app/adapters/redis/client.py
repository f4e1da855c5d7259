"""The instance's Redis client (one pool shared by cache, revocation, pub/sub, rate limits).

`OMS_AUTH_REDIS_URL` names one server (`redis://`, `rediss://`, `unix://`), a Sentinel-
managed primary: `redis+sentinel://[:PASSWORD@]HOST:PORT[,HOST:PORT...]/SERVICE[/DB]`, or a
Redis Cluster: `redis+cluster://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...]` (any nodes of it;
the client learns the rest and the slot map from them; the form the `limits` library takes,
without its `async+`). With Sentinel, the client asks the sentinels where the primary is and
asks again when a connection to it fails; with a cluster, redis-py follows MOVED redirections
and reloads the slot map when a node fails. Either way a failover costs the requests in flight
a fallback (rate limits in process, revocations from the database, decisions computed here),
never an error, and the next ones reach the new primary.

In a cluster, commands that must meet in one slot use hash tags in cluster mode only (the
single-server key names stay as they were): see `hash_tag` and docs/architecture.md.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.client import Pipeline, PubSub
from redis.asyncio.cluster import ClusterNode, ClusterPipeline, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from app.addresses import CLUSTER_SCHEME, SENTINEL_SCHEME, parse_cluster_url, parse_sentinel_url

if TYPE_CHECKING:
    from app.config import Settings

# The client the service holds: one server (or Sentinel's primary) or a cluster; the
# commands used here exist on both with the same meaning (multi-key ones are split per slot
# by the cluster client, or kept in one slot by a hash tag).
RedisClient: TypeAlias = Redis | RedisCluster
AnyPipeline: TypeAlias = Pipeline | ClusterPipeline


def is_cluster(redis: RedisClient) -> bool:
    return isinstance(redis, RedisCluster)


def hash_tag(redis: RedisClient, base: str) -> str:
    """`base` as the start of keys that must share a slot: `{base}` in a cluster (the braces
    make Redis hash only what they enclose), unchanged on one server."""
    return f"{{{base}}}" if is_cluster(redis) else base


def limits_storage_uri(url: str) -> str:
    """The `limits` storage URI for `OMS_AUTH_REDIS_URL`: the same address with `async+`, and
    for a cluster only its nodes (credentials are passed as options, already unquoted)."""
    if url.startswith(CLUSTER_SCHEME + "://"):
        nodes = parse_cluster_url(url).nodes
        return "async+redis+cluster://" + ",".join(_address(h, p) for h, p in nodes)
    return "async+" + url


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def cluster_options(settings: Settings) -> dict[str, Any]:
    """What a `RedisCluster` is built with (the service's client and the rate-limit storage).

    `max_connections` is per node. Slots need not all be covered to start: while a failed
    primary's slots wait for their replica, the keys of the other slots keep working.
    """
    assert settings.redis_url is not None
    target = parse_cluster_url(settings.redis_url)
    return {
        "username": target.username,
        "password": target.password,
        "max_connections": settings.redis_pool_size,
        "require_full_coverage": False,
        "socket_connect_timeout": 0.5,
        "socket_timeout": 0.5,
        "health_check_interval": 15,
        "retry": Retry(NoBackoff(), 1),
        "decode_responses": False,
    }


def make_redis(settings: Settings) -> RedisClient | None:
    """A lazily connecting client, or None when no Redis is configured.

    The pool is a `BlockingConnectionPool` of `OMS_AUTH_REDIS_POOL_SIZE` connections: when all
    are busy, a command waits up to `OMS_AUTH_REDIS_POOL_TIMEOUT` for one instead of failing
    at once (redis-py's default pool raises `MaxConnectionsError`, which turned a burst into
    fallbacks to the database). Short socket timeouts: Redis is an accelerator here, so a slow
    or dead Redis must make a request fall back quickly instead of hanging it. redis-py's
    default retry policy (several attempts with backoff) would stall a request for seconds
    when Redis is down; one immediate retry is kept, which replaces a pooled connection that
    died with a restarted server.
    """
    if settings.redis_url is None:
        return None
    if settings.redis_url.startswith(CLUSTER_SCHEME + "://"):
        # (the cluster's per-node pools are not blocking ones: a burst past their size fails
        # fast, like Sentinel's)
        nodes = parse_cluster_url(settings.redis_url).nodes
        return RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in nodes],
            **cluster_options(settings),
        )
    if settings.redis_url.startswith(SENTINEL_SCHEME + "://"):
        # (the sentinel pool is not a blocking one: a burst past its size fails fast)
        target = parse_sentinel_url(settings.redis_url)
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            list(target.sentinels),
            socket_timeout=0.5,
            socket_connect_timeout=0.5,
        )
        primary: Redis = sentinel.master_for(
            target.service,
            redis_class=Redis,
            db=target.db,
            password=target.password,
            max_connections=settings.redis_pool_size,
            socket_connect_timeout=0.5,
            socket_timeout=0.5,
            health_check_interval=15,
            retry=Retry(NoBackoff(), 1),
            decode_responses=False,
        )
        return primary
    pool = BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=settings.redis_pool_size,
        timeout=settings.redis_pool_timeout,
        socket_connect_timeout=0.5,
        socket_timeout=0.5,
        health_check_interval=15,
        retry=Retry(NoBackoff(), 1),
        decode_responses=False,
    )
    return Redis.from_pool(pool)  # the client owns the pool: aclose() disconnects it


async def close_redis(redis: RedisClient) -> None:
    """Close the client, and with Sentinel the connections to the sentinels too. Best
    effort: a close that times out (a busy server, a dead node) is not the caller's failure."""
    with contextlib.suppress(RedisError, OSError):
        await redis.aclose()
    if isinstance(redis, RedisCluster):
        return
    pool = redis.connection_pool
    if isinstance(pool, SentinelConnectionPool):
        for sentinel in pool.sentinel_manager.sentinels:
            with contextlib.suppress(RedisError, OSError):
                await sentinel.aclose()


async def mget(redis: RedisClient, keys: list[str]) -> list[Any]:
    """MGET on one server; in a cluster one MGET per slot (sent together, per node)."""
    if isinstance(redis, RedisCluster):
        return await redis.mget_nonatomic(keys)
    return await redis.mget(keys)


def queue_mget(pipe: AnyPipeline, keys: list[str]) -> None:
    """MGET in a pipeline. A cluster pipeline refuses its `mget()` method (the keys could span
    slots); the raw command is routed by its keys, which the callers keep in one slot."""
    pipe.execute_command("MGET", *keys)


def queue_publish(pipe: AnyPipeline, channel: str, message: bytes) -> None:
    """PUBLISH in a pipeline. A cluster pipeline refuses its `publish()` method; the raw
    command goes to a node (the one of the channel's slot) and the cluster bus carries the
    message to the subscribers of every node."""
    pipe.execute_command("PUBLISH", channel, message)


_rotation = itertools.count()


@contextlib.asynccontextmanager
async def subscription(redis: RedisClient, channel: str) -> AsyncIterator[PubSub]:
    """A `PubSub` subscribed to `channel` (subscribe messages ignored), closed on exit.

    In a cluster, a classic PUBLISH sent to any node reaches the subscribers of every node
    (primaries and replicas: the cluster bus carries it), so one plain connection to one node
    hears every announcement. That is what is done here, not redis-py's `ClusterPubSub` (which
    pins the channel to its slot's primary and must be told of topology changes) nor sharded
    pub/sub (SSUBSCRIBE, Redis 7: delivered only by the channel's shard, so its failover
    drops the subscription too): each (re)subscription takes the next known node in turn, so
    when the node it listened to fails, the caller's retry subscribes through another one.
    Announcements made while no subscription was up are lost either way; callers catch up
    from the database after each (re)subscription.
    """
    if isinstance(redis, RedisCluster):
        async with _node_subscription(redis, channel) as pubsub:
            yield pubsub
        return
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    try:
        await pubsub.subscribe(channel)
        yield pubsub
    finally:
        with contextlib.suppress(Exception):
            await pubsub.aclose()  # type: ignore[no-untyped-call]


@contextlib.asynccontextmanager
async def _node_subscription(cluster: RedisCluster, channel: str) -> AsyncIterator[PubSub]:
    known = {(node.host, int(node.port)) for node in cluster.startup_nodes}
    with contextlib.suppress(Exception):  # no node answers yet: try the configured ones
        await cluster.initialize()
        known |= {(node.host, int(node.port)) for node in cluster.get_nodes()}
    nodes = sorted(known)
    start = next(_rotation)
    options = cluster.get_connection_kwargs()
    error: Exception = ConnectionError("no cluster node to subscribe through")
    for i in range(len(nodes)):
        host, port = nodes[(start + i) % len(nodes)]
        client = Redis(
            host=host,
            port=port,
            username=options.get("username"),
            password=options.get("password"),
            socket_connect_timeout=0.5,
            socket_timeout=0.5,
            retry=Retry(NoBackoff(), 1),
        )
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            try:
                await pubsub.subscribe(channel)
            except Exception as exc:  # this node is down: the next one
                error = exc
                continue
            yield pubsub
            return
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]
            await client.aclose()
    raise error


@dataclass
class ClusterHealth:
    """The cluster's own view of itself (`CLUSTER INFO`), refreshed by the dependency monitor
    and reported by `/readyz` (`checks.redis_cluster`)."""

    redis: RedisCluster
    info: dict[str, str] = field(default_factory=lambda: {"cluster_state": "unknown"})

    async def check(self) -> bool:
        """True while the cluster says `cluster_state:ok` (every slot served). The last
        answer stands while a check is in flight (`/readyz` never sees a half-made one)."""
        try:
            info = await self.redis.cluster_info()
        except BaseException:
            self.info = {"cluster_state": "unreachable"}
            raise
        self.info = {str(k): _text(v) for k, v in info.items()}
        return self.info.get("cluster_state") == "ok"

    def as_dict(self) -> dict[str, Any]:
        if "cluster_slots_ok" not in self.info:
            return {"state": self.info.get("cluster_state", "unknown")}
        return {
            "state": self.info.get("cluster_state", "unknown"),
            "slots_ok": int(self.info.get("cluster_slots_ok", 0)),
            "slots_failing": int(self.info.get("cluster_slots_pfail", 0))
            + int(self.info.get("cluster_slots_fail", 0)),
            "known_nodes": int(self.info.get("cluster_known_nodes", 0)),
            "shards": int(self.info.get("cluster_size", 0)),
        }


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
