"""Probes: /livez is the process, /readyz is "can decide" and costs no database round trip;
database and Redis state are reported from background checks and never make it unready."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event

from tests.conftest import SettingsFactory
from tests.support import services as svc
from tests.support.apps import serve, services_of
from tests.support.redis_server import RedisServer
from tests.support.waiting import wait_for

CHECK = {"subject": "alice", "resource": "api:schemas", "action": "write"}


async def test_readyz_costs_no_database_round_trip(make_settings: SettingsFactory) -> None:
    async with serve(make_settings(health_check_interval=300)) as (app, client):
        services = services_of(app)
        checkouts: list[int] = []
        event.listen(services.db.engine.sync_engine, "checkout", lambda *a: checkouts.append(1))
        for _ in range(50):
            ready = await client.get("/readyz")
            assert ready.status_code == 200
        assert checkouts == []  # no connection taken for any of the 50 probes
        body = ready.json()
        assert body["status"] == "ready" and body["checks"]["database"] == "ok"
        assert body["checks"]["dependencies"]["database"]["status"] == "ok"
        assert body["checks"]["policy"]["revision"] == services.engine.revision
        assert (await client.get("/livez")).json() == {"status": "ok"}


async def test_database_outage_is_reported_but_the_node_stays_ready(
    make_settings: SettingsFactory, pg_url: str
) -> None:
    settings = make_settings(database_url=pg_url, health_check_interval=0.2)
    async with serve(settings) as (_app, client):
        svc.drop_pg_database(pg_url.rsplit("/", 1)[1])

        async def reported() -> bool:
            response = await client.get("/readyz")
            body: dict[str, Any] = response.json()
            assert response.status_code == 200 and body["status"] == "ready"
            return bool(body["checks"]["database"] == "unreachable")

        await wait_for(reported, timeout=20)
        decision = await client.post("/api/v1/authz/check", json=CHECK)
        assert decision.status_code == 200 and decision.json()["allowed"] is True
        assert (await client.get("/livez")).status_code == 200


async def test_redis_state_is_reported_and_recovers(
    make_settings: SettingsFactory, private_redis: RedisServer
) -> None:
    settings = make_settings(redis_url=private_redis.url, health_check_interval=0.2)
    async with serve(settings) as (_app, client):

        def redis_state(status: str) -> Any:
            async def check() -> bool:
                response = await client.get("/readyz")
                assert response.status_code == 200
                deps = response.json()["checks"]["dependencies"]
                return bool(deps["redis"]["status"] == status)

            return check

        await wait_for(redis_state("ok"), timeout=20)
        private_redis.stop()
        await wait_for(redis_state("unreachable"), timeout=20)
        assert (await client.post("/api/v1/authz/check", json=CHECK)).status_code == 200
        private_redis.start()
        await wait_for(redis_state("ok"), timeout=20)
