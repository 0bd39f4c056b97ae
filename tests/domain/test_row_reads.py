"""Many rows read in one step (domain/store/row_reads.py): the same rows, in the same order and with
the same values as the statement itself returns, on both databases."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    Select,
    String,
    Table,
    func,
    insert,
    literal,
    select,
    text,
)

from domain.store.db import Database
from domain.store.models.columns import UTCDateTime
from domain.store.row_reads import RowReader, Shape

_tables = MetaData()
_robots = Table(
    "row_read_robots",
    _tables,
    Column("id", Integer, primary_key=True),
    Column("name", String),
    Column("busy", Boolean),
    Column("seen_at", UTCDateTime, nullable=True),
    Column("score", Float),
)
_COLUMNS = (_robots.c.name, _robots.c.id, _robots.c.busy, _robots.c.seen_at)
_STATEMENT = select(*_COLUMNS, (_robots.c.id * 2).label("twice"))
_READER = RowReader(_STATEMENT)
_START = datetime(2026, 11, 27, 4, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    async with database.write_engine.begin() as connection:
        await connection.run_sync(_tables.create_all)
        ids = list(range(1, 1001))
        random.Random(7).shuffle(ids)  # stored out of every order a read asks for
        await connection.execute(
            insert(_robots),
            [
                {
                    "id": i,
                    "name": f"robot-{(i * 7919) % 1000:03d}-{'é' if i % 3 else 'a'}",
                    "busy": i % 2 == 0,
                    "seen_at": None if i % 5 == 0 else _START + timedelta(seconds=i),
                    "score": i / 3,
                }
                for i in ids
            ],
        )
    yield database
    async with database.write_engine.begin() as connection:
        await connection.execute(text("DROP TABLE row_read_robots"))
    await database.dispose()


def _page(after: int, size: int) -> Shape:
    def shape(statement: Select[Any]) -> Select[Any]:
        return (
            statement.where(_robots.c.id > after)
            .order_by(_robots.c.name.desc(), _robots.c.id)
            .limit(size)
        )

    return shape


async def test_rows_come_in_the_statements_order_with_its_values(db: Database) -> None:
    shape = _page(after=10, size=700)
    async with db.read() as session:
        connection = await session.connection()
        read = await _READER.all(connection, shape)
        plain = (await connection.execute(shape(_STATEMENT))).all()
    assert len(read) == 700
    assert read == [list(row) for row in plain]
    # The values are as their columns read them: aware datetimes, booleans, NULLs.
    first_seen = next(row for row in read if row[3] is not None)
    assert first_seen[3] == _START + timedelta(seconds=first_seen[1])
    assert first_seen[3].tzinfo is UTC
    assert {type(row[2]) for row in read} == {bool}
    assert any(row[3] is None for row in read)
    assert all(row[4] == row[1] * 2 for row in read)


async def test_no_rows_read_as_an_empty_list(db: Database) -> None:
    async with db.read() as session:
        connection = await session.connection()
        assert await _READER.all(connection, _page(after=1000, size=10)) == []


def test_a_column_json_would_not_carry_exactly_is_refused() -> None:
    with pytest.raises(TypeError, match="score"):
        RowReader(select(_robots.c.id, _robots.c.score))
    with pytest.raises(TypeError, match="photo"):
        RowReader(select(_robots.c.id, literal(b"\x89PNG", LargeBinary).label("photo")))


async def test_counted_reads_the_same_rows_and_a_count_of_its_own(db: Database) -> None:
    """The count is its own statement's (all busy robots), not limited by the page's shape."""
    busy = select(func.count()).select_from(_robots).where(_robots.c.busy)
    async with db.read() as session:
        connection = await session.connection()
        page, total = await _READER.counted(connection, _page(after=10, size=25), busy)
        assert page == await _READER.all(connection, _page(after=10, size=25))
        assert len(page) == 25 and total == 500
        empty, total = await _READER.counted(connection, _page(after=1000, size=10), busy)
        assert empty == [] and total == 500
