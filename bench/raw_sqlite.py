"""The baselines' own SQLite: one aiosqlite connection, set up as DeskFleet's file is."""

from __future__ import annotations

import aiosqlite


async def connect(path: str, create_table: str) -> aiosqlite.Connection:
    """Open ``path`` in WAL mode with ``synchronous=NORMAL`` (as DeskFleet's SQLite) and run
    ``create_table``."""
    db = await aiosqlite.connect(path)
    await db.execute("PRAGMA journal_mode=WAL")
    await db.execute("PRAGMA synchronous=NORMAL")
    await db.execute(create_table)
    return db
