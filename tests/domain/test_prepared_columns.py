"""Prepared statements (domain/store/prepared.py) read SQLAlchemy through its public API only:
their rows come back under the keys SQLAlchemy's own rows have, values go in and come out
processed as SQLAlchemy processes them, and a statement whose result columns SQLAlchemy would
name by rules of its own is refused when it is first compiled."""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import (
    Column,
    DateTime,
    Enum,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    func,
    insert,
    literal_column,
    select,
    text,
)
from sqlalchemy.sql.expression import Executable

from domain.runs.runs import _INSERT_RUN
from domain.runs.trigger_facts import _FACTS
from domain.store.db import Database
from domain.store.prepared import Prepared


class Shade(enum.Enum):
    LIGHT = "light"
    DARK = "dark"


_tables = MetaData()
_notes = Table(
    "prepared_column_notes",
    _tables,
    Column("id", Integer, primary_key=True),
    Column("at", DateTime(timezone=True)),
    Column("shade", Enum(Shade)),
    Column("body", String),
    Column("stored_name", String, key="kept_as"),
)
_others = _notes.alias("others")

_ADD = Prepared(
    insert(_notes).values(
        id=bindparam("id"), at=bindparam("at"), shade=bindparam("shade"), body=bindparam("body")
    )
)
_READABLE: list[Executable] = [
    select(_notes.c.id, _notes.c.at, _notes.c.shade, _notes.c.body),
    select(
        _notes.c.id,
        _notes.c.body.label("text"),
        _others.c.id.label("other_id"),
        literal_column("1").label("one"),
        func.count().over().label("total"),
    ).join(_others, _others.c.id == _notes.c.id),
]
_REFUSED: dict[str, Executable] = {
    "a name twice": select(_notes.c.id, _others.c.id).join(_others, _others.c.id == _notes.c.id),
    "an unlabelled expression": select(_notes.c.id + 1),
    "a column keyed apart from its name": select(_notes.c.kept_as),
}


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    async with database.write_engine.begin() as conn:
        await conn.run_sync(_tables.create_all)
    yield database
    async with database.write_engine.begin() as conn:
        await conn.execute(text("DROP TABLE prepared_column_notes"))
    await database.dispose()


_AT = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)


async def test_rows_have_the_keys_and_values_sqlalchemys_rows_have(db: Database) -> None:
    async with db.write_engine.begin() as conn:
        await conn.execute(
            insert(_notes), [{"id": 1, "at": _AT, "shade": Shade.DARK, "body": "by SQLAlchemy"}]
        )
    async with db.write_direct() as transaction:
        await transaction.execute_and_commit(
            _ADD, {"id": 2, "at": _AT, "shade": Shade.LIGHT, "body": "prepared"}
        )
    read: list[list[dict[str, Any]]] = []
    for statement in _READABLE:
        async with db.write_engine.connect() as conn:
            result = await conn.execute(statement)
            expected = [dict(zip(result.keys(), row, strict=True)) for row in result.all()]
        async with db.write_direct() as transaction:
            rows = await transaction.fetch(Prepared(statement), {})
        assert rows == expected, statement
        read.append(rows)
    # Processed both ways: the enum went in as its name and came back a member.
    assert {row["shade"] for row in read[0]} == {Shade.DARK, Shade.LIGHT}


def _compile(statement: Executable, dialect: Any) -> None:
    Prepared(statement).compiled(dialect)


@pytest.mark.parametrize("why", sorted(_REFUSED))
async def test_statements_whose_columns_sqlalchemy_would_rename_are_refused(
    db: Database, why: str
) -> None:
    with pytest.raises(ValueError, match="label each result column once"):
        _compile(_REFUSED[why], db.write_engine.dialect)


@pytest.mark.parametrize("statement", [_FACTS, _INSERT_RUN], ids=["trigger facts", "insert run"])
def test_the_hot_paths_statements_are_preparable_on_both_databases(statement: Prepared) -> None:
    from sqlalchemy.dialects import postgresql, sqlite

    for dialect in (sqlite.dialect(), postgresql.asyncpg.dialect()):  # type: ignore[attr-defined]
        compiled = statement.compiled(dialect)
        assert len(compiled.keys) == len(compiled.results)
