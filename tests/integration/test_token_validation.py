"""`/api/v1/tokens/validate[/batch]`: every outcome and error code of token validation."""

from __future__ import annotations

import base64
import time
from typing import Any

import orjson
import pytest
from joserfc.jwk import RSAKey

from app.tokens import jose
from tests.support.tokens import TokenApp, claims_of
from tests.support.waiting import wait_for


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(data)).rstrip(b"=").decode()


async def _signed(env: TokenApp, **changes: Any) -> str:
    """A token signed with the service's real key, with some claims changed or removed."""
    claims = claims_of((await env.login("alice"))["access_token"])
    for name, value in changes.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    signer = await env.tokens.keys.signer()
    return jose.sign(claims, key=signer.key, kid=signer.kid, alg=signer.alg)


async def _error(env: TokenApp, token: str, **extra: Any) -> dict[str, Any]:
    result = await env.validate(token, **extra)
    assert result["valid"] is False, result
    assert set(result) == {"valid", "error"}
    error: dict[str, Any] = result["error"]
    return error


async def test_valid_token_returns_claims(token_app: TokenApp) -> None:
    token = (await token_app.login("alice"))["access_token"]
    result = await token_app.validate(token)
    assert result == {"valid": True, "claims": claims_of(token)}


async def test_expired_is_auth_002_with_details(token_app: TokenApp) -> None:
    now = int(time.time())
    token = await _signed(token_app, iat=now - 3660, nbf=now - 3660, exp=now - 60)
    error = await _error(token_app, token)
    assert error["code"] == "AUTH_002" and error["message"] == "Token has expired"
    assert error["details"]["token_age_seconds"] >= 3660
    expired_at = error["details"]["expired_at"]
    assert expired_at.endswith("Z") and expired_at.startswith(time.strftime("%Y-", time.gmtime()))


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"aud": "someone-else"}, "audience"),
        ({"aud": ["x", "y"]}, "audience"),
        ({"iss": "https://evil.example"}, "issued"),
        ({"nbf": int(time.time()) + 86_400}, "not valid yet"),
        ({"iat": int(time.time()) + 86_400}, "not valid yet"),
        ({"sub": None}, "'sub'"),
        ({"jti": None}, "'jti'"),
        ({"exp": "tomorrow"}, "'exp'"),
    ],
)
async def test_bad_claims_are_auth_004(
    token_app: TokenApp, changes: dict[str, Any], needle: str
) -> None:
    error = await _error(token_app, await _signed(token_app, **changes))
    assert error["code"] == "AUTH_004" and needle in error["message"]


async def test_audience_can_be_named_by_the_caller(token_app: TokenApp) -> None:
    token = await _signed(token_app, aud="reports-api")
    assert (await token_app.validate(token))["valid"] is False
    assert (await token_app.validate(token, audience="reports-api"))["valid"] is True


async def test_forged_and_malformed_tokens_are_auth_004(token_app: TokenApp) -> None:
    real = (await token_app.login("alice"))["access_token"]
    head, payload, sig = real.split(".")
    claims = claims_of(real)
    tampered = f"{head}.{_b64({**claims, 'is_admin': True})}.{sig}"
    other_key = RSAKey.generate_key(2048)
    unknown_key = jose.sign(claims, key=other_key, kid=other_key.thumbprint(), alg="RS256")
    signer = await token_app.tokens.keys.signer()
    same_kid_other_key = jose.sign(claims, key=other_key, kid=signer.kid, alg="RS256")
    alg_none = f"{_b64({'alg': 'none', 'typ': 'at+jwt', 'kid': signer.kid})}.{payload}."
    hs256 = f"{_b64({'alg': 'HS256', 'typ': 'at+jwt', 'kid': signer.kid})}.{payload}.{sig}"
    plain_jwt = f"{_b64({'alg': 'RS256', 'typ': 'JWT', 'kid': signer.kid})}.{payload}.{sig}"
    no_kid = f"{_b64({'alg': 'RS256', 'typ': 'at+jwt'})}.{payload}.{sig}"
    cases = {
        "tampered": (tampered, "signature"),
        "unknown key": (unknown_key, "unknown key"),
        "wrong key, known kid": (same_kid_other_key, "signature"),
        "alg none": (alg_none, "not accepted"),
        "alg HS256": (hs256, "not accepted"),
        "typ JWT": (plain_jwt, "at+jwt"),
        "no kid": (no_kid, "kid"),
        "two parts": ("abc.def", "malformed"),
        "garbage": ("not-a-token", "malformed"),
        "bad base64": ("e30.@@@.x", "malformed"),
    }
    for name, (token, needle) in cases.items():
        error = await _error(token_app, token)
        assert error["code"] == "AUTH_004", name
        assert needle in error["message"], (name, error)


async def test_revoked_is_auth_005(token_app: TokenApp) -> None:
    tokens = await token_app.login("alice")
    await token_app.oauth("revoke", "web", {"token": tokens["access_token"]})  # not web's token
    assert (await token_app.validate(tokens["access_token"]))["valid"] is True
    claims = claims_of(tokens["access_token"])
    await token_app.tokens.service.revocations.revoke(
        subject="alice", reason="test", jtis=[(claims["jti"], float(claims["exp"]))]
    )
    error = await _error(token_app, tokens["access_token"])
    assert error == {
        "code": "AUTH_005",
        "message": "Token has been revoked",
        "details": {"reason": "revoked"},
    }


