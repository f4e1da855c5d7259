"""Device binding: a token can be tied to the fingerprint a client sent when it logged in.

Only the SHA-256 of the fingerprint ever leaves this module (the `fpt` claim, the refresh
token row), so a token or a database dump does not reveal the device identifier itself.
"""

from __future__ import annotations

import hashlib
import hmac

FINGERPRINT_HEADER = "X-Device-Fingerprint"
MAX_FINGERPRINT_LENGTH = 512


def fingerprint_hash(fingerprint: str | None) -> str | None:
    """SHA-256 (hex) of a device fingerprint; None when none (or an empty one) was sent."""
    if fingerprint is None:
        return None
    value = fingerprint.strip()
    if not value:
        return None
    return hashlib.sha256(value[:MAX_FINGERPRINT_LENGTH].encode()).hexdigest()


def fingerprint_matches(bound_hash: str | None, presented: str | None) -> bool:
    """True when the token is unbound, or the presented fingerprint hashes to its binding."""
    if bound_hash is None:
        return True
    presented_hash = fingerprint_hash(presented)
    if presented_hash is None:
        return False
    return hmac.compare_digest(bound_hash, presented_hash)
