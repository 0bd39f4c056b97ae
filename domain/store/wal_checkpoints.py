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

One database's checkpoints run one at a time, on threads of this module's own pool rather than an
event loop's: a checkpoint outlives the loop that asked for it (one ``asyncio.run`` after
another), and a second one started beside it would find SQLite's checkpoint lock taken and copy
nothing. One asked for while another is under way runs as soon as that one ends.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from concurrent.futures import Future, ThreadPoolExecutor

log = logging.getLogger("deskfleet.db")

COMMITS_PER_CHECKPOINT = 100  # ~1,000 pages of short writes: SQLite's own default interval
BACKSTOP_PAGES = 10_000  # ~40 MB: the writer itself checkpoints past this (SQLite's hook)
WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024  # what a restarted WAL is truncated to
CONNECTION_PRAGMAS = (
    f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}",
    f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT_BYTES}",
)

# Idle threads cost nothing; at interpreter exit the pool lets a checkpoint under way finish.
_WORKERS = ThreadPoolExecutor(thread_name_prefix="deskfleet-wal-checkpoint")


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
        self._lock = threading.Lock()  # the event loop's thread and the checkpoint's
        self._running: Future[None] | None = None
        self._again = False

    def committed(self) -> None:
        """A write transaction on the database committed."""
        self._commits += 1
        if self._commits < COMMITS_PER_CHECKPOINT:
            return
        self._commits = 0
        with self._lock:
            if self._running is not None:
                self._again = True  # what was committed meanwhile is left to one more
                return
            try:
                self._running = _WORKERS.submit(self._checkpoints)
            except RuntimeError:
                # The interpreter is shutting down: the last connection to close checkpoints
                # the database anyway.
                log.debug("background WAL checkpoint of %s skipped at shutdown", self.path)

    def _checkpoints(self) -> None:
        """On a worker thread: checkpoints until no more were asked for meanwhile."""
        more = True
        try:
            while more:
                try:
                    checkpoint(self.path)
                except sqlite3.Error:
                    # The writers' backstop checkpoints in its place; nothing is lost meanwhile.
                    log.warning("background WAL checkpoint of %s failed", self.path, exc_info=True)
                with self._lock:
                    more, self._again = self._again, False
                    if not more:
                        self._running = None
        finally:
            if more:  # an unexpected error: the next checkpoint asked for starts afresh
                with self._lock:
                    self._running = None

    async def settled(self) -> None:
        """Until the checkpoints under way (if any) have ended: before the database closes."""
        with self._lock:
            running = self._running
        if running is not None:
            # Shielded: a cancelled wait must not cancel a checkpoint still queued in the pool.
            await asyncio.shield(asyncio.wrap_future(running))