async def test_device_binding_is_auth_006(token_app: TokenApp) -> None:
    tokens = await token_app.login("alice", fingerprint="laptop-1")
    claims = claims_of(tokens["access_token"])
    assert len(claims["fpt"]) == 64 and "laptop-1" not in tokens["access_token"]
    ok = await token_app.validate(tokens["access_token"], device_fingerprint="laptop-1")
    assert ok["valid"] is True
    different = await _error(token_app, tokens["access_token"], device_fingerprint="phone-2")
    missing = await _error(token_app, tokens["access_token"])
    assert different["code"] == missing["code"] == "AUTH_006"
    assert (different["details"], missing["details"]) == (
        {"fingerprint": "different"},
        {"fingerprint": "missing"},
    )
    via_header = await token_app.http.post(
        "/api/v1/tokens/validate",
        json={"token": tokens["access_token"]},
        headers={"X-Device-Fingerprint": "laptop-1"},
    )
    assert via_header.json()["valid"] is True
    # the refresh token is bound as well, and so are the tokens it produces
    stolen = await token_app.http.post(
        "/api/v1/auth/refresh",
        json={"refresh_token": tokens["refresh_token"]},
        headers={"X-Device-Fingerprint": "attacker"},
    )
    assert stolen.status_code == 401 and stolen.json()["error"]["code"] == "AUTH_006"
    fresh = await token_app.http.post(
        "/api/v1/auth/refresh",
        json={"refresh_token": tokens["refresh_token"]},
        headers={"X-Device-Fingerprint": "laptop-1"},
    )
    assert claims_of(fresh.json()["access_token"])["fpt"] == claims["fpt"]
    me = await token_app.http.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {fresh.json()['access_token']}"}
    )
    assert me.status_code == 401 and me.json()["error"]["code"] == "AUTH_006"


async def test_batch_keeps_order_and_uses_one_revocation_lookup(token_app: TokenApp) -> None:
    good = [(await token_app.login(name))["access_token"] for name in ("alice", "bob", "carol")]
    bound = (await token_app.login("bob", fingerprint="dev"))["access_token"]
    revoked = (await token_app.login("alice"))["access_token"]
    c = claims_of(revoked)
    await token_app.tokens.service.revocations.revoke(
        subject="alice", reason="test", jtis=[(c["jti"], float(c["exp"]))]
    )
    tokens = [*good * 20, "garbage", revoked, bound, {"token": bound, "device_fingerprint": "dev"}]
    lookups = token_app.tokens.metrics.revocation_lookups
    before = sum(lookups.labels(path=p)._value.get() for p in ("cache", "db"))
    r = await token_app.http.post("/api/v1/tokens/validate/batch", json={"tokens": tokens})
    after = sum(lookups.labels(path=p)._value.get() for p in ("cache", "db"))
    assert r.status_code == 200
    results = r.json()["results"]
    assert len(results) == len(tokens) and r.json()["valid_count"] == 61
    assert all(x["valid"] for x in results[:60])
    assert [x["claims"]["sub"] for x in results[:3]] == ["alice", "bob", "carol"]
    assert [x.get("error", {}).get("code") for x in results[60:]] == [
        "AUTH_004",
        "AUTH_005",
        "AUTH_006",
        None,
    ]
    assert after - before == 1  # 64 tokens, one round trip to the revocation store


async def test_batch_limits(token_app: TokenApp) -> None:
    too_many = await token_app.http.post(
        "/api/v1/tokens/validate/batch", json={"tokens": ["x"] * 1001}
    )
    assert too_many.status_code == 413 and too_many.json()["error"]["code"] == "REQ_002"
    empty = await token_app.http.post("/api/v1/tokens/validate/batch", json={"tokens": []})
    assert empty.status_code == 422 and empty.json()["error"]["code"] == "REQ_001"
    full = await token_app.http.post(
        "/api/v1/tokens/validate/batch", json={"tokens": ["x.y.z"] * 1000}
    )
    assert full.status_code == 200 and full.json()["valid_count"] == 0


async def test_bad_request_bodies(token_app: TokenApp) -> None:
    for body in ({}, {"token": ""}, {"token": 5}, {"token": "x" * 20_000}):
        r = await token_app.http.post("/api/v1/tokens/validate", json=body)
        assert r.status_code == 422 and r.json()["error"]["code"] == "REQ_001", body


async def test_verified_signatures_are_remembered_but_every_check_still_runs(
    token_app: TokenApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real_verify = jose.verify

    def counting(token: str, **kwargs: Any) -> dict[str, Any]:
        calls.append(token)
        return real_verify(token, **kwargs)

    monkeypatch.setattr(jose, "verify", counting)
    tokens = await token_app.login("alice")
    access = tokens["access_token"]
    assert (await token_app.validate(access))["valid"] is True
    assert (await token_app.validate(access))["valid"] is True
    assert calls == [access]  # the second time, no RSA work
    # revocation is still checked on a remembered signature
    await token_app.http.post("/api/v1/auth/logout", headers={"Authorization": f"Bearer {access}"})
    assert (await _error(token_app, access))["code"] == "AUTH_005"
    # so is expiry: the memory never outlives the token
    now = int(time.time())  # (whole seconds: up to 1 s of the lifetime is gone already)
    short = await _signed(token_app, iat=now, nbf=now, exp=now + 5)  # 5: a busy machine
    assert (await token_app.validate(short))["valid"] is True

    async def expired() -> bool:
        return (await token_app.validate(short))["valid"] is False

    await wait_for(expired, timeout=10)
    assert (await _error(token_app, short))["code"] == "AUTH_002"
    # a tampered copy of a remembered token is verified (and refused), not looked up
    head, body, sig = short.split(".")
    forged = ".".join((head, body, sig[:-4] + ("AAAA" if sig[-4:] != "AAAA" else "BBBB")))
    assert (await _error(token_app, forged))["code"] == "AUTH_004"
