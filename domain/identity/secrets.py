"""Opaque credentials (R5, API tokens): random, prefixed by kind, stored only as a hash.

Timing: a presented credential is never compared with a stored secret. Its SHA-256 digest is looked
up (database index, credential cache dict), so any timing difference depends on how many leading
characters of the *digest* match a stored digest; the digest of a guess reveals nothing about the
secret it should have been (finding a preimage of a chosen digest prefix is infeasible), so the
look-up is constant-time with respect to the secret. Where a row found is checked again in Python,
:func:`same_digest` uses ``hmac.compare_digest``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

USER_TOKEN_PREFIX = "dfu_"
MACHINE_KEY_PREFIX = "dfm_"


def new_secret(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    # The secrets carry 256 random bits, so one SHA-256 is enough: no password stretching needed.
    return hashlib.sha256(secret.encode()).hexdigest()


def same_digest(stored: str, presented: str) -> bool:
    """Constant-time equality of two digests (defence in depth after an indexed look-up)."""
    return hmac.compare_digest(stored.encode(), presented.encode())
