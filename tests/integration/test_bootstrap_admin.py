"""`OMS_AUTH_BOOTSTRAP_ADMIN=username:password` creates the first admin, once."""

from __future__ import annotations

import pytest

from app.audit.log import AuditQuery
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


@pytest.mark.parametrize("spec", ["no-colon-here", ":password-only", "root:short"])
async def test_invalid_specs_create_nothing(token_app_factory: AppFactory, spec: str) -> None:
    async with token_app_factory(users={}, bootstrap_admin=spec) as env:
        assert await env.tokens.users.all() == []
