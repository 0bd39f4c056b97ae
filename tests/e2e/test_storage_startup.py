"""The commands on a database they cannot open or write: one line naming the database and the
problem on standard error, a non-zero exit, no traceback.

- Cannot open: a database file in a directory that does not exist; SQLite answers
  SQLITE_CANTOPEN, as for a file it has no permission to open.
- Cannot write: the migrated file opened read-only through the URL (``file:...?mode=ro`` with
  ``uri=true``). Root ignores file modes, so ``chmod 0444`` would not stop these tests' writes;
  a read-only open is what SQLite falls back to on a file it may not write, and writes then fail
  with the same SQLITE_READONLY, "attempt to write a readonly database".
- Where the tests may mount file systems (root with CAP_SYS_ADMIN), also a real read-only file
  system: a tmpfs remounted read-only under the database.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from domain.context import DomainContext
from domain.identity import bootstrap
from domain.kernel.settings import Settings
from domain.store.db import Database
from tests.databases import backend_name
from tests.e2e.server import DESKFLEET, ROOT

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(backend_name() != "sqlite", reason="SQLite files"),
]

COMMANDS = [["serve", "--port", "1"], ["db", "upgrade"], ["admin", "token"]]


def deskfleet(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*DESKFLEET, *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def assert_refused_in_one_line(
    done: subprocess.CompletedProcess[str], path: Path, problem: str
) -> None:
    assert done.returncode != 0, done
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"deskfleet: cannot write the database {path}: "), lines
    assert problem in lines[0]
    assert "Traceback" not in done.stdout + done.stderr
    assert "serving" not in done.stdout


def migrated_with_admin(path: Path, workdir: Path) -> None:
    assert (
        deskfleet(workdir, "db", "upgrade", "--database-url", f"sqlite:///{path}").returncode == 0
    )

    async def first_run() -> None:
        url = f"sqlite:///{path}"
        ctx = DomainContext(
            db=Database(url),
            settings=Settings(database_url=url, secret_key_file=workdir / "key"),
        )
        try:
            await bootstrap.first_run(ctx)
        finally:
            await ctx.db.dispose()

    asyncio.run(first_run())


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_a_database_that_cannot_be_opened_is_refused_in_one_line(
    tmp_path: Path, command: list[str]
) -> None:
    path = tmp_path / "missing" / "deskfleet.db"

    done = deskfleet(tmp_path, *command, "--database-url", f"sqlite:///{path}")

    assert_refused_in_one_line(done, path, "the database file cannot be opened (SQLITE_CANTOPEN")


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_a_database_that_cannot_be_written_is_refused_in_one_line(
    tmp_path: Path, command: list[str]
) -> None:
    path = tmp_path / "deskfleet.db"
    migrated_with_admin(path, tmp_path)

    done = deskfleet(
        tmp_path, *command, "--database-url", f"sqlite:///file:{path}?mode=ro&uri=true"
    )

    assert_refused_in_one_line(done, path, "the database is read-only (SQLITE_READONLY")


@pytest.fixture
def read_only_mount(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / f"mnt-{uuid.uuid4().hex[:6]}"
    mount.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], capture_output=True
    )
    if mounted.returncode != 0 or not sys.platform.startswith("linux"):
        pytest.skip("mounting a file system needs root with CAP_SYS_ADMIN")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_serve_on_a_read_only_file_system_is_refused_in_one_line(
    tmp_path: Path, read_only_mount: Path
) -> None:
    path = read_only_mount / "deskfleet.db"
    migrated_with_admin(path, tmp_path)
    subprocess.run(["mount", "-o", "remount,ro", str(read_only_mount)], check=True)

    done = deskfleet(tmp_path, "serve", "--port", "1", "--database-url", f"sqlite:///{path}")

    assert done.returncode != 0, done
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith(f"deskfleet: cannot write the database {path}: ")
    assert "Traceback" not in done.stderr
