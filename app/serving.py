"""Running the HTTP server: one process, or a supervisor and N worker processes.

`oms-auth serve` (one worker) runs the app in this process. `oms-auth serve --workers N` runs
uvicorn's supervisor: it binds the port once, starts N workers that each build their own app
(`create_app` from the same `OMS_AUTH_*` environment) and accept on the shared socket, and
restarts a worker that dies. Everything the workers must agree on is shared the way separate
instances share it: the database (policy revision, rules, revocations, keys) and Redis (rate
limits, caches, change announcements), so N > 1 requires Redis. `/metrics` renders the whole
process group from a per-start directory (prometheus-client's multiprocess mode).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from socket import socket
from typing import Any

import uvicorn
from loguru import logger
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Multiprocess, Process

from app.config import Settings
from app.observability.logging import setup_logging
from app.observability.metrics import MULTIPROC_ENV, worker_exited

# How long a worker may take to answer the supervisor's liveness ping. A worker busy building
# a large policy still answers (the ping is a thread), but a loaded 2-core machine can delay
# it; a wrongly killed worker would start over, so be generous.
WORKER_HEALTHCHECK_SECONDS = 30


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The server options of every `oms-auth serve`, whatever the number of workers."""
    return {
        "host": settings.host,
        "port": settings.port,
        "log_config": None,
        "access_log": False,
        # Forwarded headers are resolved by the app (OMS_AUTH_TRUSTED_PROXIES), never by
        # uvicorn, whose default trusts 127.0.0.1.
        "proxy_headers": False,
        "server_header": False,
        "timeout_graceful_shutdown": settings.shutdown_timeout,
        "timeout_keep_alive": settings.keep_alive_timeout,
    }


class StartFailed(Exception):
    """The server did not start; the message is one line for the operator."""


def serve_one(settings: Settings) -> None:
    """Serve in this process; raise `StartFailed` when the app does not start."""
    from app.main import create_app

    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, **uvicorn_options(settings)))
    try:
        server.run()
    except SystemExit as exc:  # uvicorn exits with STARTUP_FAILURE when the lifespan fails
        if exc.code != STARTUP_FAILURE:
            raise
        raise StartFailed(app.state.start_error or "the server did not start") from None
    if not server.started and app.state.start_error:
        raise StartFailed(app.state.start_error)


class Supervisor(Multiprocess):
    """uvicorn's worker supervisor, plus what this service needs when a worker ends: its live
    gauges dropped from `/metrics` and one structured log line with its exit code."""

    def __init__(self, config: uvicorn.Config, sockets: list[socket]) -> None:
        super().__init__(config, sockets)
        self.startup_failed = False

    def keep_subprocess_alive(self) -> None:
        if self.should_exit.is_set():
            return
        for idx, process in enumerate(self.processes):
            if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                continue
            hung = process.exitcode is None
            process.kill()  # hung (no answer to the ping): kill it; dead: reap it
            process.join()
            self._retired(process)
            if process.exitcode == STARTUP_FAILURE:
                # It failed before serving (bad policy, database, keys): every replacement
                # would fail the same way, so the whole service stops.
                logger.error("worker.start_failed", pid=process.pid)
                self.startup_failed = True
                self.should_exit.set()
                return
            if self.should_exit.is_set():
                return
            replacement = Process(self.config, self.sockets)
            replacement.start()
            self.processes[idx] = replacement
            logger.error(
                "worker.restarted",
                pid=process.pid,
                exit_code=process.exitcode,
                reason="unresponsive" if hung else "exited",
                new_pid=replacement.pid,
            )

    def handle_ttou(self) -> None:
        before = list(self.processes)
        super().handle_ttou()
        for process in before:
            if process not in self.processes:
                self._retired(process)

    def join_all(self) -> None:
        super().join_all()
        for process in self.processes:
            self._retired(process)

    @staticmethod
    def _retired(process: Process) -> None:
        if process.pid is not None:
            worker_exited(process.pid)


def serve_workers(settings: Settings) -> None:
    """Bind once and supervise `settings.workers` worker processes until SIGINT/SIGTERM."""
    metrics_dir = tempfile.mkdtemp(prefix="oms-auth-metrics-")  # fresh and empty each start
    os.environ[MULTIPROC_ENV] = metrics_dir
    # Workers read their settings from the environment: pass on what the command line set.
    os.environ["OMS_AUTH_WORKERS"] = str(settings.workers)
    os.environ["OMS_AUTH_HOST"] = settings.host
    os.environ["OMS_AUTH_PORT"] = str(settings.port)
    remove_sink = setup_logging(level=settings.log_level, json=settings.logs_as_json)
    config = uvicorn.Config(
        "app.main:create_app",
        factory=True,
        workers=settings.workers,
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
        **uvicorn_options(settings),
    )
    supervisor: Supervisor | None = None
    try:
        sock = config.bind_socket()
        try:
            logger.info(
                "service.supervisor.started",
                pid=os.getpid(),
                workers=settings.workers,
                metrics_dir=metrics_dir,
            )
            supervisor = Supervisor(config, sockets=[sock])
            supervisor.run()
        finally:
            sock.close()
        logger.info("service.supervisor.stopped", pid=os.getpid())
    finally:
        remove_sink()
        shutil.rmtree(metrics_dir, ignore_errors=True)
    if supervisor is not None and supervisor.startup_failed:
        raise StartFailed("a worker failed to start: see its service.start_failed log line")
