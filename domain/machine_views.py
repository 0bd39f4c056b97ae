"""Everything a machine list shows (R8, R19), read for a whole page in one transaction.

Reading owners, groups, access, counts and maintenance per field through separate loaders costs a
transaction each; a page of machines is the screen users open most, so it gets one.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.access import machine_access_levels, require_user
from domain.context import DomainContext
from domain.machines import MachineFilter, RunCounts, page_in, run_counts_in
from domain.maintenance import MachineMaintenance, groups_needing_key_action, maintenance_of
from domain.models import Machine, MachineGroup, User
from domain.pagination import Page
from domain.permissions import AccessLevel
from domain.principals import Principal, UserPrincipal


@dataclass(frozen=True)
class MachineView:
    machine: Machine
    owner: User | None
    group: MachineGroup | None
    access: AccessLevel | None
    counts: RunCounts
    maintenance: MachineMaintenance


async def views_in(
    session: AsyncSession, ctx: DomainContext, user: UserPrincipal | None, machines: list[Machine]
) -> list[MachineView]:
    """Five statements whatever the number of machines."""
    if not machines:
        return []
    now = ctx.clock.now()
    owner_ids = sorted({m.owner_id for m in machines})
    group_ids = sorted({m.group_id for m in machines if m.group_id})
    owners = {
        u.id: u for u in (await session.exec(select(User).where(col(User.id).in_(owner_ids)))).all()
    }
    groups: dict[str, MachineGroup] = {}
    if group_ids:
        rows = await session.exec(select(MachineGroup).where(col(MachineGroup.id).in_(group_ids)))
        groups = {g.id: g for g in rows.all()}
    needing = await groups_needing_key_action(session, group_ids, now)
    counts = await run_counts_in(session, [m.id for m in machines])
    access = await machine_access_levels(session, user, machines) if user else {}
    views = []
    for machine, count in zip(machines, counts, strict=True):
        group = groups.get(machine.group_id) if machine.group_id else None
        views.append(
            MachineView(
                machine=machine,
                owner=owners.get(machine.owner_id),
                group=group,
                access=access.get(machine.id),
                counts=count,
                maintenance=maintenance_of(machine, group, needing, count, now),
            )
        )
    return views


async def list_machine_views(
    ctx: DomainContext,
    principal: Principal,
    flt: MachineFilter,
    *,
    first: int,
    after: str | None = None,
) -> Page[MachineView]:
    """R8: a page of the machines the caller may see, with everything the list shows."""
    user = require_user(principal)
    async with ctx.db.read() as session:
        page = await page_in(session, ctx, user, flt, first=first, after=after)
        views = await views_in(session, ctx, user, page.items)
    return Page(
        items=views,
        cursors=page.cursors,
        has_next_page=page.has_next_page,
        total_count=page.total_count,
    )
