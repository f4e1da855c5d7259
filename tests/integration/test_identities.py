"""Users and roles never share a name; usernames are canonical, one script, not lookalikes."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.security.names import InvalidName, check_username
from tests.support.server import run_cli
from tests.support.tokens import AppFactory, add_user

KEY = "k" * 32
PASSWORD = "correct horse battery\n"


@pytest.mark.parametrize(
    "name",
    [
        "Victor",  # not canonical: would sit beside victor
        "\u0430lice",  # Cyrillic a + Latin lice: mixed scripts
        "\uff41\uff4c\uff49\uff43\uff45",  # full-width alice
        "\u0430\u0441\u0435",  # Cyrillic letters spelling "ace"
        "bo\u0431",  # Latin + Cyrillic
    ],
)
def test_lookalike_usernames_are_refused(name: str) -> None:
    with pytest.raises(InvalidName):
        check_username(name)


@pytest.mark.parametrize("name", ["victor", "alice.smith@example.com", "jürgen", "李雷", "дмитрий"])
def test_ordinary_usernames_pass(name: str) -> None:
    assert check_username(name) == name


def test_cli_refuses_a_user_named_like_a_role(tmp_path: Path) -> None:
    env = {"OMS_AUTH_DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite"}
    assert run_cli("migrate", env=env).returncode == 0
    for name, message in (
        ("auditor", "would be read as the role 'auditor'"),
        ("Victor", "canonical form 'victor'"),
        ("\u0430lice", "mixes scripts"),
    ):
        done = run_cli("users", "create", name, "--password-stdin", env=env, input=PASSWORD)
        assert done.returncode != 0, name
        assert message in done.stderr, done.stderr
    done = run_cli("users", "create", "victor", "--password-stdin", env=env, input=PASSWORD)
    assert done.returncode == 0, done.stderr


async def test_admin_api_refuses_a_role_named_like_a_user(
    token_app_factory: AppFactory, pg_url: str
) -> None:
    async with token_app_factory(database_url=pg_url, admin_api_key=KEY) as env:
        await add_user(env.settings, "victor")
        admin = {"X-API-Key": KEY}
        r = await env.http.put("/api/v1/roles/victor/members/bob", headers=admin)
        assert r.status_code == 409, r.text
        assert r.json()["error"]["details"]["collides_with"] == "user"
        r = await env.http.post(
            "/api/v1/policies", json={"ptype": "g", "rule": ["bob", "victor"]}, headers=admin
        )
        assert r.status_code == 409
        # bob did not inherit anything victor holds
        me = await env.http.get("/api/v1/users/bob/permissions")
        assert "victor" not in me.json()["roles"]
        # an ordinary role still takes members
        ok = await env.http.put("/api/v1/roles/auditor/members/bob", headers=admin)
        assert ok.status_code in (200, 201), ok.text
