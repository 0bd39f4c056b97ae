"""aiosqlite connections whose statements each take one trip to the database thread.

aiosqlite runs every sqlite3 call on the connection's own thread and hands the result back to
the event loop: a trip that costs a thread wake-up and a GIL hand-over each way. Through
SQLAlchemy's adapter one statement is four such trips (make a cursor, execute, fetch all, close
the cursor), so a short write transaction (BEGIN, a read, an insert, COMMIT) took a dozen, and
under load each trip waits for the event loop's thread to let go of the GIL.

Here a cursor is a plain object on the event loop's side, and ``execute`` does everything on the
database thread at once: make a sqlite3 cursor, execute, fetch every row (SQLAlchemy's buffered
cursors fetch them all straight away anyway), note ``description``, ``rowcount`` and
``lastrowid``, and close it. Results and errors are those of sqlite3, as before. The
transaction's ``BEGIN`` rides along with its first statement, and returning a connection to the
pool rolls back only if a transaction is still open (SQLAlchemy's reset would otherwise make one
more trip after every COMMIT). Running our functions on the connection's thread takes aiosqlite's
private names: domain/store/aiosqlite_adapter.py is where they are used.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from domain.store.aiosqlite_adapter import ThreadedConnection, open_connection

_Outcome = tuple[Any, int, int | None, list[Any]]
R = TypeVar("R")


def _begin(connection: sqlite3.Connection, begin: str | None) -> None:
    if begin is not None:
        connection.execute(begin).close()


def run_statement(
    connection: sqlite3.Connection, begin: str | None, sql: str, parameters: Any
) -> _Outcome:
    """On the database thread: (BEGIN and) one statement, its rows fetched, its cursor closed."""
    _begin(connection, begin)
    cursor = connection.cursor()
    try:
        cursor.execute(sql, () if parameters is None else parameters)
        rows = cursor.fetchall() if cursor.description else []
        return cursor.description, cursor.rowcount, cursor.lastrowid, rows
    finally:
        cursor.close()


def run_statement_and_commit(
    connection: sqlite3.Connection, begin: str | None, sql: str, parameters: Any
) -> _Outcome:
    """:func:`run_statement`, then COMMIT, in the same trip (a transaction's last statement)."""
    outcome = run_statement(connection, begin, sql, parameters)
    connection.commit()
    return outcome


def _executemany(
    connection: sqlite3.Connection, begin: str | None, sql: str, parameters: Any
) -> _Outcome:
    _begin(connection, begin)
    cursor = connection.cursor()
    try:
        cursor.executemany(sql, parameters)
        return cursor.description, cursor.rowcount, cursor.lastrowid, []
    finally:
        cursor.close()


class OneTripCursor:
    """The part of aiosqlite's cursor SQLAlchemy uses, one thread trip per statement."""

    arraysize = 1

    def __init__(self, connection: OneTripConnection) -> None:
        self._connection = connection
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self._rows: list[Any] = []

    async def __aenter__(self) -> OneTripCursor:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def execute(self, sql: str, parameters: Any = None) -> OneTripCursor:
        outcome = await self._connection.on_thread(run_statement, sql, parameters)
        self.description, self.rowcount, self.lastrowid, self._rows = outcome
        return self

    async def executemany(self, sql: str, parameters: Sequence[Any]) -> OneTripCursor:
        outcome = await self._connection.on_thread(_executemany, sql, parameters)
        self.description, self.rowcount, self.lastrowid, self._rows = outcome
        return self

    async def fetchone(self) -> Any:
        return self._rows.pop(0) if self._rows else None

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        size = self.arraysize if size is None else size
        rows, self._rows = self._rows[:size], self._rows[size:]
        return rows

    async def fetchall(self) -> list[Any]:
        rows, self._rows = self._rows, []
        return rows

    async def close(self) -> None:
        self._rows = []


class OneTripConnection(ThreadedConnection):
    """An aiosqlite connection whose transactions start with their first statement's trip.

    :meth:`begin_with_next` keeps the ``BEGIN`` for the first statement to run, in the same
    trip; a transaction that ends before any statement never reaches the database thread.
    """

    _pending_begin: str | None = None

    def cursor(self) -> OneTripCursor:  # type: ignore[override]
        return OneTripCursor(self)

    def begin_with_next(self, begin: str) -> None:
        self._pending_begin = begin

    async def on_thread(self, function: Callable[..., R], *args: Any) -> R:
        """``function(sqlite3_connection, pending_begin, *args)`` on the connection's thread."""
        begin, self._pending_begin = self._pending_begin, None
        return await self.run_on_thread(function, begin, *args)

    async def commit(self) -> None:
        if self._pending_begin is not None:
            self._pending_begin = None
            return
        await super().commit()

    async def rollback(self) -> None:
        if self._pending_begin is not None:
            self._pending_begin = None
            return
        await super().rollback()

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction is open (read while the connection is idle, between trips);
        False once it is closed."""
        if self._pending_begin is not None:
            return True
        try:
            return super().in_transaction
        except ValueError:  # aiosqlite's "no active connection"
            return False


async def connect(path: str, **kwargs: Any) -> OneTripConnection:
    def connector() -> sqlite3.Connection:
        connection: sqlite3.Connection = sqlite3.connect(path, **kwargs)
        return connection

    return await open_connection(OneTripConnection, connector, iter_chunk_size=64)
