"""Tokens issued before a user's (or a client's) roles or permissions shrank, or before the
user or client was disabled, stop validating (`tokens_valid_after`). Both database backends."""

from __future__ import annotations

from pathlib import Path

import httpx
from sqlalchemy import delete

from app.main import create_app
from app.store.database import Database
from app.store.models import CasbinRule
from app.store.revisions import bump_revision
from app.tokens.service import disable_client
from tests.support.tokens import PASSWORD, AppFactory, TokenApp, claims_of
from tests.support.waiting import wait_for

USERS = {"alice": ["developer"], "bob": ["viewer"], "dan": ["developer"], "dave": []}


async def _remove_role(database_url: str, member: str, role: str) -> None:
    db = Database(database_url)
    try:
        async with db.transaction() as s:
            await s.execute(
                delete(CasbinRule).where(
                    CasbinRule.ptype == "g", CasbinRule.v0 == member, CasbinRule.v1 == role
                )
            )
            await bump_revision(s)
    finally:
        await db.close()


async def _valid(env: TokenApp, token: str) -> bool:
    return bool((await env.validate(token))["valid"])


async def test_role_removed_cuts_off_older_tokens(
    token_app_factory: AppFactory, database_url: str
) -> None:
    async with token_app_factory(database_url=database_url, users=USERS) as env:
        dan = await env.login("dan")
        bob = await env.login("bob")
        assert "api:schemas:write" in dan["scope"].split()
        await _remove_role(database_url, "dan", "developer")
        await env.reload_policy()
        result = await env.validate(dan["access_token"])
        assert result["error"] == {
            "code": "AUTH_005",
            "message": "Token was issued before its holder's roles or status changed",
            "details": {"reason": "stale"},
        }
        assert await _valid(env, bob["access_token"])  # bob's roles did not change
        again = await env.login("dan")  # a new login reflects the new policy
        assert await _valid(env, again["access_token"])
        assert claims_of(again["access_token"])["scope"] == ""
        # the refresh token survives (it re-derives the scope) and never regains the old one
        r = await env.http.post(
            "/api/v1/auth/refresh", json={"refresh_token": dan["refresh_token"]}
        )
        assert r.status_code == 200 and "api:schemas:write" not in r.json()["scope"]


async def test_permission_changes_in_policy_files(
    token_app_factory: AppFactory, database_url: str, policy_dir: Path
) -> None:
    # roles from the shipped policy.csv
    users: dict[str, list[str]] = {"alice": [], "bob": [], "dave": []}
    async with token_app_factory(
        database_url=database_url, policy_dir=policy_dir, users=users
    ) as env:
        alice, bob, dave = [await env.login(n) for n in ("alice", "bob", "dave")]
        csv = policy_dir / "policy.csv"
        # only additions: nobody's token is cut off
        csv.write_text(csv.read_text() + "\np, viewer, api:reports, read, allow\n")
        await env.reload_policy()
        assert all([await _valid(env, t["access_token"]) for t in (alice, bob, dave)])
        # a viewer permission removed: viewers and everyone inheriting viewer are cut off
        text = csv.read_text().replace("p, viewer, api:schemas, read, allow\n", "")
        csv.write_text(text)
        await env.reload_policy()
        assert not await _valid(env, alice["access_token"])  # developer inherits viewer
        assert not await _valid(env, bob["access_token"])
        assert await _valid(env, dave["access_token"])  # auditor: unaffected
        # a new deny on a role is a narrowing too
        dave2 = await env.login("dave")
        csv.write_text(csv.read_text() + "\np, auditor, api:audit, read, deny\n")
        await env.reload_policy()
        assert not await _valid(env, dave2["access_token"])
        assert "api:audit:read" not in (await env.login("dave"))["scope"].split()


async def test_role_added_cuts_off_too(token_app_factory: AppFactory, database_url: str) -> None:
    async with token_app_factory(database_url=database_url, users=USERS) as env:
        dave = await env.login("dave")
        db = Database(database_url)
        try:
            async with db.transaction() as s:
                s.add(CasbinRule(ptype="g", v0="dave", v1="viewer"))
                await s.flush()
                await bump_revision(s)
        finally:
            await db.close()
        await env.reload_policy()
        assert not await _valid(env, dave["access_token"])
        assert "api:schemas:read" in (await env.login("dave"))["scope"].split()


