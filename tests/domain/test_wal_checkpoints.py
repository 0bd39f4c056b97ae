"""SQLite's WAL checkpoints run beside the writers (domain/store/wal_checkpoints.py): the committed rows
reach the database file without a writer copying them there in its commit, and nothing
committed is lost whichever way they get there."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, insert, text

from domain.store import wal_checkpoints
from domain.store.db import Database
from domain.store.prepared import Prepared

_notes = Table("notes", MetaData(), Column("id", Integer, primary_key=True), Column("body", String))
_ADD = Prepared(insert(_notes).values(id=bindparam("id"), body=bindparam("body")))


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'checkpoints.db'}")
    async with database.write() as session:
        await session.exec(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)"))
    yield database
    await database.dispose()


async def _write_notes(db: Database, count: int, first: int = 0) -> None:
    """``count`` commits, one note each: every other one a direct write (the trigger's path)."""
    for i in range(first, first + count):
        if i % 2:
            async with db.write_direct() as transaction:
                await transaction.execute_and_commit(_ADD, {"id": i, "body": "direct"})
        else:
            async with db.write() as session:
                await session.exec(text("INSERT INTO notes VALUES (:id, 'x')").bindparams(id=i))


def _in_database_file(db: Database) -> int | None:
    """Notes in the database file itself, the WAL ignored: what checkpoints copied there
    (``None``: not even the table is there yet)."""
    assert db.checkpoints is not None
    path = db.checkpoints.path.removeprefix("file:")
    uri = f"file:{path}?immutable=1"
    connection = sqlite3.connect(uri, uri=True)
    try:
        tables = connection.execute("SELECT name FROM sqlite_master WHERE name = 'notes'")
        if tables.fetchone() is None:
            return None
        return int(connection.execute("SELECT count(*) FROM notes").fetchone()[0])
    finally:
        connection.close()


async def test_writers_leave_checkpoints_to_the_background_below_the_backstop(
    db: Database,
) -> None:
    async with db.read() as session:
        backstop = (await session.exec(text("PRAGMA wal_autocheckpoint"))).one()[0]
        limit = (await session.exec(text("PRAGMA journal_size_limit"))).one()[0]
    assert backstop == wal_checkpoints.BACKSTOP_PAGES
    assert limit == wal_checkpoints.WAL_SIZE_LIMIT_BYTES
    # With the table's creation, one commit short of a background checkpoint: all of it is only
    # in the WAL; the next commit starts one.
    await _write_notes(db, wal_checkpoints.COMMITS_PER_CHECKPOINT - 2)
    assert db.checkpoints is not None
    await db.checkpoints.settled()
    assert _in_database_file(db) is None
    await _write_notes(db, 1, first=wal_checkpoints.COMMITS_PER_CHECKPOINT)
    await db.checkpoints.settled()
    assert _in_database_file(db) == wal_checkpoints.COMMITS_PER_CHECKPOINT - 1


async def test_nothing_committed_is_lost_while_checkpoints_run(db: Database) -> None:
    total = 3 * wal_checkpoints.COMMITS_PER_CHECKPOINT + 17
    await _write_notes(db, total)
    async with db.read() as session:
        seen = (await session.exec(text("SELECT count(*) FROM notes"))).one()[0]
    assert seen == total
    assert db.checkpoints is not None
    await db.checkpoints.settled()
    # The last background checkpoint began at the 300th commit: the file has at least that.
    assert _in_database_file(db) >= 3 * wal_checkpoints.COMMITS_PER_CHECKPOINT - 1


async def test_a_failed_checkpoint_is_logged_and_the_next_one_still_runs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    checkpoints = wal_checkpoints.WalCheckpoints(str(tmp_path / "nowhere" / "gone.db"))
    for _ in range(2):
        for _ in range(wal_checkpoints.COMMITS_PER_CHECKPOINT):
            checkpoints.committed()  # never raises into the writer that committed
        await checkpoints.settled()
    failures = [r for r in caplog.records if "background WAL checkpoint" in r.getMessage()]
    assert len(failures) == 2


def test_a_database_used_by_one_event_loop_after_another_still_checkpoints(
    tmp_path: Path,
) -> None:
    """A checkpoint asked for as one event loop ends (``run_until_complete`` then ``close``, not
    ``asyncio.run``) outlives that loop: the next loop's checkpoint follows it instead of finding
    SQLite's checkpoint lock taken, and its close waits for both."""
    database = Database(f"sqlite:///{tmp_path / 'loops.db'}")
    assert database.checkpoints is not None
    checkpoints = database.checkpoints

    async def first() -> None:
        async with database.write() as session:
            await session.exec(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)"))
        await _write_notes(database, wal_checkpoints.COMMITS_PER_CHECKPOINT - 1)

    async def second() -> int | None:
        more = wal_checkpoints.COMMITS_PER_CHECKPOINT
        await _write_notes(database, more, first=more)
        await checkpoints.settled()
        found = _in_database_file(database)
        await database.dispose()
        return found

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(first())  # its last commit asks for a checkpoint
    finally:
        loop.close()
    assert asyncio.run(second()) == 2 * wal_checkpoints.COMMITS_PER_CHECKPOINT - 1


async def test_a_checkpoint_asked_for_while_one_runs_follows_it(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Commits that ask for a checkpoint while the last one has not ended (its sync is slow) are
    checkpointed once it ends: a second one beside it would find SQLite's lock taken."""
    real = wal_checkpoints.checkpoint
    copied, ended = threading.Event(), threading.Event()

    def slow_to_end(path: str) -> tuple[int, int, int]:
        outcome = real(path)
        if not copied.is_set():
            copied.set()
            ended.wait()
        return outcome

    monkeypatch.setattr(wal_checkpoints, "checkpoint", slow_to_end)
    more = wal_checkpoints.COMMITS_PER_CHECKPOINT
    assert db.checkpoints is not None
    try:
        await _write_notes(db, more - 1)  # with the table's creation: the first checkpoint
        await asyncio.to_thread(copied.wait)
        await _write_notes(db, more, first=more)  # the last of these asks for another
        assert _in_database_file(db) == more - 1  # nothing ran beside the first
    finally:
        ended.set()
    await db.checkpoints.settled()
    assert _in_database_file(db) == 2 * more - 1


def _files_beside(folder: Path, prefix: str) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith(prefix))


async def test_a_database_named_by_a_uri_is_checkpointed_in_its_own_file(tmp_path: Path) -> None:
    database = Database(f"sqlite:///file:{tmp_path / 'by-uri.db'}?uri=true")
    try:
        async with database.write() as session:
            await session.exec(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)"))
        await _write_notes(database, wal_checkpoints.COMMITS_PER_CHECKPOINT - 1)
        assert database.checkpoints is not None
        await database.checkpoints.settled()
        assert _in_database_file(database) == wal_checkpoints.COMMITS_PER_CHECKPOINT - 1
        # Nothing else was opened: no file named after the URI's text.
        assert _files_beside(tmp_path, "by-uri") == []
    finally:
        await database.dispose()
