"""Liveness, readiness and metrics.

- `GET /livez` (and its older name `/healthz`): the process serves HTTP. Nothing else.
- `GET /readyz`: 200 while this instance can decide from a loaded policy; the state of the
  database and Redis is reported (from background checks: a probe costs no round trip) but
  never makes the instance unready, because decisions do not need them.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from app.adapters.http.responses import FastJSONResponse
from app.adapters.redis.client import ClusterHealth
from app.adapters.redis.layer import CacheLayer
from app.api.deps import CacheDep, EngineDep, MetricsDep, MonitorDep, RedisClusterDep
from app.api.routing import StrictJSONRoute
from app.observability.health import DependencyMonitor
from app.policy.engine import PolicyEngine
from app.policy.status import readiness_fields

router = APIRouter(route_class=StrictJSONRoute, tags=["operations"])


@router.get("/livez", summary="The process is alive (Kubernetes livenessProbe)")
async def livez() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/healthz", summary="The process is up (same as /livez)")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


def readiness(
    engine: PolicyEngine,
    monitor: DependencyMonitor,
    cache: CacheLayer,
    cluster: ClusterHealth | None = None,
) -> tuple[bool, dict[str, Any]]:
    """Whether this instance is ready, and the `/readyz` body: built here only, so every
    part of the service that reports state adds its entry to `checks` in one place."""
    policy_ok = engine.loaded
    checks: dict[str, Any] = {
        "policy": (
            {"status": "ok", **readiness_fields(engine.status)} if policy_ok else "not loaded"
        ),
    }
    dependencies = {name: state.as_dict() for name, state in monitor.states.items()}
    database = dependencies.get("database")
    checks["database"] = database["status"] if database else "unknown"
    checks["dependencies"] = dependencies
    checks["cache"] = cache.status()  # degraded Redis: reported, still ready
    if cluster is not None:
        checks["redis_cluster"] = cluster.as_dict()
    ready = policy_ok
    return ready, {"status": "ready" if ready else "not_ready", "checks": checks}


@router.get(
    "/readyz",
    summary="Ready to decide: a policy is loaded (database and Redis state reported)",
    description=(
        "200 while the instance can decide from a loaded policy (Kubernetes readinessProbe)."
        " `checks.database` and `checks.dependencies` give the database and Redis state from"
        " background checks (`ok`, `unreachable`, `unknown`; `since`, `checked_at`): a probe"
        " costs no database round trip, and a database or Redis outage is reported without"
        " taking the instance out of rotation, since decisions keep serving. `checks.cache`"
        " is `ok`, `local` (no Redis configured) or `degraded` (Redis unreachable)."
        " With a Redis Cluster, `checks.redis_cluster` gives the cluster's own state"
        " (`state` `ok` or `fail`, `slots_ok`, `slots_failing`, `known_nodes`, `shards`)."
    ),
    responses={
        503: {
            "description": "Not ready: no policy loaded yet",
            "content": {
                "application/json": {
                    "example": {
                        "status": "not_ready",
                        "checks": {"policy": "not loaded", "database": "unreachable"},
                    }
                }
            },
        }
    },
)
async def readyz(
    engine: EngineDep, monitor: MonitorDep, cache: CacheDep, cluster: RedisClusterDep
) -> Response:
    ready, body = readiness(engine, monitor, cache, cluster)
    return FastJSONResponse(body, status_code=200 if ready else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(metrics: MetricsDep) -> Response:
    return Response(metrics.render(), media_type=metrics.content_type)
