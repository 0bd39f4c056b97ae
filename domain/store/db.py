"""Engines and transactions for SQLite (embedded default) and PostgreSQL (scale-out).

Writes on SQLite take the write lock up front (``BEGIN IMMEDIATE``): a deferred transaction that
reads and then writes fails with "database is locked" instead of waiting for its turn. Writers of
one process (request handlers, the dispatcher's own pool) first queue on an asyncio lock per
database file, so they take turns at once instead of polling in SQLite's busy handler, which
sleeps up to 100 ms between tries; other processes still meet the busy timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractContextManager, asynccontextmanager
from typing import Any, TypeVar

from opentelemetry.trace import SpanKind, Tracer
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.util import greenlet_spawn
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.store import sqlite_driver, storage, wal_checkpoints
from domain.store.prepared import (
    DriverTransaction,
    Outcome,
    PostgresTransaction,
    Prepared,
    Script,
    SQLiteTransaction,
)
from domain.store.shared_commits import SharedCommits
from domain.store.statement_spans import trace_statements

AfterCommit = Callable[[], Awaitable[None]]
T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 10_000


def async_url(url: str) -> str:
    """Accept plain ``sqlite:///`` and ``postgresql://`` URLs and pick the async drivers."""
    parsed = make_url(url)
    if parsed.drivername in ("sqlite", "sqlite+pysqlite"):
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed.render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _sqlite_engine(url: str, begin: str) -> AsyncEngine:
    engine = create_async_engine(
        url, pool_size=8, max_overflow=8, pool_timeout=30, pool_reset_on_return=None
    )

    @event.listens_for(engine.sync_engine, "do_connect")
    def _one_trip(dialect: Any, _record: Any, cargs: list[Any], cparams: dict[str, Any]) -> Any:
        # One trip to the database thread per statement instead of four (domain/store/sqlite_driver.py).
        return dialect.loaded_dbapi.connect(
            *cargs, async_creator_fn=sqlite_driver.connect, **cparams
        )

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Hand transaction control to the "begin" hook below (the pysqlite recipe).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        for pragma in wal_checkpoints.CONNECTION_PRAGMAS:
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Sent with the transaction's first statement, in the same trip to the database thread.
        conn.connection.driver_connection.begin_with_next(begin)

    @event.listens_for(engine.sync_engine, "reset")
    def _on_reset(dbapi_connection: Any, _record: Any, state: Any) -> None:
        # The pool's own reset (pool_reset_on_return=None below) rolled back after every COMMIT.
        if not state.terminate_only and dbapi_connection.driver_connection.in_transaction:
            dbapi_connection.rollback()

    return engine


_WRITERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


def _writer_lock(url: str) -> asyncio.Lock:
    """One lock per SQLite database and event loop, shared by every engine on that file."""
    locks = _WRITERS.setdefault(asyncio.get_running_loop(), {})
    return locks.setdefault(url, asyncio.Lock())


