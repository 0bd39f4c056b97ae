"""Driver transactions (domain/store/prepared.py): prepared statements and scripts keep what a
transaction promises on both databases: all of it commits, or none of it does (DoD 5). On SQLite,
scripts that wait for the write turn together share a transaction (domain/store/shared_commits.py)
and each still commits or refuses on its own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, insert, select, text

from domain.kernel.errors import ErrorCode, ValidationFailed
from domain.store.db import Database
from domain.store.prepared import Execute, Fetch, Outcome, Prepared, Script, SQLiteTransaction

_tables = MetaData()
_notes = Table(
    "prepared_notes", _tables, Column("id", Integer, primary_key=True), Column("body", String)
)
_ADD = Prepared(insert(_notes).values(id=bindparam("id"), body=bindparam("body")))
_READ = Prepared(select(_notes.c.id, _notes.c.body).where(_notes.c.id == bindparam("id")))
_COUNT = Prepared(select(_notes.c.id).order_by(_notes.c.id))
# The statement binds a value of its own ("first" is a literal it was built with), the caller the
# id: both reach the driver, each in its place.
_READ_FIRSTS = Prepared(
    select(_notes.c.id)
    .where(_notes.c.body == "first", _notes.c.id >= bindparam("from_id"))
    .order_by(_notes.c.id)
)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    async with database.write_engine.begin() as conn:
        await conn.run_sync(_tables.create_all)
    yield database
    async with database.write_engine.begin() as conn:
        await conn.execute(text("DROP TABLE prepared_notes"))
    await database.dispose()


async def _ids(db: Database) -> list[int]:
    async with db.write_direct() as transaction:
        return [row["id"] for row in await transaction.fetch(_COUNT, {})]


def _add_then(first: int, second: int, *, fail_between: bool = False) -> Script[str]:
    """Two inserts; in between, a rule that may refuse (as the trigger's rules do)."""
    yield Execute(_ADD, {"id": first, "body": "first"})
    rows = yield Fetch(_READ, {"id": first})
    if fail_between:
        raise ValidationFailed(ErrorCode.INVALID_VALUE, "refused after the first insert")
    yield Execute(_ADD, {"id": second, "body": rows[0]["body"] + " again"}, last=True)
    return "done"


async def test_a_script_commits_all_of_its_statements(db: Database) -> None:
    async with db.write_direct() as transaction:
        assert await transaction.run(_add_then(1, 2)) == "done"
        assert transaction.committed
    async with db.write_direct() as transaction:
        rows = await transaction.fetch(_READ, {"id": 2})
    assert rows == [{"id": 2, "body": "first again"}]


async def test_a_statements_own_values_are_bound_beside_the_callers(db: Database) -> None:
    for first in (1, 3):  # a script commits with its last statement: one transaction each
        async with db.write_direct() as transaction:
            await transaction.run(_add_then(first, first + 1))
    async with db.write_direct() as transaction:
        assert await transaction.fetch(_READ_FIRSTS, {"from_id": 2}) == [{"id": 3}]
        assert await transaction.fetch(_READ_FIRSTS, {"from_id": 1}) == [{"id": 1}, {"id": 3}]


async def test_a_script_refused_midway_leaves_nothing(db: Database) -> None:
    with pytest.raises(ValidationFailed):
        async with db.write_direct() as transaction:
            await transaction.run(_add_then(1, 2, fail_between=True))
    assert await _ids(db) == []
    # The connection went back to the pool clean: the next transaction works as usual.
    async with db.write_direct() as transaction:
        await transaction.run(_add_then(3, 4))
    assert await _ids(db) == [3, 4]


async def test_a_failing_statement_rolls_back_the_statements_before_it(db: Database) -> None:
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
        async with db.write_direct() as transaction:
            await transaction.execute(_ADD, {"id": 1, "body": "kept?"})
            await transaction.execute_and_commit(_ADD, {"id": 1, "body": "clash"})
    assert await _ids(db) == []


async def test_an_error_after_the_statements_rolls_them_back(db: Database) -> None:
    with pytest.raises(RuntimeError):
        async with db.write_direct() as transaction:
            await transaction.execute(_ADD, {"id": 5, "body": "not for long"})
            raise RuntimeError("the caller changed its mind")
    assert await _ids(db) == []


async def test_callbacks_run_only_after_commit(db: Database) -> None:
    from domain.store.db import after_commit

    seen: list[list[int]] = []

    async def look() -> None:
        seen.append(await _ids(db))

    async with db.write_direct() as transaction:
        after_commit(transaction, look)
        await transaction.run(_add_then(7, 8))
        assert seen == []
    assert seen == [[7, 8]]  # and it saw what was committed

    with pytest.raises(ValidationFailed):
        async with db.write_direct() as transaction:
            after_commit(transaction, look)
            await transaction.run(_add_then(9, 10, fail_between=True))
    assert seen == [[7, 8]]  # a refused transaction calls nobody


async def test_a_kept_connection_the_server_closed_is_not_handed_out_again(db: Database) -> None:
    """A PostgreSQL restart closes every connection, the kept ones too: direct writes after it
    open fresh ones instead of failing on a dead one forever (CI caught this in the restart
    fault test)."""
    if db.is_sqlite:
        pytest.skip("a PostgreSQL server closes connections; a SQLite file does not")
    async with db.write_direct() as transaction:
        await transaction.run(_add_then(1, 2))
    (kept,) = db.kept_for_writes.kept  # the connection that write just gave back
    async with db.write_engine.connect() as connection:
        await connection.execute(
            text("SELECT pg_terminate_backend(:pid)"),
            {"pid": kept.driver_connection.get_server_pid()},
        )
    # The server ends the backend asynchronously; asyncpg notices the closed socket by itself,
    # even while the connection sits idle (a write that was in flight then fails, as in any
    # outage: the point is that none after it does).
    for _ in range(200):
        if kept.driver_connection.is_closed():
            break
        await asyncio.sleep(0.025)
    assert await _ids(db) == [1, 2]
    assert await _ids(db) == [1, 2]


async def test_a_direct_read_sees_what_is_committed_and_holds_no_transaction(db: Database) -> None:
    """fetch_direct runs one statement on its own: it sees each commit made before it, and the
    connection it keeps between reads holds no transaction open (on SQLite an open one would
    pin an old snapshot, and keep the WAL from being checkpointed past it)."""
    assert await db.fetch_direct(_READ, {"id": 1}) == []
    async with db.write_direct() as transaction:
        await transaction.run(_add_then(1, 2))
    assert await db.fetch_direct(_READ, {"id": 2}) == [{"id": 2, "body": "first again"}]
    async with db.write_direct() as transaction:
        await transaction.execute_and_commit(_ADD, {"id": 3, "body": "third"})
    assert await db.fetch_direct(_READ, {"id": 3}) == [{"id": 3, "body": "third"}]
    (kept,) = db.kept_for_reads.kept
    if db.is_sqlite:
        assert not kept.driver_connection.in_transaction
    else:
        assert not kept.driver_connection.is_in_transaction()


async def test_direct_reads_at_once_each_get_a_connection(db: Database) -> None:
    async with db.write_direct() as transaction:
        await transaction.run(_add_then(1, 2))
    reads = [db.fetch_direct(_READ, {"id": 1 + i % 2}) for i in range(12)]
    answers = await asyncio.gather(*reads)
    assert [rows[0]["id"] for rows in answers] == [1 + i % 2 for i in range(12)]
    assert len(db.kept_for_reads.kept) <= db.kept_for_reads.keep


async def test_scripts_at_once_each_commit_or_refuse_on_their_own(db: Database) -> None:
    """``write_script``: what each returned once committed; one refused leaves nothing of its
    own and takes nothing of the others'."""
    answers = await asyncio.gather(
        db.write_script(_add_then(1, 2)),
        db.write_script(_add_then(3, 4, fail_between=True)),
        db.write_script(_add_then(5, 6)),
        return_exceptions=True,
    )

    assert answers[0] == "done" and answers[2] == "done"
    assert isinstance(answers[1], ValidationFailed)
    assert await _ids(db) == [1, 2, 5, 6]


async def test_on_sqlite_scripts_that_wait_for_the_write_turn_commit_together(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not db.is_sqlite:
        pytest.skip("PostgreSQL has no write turn: each script commits on its own")
    batches: list[int] = []
    run_together = SQLiteTransaction.run_together

    async def counted(self: SQLiteTransaction, scripts: list[Script[Any]]) -> list[Outcome]:
        batches.append(len(scripts))
        return await run_together(self, scripts)

    monkeypatch.setattr(SQLiteTransaction, "run_together", counted)
    async with db.write():  # another writer has the turn while the scripts come
        waiting = [
            asyncio.ensure_future(db.write_script(_add_then(i, i + 1))) for i in range(10, 40, 10)
        ]
        await asyncio.sleep(0.05)
    assert await asyncio.gather(*waiting) == ["done"] * 3
    assert batches == [3]
    assert await _ids(db) == [10, 11, 20, 21, 30, 31]


def _add_then_break(id: int) -> Script[str]:
    yield Execute(_ADD, {"id": id, "body": "first"})
    raise RuntimeError("not a refusal: a defect, or the storage failing")


async def test_on_sqlite_a_failure_other_than_a_refusal_fails_the_scripts_committed_with_it(
    db: Database,
) -> None:
    """As one transaction: none of them is written, each caller is told."""
    if not db.is_sqlite:
        pytest.skip("PostgreSQL has no write turn: each script commits on its own")
    async with db.write():
        waiting = [
            asyncio.ensure_future(db.write_script(_add_then(1, 2))),
            asyncio.ensure_future(db.write_script(_add_then_break(3))),
        ]
        await asyncio.sleep(0.05)
    answers = await asyncio.gather(*waiting, return_exceptions=True)

    assert [type(answer) for answer in answers] == [RuntimeError, RuntimeError]
    assert await _ids(db) == []


async def test_a_script_alone_refused_midway_leaves_nothing(db: Database) -> None:
    with pytest.raises(ValidationFailed):
        await db.write_script(_add_then(1, 2, fail_between=True))
    assert await db.write_script(_add_then(3, 4)) == "done"
    assert await _ids(db) == [3, 4]
