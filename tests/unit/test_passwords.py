"""argon2id hashing off the event loop; unknown users cost one verification too."""

from __future__ import annotations

import pytest

from app.security.client_secrets import client_secret_matches, hash_client_secret
from app.security.fingerprint import fingerprint_hash, fingerprint_matches
from app.security.passwords import PasswordHasher, WeakPassword, check_password_policy


async def test_hash_verify_and_dummy() -> None:
    hasher = PasswordHasher(time_cost=1, memory_kib=1024, parallelism=1)
    try:
        stored = await hasher.hash("a fine password")
        assert stored.startswith("$argon2id$v=19$m=1024,t=1,p=1$")
        assert (await hasher.verify(stored, "a fine password")).ok
        assert not (await hasher.verify(stored, "another password")).ok
        before = hasher.verifications
        assert not (await hasher.verify(None, "a fine password")).ok  # unknown user
        assert hasher.verifications == before + 1
        assert not (await hasher.verify("not-a-hash", "x")).ok
        stronger = PasswordHasher(time_cost=2, memory_kib=1024, parallelism=1)
        assert (await stronger.verify(stored, "a fine password")).needs_rehash
        stronger.close()
    finally:
        hasher.close()


def test_password_policy() -> None:
    check_password_policy("eight ch")
    for bad in ("short", "x" * 1025):
        with pytest.raises(WeakPassword):
            check_password_policy(bad)


def test_client_secrets_and_fingerprints() -> None:
    stored = hash_client_secret("s3cret")
    assert client_secret_matches(stored, "s3cret") and not client_secret_matches(stored, "x")
    assert not client_secret_matches(None, "s3cret") and not client_secret_matches("plain", "x")
    bound = fingerprint_hash("device")
    assert bound is not None and len(bound) == 64 and fingerprint_hash("  ") is None
    assert fingerprint_matches(None, None) and fingerprint_matches(bound, " device ")
    assert not fingerprint_matches(bound, None) and not fingerprint_matches(bound, "other")
