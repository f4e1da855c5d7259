"""JWS for access tokens with joserfc: signing, header checks, signature verification.

Only the asymmetric algorithms we issue are ever accepted (never `none`, never HMAC, so a
public key can not be abused as an HMAC secret). `EdDSA`: RFC 9864 deprecates this
polymorphic name in favour of `Ed25519`, and joserfc warns about it, but verifiers in the
field (PyJWT, jose4j, go-jose) only know `EdDSA`; we sign Ed25519 keys as `EdDSA` on purpose
and silence the warning in our own registry only.
"""

from __future__ import annotations

import copy
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import Key
from joserfc.jws import JWSRegistry

SUPPORTED_ALGS = ("RS256", "ES256", "EdDSA")
ACCESS_TOKEN_TYPES = ("at+jwt", "application/at+jwt")
MAX_TOKEN_LENGTH = 16_384


def _registry() -> JWSRegistry:
    eddsa = copy.copy(JWSRegistry.algorithms["EdDSA"])
    eddsa.security_warning = None

    class TokenRegistry(JWSRegistry):
        algorithms = {**JWSRegistry.algorithms, "EdDSA": eddsa}

    return TokenRegistry(algorithms=list(SUPPORTED_ALGS))


REGISTRY = _registry()


class MalformedToken(Exception):
    """Not a compact JWS we could even read; the message is safe to show."""


class BadSignature(Exception):
    """The signature does not verify with the key named by `kid`."""


def sign(claims: dict[str, Any], *, key: Key, kid: str, alg: str) -> str:
    header = {"alg": alg, "typ": "at+jwt", "kid": kid}
    return jwt.encode(header, claims, key, algorithms=[alg], registry=REGISTRY)


def read_header(token: str) -> dict[str, Any]:
    """The unverified protected header, after the checks that need no key."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise MalformedToken("token is empty or too long")
    if token.count(".") != 2:
        raise MalformedToken("not a compact JWS (expected three dot-separated parts)")
    try:
        header = dict(jws.extract_compact(token.encode("ascii")).protected)
    except (JoseError, ValueError, TypeError, UnicodeError) as exc:
        raise MalformedToken("token cannot be decoded") from exc
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in SUPPORTED_ALGS:
        raise MalformedToken(f"algorithm {str(alg)[:20]!r} is not accepted")
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.lower() not in ACCESS_TOKEN_TYPES:
        raise MalformedToken("not an access token (header typ must be at+jwt)")
    if not isinstance(header.get("kid"), str):
        raise MalformedToken("header has no kid")
    return header


def verify(token: str, *, key: Key, alg: str) -> dict[str, Any]:
    """The claims of `token` if its signature verifies with `key` under `alg`."""
    try:
        decoded = jwt.decode(token, key, algorithms=[alg], registry=REGISTRY)
    except (JoseError, ValueError, TypeError) as exc:
        raise BadSignature(type(exc).__name__) from exc
    claims = dict(decoded.claims)
    return claims
