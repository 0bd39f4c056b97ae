"""Given-steps for storage faults on the app's own SQLite connections.

Root ignores file modes and mounting a tiny file system needs privileges CI does not have, so
the faults are set on the connections the app writes with, through SQLite's own limits. Each
produces the genuine result code of the real fault, raised by SQLite from the same statement
step of the same driver the app always uses:

- ``PRAGMA max_page_count`` caps the database file's size: a write that needs one more page
  fails with SQLITE_FULL, "database or disk is full", exactly as on a full disk (SQLite checks
  the cap where it would meet the end of the disk: when it allocates the page).
- ``PRAGMA query_only`` makes the connection refuse every write with SQLITE_READONLY, "attempt to
  write a readonly database", the code and message of a database file SQLite could only open
  read-only (read-only file system, no write permission).

The pragmas are applied at every checkout of a write connection from the pool, so a fault is set
and lifted between two requests without a restart, as a disk fills up and is freed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import event

from domain.store.db import Database

NO_LIMIT = 2**31  # SQLite clamps it to its own largest page count


@dataclass
class SqliteStorage:
    """What the app's write connections may do; change it between requests."""

    max_page_count: int = NO_LIMIT  # 1: the database's current size (SQLite never goes below)
    read_only: bool = False

    def attach(self, db: Database) -> None:
        event.listen(db.write_engine.sync_engine, "checkout", self._on_checkout)

    def _on_checkout(self, dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA max_page_count = {int(self.max_page_count)}")
        cursor.execute(f"PRAGMA query_only = {int(self.read_only)}")
        cursor.close()

    def fill(self) -> None:
        self.max_page_count = 1

    def read_only_storage(self) -> None:
        self.read_only = True

    def free(self) -> None:
        self.max_page_count = NO_LIMIT
        self.read_only = False
