"""Storage that cannot take a write: recognising it, remembering it, probing it.

A write can fail because the database refuses every write for a while, whatever the write: the
disk is full, the file or the server is read-only (a hot standby), the file cannot be written or
opened. Such a failure is not a bug of the request, so it is answered with its own code and
logged as one line, and readiness reports it until a write succeeds again:

- :func:`fault_of` classifies an exception (SQLite's result codes, PostgreSQL's SQLSTATEs);
- :class:`StorageFaults` is what a :class:`~domain.store.db.Database` remembers: the last fault,
  forgotten at the next successful commit;
- :func:`probe_write` is the write readiness tries while a fault is remembered;
- :func:`private_database_file` creates a new SQLite file readable by its owner only;
- :func:`reported` turns a fault met by a command (``serve``, ``db upgrade``, ``admin token``)
  into :class:`StorageUnavailable`, one sentence naming the database and the problem.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.engine import make_url

if TYPE_CHECKING:
    from domain.store.db import Database

# SQLite primary result codes (an extended code keeps its primary code in the low byte).
SQLITE_READONLY = 8
SQLITE_IOERR = 10
SQLITE_FULL = 13
SQLITE_CANTOPEN = 14

_SQLITE_PROBLEMS = {
    SQLITE_FULL: ("SQLITE_FULL", "storage is full"),
    SQLITE_READONLY: ("SQLITE_READONLY", "the database is read-only"),
    SQLITE_IOERR: ("SQLITE_IOERR", "the database file cannot be written (I/O error)"),
    SQLITE_CANTOPEN: ("SQLITE_CANTOPEN", "the database file cannot be opened"),
}
_POSTGRES_PROBLEMS = {
    "53100": ("disk_full", "storage is full"),
    "25006": ("read_only_sql_transaction", "the database is read-only"),
}

# Room a SQLite probe asks for: more than most writes need, so that the few pages a full file
# still has free inside do not make it look ready while real writes keep failing.
SQLITE_PROBE_BYTES = 64 * 1024

# What a client is told: nothing about the server's disks, only that nothing happened.
CLIENT_MESSAGE = "Storage is unavailable: nothing was changed. Try again later."
CODE = "STORAGE_UNAVAILABLE"


@dataclass(frozen=True)
class StorageFault:
    """Why storage cannot take a write: ``code`` is the driver's name for it (``SQLITE_FULL``,
    ``read_only_sql_transaction``), ``problem`` a plain sentence, ``detail`` the driver's
    message (which names no data)."""

    code: str
    problem: str
    detail: str

    def __str__(self) -> str:
        return f"{self.problem} ({self.code}: {self.detail})"


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception, what it wraps (SQLAlchemy's ``orig``) and what caused it, each once."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)
        pending.extend(
            [
                current.__context__,
                current.__cause__,
                orig if isinstance(orig, BaseException) else None,
            ]
        )


def fault_of(exc: BaseException) -> StorageFault | None:
    """The storage fault behind ``exc``, or ``None`` if it is anything else."""
    for cause in _causes(exc):
        sqlite_code = getattr(cause, "sqlite_errorcode", None)
        if isinstance(sqlite_code, int) and sqlite_code & 0xFF in _SQLITE_PROBLEMS:
            name, problem = _SQLITE_PROBLEMS[sqlite_code & 0xFF]
            return StorageFault(name, problem, str(cause)[:200])
        sqlstate = getattr(cause, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate in _POSTGRES_PROBLEMS:
            name, problem = _POSTGRES_PROBLEMS[sqlstate]
            detail = str(getattr(cause, "message", None) or cause)
            return StorageFault(name, problem, detail.split("\n", 1)[0][:200])
    return None


def is_constraint_violation(exc: BaseException) -> bool:
    """Whether ``exc`` is the database refusing a row for a constraint (a unique key taken by a
    concurrent transaction, say): SQLite's ``IntegrityError``, PostgreSQL's class 23 SQLSTATEs,
    raised through SQLAlchemy or straight from the driver."""
    for cause in _causes(exc):
        if isinstance(cause, sqlite3.IntegrityError):
            return True
        sqlstate = getattr(cause, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate.startswith("23"):
            return True
    return False


class StorageFaults:
    """The last storage fault a database's writes met, until one of them commits."""

    def __init__(self) -> None:
        self.last: StorageFault | None = None

    def failed(self, exc: BaseException) -> None:
        fault = fault_of(exc)
        if fault is not None:
            self.last = fault

    def committed(self) -> None:
        self.last = None


