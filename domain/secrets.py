"""Opaque credentials (R5, API tokens): random, prefixed by kind, stored only as a hash."""

from __future__ import annotations

import hashlib
import secrets

USER_TOKEN_PREFIX = "dfu_"
MACHINE_KEY_PREFIX = "dfm_"


def new_secret(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    # The secrets carry 256 random bits, so one SHA-256 is enough: no password stretching needed.
    return hashlib.sha256(secret.encode()).hexdigest()
