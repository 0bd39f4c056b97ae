"""Statements of the hot paths, compiled once per database and run straight on the driver.

Executing an already-compiled statement through SQLAlchemy still costs 0.2-0.3 ms of Python each
time (cache key, execution context, parameter and result processing, a greenlet hop per driver
call): more than SQLite or PostgreSQL spend on a short insert, and the larger part of a trigger.
A :class:`Prepared` statement is a Core statement compiled once per dialect together with
SQLAlchemy's own bind and result processors, so values go in and come out as they would through
SQLAlchemy; a :class:`DriverTransaction` runs such statements on the pooled connection's driver
(aiosqlite through domain/store/sqlite_driver.py, or asyncpg), one trip each.

Only statements without expanding (``IN``) or post-compile parameters, and whose result columns
are each a named column or a label under a name of its own, can be prepared; that is checked when
one is first compiled. Everything is read through SQLAlchemy's public API: the compiled
statement's ``string``, ``positiontup`` and ``bind_names``, the statement's ``exported_columns``,
and each type's ``dialect_impl(dialect)`` with its ``bind_processor`` and ``result_processor``
(what SQLAlchemy's own execution caches and calls). That costs nothing per execution: it is done
once per statement and database.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, TypeVar

from sqlalchemy import ColumnClause, Label
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.expression import Executable
from sqlalchemy.types import TupleType

from domain.kernel.errors import DomainError
from domain.store.sqlite_driver import OneTripConnection, run_statement, run_statement_and_commit

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]  # the positional parameters, in order
    defaults: Mapping[str, Any]  # values the statement binds itself (literals, LIMIT ...)
    pick: Callable[[Mapping[str, Any]], Sequence[Any]]  # the parameters' values, in order
    processed: tuple[tuple[int, Callable[[Any], Any]], ...]  # (position, bind processor)
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
    binds = compiled.bind_names
    if any(isinstance(bind.type, TupleType) for bind in binds):
        raise ValueError(f"not preparable (a tuple parameter): {compiled.string}")
    defaults = {
        name: bind.value
        for bind, name in binds.items()
        if not bind.required and bind.callable is None
    }
    processors = {
        name: bind.type.dialect_impl(dialect).bind_processor(dialect)
        for bind, name in binds.items()
    }
    columns = _result_columns(statement)
    return _Compiled(
        sql=compiled.string,
        names=names,
        defaults=defaults,
        pick=_picker(names),
        processed=tuple(
            (position, process)
            for position, name in enumerate(names)
            if (process := processors.get(name)) is not None
        ),
        keys=tuple(column.name for column in columns),
        results=tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
        ),
    )


def _result_columns(statement: Executable) -> list[ColumnClause[Any] | Label[Any]]:
    """The statement's result columns, each under the name SQLAlchemy's rows give it: only
    columns named as they are keyed, and labels, none sharing a name (SQLAlchemy would rename a
    duplicate, or name an unlabelled expression, by rules of its own)."""
    columns: list[ColumnClause[Any] | Label[Any]] = []
    for column in getattr(statement, "exported_columns", ()):
        named = isinstance(column, Label) or (
            isinstance(column, ColumnClause) and column.key == column.name
        )
        if not named or any(column.name == seen.name for seen in columns):
            raise ValueError(f"not preparable (label each result column once): {column}")
        columns.append(column)
    return columns


def _picker(names: tuple[str, ...]) -> Callable[[Mapping[str, Any]], Sequence[Any]]:
    """The values of ``names`` in a mapping, as a tuple, in one C call: a run's two dozen
    columns, with their bind processors, went from ~7.5 to ~6.4 us a trigger."""
    if len(names) > 1:
        return itemgetter(*names)
    return lambda parameters: tuple(parameters[name] for name in names)


def _arguments(compiled: _Compiled, parameters: Mapping[str, Any]) -> list[Any]:
    if compiled.defaults:
        parameters = {**compiled.defaults, **parameters}
    values = list(compiled.pick(parameters))
    for position, process in compiled.processed:
        values[position] = process(values[position])
    return values


def _row(compiled: _Compiled, raw: Any) -> dict[str, Any]:
    return {
        key: value if process is None else process(value)
        for key, value, process in zip(compiled.keys, raw, compiled.results, strict=True)
    }


@dataclass(frozen=True)
class Fetch:
    """A script's step: run ``statement``; the script gets its rows back (dicts by column)."""

    statement: Prepared
    parameters: Mapping[str, Any]


@dataclass(frozen=True)
class Execute:
    """A script's step: run ``statement``; the script gets the number of rows it changed.
    ``last``: the transaction's last statement, committed with it (``execute_and_commit``)."""

    statement: Prepared
    parameters: Mapping[str, Any]
    last: bool = False