async def test_disabled_user_loses_every_token(
    token_app_factory: AppFactory, database_url: str
) -> None:
    async with token_app_factory(database_url=database_url, users=USERS) as env:
        tokens = await env.login("alice")
        v1 = await env.login("alice", version="v1")
        assert await env.tokens.service.disable_user("alice") is not None
        for token in (tokens["access_token"], v1["access_token"]):
            assert (await env.validate(token))["error"]["code"] == "AUTH_005"
        r = await env.http.post(
            "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
        )
        assert r.status_code == 401 and r.json()["error"]["code"] == "AUTH_005"
        assert (await env.login("alice", expect=401))["error"]["code"] == "AUTH_001"
        assert await env.tokens.service.disable_user("nobody") is None


async def test_cut_off_reaches_instances_that_did_not_see_the_change(
    token_app_factory: AppFactory, database_url: str
) -> None:
    async with token_app_factory(
        database_url=database_url, users=USERS, policy_poll_interval=0.1
    ) as env:
        dan = await env.login("dan")
        other = create_app(env.settings)  # a second instance, no Redis: it polls the DB
        async with other.router.lifespan_context(other):
            transport = httpx.ASGITransport(app=other)
            async with httpx.AsyncClient(transport=transport, base_url="http://b") as b:

                async def valid_on_b() -> bool:
                    r = await b.post("/api/v1/tokens/validate", json={"token": dan["access_token"]})
                    return bool(r.json()["valid"])

                assert await valid_on_b()
                await _remove_role(database_url, "dan", "developer")
                await env.reload_policy()  # only the first instance reloads

                async def refused_on_b() -> bool:
                    return not await valid_on_b()

                await wait_for(
                    refused_on_b,
                    timeout=10,
                    interval=0.05,
                    message="cut-off never reached instance B",
                )


async def _client_token(env: TokenApp) -> str:
    r = await env.oauth("token", "web", {"grant_type": "client_credentials"})
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


async def test_client_losing_a_role_loses_its_older_tokens(
    token_app_factory: AppFactory, database_url: str
) -> None:
    async with token_app_factory(database_url=database_url, users=USERS) as env:
        db = Database(database_url)
        try:
            async with db.transaction() as s:
                s.add(CasbinRule(ptype="g", v0="client:web", v1="developer"))
                await bump_revision(s)
        finally:
            await db.close()
        await env.reload_policy()
        machine = await _client_token(env)
        assert "api:schemas:write" in claims_of(machine)["scope"].split()
        bob = await env.login("bob")  # a user's token, not through client `web`
        await _remove_role(database_url, "client:web", "developer")
        await env.reload_policy()
        assert (await env.validate(machine))["error"]["details"] == {"reason": "stale"}
        assert await _valid(env, bob["access_token"])
        fresh = await _client_token(env)
        assert await _valid(env, fresh)
        assert (
            "api:schemas:write" not in claims_of(fresh).get("scope", "").split()
        )  # no scope claim: nothing granted


async def test_disabled_client_loses_every_token_naming_it(
    token_app_factory: AppFactory, database_url: str
) -> None:
    async with token_app_factory(database_url=database_url, users=USERS) as env:
        service = env.tokens.service
        machine = await _client_token(env)
        data = {"grant_type": "password", "username": "alice", "password": PASSWORD}
        through_web = (await env.oauth("token", "web", data)).json()
        first_party = await env.login("alice")  # the login API's own client, not `web`
        assert await disable_client(
            "web", clients=env.tokens.clients, revocations=service.revocations
        )
        assert (await env.validate(machine))["error"]["details"] == {"reason": "stale"}
        body = await env.validate(through_web["access_token"])
        assert body["error"] == {
            "code": "AUTH_005",
            "message": "Token was issued before its client was disabled or lost permissions",
            "details": {"reason": "client_cut_off"},
        }
        assert await _valid(env, first_party["access_token"])
        # The cut-off is durable: an instance that starts afterwards rejects the tokens too.
        other = create_app(env.settings)
        async with other.router.lifespan_context(other):
            transport = httpx.ASGITransport(app=other)
            async with httpx.AsyncClient(transport=transport, base_url="http://b") as b:
                tokens = [machine, through_web["access_token"], first_party["access_token"]]
                r = await b.post("/api/v1/tokens/validate/batch", json={"tokens": tokens})
                assert [x["valid"] for x in r.json()["results"]] == [False, False, True]
        assert not await disable_client(
            "nobody", clients=env.tokens.clients, revocations=service.revocations
        )
