"""Application factory: `create_app(settings)` builds a FastAPI app whose lifespan owns
every connection, pool and background task of one instance."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from fastapi import FastAPI
from loguru import logger

from app.adapters.http.principal import PrincipalResolver
from app.adapters.http.responses import FastJSONResponse
from app.administration.reload import policy_watcher
from app.api import admin, admin_users, audit, authzen, entities, health, oauth, operations
from app.api.edge import EdgeMiddleware
from app.api.errors import install_error_handlers
from app.api.fastlane import FastLane
from app.api.middleware import RequestContextMiddleware
from app.api.openapi import (
    API_DESCRIPTION,
    OPENAPI_TAGS,
    complete_examples,
    document_validation_errors,
)
from app.api.v1 import auth as v1_auth
from app.api.v1 import authz as v1_authz
from app.api.v1 import tokens as v1_tokens
from app.api.v1 import users as v1_users
from app.api.v2 import auth as v2_auth
from app.api.v2 import authz as v2_authz
from app.config import Settings, load_settings, unknown_variables
from app.errors import AuthzError
from app.heap import collector_paused, freeze_after_load, settle_heap
from app.observability.logging import setup_logging
from app.observability.metrics import Metrics, worker_exited
from app.services import Services, compose
from app.startup import StartupError
from app.store.database import redacted
from app.store.schema import EXPECTED_HEAD, current_revision
from app.token_services import start_tokens
from app.tokens.keys import KeyDecryptionError


async def _close(services: Services, remove_sink: Callable[[], None]) -> None:
    await services.close()
    remove_sink()


def start_failure(exc: BaseException) -> str:
    """Why the instance did not start, in one line (what `oms-auth serve` prints)."""
    if isinstance(exc, AuthzError):
        return f"policy rejected: {exc.message}"
    if isinstance(exc, StartupError | KeyDecryptionError):
        return str(exc)
    return f"start-up failed: {type(exc).__name__}: {exc}"


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _check_schema(services: Services) -> None:
    try:
        async with services.db.engine.connect() as conn:
            current = await current_revision(conn)
    except Exception as exc:
        raise StartupError(
            f"database {redacted(services.settings.database_url)} is unreachable: {exc}"
        ) from None
    head = EXPECTED_HEAD
    if current != head:
        raise StartupError(
            f"database schema is at {current or 'nothing'}, code expects {head}: "
            "run `oms-auth migrate` (or `make migrate`)"
        )


def base_url(settings: Settings) -> str:
    host = settings.host
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - a wildcard bind is reached on loopback
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}"


async def print_banner(services: Services) -> None:
    """What a person who just typed `make run` needs: where it listens, where the docs are,
    what to do next."""
    import sys

    settings = services.settings
    url = base_url(settings)
    try:
        users = await services.tokens.users.count()
    except Exception:
        users = -1
    lines = [
        "",
        f"  oms-auth is listening on {url}  (policy revision {services.engine.revision}, "
        f"{settings.environment})",
        f"  API docs     {url}/docs",
        f"  try          curl -s {url}/api/v1/authz/check -H 'content-type: application/json' "
        """-d '{"subject": "alice", "resource": "api:schemas", "action": "write"}'""",
    ]
    if users == 0:
        lines.append(
            "  first user   echo 'a long password' | oms-auth users create NAME --admin "
            "--role admin --password-stdin"
        )
    lines += [
        f"  policy       {settings.policy_dir}/ (hot-reloaded on save; `oms-auth policy lint`)",
        "  stop         Ctrl+C",
        "",
    ]
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()


def _document_errors(app: FastAPI) -> None:
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete_examples(document_validation_errors(build()))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(
    settings: Settings | None = None, *, resolvers: Sequence[PrincipalResolver] = ()
) -> FastAPI:
    """`resolvers`: more authentication methods, asked after the built-in ones."""
    settings = settings or load_settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        remove_sink = setup_logging(level=settings.log_level, json=settings.logs_as_json)
        try:
            services = await compose(settings, metrics=metrics, resolvers=resolvers)
        except BaseException as exc:
            app.state.start_error = start_failure(exc)
            remove_sink()
            raise
        try:
            await _check_schema(services)
            if settings.gc_freeze:
                services.engine.on_change(freeze_after_load)
            # The collector policy is process-wide, so only a server that opts in gets it.
            pause = collector_paused() if settings.gc_freeze else contextlib.nullcontext()
            with pause:  # nothing is served yet (see app.heap)
                await services.engine.load(trigger="startup")
            await start_tokens(
                services.tokens,
                memory=services.redis is None,
                purges=[services.writes.store.purge],
            )
            await services.monitor.check_now()  # /readyz reports real state from the start
            services.monitor.start()
            services.cache.start()  # pub/sub, DB poll, warming: after the first load
            if settings.policy_watch:
                watcher = policy_watcher(services.policy_reloader)
                watcher.start()
                services.on_close(watcher.stop)
            app.state.services = services
            metrics.process.started()
            refresher = asyncio.create_task(metrics.process.refresh_forever())
            services.on_close(partial(_cancel, refresher))
            for name in unknown_variables():
                logger.warning("config.unknown_variable", variable=name, effect="ignored")
            if settings.gc_freeze:
                settle_heap()
            logger.info(
                "service.started",
                url=base_url(settings),
                docs=f"{base_url(settings)}/docs",
                database=redacted(settings.database_url),
                redis=bool(settings.redis_url),
                policy_source=settings.policy_source,
                policy_revision=services.engine.revision,
                https_required=settings.https_required,
                trusted_proxies=settings.trusted_proxies or None,
                pid=os.getpid(),
            )
            if settings.environment == "production" and not settings.https_required:
                logger.warning(
                    "service.https_disabled",
                    reason="OMS_AUTH_REQUIRE_HTTPS=false in production: credentials may "
                    "travel in clear text",
                )
            if not settings.logs_as_json:
                await print_banner(services)
        except BaseException as exc:
            # Logged here: the server's own report comes after this sink is removed. Known
            # causes are one line for the operator; anything else keeps its traceback.
            app.state.start_error = start_failure(exc)
            if isinstance(exc, StartupError | KeyDecryptionError | AuthzError):
                logger.error("service.start_failed", error=str(exc))
            else:
                logger.exception("service.start_failed")
            await _close(services, remove_sink)
            raise
        try:
            yield
        finally:
            logger.info("service.stopping")
            await _close(services, remove_sink)
            worker_exited()

    app = FastAPI(
        title="oms-auth",
        version="0.1.0",
        description=API_DESCRIPTION,
        openapi_tags=OPENAPI_TAGS,
        lifespan=lifespan,
        default_response_class=FastJSONResponse,
        # No 307 to the slash-less URL: Starlette builds it from the Host header.
        redirect_slashes=False,
    )
    _document_errors(app)
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.start_error = None
    install_error_handlers(app)
    app.add_middleware(
        RequestContextMiddleware,
        metrics=metrics,
        max_body_bytes=settings.max_body_bytes,
        request_id_max_bytes=settings.request_id_max_bytes,
        # The lean paths admit decision callers themselves (`admit_decision_caller`).
        fast_lane=FastLane(
            [
                *v1_authz.fast_routes(),
                *authzen.fast_routes(),
                *v1_tokens.fast_routes(),
                *v1_auth.fast_routes(),
                *v2_auth.fast_routes(),
            ]
        ),
    )
    # Outermost: the resolved client address and scheme are what everything inside sees.
    app.add_middleware(
        EdgeMiddleware,
        trusted_proxies=settings.trusted_proxy_networks,
        require_https=settings.https_required,
    )
    app.include_router(health.router)
    app.include_router(v1_authz.router)
    app.include_router(v1_users.router)
    app.include_router(authzen.router)
    app.include_router(operations.router)
    app.include_router(admin.router)
    app.include_router(entities.router)
    app.include_router(admin_users.router)
    app.include_router(audit.router)
    for token_router in (oauth, v1_auth, v1_tokens, v2_auth, v2_authz):
        app.include_router(token_router.router)
    return app
