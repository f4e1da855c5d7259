"""Strength of configured secrets, and wrapping of private keys at rest.

`entropy_bits` is a conservative estimate for secrets an operator types or generates: the
length times the bits of the smallest alphabet that holds the string (hex, base64url,
printable ASCII), capped by the string's Shannon entropy times its length (plus a margin)
and by its zlib-compressed size, so a run of one character (`xxxx...`) or a repeated word
scores low. A key from `openssl rand -base64 32`, `openssl rand -hex 32` or
`secrets.token_urlsafe(32)` passes 256.

Private signing keys are wrapped with scrypt (OWASP's N=2^15, r=8, p=3 profile: 32 MiB) and
AES-256-GCM, in a PEM-style block of our own. Keys wrapped the old way (PKCS#8 with
PBKDF2, `ENCRYPTED PRIVATE KEY`) are still read; a rotation writes the new wrapping.
"""

from __future__ import annotations

import base64
import hashlib
import math
import os
import string
import zlib
from collections import Counter

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MIN_SECRET_BITS = 256
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 3
WRAP_BEGIN = "-----BEGIN OMS-AUTH WRAPPED PRIVATE KEY-----"
WRAP_END = "-----END OMS-AUTH WRAPPED PRIVATE KEY-----"

_ALPHABETS = (
    set(string.digits),
    set(string.hexdigits),
    set(string.ascii_lowercase + string.digits),
    set(string.ascii_letters + string.digits + "-_+/="),
    set(string.printable),
)


def entropy_bits(value: str) -> float:
    if not value:
        return 0.0
    chars = set(value)
    alphabet = next((len(a) for a in _ALPHABETS if chars <= a), 256)
    by_alphabet = len(value) * math.log2(max(alphabet, 2))
    counts = Counter(value)
    shannon = -sum(c / len(value) * math.log2(c / len(value)) for c in counts.values())
    # Repetition (`password` eight times) shows as compressibility; zlib adds ~8 bytes.
    compressed = (len(zlib.compress(value.encode("utf-8", "replace"), 9)) - 8) * 8
    return max(0.0, min(by_alphabet, shannon * len(value) * 1.5, float(compressed)))


def check_secret_strength(name: str, value: str) -> None:
    bits = entropy_bits(value)
    if bits < MIN_SECRET_BITS:
        raise ValueError(
            f"{name} is too weak for production (about {int(bits)} bits; at least "
            f"{MIN_SECRET_BITS} needed, e.g. `openssl rand -base64 32`)"
        )


class UnwrapError(ValueError):
    pass


def _kek(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=32, maxmem=256 * 1024 * 1024
    )


def wrap_private_pem(pem: str, password: str) -> str:
    salt, nonce = os.urandom(16), os.urandom(12)
    header = {"kdf": "scrypt", "n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P, "aead": "A256GCM"}
    header["salt"] = base64.b64encode(salt).decode()
    header["nonce"] = base64.b64encode(nonce).decode()
    aad = orjson.dumps(header, option=orjson.OPT_SORT_KEYS)
    sealed = AESGCM(_kek(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)).encrypt(
        nonce, pem.encode(), aad
    )
    body = base64.b64encode(aad).decode() + "." + base64.b64encode(sealed).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "\n".join([WRAP_BEGIN, *lines, WRAP_END]) + "\n"


def is_wrapped(pem: str) -> bool:
    return pem.lstrip().startswith(WRAP_BEGIN)


def unwrap_private_pem(wrapped: str, password: str) -> str:
    try:
        inner = "".join(wrapped.strip().splitlines()[1:-1])
        aad_b64, sealed_b64 = inner.split(".", 1)
        aad = base64.b64decode(aad_b64)
        header = orjson.loads(aad)
        kek = _kek(
            password, base64.b64decode(header["salt"]), header["n"], header["r"], header["p"]
        )
        pem = AESGCM(kek).decrypt(
            base64.b64decode(header["nonce"]), base64.b64decode(sealed_b64), aad
        )
    except (InvalidTag, ValueError, KeyError, TypeError) as exc:
        raise UnwrapError("cannot unwrap the private key") from exc
    return pem.decode()
