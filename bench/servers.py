"""The two HTTP baselines, served exactly like oms-auth (uvicorn, one worker, same options).

- `floor`: a bare FastAPI endpoint returning constant JSON: what FastAPI itself costs.
- `naive`: FastAPI + a plain `casbin.Enforcer` on the same policy, no cache: what a
  straightforward Casbin service costs.

Run one with `python -m bench.servers floor|naive PORT [POLICY_DIR]`.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import casbin
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel

logging.getLogger("casbin").setLevel(logging.ERROR)


def floor_app() -> FastAPI:
    app = FastAPI()

    @app.post("/check")
    async def check() -> dict[str, bool]:
        return {"allowed": True}

    return app


class CheckBody(BaseModel):
    subject: str
    resource: str
    action: str


def naive_app(policy_dir: Path) -> FastAPI:
    enforcer = casbin.Enforcer(str(policy_dir / "model.conf"), str(policy_dir / "policy.csv"))
    app = FastAPI()

    @app.post("/check")
    async def check(body: CheckBody) -> dict[str, Any]:
        return {"allowed": enforcer.enforce(body.subject, body.resource, body.action)}

    return app


def serve(app: FastAPI, port: int) -> None:
    """The options `oms-auth serve` passes to uvicorn."""
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        proxy_headers=True,
        server_header=False,
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    kind, port = sys.argv[1], int(sys.argv[2])
    serve(floor_app() if kind == "floor" else naive_app(Path(sys.argv[3])), port)
