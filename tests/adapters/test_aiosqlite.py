"""domain/store/aiosqlite_adapter.py against the installed aiosqlite: every private name it uses
is still there, and the adapter works for real. A failure names the attribute: check its
replacement in the new aiosqlite before raising the upper bound in pyproject.toml."""

from __future__ import annotations

import inspect
import sqlite3
import threading

import aiosqlite
import pytest

from domain.store.aiosqlite_adapter import ThreadedConnection, open_connection


def _missing(name: str) -> str:
    return (
        f"aiosqlite {aiosqlite.__version__} has no Connection.{name}, which "
        "domain/store/aiosqlite_adapter.py uses"
    )


def _connector() -> sqlite3.Connection:
    return sqlite3.connect(":memory:")


def test_the_private_names_are_there() -> None:
    execute = getattr(aiosqlite.Connection, "_execute", None)
    assert execute is not None and inspect.iscoroutinefunction(execute), _missing("_execute")
    conn = getattr(aiosqlite.Connection, "_conn", None)
    assert isinstance(conn, property), _missing("_conn")
    unopened = aiosqlite.Connection(_connector, iter_chunk_size=64)
    assert isinstance(getattr(unopened, "_thread", None), threading.Thread), _missing("_thread")


async def test_functions_run_on_the_connections_daemon_thread() -> None:
    connection = await open_connection(ThreadedConnection, _connector, iter_chunk_size=64)
    try:
        assert connection._thread.daemon

        def where(sqlite_connection: sqlite3.Connection, value: int) -> tuple[object, int]:
            (row,) = sqlite_connection.execute("SELECT ? + 1", (value,)).fetchall()
            return threading.current_thread(), row[0]

        thread, answer = await connection.run_on_thread(where, 41)
        assert (thread, answer) == (connection._thread, 42)
        assert thread is not threading.current_thread()
        assert not connection.in_transaction  # the public property, on the same connection
    finally:
        await connection.close()
    with pytest.raises(ValueError, match=r"(?i)closed|no active connection"):
        await connection.run_on_thread(lambda sqlite_connection: None)
