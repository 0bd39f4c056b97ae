"""Everything a machine list shows (R8, R19), read for a whole page in one transaction.

Reading owners, groups, access, counts and maintenance per field through separate loaders costs a
transaction each; a page of machines is the screen users open most, so it gets one.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func
from sqlalchemy.orm import aliased
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.access import machine_access_levels, require_user
from domain.context import DomainContext
from domain.machines import MachineFilter, RunCounts, page_query
from domain.maintenance import MachineMaintenance, groups_needing_key_action, maintenance_of
from domain.models import FlowRun, Machine, MachineGroup, RunStatus, User
from domain.pagination import Page, encode_cursor
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


# Counted in the page's own statement: R8's running and queued counts of each machine listed.
_RUNNING = (
    select(func.count())
    .select_from(FlowRun)
    .where(
        col(FlowRun.machine_id) == col(Machine.id),
        col(FlowRun.status).in_((RunStatus.DISPATCHED, RunStatus.RUNNING)),
    )
    .correlate(Machine)
    .scalar_subquery()
)
_QUEUED = (
    select(func.count())
    .select_from(FlowRun)
    .where(col(FlowRun.target_machine_id) == col(Machine.id), FlowRun.status == RunStatus.QUEUED)
    .correlate(Machine)
    .scalar_subquery()
)
# Aliased: the filters' own subqueries over groups (R18's maintenance) must not correlate to them.
_OWNER = aliased(User)
_GROUP = aliased(MachineGroup)
_LISTED = (
    select(Machine, _OWNER, _GROUP, _RUNNING, _QUEUED)
    .outerjoin(_OWNER, col(_OWNER.id) == col(Machine.owner_id))
    .outerjoin(_GROUP, col(_GROUP.id) == col(Machine.group_id))
)

Row = tuple[Machine, User | None, MachineGroup | None, RunCounts]


async def _views(
    session: AsyncSession, ctx: DomainContext, user: UserPrincipal | None, rows: list[Row]
) -> list[MachineView]:
    now = ctx.clock.now()
    machines = [row[0] for row in rows]
    group_ids = sorted({m.group_id for m in machines if m.group_id})
    needing = await groups_needing_key_action(session, group_ids, now)
    access = await machine_access_levels(session, user, machines) if user else {}
    return [
        MachineView(
            machine=machine,
            owner=owner,
            group=group,
            access=access.get(machine.id),
            counts=counts,
            maintenance=maintenance_of(machine, group, needing, counts, now),
        )
        for machine, owner, group, counts in rows
    ]


async def list_machine_views(
    ctx: DomainContext,
    principal: Principal,
    flt: MachineFilter,
    *,
    first: int,
    after: str | None = None,
) -> Page[MachineView]:
    """R8: a page of the machines the caller may see, with everything the list shows.

    The page, its owners, groups and run counts come in one statement; with the total, the
    groups needing a key action and the caller's access, four whatever the page size.
    """
    user = require_user(principal)
    async with ctx.db.read() as session:
        query = await page_query(session, ctx, user, flt, first=first, after=after)
        total = await query.total(session)
        found = (await session.exec(query.rows(_LISTED))).all()
        rows: list[Row] = [
            (m, owner, group, RunCounts(running=running, queued=queued))
            for m, owner, group, running, queued in found
        ]
        page = Page.of(rows, query.first, total, lambda row: encode_cursor(row[0].name, row[0].id))
        views = await _views(session, ctx, user, page.items)
    return Page(
        items=views,
        cursors=page.cursors,
        has_next_page=page.has_next_page,
        total_count=page.total_count,
    )
