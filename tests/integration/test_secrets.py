"""Secrets in production: weak keys stop the start; private keys are wrapped with scrypt and
AES-GCM; keys wrapped the old way (PKCS#8 + PBKDF2) still open."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from joserfc.jwk import RSAKey

from app.config import ConfigError, load_settings
from app.security.secrets import MIN_SECRET_BITS, entropy_bits
from app.tokens.keys import KeyDecryptionError, new_stored_key, open_private_key
from app.tokens.models import StoredKey
from tests.support.server import run_cli

WEAK = ["x", "k" * 32, "x" * 44, "password" * 8, "0123456789abcdef", "aaaabbbbccccdddd" * 4]
# How operators generate keys; made at run time (ids, not values, name the test cases).
GENERATORS: dict[str, Callable[[], str]] = {
    "token_urlsafe(32)": lambda: secrets.token_urlsafe(32),
    "token_hex(32)": lambda: secrets.token_hex(32),
    "token_urlsafe(48)": lambda: secrets.token_urlsafe(48),
}


def _production(**extra: str) -> dict[str, str]:
    return {"environment": "production", "issuer": "https://auth.example", **extra}


@pytest.mark.parametrize("weak", WEAK)
def test_weak_secrets_stop_a_production_start(weak: str) -> None:
    assert entropy_bits(weak) < MIN_SECRET_BITS
    with pytest.raises(ConfigError, match="OMS_AUTH_ENCRYPTION_KEY is too weak"):
        load_settings(**_production(encryption_key=weak))
    with pytest.raises(ConfigError, match="OMS_AUTH_ADMIN_API_KEY is too weak") as info:
        load_settings(**_production(encryption_key=secrets.token_urlsafe(32), admin_api_key=weak))
    assert weak not in str(info.value)


@pytest.mark.parametrize("generate", GENERATORS.values(), ids=GENERATORS.keys())
def test_generated_secrets_pass(generate: Callable[[], str]) -> None:
    strong = generate()
    settings = load_settings(**_production(encryption_key=strong, admin_api_key=strong))
    assert settings.environment == "production"


def test_the_cli_refuses_a_weak_key_in_one_line(tmp_path: Path) -> None:
    env = {
        "OMS_AUTH_ENVIRONMENT": "production",
        "OMS_AUTH_ISSUER": "https://auth.example",
        "OMS_AUTH_ENCRYPTION_KEY": "x",
        "OMS_AUTH_DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite",
    }
    done = run_cli("migrate", env=env)
    assert done.returncode != 0
    assert "OMS_AUTH_ENCRYPTION_KEY is too weak" in done.stderr
    assert "Traceback" not in done.stderr


def test_private_keys_are_wrapped_with_scrypt_and_old_wrappings_still_open() -> None:
    now = datetime.now(UTC)
    password = secrets.token_urlsafe(32)
    stored = new_stored_key("ES256", password=password, now=now)
    assert stored.private_pem.startswith("-----BEGIN OMS-AUTH WRAPPED PRIVATE KEY-----")
    assert "PRIVATE KEY-----\nMI" not in stored.private_pem  # nothing in clear
    assert open_private_key(stored, password=password).as_dict(private=False)["kty"] == "EC"
    for wrong in ("wrong", None):
        with pytest.raises(KeyDecryptionError):
            open_private_key(stored, password=wrong)
    tampered = StoredKey(
        stored.kid,
        stored.alg,
        stored.private_pem.replace("A", "B", 1),
        stored.public_jwk,
        "active",
        now,
    )
    with pytest.raises(KeyDecryptionError):
        open_private_key(tampered, password=password)
    # the previous wrapping: PKCS#8 with PBKDF2 (what older releases stored)
    legacy_key = RSAKey.generate_key(2048)
    legacy_pem = legacy_key.as_pem(private=True, password=password).decode()
    assert legacy_pem.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    legacy = StoredKey("old", "RS256", legacy_pem, {}, "previous", now)
    opened = open_private_key(legacy, password=password)
    assert opened.thumbprint() == legacy_key.thumbprint()
