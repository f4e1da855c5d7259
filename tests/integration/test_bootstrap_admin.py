"""`OMS_AUTH_BOOTSTRAP_ADMIN=username:password` creates the first admin, once."""

from __future__ import annotations

import pytest

from app.audit.log import AuditQuery
from app.config import ConfigError, load_settings
from tests.support.tokens import AppFactory, claims_of


async def test_creates_an_admin_when_no_user_exists(token_app_factory: AppFactory) -> None:
    async with token_app_factory(users={}, bootstrap_admin="root:first-admin-pw") as env:
        tokens = await env.login("root", "first-admin-pw")
        assert claims_of(tokens["access_token"])["is_admin"] is True
        users = await env.tokens.users.all()
        assert [(u.username, u.is_admin) for u in users] == [("root", True)]
        async with env.services.db.sessions() as session:
            page = await env.services.audit.query(session, AuditQuery(action="user.created"))
        (event,) = page.items
        assert (event.actor, event.source) == ("system:bootstrap", "system")
        assert event.after == {"username": "root", "is_admin": True, "roles": []}


async def test_does_nothing_when_users_exist(token_app_factory: AppFactory) -> None:
    async with token_app_factory(bootstrap_admin="root:first-admin-pw") as env:
        assert await env.tokens.users.by_username("root") is None
        await env.login("root", "first-admin-pw", expect=401)


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
