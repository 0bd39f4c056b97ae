"""The environment's queue lock (R30): dispatching and queue reordering of one environment are
serialised across server instances."""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.store.db import Database

_LOCK_NAMESPACE = 0x4446  # "DF"


async def lock_environment_queue(session: AsyncSession, db: Database, environment_id: str) -> None:
    """Serialise dispatching and queue reordering of one environment across server instances
    (R30). SQLite writers are already serialised by BEGIN IMMEDIATE."""
    if db.is_sqlite:
        return
    await session.exec(
        select(func.pg_advisory_xact_lock(_LOCK_NAMESPACE, func.hashtext(environment_id)))
    )
