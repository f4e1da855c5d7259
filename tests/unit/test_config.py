"""Settings: embedded defaults, environment overrides, one clear line for a bad value."""

from __future__ import annotations

import pytest

from app.config import ConfigError, Settings, load_settings


def test_embedded_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(__import__("os").environ):
        if key.startswith("OMS_AUTH_"):
            monkeypatch.delenv(key)
    s = Settings()
    assert s.database_url == "sqlite:///./var/oms_auth.db"
    assert s.redis_url is None and not s.redis_enabled
    assert s.port == 8001 and s.signing_alg == "RS256" and s.access_token_ttl == 900
    assert s.key_prefix == "oms-auth:v1"


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMS_AUTH_DATABASE_URL", "postgresql+psycopg://u@h/db")
    monkeypatch.setenv("OMS_AUTH_PORT", "9000")
    monkeypatch.setenv("OMS_AUTH_REDIS_URL", "")
    s = load_settings()
    assert s.database_url.startswith("postgresql") and s.port == 9000 and s.redis_url is None


@pytest.mark.parametrize(
    ("var", "value", "expect"),
    [
        ("OMS_AUTH_PORT", "eighty", "OMS_AUTH_PORT"),
        ("OMS_AUTH_PORT", "70000", "OMS_AUTH_PORT"),
        ("OMS_AUTH_DATABASE_URL", "mysql://x", "OMS_AUTH_DATABASE_URL"),
        ("OMS_AUTH_POLICY_SOURCE", "ldap", "OMS_AUTH_POLICY_SOURCE"),
        ("OMS_AUTH_SIGNING_ALG", "HS256", "OMS_AUTH_SIGNING_ALG"),
        ("OMS_AUTH_REDIS_URL", "localhost:6379", "OMS_AUTH_REDIS_URL"),
        ("OMS_AUTH_RATE_LIMIT_CHECK", "lots", "OMS_AUTH_RATE_LIMIT_CHECK"),
        ("OMS_AUTH_DECISION_AUTH", "maybe", "OMS_AUTH_DECISION_AUTH"),
    ],
)
def test_bad_value_is_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str, expect: str
) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert "\n" not in message and expect in message


def test_secret_values_are_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMS_AUTH_DATABASE_URL", "mysql://user:hunter2@db/x")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "hunter2" not in str(info.value)


def test_production_requires_hardening(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMS_AUTH_ENVIRONMENT", "production")
    with pytest.raises(ConfigError, match="ENCRYPTION_KEY"):
        load_settings()


def test_every_setting_is_in_the_readme_table() -> None:
    """Each `OMS_AUTH_*` setting has a row in README.md's configuration table, written in
    full or as a `_SUFFIX` beside a full name with the same stem."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    rows = [line for line in readme.splitlines() if line.startswith("| `OMS_AUTH_")]
    missing = []
    for field in Settings.model_fields:
        name = f"OMS_AUTH_{field.upper()}"
        if any(f"`{name}`" in row for row in rows):
            continue
        parts = name.split("_")
        shorthand = any(
            f"`_{'_'.join(parts[i:])}`" in row and f"`{'_'.join(parts[:i])}_" in row
            for row in rows
            for i in range(3, len(parts))
        )
        if not shorthand:
            missing.append(name)
    assert missing == []


def test_unknown_variables_are_named_with_a_suggestion() -> None:
    from app.config import unknown_variables

    env = {
        "OMS_AUTH_DATABSE_URL": "x",
        "OMS_AUTH_PORT": "1",
        "OMS_AUTH_TEST_REDIS_DB": "9",
        "OMS_AUTH_WHATEVER_THIS_IS": "1",
        "PATH": "/bin",
    }
    assert unknown_variables(env) == [
        "OMS_AUTH_DATABSE_URL (did you mean OMS_AUTH_DATABASE_URL?)",
        "OMS_AUTH_WHATEVER_THIS_IS",
    ]
