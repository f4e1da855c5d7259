"""`OMS_AUTH_BOOTSTRAP_ADMIN=username:password` creates the first admin, once."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from app.config import ConfigError, load_settings
from app.store.audit_log import AuditQuery
from tests.support.tokens import AppFactory, claims_of


def log_events(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """The JSON log lines the app wrote to stdout."""
    out = []
    for line in capsys.readouterr().out.splitlines():
        if line.startswith("{"):
            out.append(orjson.loads(line))
    return out


async def test_creates_an_admin_when_no_user_exists(token_app_factory: AppFactory) -> None:
    async with token_app_factory(users={}, bootstrap_admin="root:first-admin-pw") as env:
        tokens = await env.login("root", "first-admin-pw")
        claims = claims_of(tokens["access_token"])
        # the admin flag, the roles and the v2 scope agree: the admin role of the policy
        assert claims["is_admin"] is True and "admin" in claims["roles"]
        assert "api:*:*" in claims["scope"].split(), claims["scope"]
        users = await env.tokens.users.all()
        assert [(u.username, u.is_admin) for u in users] == [("root", True)]
        async with env.services.db.sessions() as session:
            page = await env.services.audit.query(session, AuditQuery(action="user.created"))
        (event,) = page.items
        assert (event.actor, event.source) == ("system:bootstrap", "system")
        assert event.after == {"username": "root", "is_admin": True, "roles": ["admin"]}
        check = await env.http.post(
            "/api/v2/authz/check",
            json={"resource": "api:policies", "action": "write"},
            headers={"Authorization": f"Bearer {tokens['access_token']}"},
        )
        assert check.status_code == 200 and check.json()["allowed"] is True, check.text


async def test_a_role_the_policy_lacks_is_reported(
    token_app_factory: AppFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    async with token_app_factory(
        users={}, bootstrap_admin="root:first-admin-pw", bootstrap_admin_role="superuser"
    ) as env:
        claims = claims_of((await env.login("root", "first-admin-pw"))["access_token"])
        assert claims["is_admin"] is True and claims["roles"] == []
    assert any(e["event"] == "auth.bootstrap_admin.role_unknown" for e in log_events(capsys))


async def test_a_username_that_is_a_role_stops_the_start(token_app_factory: AppFactory) -> None:
    from app.startup import StartupError

    with pytest.raises(StartupError, match=r"'admin', which is a role name"):
        async with token_app_factory(users={}, bootstrap_admin="admin:first-admin-pw"):
            pass


async def test_does_nothing_when_users_exist(
    token_app_factory: AppFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    async with token_app_factory(bootstrap_admin="root:first-admin-pw") as env:
        assert await env.tokens.users.by_username("root") is None
        await env.login("root", "first-admin-pw", expect=401)
    (ignored,) = [e for e in log_events(capsys) if e["event"] == "auth.bootstrap_admin.ignored"]
    assert "remove it" in str(ignored["reason"]) and ignored["level"] == "WARNING"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no-colon-here", "must be username:password"),
        (":password-only", "username must not be empty"),
        ("root:short", "at least 8"),
        ("a, b:long-enough-pw", "may only hold"),
    ],
)
def test_invalid_specs_stop_the_service_at_start(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as raised:
        load_settings(bootstrap_admin=spec)
    assert "OMS_AUTH_BOOTSTRAP_ADMIN" in str(raised.value)
    secret = spec.partition(":")[2] or spec
    assert secret not in str(raised.value)  # the password is never echoed
