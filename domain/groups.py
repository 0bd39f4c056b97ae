"""Machine groups (R11, R18)."""

from __future__ import annotations

from sqlmodel import col, select

from domain.context import DomainContext
from domain.models import MachineGroup


async def groups_by_ids(ctx: DomainContext, ids: list[str]) -> list[MachineGroup | None]:
    async with ctx.db.read() as session:
        rows = await session.exec(select(MachineGroup).where(col(MachineGroup.id).in_(ids)))
        found = {g.id: g for g in rows.all()}
    return [found.get(i) for i in ids]
