"""Windows credentials of connections, encrypted at rest (R20).

Passwords are sealed by the installation's vault (domain/kernel/vault.py). A password is
write-only: nothing here logs it, puts it in an error message or returns it, except
:meth:`Vault.reveal`, which only the dispatcher's assignment step calls.
"""

from __future__ import annotations

import re

from domain.kernel.errors import ErrorCode, ValidationFailed
from domain.kernel.vault import SecretKeyError as SecretKeyError
from domain.kernel.vault import Vault as Vault
from domain.kernel.vault import load_or_create_key_file as load_or_create_key_file
from domain.kernel.vault import vault_for as vault_for

PASSWORD_MAX = 256  # Windows accepts at most 256 characters
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def password(value: str, *, field: str = "password") -> str:
    """Check a password without ever echoing it. It is kept exactly as given (no trimming)."""
    if not isinstance(value, str) or value == "":
        raise ValidationFailed(
            ErrorCode.INVALID_PASSWORD, f"{field} must not be empty", field=field
        )
    if len(value) > PASSWORD_MAX:
        raise ValidationFailed(
            ErrorCode.INVALID_PASSWORD,
            f"{field} is too long; at most {PASSWORD_MAX} characters are allowed",
            field=field,
        )
    if _CONTROL.search(value):
        raise ValidationFailed(
            ErrorCode.INVALID_PASSWORD, f"{field} must not contain control characters", field=field
        )
    return value