class Database:
    def __init__(self, url: str) -> None:
        self.url = async_url(url)
        self.is_sqlite = is_sqlite(self.url)
        # The last storage fault a write met, until a write commits (domain/store/storage.py).
        self.storage_faults = storage.StorageFaults()
        if self.is_sqlite:
            storage.private_database_file(self.url)
            self.write_engine = _sqlite_engine(self.url, "BEGIN IMMEDIATE")
            self.read_engine = _sqlite_engine(self.url, "BEGIN")
        else:
            self.write_engine = create_async_engine(self.url, pool_size=10, max_overflow=10)
            self.read_engine = self.write_engine
        self._writes = async_sessionmaker(
            self.write_engine, class_=AsyncSession, expire_on_commit=False
        )
        self._reads = async_sessionmaker(
            self.read_engine, class_=AsyncSession, expire_on_commit=False
        )
        # On SQLite the writers of a file take turns anyway, so one connection serves them all.
        self.kept_for_writes = KeptConnections(self.write_engine, 1 if self.is_sqlite else 4)
        self.kept_for_reads = KeptConnections(self.read_engine, 4)
        # SQLite's checkpoints run beside the writers, not in their commits (a file only).
        path = make_url(self.url).database if self.is_sqlite else None
        self.checkpoints = wal_checkpoints.WalCheckpoints(path) if path else None
        self._shared_commits = SharedCommits(self._write_together)
        self.tracer: Tracer | None = None  # see trace_with

    def trace_with(self, tracer: Tracer) -> None:
        """A span for every statement (domain/store/statement_spans.py), and one for each
        direct transaction and read, which run on the driver without SQLAlchemy's events."""
        self.tracer = tracer
        trace_statements(self.write_engine, tracer)
        if self.read_engine is not self.write_engine:
            trace_statements(self.read_engine, tracer)

    def _direct_span(self, name: str, statement: str | None = None) -> AbstractContextManager[Any]:
        if self.tracer is None:  # not traced: nothing more on the hot paths
            return contextlib.nullcontext()
        attributes = {"db.system.name": self.write_engine.dialect.name}
        if statement is not None:
            attributes["db.query.text"] = statement
        return self.tracer.start_as_current_span(name, kind=SpanKind.CLIENT, attributes=attributes)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """One transaction; callbacks registered with :func:`after_commit` run once it commits."""
        turn = _writer_lock(self.url) if self.is_sqlite else contextlib.nullcontext()
        async with turn, self._writes() as session:
            try:
                async with session.begin():
                    yield session
                    await _before_commit(session)
            except BaseException as exc:
                session.info.pop("before_commit", None)
                session.info.pop("after_commit", None)
                session.info.pop("emitted", None)
                self.storage_faults.failed(exc)
                raise
            callbacks: list[AfterCommit] = session.info.pop("after_commit", [])
            session.info.pop("emitted", None)
        self.storage_faults.committed()
        if self.checkpoints is not None:
            self.checkpoints.committed()
        for callback in callbacks:
            await callback()

    def _driver_transaction(self, driver: Any) -> DriverTransaction:
        dialect = self.write_engine.dialect
        if self.is_sqlite:
            return SQLiteTransaction(dialect, driver, "BEGIN IMMEDIATE")
        return PostgresTransaction(dialect, driver)

    @asynccontextmanager
    async def write_direct(self) -> AsyncIterator[DriverTransaction]:
        """:meth:`write` for :class:`~domain.store.prepared.Prepared` statements, run on the pooled
        connection's driver without SQLAlchemy's per-statement work (the trigger's hot path);
        :func:`after_commit` works the same."""
        turn = _writer_lock(self.url) if self.is_sqlite else contextlib.nullcontext()
        async with turn:
            with self._direct_span("write transaction"):
                pooled = await self.kept_for_writes.take()
                transaction = self._driver_transaction(pooled.driver_connection)
                try:
                    await transaction.begin()
                    yield transaction
                    if transaction.committed and transaction.info.get("before_commit"):
                        raise RuntimeError("a script committed before what must commit with it")
                    await _before_commit(transaction)
                    if not transaction.committed:
                        await transaction.commit()
                except BaseException as exc:
                    self.storage_faults.failed(exc)
                    try:
                        await transaction.rollback()
                    except BaseException:
                        # SQLAlchemy does not know of this transaction, so the pool's reset would
                        # not end it: a connection that could not roll back is not reused.
                        await self.kept_for_writes.give_back(pooled, broken=True)
                        raise
                    await self.kept_for_writes.give_back(pooled, broken=_lost(pooled))
                    raise
                self.storage_faults.committed()
                await self.kept_for_writes.give_back(pooled)
                if self.checkpoints is not None:
                    self.checkpoints.committed()
        callbacks: list[AfterCommit] = transaction.info.pop("after_commit", [])
        for callback in callbacks:
            await callback()

    async def write_script(self, script: Script[T]) -> T:
        """``script`` (domain/store/prepared.py) in a write transaction, as :meth:`write_direct`
        runs it, and what it returned once committed. On SQLite, scripts that wait for the write
        turn together run in one trip and commit together (domain/store/shared_commits.py)."""
        if self.is_sqlite:
            return await self._shared_commits.run(script)
        async with self.write_direct() as transaction:
            return await transaction.run(script)

    async def _write_together(self, scripts: list[Script[Any]]) -> list[Outcome]:
        async with self.write_direct() as transaction:
            assert isinstance(transaction, SQLiteTransaction)
            return await transaction.run_together(scripts)

    async def fetch_direct(
        self, statement: Prepared, parameters: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        """One :class:`~domain.store.prepared.Prepared` read on its own, run on a reading
        connection's driver: it sees what was committed when it starts (no transaction around it,
        so no BEGIN and no COMMIT). For the look-ups a large fleet makes on most requests (a
        machine's key): one trip to the database where the ORM's read takes several."""
        pooled = await self.kept_for_reads.take()
        try:
            with self._direct_span("direct read"):
                rows = await self._driver_transaction(pooled.driver_connection).fetch(
                    statement, parameters
                )
        except BaseException:
            await self.kept_for_reads.give_back(pooled, broken=_lost(pooled))
            raise
        await self.kept_for_reads.give_back(pooled)
        return rows

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self._reads() as session, session.begin():
            yield session

    async def dispose(self) -> None:
        if self.checkpoints is not None:
            await self.checkpoints.settled()
        await self.kept_for_writes.close()
        await self.kept_for_reads.close()
        await self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            await self.read_engine.dispose()


class KeptConnections:
    """A few connections of an engine's pool, kept checked out between direct statements:
    taking one from SQLAlchemy's pool and giving it back cost ~0.05-0.1 ms each time, a tenth of
    a trigger. Past ``keep`` at once, the others go back to the pool."""

    def __init__(self, engine: AsyncEngine, keep: int) -> None:
        self.engine = engine
        self.keep = keep
        self.kept: list[PoolProxiedConnection] = []

    async def take(self) -> PoolProxiedConnection:
        while self.kept:
            pooled = self.kept.pop()
            if not _lost(pooled):
                return pooled
            await greenlet_spawn(pooled.invalidate)
        return await self.engine.raw_connection()

    async def give_back(self, pooled: PoolProxiedConnection, *, broken: bool = False) -> None:
        if broken:
            await greenlet_spawn(pooled.invalidate)
        elif len(self.kept) < self.keep:
            self.kept.append(pooled)
        else:
            await greenlet_spawn(pooled.close)

    async def close(self) -> None:
        kept, self.kept = self.kept, []
        for pooled in kept:
            await greenlet_spawn(pooled.close)


def _lost(pooled: PoolProxiedConnection) -> bool:
    """Whether the server closed this connection: asyncpg notices even while it sits idle, and
    a kept connection SQLAlchemy's pool never sees again must not be handed out dead (a
    PostgreSQL restart would otherwise fail every direct write after it)."""
    is_closed = getattr(pooled.driver_connection, "is_closed", None)
    return bool(is_closed is not None and is_closed())


def before_commit(session: AsyncSession | DriverTransaction, callback: AfterCommit) -> None:
    """Run ``callback`` in the session's transaction, just before it commits: what must be
    written with the change, whatever else the transaction does after registering it (the
    webhooks' outbox, domain/webhooks/outbox.py)."""
    session.info.setdefault("before_commit", []).append(callback)


async def _before_commit(session: AsyncSession | DriverTransaction) -> None:
    for callback in session.info.pop("before_commit", []):
        await callback()


def after_commit(session: AsyncSession | DriverTransaction, callback: AfterCommit) -> None:
    """Run ``callback`` only if and after the session's transaction commits."""
    session.info.setdefault("after_commit", []).append(callback)
