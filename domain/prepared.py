"""Statements of the hot paths, compiled once per database and run straight on the driver.

Executing an already-compiled statement through SQLAlchemy still costs 0.2-0.3 ms of Python each
time (cache key, execution context, parameter and result processing, a greenlet hop per driver
call): more than SQLite or PostgreSQL spend on a short insert, and the larger part of a trigger.
A :class:`Prepared` statement is a Core statement compiled once per dialect together with
SQLAlchemy's own bind and result processors, so values go in and come out as they would through
SQLAlchemy; a :class:`DriverTransaction` runs such statements on the pooled connection's driver
(aiosqlite through domain/sqlite_driver.py, or asyncpg), one trip each.

Only statements without expanding (``IN``) or post-compile parameters can be prepared; that is
checked when one is first compiled.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.sql.expression import Executable

from domain.sqlite_driver import run_statement, run_statement_and_commit

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]  # the positional parameters, in order
    defaults: Mapping[str, Any]  # values the statement binds itself (literals, LIMIT ...)
    binds: tuple[Processor, ...]
    keys: tuple[str, ...]  # the result columns
    results: tuple[Processor, ...]


class Prepared:
    """A Core statement compiled once per dialect, run by :class:`DriverTransaction`."""

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._compiled: dict[str, _Compiled] = {}

    def compiled(self, dialect: Dialect) -> _Compiled:
        found = self._compiled.get(dialect.name)
        if found is None:
            found = self._compiled[dialect.name] = _compile(self.statement, dialect)
        return found


def _compile(statement: Executable, dialect: Dialect) -> _Compiled:
    compiled = statement.compile(dialect=dialect)  # type: ignore[attr-defined]
    if "POSTCOMPILE" in compiled.string or compiled.positiontup is None:
        raise ValueError(f"not preparable (expanding or named parameters): {compiled.string}")
    names = tuple(compiled.positiontup)
    defaults = {
        name: bind.value
        for bind, name in compiled.bind_names.items()
        if not bind.required and bind.callable is None
    }
    processors = compiled._bind_processors
    columns = compiled._result_columns
    return _Compiled(
        sql=compiled.string,
        names=names,
        defaults=defaults,
        binds=tuple(processors.get(name) for name in names),
        keys=tuple(column.keyname for column in columns),
        results=tuple(column.type._cached_result_processor(dialect, None) for column in columns),
    )


def _arguments(compiled: _Compiled, parameters: Mapping[str, Any]) -> list[Any]:
    values = []
    for name, process in zip(compiled.names, compiled.binds, strict=True):
        value = parameters[name] if name in parameters else compiled.defaults[name]
        values.append(value if process is None else process(value))
    return values


def _row(compiled: _Compiled, raw: Any) -> dict[str, Any]:
    return {
        key: value if process is None else process(value)
        for key, value, process in zip(compiled.keys, raw, compiled.results, strict=True)
    }


class DriverTransaction:
    """A write transaction on a driver connection (see ``Database.write_direct``). ``info`` is per
    transaction, as on a session: what ``after_commit`` (and so ``events.emit``) registers."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.info: dict[str, Any] = {}
        self.committed = False

    async def fetch(
        self, statement: Prepared, parameters: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        compiled = statement.compiled(self.dialect)
        rows = await self._fetch(compiled.sql, _arguments(compiled, parameters))
        return [_row(compiled, raw) for raw in rows]

    async def execute(self, statement: Prepared, parameters: Mapping[str, Any]) -> int:
        """Run a statement that returns no rows; how many rows it changed."""
        compiled = statement.compiled(self.dialect)
        return await self._execute(compiled.sql, _arguments(compiled, parameters))

    async def execute_and_commit(self, statement: Prepared, parameters: Mapping[str, Any]) -> int:
        """:meth:`execute` as the transaction's last statement, and commit (on SQLite in the
        same trip to the database thread)."""
        compiled = statement.compiled(self.dialect)
        changed = await self._execute_and_commit(compiled.sql, _arguments(compiled, parameters))
        self.committed = True
        return changed

    async def _execute_and_commit(self, sql: str, arguments: list[Any]) -> int:
        changed = await self._execute(sql, arguments)
        await self.commit()
        return changed

    async def _fetch(self, sql: str, arguments: list[Any]) -> list[Any]:
        raise NotImplementedError

    async def _execute(self, sql: str, arguments: list[Any]) -> int:
        raise NotImplementedError

    async def begin(self) -> None:
        raise NotImplementedError

    async def commit(self) -> None:
        raise NotImplementedError

    async def rollback(self) -> None:
        raise NotImplementedError


class SQLiteTransaction(DriverTransaction):
    """On a domain/sqlite_driver.py connection: BEGIN rides with the first statement."""

    def __init__(self, dialect: Dialect, driver: Any, begin: str) -> None:
        super().__init__(dialect)
        self._driver = driver
        self._begin = begin

    async def begin(self) -> None:
        self._driver.begin_with_next(self._begin)

    async def _fetch(self, sql: str, arguments: list[Any]) -> list[Any]:
        _, _, _, rows = await self._driver.on_thread(run_statement, sql, arguments)
        return rows

    async def _execute(self, sql: str, arguments: list[Any]) -> int:
        _, rowcount, _, _ = await self._driver.on_thread(run_statement, sql, arguments)
        return int(rowcount)

    async def _execute_and_commit(self, sql: str, arguments: list[Any]) -> int:
        _, rowcount, _, _ = await self._driver.on_thread(run_statement_and_commit, sql, arguments)
        return int(rowcount)

    async def commit(self) -> None:
        await self._driver.commit()

    async def rollback(self) -> None:
        await self._driver.rollback()


class PostgresTransaction(DriverTransaction):
    """On an asyncpg connection, with asyncpg's own transaction."""

    def __init__(self, dialect: Dialect, driver: Any) -> None:
        super().__init__(dialect)
        self._driver = driver
        self._transaction: Any = None

    async def begin(self) -> None:
        self._transaction = self._driver.transaction()
        await self._transaction.start()

    async def _fetch(self, sql: str, arguments: list[Any]) -> list[Any]:
        return list(await self._driver.fetch(sql, *arguments))

    async def _execute(self, sql: str, arguments: list[Any]) -> int:
        status: str = await self._driver.execute(sql, *arguments)
        tail = status.rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    async def commit(self) -> None:
        await self._transaction.commit()

    async def rollback(self) -> None:
        await self._transaction.rollback()