class StorageUnavailable(RuntimeError):
    """The database named cannot take writes, for the reason the fault gives."""

    def __init__(self, where: str, fault: StorageFault) -> None:
        super().__init__(f"cannot write the database {where}: {fault}")
        self.where = where
        self.fault = fault


def sqlite_path(url: str) -> str | None:
    """The file of a SQLite URL (``None`` in memory), ``file:`` URIs included."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    path = parsed.database
    if path == ":memory:" or path.startswith("file::memory:"):
        return None
    return path.removeprefix("file:") if parsed.query.get("uri") else path


def location(url: str) -> str:
    """The database as an operator names it: the SQLite file, or PostgreSQL's host and database
    (never the password)."""
    path = sqlite_path(url)
    if path is not None:
        return os.path.abspath(path)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return "in memory"
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.host or 'localhost'}{port}/{parsed.database or ''}"


def private_database_file(url: str) -> None:
    """Create a SQLite database file that does not exist yet with mode 0600, before SQLite does
    (it would use 0644, and its -wal and -shm files copy the database file's mode). An existing
    file keeps its mode; a read-only URI (``mode=ro``) creates nothing; a file that cannot be
    created is left to SQLite to report."""
    path = sqlite_path(url)
    if path is None or make_url(url).query.get("mode") in ("ro", "memory"):
        return
    with suppress(FileExistsError, OSError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def check_opens(url: str) -> None:
    """Open a SQLite database file once, here, so that a file that cannot be opened (a missing
    directory, no permission) fails with SQLite's own error before any event loop or thread of
    the async driver is involved (aiosqlite's worker thread would otherwise report its failed
    start on a closed loop, a traceback of its own)."""
    path = sqlite_path(url)
    if path is None:
        return
    parsed = make_url(url)
    if parsed.query.get("uri"):
        options = "&".join(f"{key}={value}" for key, value in parsed.query.items() if key != "uri")
        connection = sqlite3.connect(
            f"{parsed.database}?{options}" if options else str(parsed.database), uri=True
        )
    else:
        connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA schema_version").close()
    finally:
        connection.close()


async def probe_write(db: Database) -> None:
    """A write that changes nothing and costs little, committed like any other (so its success
    clears the fault :class:`StorageFaults` remembers). It rewrites the one row of
    ``alembic_version`` as it is, which a read-only database or server refuses and a commit must
    write out (WAL or heap). On SQLite it also allocates room for :data:`SQLITE_PROBE_BYTES` and
    gives it back (a savepoint rolled back, nothing of it written): a full database, or one at
    its ``max_page_count`` with no free pages left inside, refuses that."""
    async with db.write() as session:
        connection = await session.connection()
        if db.is_sqlite:
            nested = await connection.begin_nested()
            await connection.execute(text("CREATE TABLE deskfleet_storage_probe (x BLOB)"))
            await connection.execute(
                text("INSERT INTO deskfleet_storage_probe VALUES (zeroblob(:size))"),
                {"size": SQLITE_PROBE_BYTES},
            )
            await nested.rollback()
        await connection.execute(text("UPDATE alembic_version SET version_num = version_num"))


@contextmanager
def reported(url: str) -> Iterator[None]:
    """Raise a storage fault met inside as :class:`StorageUnavailable` naming the database."""
    try:
        yield
    except StorageUnavailable:
        raise
    except Exception as exc:
        fault = fault_of(exc)
        if fault is None:
            raise
        raise StorageUnavailable(location(url), fault) from None
