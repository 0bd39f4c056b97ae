"""Files with secrets are created readable by their owner only: the SQLite database (and the
-wal and -shm files SQLite gives the database file's mode) and the secret key file."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.app import create_app
from domain.connections.credentials import vault_for
from domain.identity import bootstrap
from domain.kernel.settings import Settings
from tests.databases import backend_name

pytestmark = pytest.mark.skipif(backend_name() != "sqlite", reason="SQLite files")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def usual_umask() -> Iterator[None]:
    previous = os.umask(0o022)  # what most services run with: files 0644 unless asked
    try:
        yield
    finally:
        os.umask(previous)


async def test_a_fresh_database_and_key_file_are_private(tmp_path: Path, usual_umask: None) -> None:
    database = tmp_path / "deskfleet.db"
    settings = Settings(
        database_url=f"sqlite:///{database}",
        secret_key_file=tmp_path / "deskfleet.secret",
        dispatcher_enabled=False,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        await bootstrap.mint_admin_token(app.state.domain, "tests")  # a write: WAL in use
        vault_for(settings).seal("a connection password")  # the key file, made when needed
        files = [database, tmp_path / "deskfleet.db-wal", tmp_path / "deskfleet.db-shm"]
        modes = {path.name: mode(path) for path in [*files, settings.secret_key_file]}

    assert modes == {
        "deskfleet.db": 0o600,
        "deskfleet.db-wal": 0o600,
        "deskfleet.db-shm": 0o600,
        "deskfleet.secret": 0o600,
    }


async def test_an_existing_database_keeps_its_mode(tmp_path: Path, usual_umask: None) -> None:
    database = tmp_path / "deskfleet.db"
    database.touch(mode=0o640)
    database.chmod(0o640)  # the operator's choice, e.g. readable by a backup group
    settings = Settings(
        database_url=f"sqlite:///{database}",
        secret_key_file=tmp_path / "deskfleet.secret",
        dispatcher_enabled=False,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        pass

    assert mode(database) == 0o640
