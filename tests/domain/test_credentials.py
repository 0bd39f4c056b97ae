"""R20: connection passwords are encrypted at rest with a key kept outside the database."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text
from sqlalchemy.engine import make_url

from domain.connections.credentials import (
    SecretKeyError,
    Vault,
    load_or_create_key_file,
    password,
    vault_for,
)
from domain.context import DomainContext
from domain.kernel.errors import ValidationFailed
from domain.kernel.settings import Settings
from tests.connection_steps import SECRET, connection
from tests.graphql import Fleet

pytestmark = pytest.mark.rule("R20")


def test_embedded_default_generates_a_private_key_file_once(tmp_path: Path) -> None:
    key_file = tmp_path / "keys" / "deskfleet.secret"
    settings = Settings(secret_key_file=key_file)

    sealed = vault_for(settings).seal(SECRET)
    key = key_file.read_bytes().strip()

    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert load_or_create_key_file(key_file) == key  # read back, not regenerated
    assert Fernet(key).decrypt(sealed.encode()).decode() == SECRET
    assert SECRET not in sealed


def test_configured_key_is_used_and_no_file_is_written(tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()
    settings = Settings(secret_key=key, secret_key_file=tmp_path / "unused.secret")

    sealed = vault_for(settings).seal(SECRET)

    assert not (tmp_path / "unused.secret").exists()
    assert Fernet(key.encode()).decrypt(sealed.encode()).decode() == SECRET
    assert key not in repr(settings)


def test_ciphertext_opens_only_with_its_key_and_keys_rotate() -> None:
    old, new, stranger = (Fernet.generate_key() for _ in range(3))
    sealed = Vault([old]).seal(SECRET)

    assert Vault([new, old]).reveal(sealed) == SECRET  # rotation: new seals, old still opens
    assert Vault([new, old]).reveal(Vault([new, old]).seal(SECRET)) == SECRET
    with pytest.raises(SecretKeyError) as refused:
        Vault([stranger]).reveal(sealed)
    assert SECRET not in str(refused.value)


def test_a_malformed_key_is_refused_without_echoing_it() -> None:
    with pytest.raises(SecretKeyError) as refused:
        Vault([b"not-a-fernet-key"])
    assert "not-a-fernet-key" not in str(refused.value)


def test_password_checks_never_echo_the_password() -> None:
    assert password("  spaces kept  ") == "  spaces kept  "
    for bad in ("", "x" * 257, "tab\tinside"):
        with pytest.raises(ValidationFailed) as refused:
            password(bad)
        assert refused.value.code.value == "INVALID_PASSWORD"
        assert bad == "" or bad not in refused.value.message


async def test_the_database_holds_only_ciphertext_that_opens_only_with_the_key(
    fleet: Fleet, domain: DomainContext
) -> None:
    maker = await fleet.person("ENVIRONMENT_MAKER")
    machine = await fleet.machine(maker, "bot-01")
    created = await connection(fleet, maker, machine_id=machine.id)

    async with domain.db.read() as session:
        db = await session.connection()
        result = await db.execute(
            text("SELECT * FROM connections WHERE id = :id"), {"id": created["id"]}
        )
        row = result.mappings().one()
    ciphertext = row["password_ciphertext"]

    assert all(SECRET not in str(value) for value in row.values())
    assert vault_for(domain.settings).reveal(ciphertext) == SECRET
    with pytest.raises(SecretKeyError):
        Vault([Fernet.generate_key()]).reveal(ciphertext)
    if domain.db.is_sqlite:
        # The raw file and its write-ahead log: the password appears nowhere, in any encoding.
        path = Path(str(make_url(domain.db.url).database))
        raw = b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())
        assert raw, "expected the database file to exist"
        assert SECRET.encode() not in raw
        assert SECRET.encode("utf-16-le") not in raw
        assert ciphertext.encode() in raw
    assert domain.settings.secret_key_file.exists()  # the key lives beside it, not in it