# A transaction's body as a generator of steps: it yields Fetch and Execute and returns its
# outcome. Written once, it runs on any driver: awaited step by step on PostgreSQL, and on
# SQLite as one trip to the database thread (trips, not SQL, are most of a short transaction's
# time there). Its code between steps must be quick, pure work on what it read.
T = TypeVar("T")
Script = Generator[Fetch | Execute, Any, T]


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

    async def run(self, script: Script[T]) -> T:
        """Drive ``script``, a step at a time."""
        outcome: Any = None
        try:
            while True:
                step = script.send(outcome)
                if isinstance(step, Fetch):
                    outcome = await self.fetch(step.statement, step.parameters)
                elif step.last:
                    outcome = await self.execute_and_commit(step.statement, step.parameters)
                else:
                    outcome = await self.execute(step.statement, step.parameters)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

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
    """On a domain/store/sqlite_driver.py connection: BEGIN rides with the first statement."""

    def __init__(self, dialect: Dialect, driver: OneTripConnection, begin: str) -> None:
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

    async def run(self, script: Script[T]) -> T:
        """The whole script in one trip to the database thread."""
        outcome, committed = await self._driver.on_thread(_drive, self.dialect, script)
        self.committed = committed
        return outcome  # type: ignore[no-any-return]

    async def run_together(self, scripts: list[Script[Any]]) -> list[Outcome]:
        """Every script, each under a savepoint, and the commit, in one trip."""
        outcomes = await self._driver.on_thread(_drive_together, self.dialect, scripts)
        self.committed = True
        return outcomes

    async def commit(self) -> None:
        await self._driver.commit()

    async def rollback(self) -> None:
        await self._driver.rollback()


def _drive(
    connection: sqlite3.Connection, begin: str | None, dialect: Dialect, script: Script[Any]
) -> tuple[Any, bool]:
    """On the database thread: (BEGIN and) every step of ``script``; its outcome, and whether
    its last statement committed."""
    if begin is not None:
        connection.execute(begin).close()
    return _steps(connection, dialect, script, commit=True)


def _steps(
    connection: sqlite3.Connection, dialect: Dialect, script: Script[Any], *, commit: bool
) -> tuple[Any, bool]:
    outcome: Any = None
    committed = False
    try:
        while True:
            step = script.send(outcome)
            compiled = step.statement.compiled(dialect)
            cursor = connection.execute(compiled.sql, _arguments(compiled, step.parameters))
            try:
                if isinstance(step, Fetch):
                    outcome = [_row(compiled, raw) for raw in cursor.fetchall()]
                else:
                    outcome = cursor.rowcount
            finally:
                cursor.close()
            if commit and isinstance(step, Execute) and step.last:
                connection.commit()
                committed = True
    except StopIteration as done:
        return done.value, committed


# A script's own refusal (a DomainError it raises) undoes its statements alone, back to its
# savepoint; anything else (a storage fault ...) fails the whole transaction, as it would one.
Outcome = tuple[bool, Any]  # (True, what the script returned) or (False, the DomainError)


def _drive_together(
    connection: sqlite3.Connection, begin: str | None, dialect: Dialect, scripts: list[Script[Any]]
) -> list[Outcome]:
    """On the database thread: (BEGIN and) every script, each under a savepoint, then COMMIT."""
    if begin is not None:
        connection.execute(begin).close()
    if len(scripts) == 1:  # alone, it needs no savepoint: a refusal rolls the transaction back
        outcome, _ = _steps(connection, dialect, scripts[0], commit=False)
        connection.commit()
        return [(True, outcome)]
    outcomes: list[Outcome] = []
    for script in scripts:
        connection.execute("SAVEPOINT script").close()
        try:
            outcomes.append((True, _steps(connection, dialect, script, commit=False)[0]))
        except DomainError as refused:
            connection.execute("ROLLBACK TO script").close()
            outcomes.append((False, refused))
        connection.execute("RELEASE script").close()
    connection.commit()
    return outcomes


class PostgresTransaction(DriverTransaction):
    """On an asyncpg connection, with asyncpg's own transaction, begun at the first write.

    Reads before it run on their own, each seeing what is committed as it starts, which is what
    they would see inside a READ COMMITTED transaction too (no row locks are taken there), and a
    transaction whose one write is its last statement needs no BEGIN or COMMIT at all: that
    write commits by itself. So a trigger takes two round trips instead of four.
    """

    def __init__(self, dialect: Dialect, driver: Any) -> None:
        super().__init__(dialect)
        self._driver = driver
        self._transaction: Any = None

    async def begin(self) -> None:
        return None

    async def _fetch(self, sql: str, arguments: list[Any]) -> list[Any]:
        return list(await self._driver.fetch(sql, *arguments))

    async def _execute(self, sql: str, arguments: list[Any]) -> int:
        if self._transaction is None:
            self._transaction = self._driver.transaction()
            await self._transaction.start()
        return await self._run(sql, arguments)

    async def _run(self, sql: str, arguments: list[Any]) -> int:
        status: str = await self._driver.execute(sql, *arguments)
        tail = status.rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    async def _execute_and_commit(self, sql: str, arguments: list[Any]) -> int:
        if self._transaction is None:
            return await self._run(sql, arguments)  # the only write: it commits by itself
        changed = await self._run(sql, arguments)
        await self.commit()
        return changed

    async def commit(self) -> None:
        if self._transaction is not None:
            await self._transaction.commit()

    async def rollback(self) -> None:
        if self._transaction is not None:
            await self._transaction.rollback()
