"""Secrets sealed at rest: connection passwords (R20) and, for a day, the machine key of a
registration made with an idempotency key (R46).

Values are sealed with Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``). The key never
enters the database: it comes from ``DESKFLEET_SECRET_KEY`` or, for the embedded default, from
``settings.secret_key_file``, generated with mode 0600 the first time it is needed. Nothing here
logs a sealed value or puts it in an error message.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import stat
import threading
from functools import lru_cache
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from domain.kernel.settings import Settings

log = logging.getLogger("deskfleet.credentials")

_lock = threading.Lock()


class SecretKeyError(RuntimeError):
    """The encryption key is missing, malformed or does not open a stored password.

    A configuration fault, not a user error: the API masks it. Its message never holds key
    material or a password.
    """


class Vault:
    """Seals and opens secrets with one or more Fernet keys (the first one seals)."""

    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise SecretKeyError("no encryption key given")
        # A key of its own for fingerprints, derived from the sealing key (never used to seal).
        self._mac_key = hashlib.sha256(b"deskfleet fingerprint\0" + keys[0]).digest()
        try:
            self._fernet = MultiFernet([Fernet(k) for k in keys])
        except (ValueError, TypeError):
            raise SecretKeyError(
                "the secret key is not a Fernet key (32 url-safe base64-encoded bytes); "
                "make one with: python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'"
            ) from None

    def seal(self, password: str) -> str:
        return self._fernet.encrypt(password.encode("utf-8")).decode("ascii")

    def reveal(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError):
            raise SecretKeyError(
                "a stored password cannot be decrypted with the configured secret key "
                "(was DESKFLEET_SECRET_KEY or the key file changed?)"
            ) from None

    def fingerprint(self, secret: str) -> str:
        """A keyed digest of ``secret``: equal secrets give equal fingerprints, and the database
        alone (without the installation's key) allows no guessing of the secret from it, as a
        plain hash of a password would (R46 compares a request's input by such fingerprints)."""
        return hmac.new(self._mac_key, secret.encode("utf-8"), hashlib.sha256).hexdigest()

    def __repr__(self) -> str:  # never show key material
        return "Vault(<keys hidden>)"


def load_or_create_key_file(path: Path) -> bytes:
    """Read the key file, or create it (mode 0600) holding a fresh key if it does not exist.

    Creation is atomic: the key is written to a private temporary file that is then hard-linked
    into place, so two processes starting together end up with the same, complete key.
    """
    path = path.expanduser()
    with _lock:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(Fernet.generate_key() + b"\n")
                    handle.flush()
                    os.fsync(handle.fileno())
                with contextlib.suppress(FileExistsError):
                    os.link(tmp, path)
                    log.info("generated a new secret key for connection passwords in %s", path)
            finally:
                tmp.unlink(missing_ok=True)
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            log.warning(
                "secret key file %s is readable by other users (mode %o); chmod 600 it", path, mode
            )
        return path.read_bytes().strip()


@lru_cache(maxsize=8)
def _vault(secret: str | None, key_file: str) -> Vault:
    if secret:
        try:
            keys = [k.strip().encode("ascii") for k in secret.split(",") if k.strip()]
        except UnicodeError:
            raise SecretKeyError("DESKFLEET_SECRET_KEY holds non-ASCII characters") from None
    else:
        keys = [load_or_create_key_file(Path(key_file))]
    return Vault(keys)


def vault_for(settings: Settings) -> Vault:
    """The vault the settings describe: ``DESKFLEET_SECRET_KEY`` first, else the key file."""
    secret = settings.secret_key.get_secret_value() if settings.secret_key else None
    return _vault(secret, str(Path(settings.secret_key_file).expanduser().resolve()))
