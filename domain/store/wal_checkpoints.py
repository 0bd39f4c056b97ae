"""SQLite's WAL checkpoints, run beside the writers instead of inside their commits.

Left to itself, SQLite checkpoints in the commit that takes the WAL past 1,000 pages: that
writer copies the pages into the database file and syncs both files, 4-8 ms on this project's
hosts, once every ~100 short writes (a trigger, a heartbeat). Here the writers' own checkpoint is
only a backstop (:data:`BACKSTOP_PAGES`); after every :data:`COMMITS_PER_CHECKPOINT` commits a
passive checkpoint runs on a worker thread with a connection of its own. A passive checkpoint
takes no lock a writer or reader waits for, so writes go on while it copies and syncs.

Under a steady stream of writes the background checkpoint never quite catches up (frames
committed while it runs are left for the next one), so the WAL is not restarted by it; the
backstop, reached far less often, finishes the little that is left and lets the next writer
start the WAL again from its beginning. ``journal_size_limit`` then truncates the file.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3

log = logging.getLogger("deskfleet.db")

COMMITS_PER_CHECKPOINT = 100  # ~1,000 pages of short writes: SQLite's own default interval
BACKSTOP_PAGES = 10_000  # ~40 MB: the writer itself checkpoints past this (SQLite's hook)
WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024  # what a restarted WAL is truncated to
CONNECTION_PRAGMAS = (
    f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}",
    f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT_BYTES}",
)


def checkpoint(path: str) -> tuple[int, int, int]:
    """On a worker thread: one passive checkpoint of the database at ``path``; SQLite's
    (busy, frames in the WAL, frames checkpointed)."""
    # A database named by a URI (``sqlite:///file:...?uri=true``) is opened as one: whether a
    # bare ``file:`` name is read as a URI depends on how SQLite was built.
    uri = path.startswith("file:")
    connection = sqlite3.connect(path, timeout=0, isolation_level=None, uri=uri)
    try:
        row = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    finally:
        connection.close()
    busy, frames, done = row
    return int(busy), int(frames), int(done)


class WalCheckpoints:
    """Counts one database's commits in this process and checkpoints it in the background."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._commits = 0
        self._running: asyncio.Task[None] | None = None

    def committed(self) -> None:
        """A write transaction on the database committed."""
        self._commits += 1
        if self._commits >= COMMITS_PER_CHECKPOINT and self._under_way() is None:
            self._commits = 0
            self._running = asyncio.get_running_loop().create_task(
                self._checkpoint(), name="deskfleet-wal-checkpoint"
            )

    def _under_way(self) -> asyncio.Task[None] | None:
        """The checkpoint running on this event loop, if any. One started on a loop that has
        since ended (a database used by one ``asyncio.run`` after another) is no longer awaited."""
        running = self._running
        if running is None or running.done():
            return None
        return running if running.get_loop() is asyncio.get_running_loop() else None

    async def _checkpoint(self) -> None:
        try:
            await asyncio.to_thread(checkpoint, self.path)
        except sqlite3.Error:
            # The writers' backstop checkpoints in its place; nothing is lost meanwhile.
            log.warning("background WAL checkpoint of %s failed", self.path, exc_info=True)
        except RuntimeError:
            # The loop is shutting down its worker threads: the last connection to close
            # checkpoints the database anyway.
            log.debug("background WAL checkpoint of %s skipped at shutdown", self.path)
        finally:
            self._running = None

    async def settled(self) -> None:
        """Until the checkpoint under way (if any) has ended: before the database closes."""
        running = self._under_way()
        if running is not None:
            await asyncio.shield(running)
