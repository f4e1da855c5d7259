"""Access-token claims and JWS headers, without any I/O."""

from __future__ import annotations

import time

import pytest
from joserfc.jwk import ECKey, OKPKey, RSAKey

from app.errors import TokenExpired, TokenInvalid
from app.tokens import jose
from app.tokens.claims import build_claims, check_claims, jti_millis, new_jti

ISS = "https://auth.example.com"


def _claims(**changes: object) -> dict[str, object]:
    claims = build_claims(
        issuer=ISS,
        subject="alice",
        audience="oms-api",
        client_id="web",
        now_ms=int(time.time() * 1000),
        ttl=900,
        roles=["developer"],
        is_admin=False,
        scope=("api:schemas:read",),
        fingerprint_hash=None,
        session="fam-1",
    )
    claims.update(changes)
    return claims


def test_jti_carries_the_issue_instant() -> None:
    ms = 1_795_585_047_123
    jti = new_jti(ms)
    assert len(jti) == 32 and jti_millis(jti, 0) == ms
    assert new_jti(ms) != jti
    assert jti_millis("foreign-jti", 1_700_000_000) == 1_700_000_000_000


def test_check_claims_accepts_our_claims() -> None:
    claims = check_claims(_claims(), issuer=ISS, audiences=("oms-api",), now=time.time())
    assert claims.subject == "alice" and claims.scope == ("api:schemas:read",)
    assert claims.version == "v2" and claims.session == "fam-1"
    v1 = check_claims(
        {k: v for k, v in _claims().items() if k != "scope"},
        issuer=ISS,
        audiences=("oms-api",),
        now=time.time(),
    )
    assert v1.version == "v1" and v1.scope is None


def test_expired_reports_when_and_how_old() -> None:
    now = time.time()
    with pytest.raises(TokenExpired) as info:
        check_claims(
            _claims(exp=int(now) - 10, iat=int(now) - 910),
            issuer=ISS,
            audiences=("oms-api",),
            now=now,
        )
    assert info.value.code == "AUTH_002"
    assert info.value.details["token_age_seconds"] == 910
    assert info.value.details["expired_at"].endswith("Z")


@pytest.mark.parametrize(
    "changes",
    [
        {"iss": "x"},
        {"aud": "x"},
        {"aud": 5},
        {"nbf": int(time.time()) + 86_400},
        {"exp": None},
        {"exp": True},
        {"sub": ""},
        {"client_id": None},
    ],
)
def test_bad_claims(changes: dict[str, object]) -> None:
    with pytest.raises(TokenInvalid):
        check_claims(_claims(**changes), issuer=ISS, audiences=("oms-api",), now=time.time())


@pytest.mark.parametrize(
    ("alg", "key"),
    [
        ("RS256", RSAKey.generate_key(2048)),
        ("ES256", ECKey.generate_key("P-256")),
        ("EdDSA", OKPKey.generate_key("Ed25519")),
    ],
)
def test_sign_and_verify(alg: str, key: object) -> None:
    token = jose.sign(_claims(), key=key, kid="k1", alg=alg)  # type: ignore[arg-type]
    assert jose.read_header(token) == {"alg": alg, "typ": "at+jwt", "kid": "k1"}
    assert jose.verify(token, key=key, alg=alg)["sub"] == "alice"  # type: ignore[arg-type]
    with pytest.raises(jose.BadSignature):
        jose.verify(token[:-6] + "AAAAAA", key=key, alg=alg)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "token",
    [
        "",
        "a.b",
        "a.b.c.d",
        "x" * 20_000,
        "!!.??.**",
        "eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0Iiwia2lkIjoiayJ9.e30.",  # alg none
        "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImsifQ.e30.x",
    ],  # typ JWT
)
def test_read_header_refuses(token: str) -> None:
    with pytest.raises(jose.MalformedToken):
        jose.read_header(token)
