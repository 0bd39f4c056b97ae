"""Many rows of one statement, read without handing the GIL back and forth once per row.

sqlite3 lets go of the GIL around every step of a statement, so a database thread fetching a
hundred rows has to take it back a hundred times. While the event loop's thread is busy (a
server under load), each take waits up to the interpreter's switch interval (5 ms): a page of
machines spent most of its time there, the loop's thread sat idle a quarter of the time with
every request waiting on a read, and the database threads burned ~9 ms of CPU a page on the
hand-overs alone. Packed into one JSON text by SQLite itself, the rows come back in a single
step, and the loop's thread unpacks them in one C call.

PostgreSQL's driver reads rows on the loop's own thread, so there the statement runs as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import orjson
from sqlalchemy import Float, LargeBinary, Numeric, Select, func, literal_column, select
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.types import TypeDecorator

Row = list[Any]
Shape = Callable[[Select[Any]], Select[Any]]


class RowReader:
    """Reads the rows of ``statement``, shaped per call (filters, order, limit).

    The packed form is built once: each row as a ``json_array`` of its columns, and the rows
    ``json_group_array``-ed in the shaped statement's order (SQLite feeds an aggregate the rows
    of its FROM subquery in that subquery's order; tests/domain/test_row_reads.py holds it to
    that). JSON cannot carry every value exactly, so columns whose type could lose something
    (floats, numerics, blobs) are refused up front.
    """

    def __init__(self, statement: Select[Any]) -> None:
        self._statement = statement
        columns = list(statement.selected_columns)
        for column in columns:
            stored = column.type.impl if isinstance(column.type, TypeDecorator) else column.type
            if isinstance(stored, Numeric | Float | LargeBinary):
                raise TypeError(f"{column.name}: JSON would not carry a {stored} exactly")
        self._columns = columns
        self._packed = statement.with_only_columns(func.json_array(*columns).label("packed"))
        self._processors: dict[str, list[tuple[int, Any]]] = {}
        self._kept: dict[tuple[str, Hashable], tuple[Select[Any], ...]] = {}

    async def all(self, connection: AsyncConnection, shape: Shape) -> list[Row]:
        """Every row of ``shape(statement)``, in its order, each value as its column reads it."""
        dialect = connection.dialect
        if dialect.name != "sqlite":
            return [list(row) for row in (await connection.execute(shape(self._statement))).all()]
        packed = await connection.execute(self._packed_rows(shape))
        return self._unpack(dialect, packed.scalar_one())

    async def counted(
        self,
        connection: AsyncConnection,
        shape: Shape,
        count: Select[Any],
        *,
        params: dict[str, Any] | None = None,
        kept_as: Hashable = None,
    ) -> tuple[list[Row], int]:
        """:meth:`all`, and the one value of ``count`` (such as the total a page is a part of):
        on SQLite in the same statement, one trip to the database thread instead of two.

        ``params`` are bound when the statements run. With ``kept_as`` (one of a few names of
        shapes, such as domain/fleet/machines.py's ``PageQuery.shape``) the statements are built
        once and kept under that name: the same name must always mean the same ``shape`` and
        ``count``.
        """
        dialect = connection.dialect
        key = (dialect.name, kept_as)
        statements = self._kept.get(key) if kept_as is not None else None
        if statements is None:
            statements = self._counted_statements(dialect, shape, count)
            if kept_as is not None:
                self._kept[key] = statements
        if dialect.name != "sqlite":
            rows_statement, count_statement = statements
            rows = (await connection.execute(rows_statement, params)).all()
            total = (await connection.execute(count_statement, params)).scalar_one()
            return [list(row) for row in rows], int(total)
        (statement,) = statements
        packed, counted = (await connection.execute(statement, params)).one()
        return self._unpack(dialect, packed), int(counted)

    def _counted_statements(
        self, dialect: Dialect, shape: Shape, count: Select[Any]
    ) -> tuple[Select[Any], ...]:
        if dialect.name != "sqlite":
            return shape(self._statement), count
        return (self._packed_rows(shape).add_columns(count.scalar_subquery()),)

    def _packed_rows(self, shape: Shape) -> Select[Any]:
        # json(): out of a subquery the arrays are plain text again, which would be quoted.
        return select(func.json_group_array(func.json(literal_column("packed")))).select_from(
            shape(self._packed).subquery()
        )

    def _unpack(self, dialect: Dialect, packed: str) -> list[Row]:
        # orjson: a page of 100 machines spent ~0.4 ms in json.loads alone.
        rows: list[Row] = orjson.loads(packed)
        processors = self._processors.get(dialect.name)
        if processors is None:
            processors = self._processors[dialect.name] = [
                (index, process)
                for index, column in enumerate(self._columns)
                if (process := column.type.dialect_impl(dialect).result_processor(dialect, None))
                is not None
            ]
        for row in rows:
            for index, process in processors:
                row[index] = process(row[index])
        return rows
