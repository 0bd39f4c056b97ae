"""The one place DeskFleet uses aiosqlite's private names (tested by tests/adapters/test_aiosqlite.py).

aiosqlite runs every sqlite3 call on a thread of the connection's own, but its public API only
sends single calls there (``execute``, ``fetchall``, ``commit`` ...), a trip to the thread and
back each. domain/store/sqlite_driver.py runs a statement's every step, or a whole transaction's
script, in one trip; SQLAlchemy's adapter over aiosqlite's public API made four trips a statement
(make a cursor, execute, fetch all, close it), and a short write transaction a dozen. That needs
a function of ours run on the connection's thread with its sqlite3 connection, which only
aiosqlite's private names offer:

- ``Connection._execute(function, *args)``: queues ``function(*args)`` on the connection's thread
  and awaits its result (raises ``ValueError("Connection closed")`` once it is closed).
- ``Connection._conn``: that thread's ``sqlite3.Connection`` (``ValueError`` once closed).
- ``Connection._thread``: the connection's thread, made a daemon before it starts, as SQLAlchemy's
  own aiosqlite dialect does (aiosqlite >= 0.22 is no longer a ``Thread`` itself), so that a
  connection nobody closed never holds up the interpreter's exit.

aiosqlite is a dependency with an upper bound (pyproject.toml); the test fails, naming the
attribute, on a version that lacks one of these.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, TypeVar, cast

import aiosqlite

_R = TypeVar("_R")
_C = TypeVar("_C", bound="ThreadedConnection")


class ThreadedConnection(aiosqlite.Connection):
    """An aiosqlite connection that runs functions of ours on its thread."""

    def run_on_thread(
        self, function: Callable[Concatenate[sqlite3.Connection, ...], _R], *args: Any
    ) -> Coroutine[Any, Any, _R]:
        """``function(sqlite3_connection, *args)`` on the connection's thread, in one trip, when
        awaited. (aiosqlite's own coroutine, not one more around it: no cost added per trip.)"""
        return self._execute(function, self._conn, *args)  # type: ignore[no-untyped-call]


async def open_connection(
    kind: type[_C], connector: Callable[[], sqlite3.Connection], iter_chunk_size: int
) -> _C:
    """A connection of ``kind`` made by ``connector`` on its thread, a daemon thread."""
    connection = kind(connector, iter_chunk_size=iter_chunk_size)
    connection._thread.daemon = True
    return cast(_C, await connection)
