"""Liveness, readiness and metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from app.api.deps import ServicesDep
from app.api.responses import FastJSONResponse
from app.api.routing import StrictJSONRoute

router = APIRouter(route_class=StrictJSONRoute, tags=["operations"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Ready to serve: database reachable and policy loaded (cache state reported)",
    description=(
        "`checks.cache.status` is `ok`, `local` (no Redis configured) or `degraded` (Redis"
        " unreachable: decisions are still correct from the engine and the in-process cache,"
        " policy changes arrive by database polling). A degraded cache never makes the"
        " instance unready."
    ),
    responses={
        503: {
            "description": "Not ready; `checks` says which part failed",
            "content": {
                "application/json": {
                    "example": {
                        "status": "not_ready",
                        "checks": {"database": "unreachable", "policy": {"status": "ok"}},
                    }
                }
            },
        }
    },
)
async def readyz(services: ServicesDep) -> Response:
    db_ok = await services.db.ping()
    policy_ok = services.engine.loaded
    checks: dict[str, Any] = {
        "database": "ok" if db_ok else "unreachable",
        "policy": (
            {"status": "ok", "revision": services.engine.revision} if policy_ok else "not loaded"
        ),
    }
    if services.cache is not None:
        checks["cache"] = services.cache.status()  # degraded Redis: reported, still ready
    ready = db_ok and policy_ok
    return FastJSONResponse(
        {"status": "ready" if ready else "not_ready", "checks": checks},
        status_code=200 if ready else 503,
    )


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    m = request.app.state.metrics
    return Response(m.render(), media_type=m.content_type)
