"""Everything a machine list shows (R8, R19), read for a whole page in one transaction.

Reading owners, groups, access, counts and maintenance per field through separate loaders costs a
transaction each; a page of machines is the screen users open most, so it gets one.

The page's rows are read as plain columns, not ORM entities: for a hundred machines with their
owners and groups, the ORM's identity map, instance states and instrumented attributes cost about
as much as everything else DeskFleet does for the page. A listed machine, owner or group is an
immutable record with the attribute names of its model, so the rules (status, maintenance,
access) and the loaders of the fields a list can also ask for read it as they read the model.
Records are named tuples: made from a slice of the row in C, where a frozen dataclass sets each
field through ``object.__setattr__`` (2.5 times slower for a page).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.context import DomainContext
from domain.fleet.access import machine_access_levels
from domain.fleet.machines import MachineFilter, RunCounts, page_query
from domain.fleet.maintenance import MachineMaintenance, groups_needing_key_action, maintenance_of
from domain.identity.authorization import require_user
from domain.kernel.permissions import AccessLevel
from domain.kernel.principals import Principal, UserPrincipal
from domain.store.models import FlowRun, Machine, MachineGroup, RunStatus, User
from domain.store.models.tables import table_of
from domain.store.pagination import Page, encode_cursor
from domain.store.row_reads import RowReader


class ListedMachine(NamedTuple):
    """A machine's columns as a list reads them (never its key hash)."""

    id: str
    environment_id: str
    name: str
    description: str
    owner_id: str
    group_id: str | None
    runtime_version: str
    os_edition: str
    maintenance: bool
    unattended_bots: int
    last_heartbeat_at: datetime | None
    key_expires_at: datetime
    key_rotation_pending: bool
    created_at: datetime


class ListedUser(NamedTuple):
    id: str
    display_name: str
    email: str
    active: bool
    is_admin: bool
    attended_licence: bool
    created_at: datetime
    deactivated_at: datetime | None


class ListedGroup(NamedTuple):
    id: str
    environment_id: str
    name: str
    description: str
    owner_id: str
    maintenance: bool
    created_at: datetime


# What the rules and loaders accept for a machine or a group: a model, or a page's record of it.
MachineRecord = Machine | ListedMachine
GroupRecord = MachineGroup | ListedGroup


class MachineView(NamedTuple):
    machine: ListedMachine
    owner: ListedUser | None
    group: ListedGroup | None
    access: AccessLevel | None
    counts: RunCounts
    maintenance: MachineMaintenance


_MACHINES = table_of(Machine)
_FLOW_RUNS = table_of(FlowRun)
# Aliased: the filters' own subqueries over groups (R18's maintenance) must not correlate to them.
_OWNER = table_of(User).alias("listed_owner")
_GROUP = table_of(MachineGroup).alias("listed_group")


def _columns(record: type[Any], table: Any) -> list[ColumnElement[Any]]:
    return [table.c[name] for name in record._fields]


# Counted in the page's own statement: R8's running and queued counts of each machine listed.
_RUNNING = (
    select(func.count())
    .select_from(_FLOW_RUNS)
    .where(
        _FLOW_RUNS.c.machine_id == _MACHINES.c.id,
        _FLOW_RUNS.c.status.in_((RunStatus.DISPATCHED, RunStatus.RUNNING)),
    )
    .correlate(_MACHINES)
    .scalar_subquery()
)
_QUEUED = (
    select(func.count())
    .select_from(_FLOW_RUNS)
    .where(
        _FLOW_RUNS.c.target_machine_id == _MACHINES.c.id,
        _FLOW_RUNS.c.status == RunStatus.QUEUED,
    )
    .correlate(_MACHINES)
    .scalar_subquery()
)
_M = len(ListedMachine._fields)
_U = _M + len(ListedUser._fields)
_G = _U + len(ListedGroup._fields)
_LISTED = (
    select(
        *_columns(ListedMachine, _MACHINES),
        *_columns(ListedUser, _OWNER),
        *_columns(ListedGroup, _GROUP),
        _RUNNING,
        _QUEUED,
    )
    .select_from(_MACHINES)
    .outerjoin(_OWNER, _OWNER.c.id == _MACHINES.c.owner_id)
    .outerjoin(_GROUP, _GROUP.c.id == _MACHINES.c.group_id)
)

_LISTED_ROWS = RowReader(_LISTED)

Row = tuple[ListedMachine, ListedUser | None, ListedGroup | None, RunCounts]


def _row(values: Any) -> Row:
    """One record each, from the page statement's flat row; an absent owner or group reads as
    a row of NULLs (the outer joins), its id among them."""
    owner = ListedUser._make(values[_M:_U]) if values[_M] is not None else None
    group = ListedGroup._make(values[_U:_G]) if values[_U] is not None else None
    return (
        ListedMachine._make(values[:_M]),
        owner,
        group,
        RunCounts(running=values[_G], queued=values[_G + 1]),
    )


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

    The page, its owners, groups, run counts and the total come in one statement; with the
    groups needing a key action and the caller's access, three whatever the page size.
    """
    user = require_user(principal)
    async with ctx.db.read() as session:
        query = await page_query(session, ctx, user, flt, first=first, after=after)
        connection = await session.connection()
        found, total = await _LISTED_ROWS.counted(
            connection, query.rows, query.count(), params=query.params, kept_as=query.shape
        )
        rows = [_row(values) for values in found]
        page = Page.of(rows, query.first, total, lambda row: encode_cursor(row[0].name, row[0].id))
        views = await _views(session, ctx, user, page.items)
    return Page(
        items=views,
        cursors=page.cursors,
        has_next_page=page.has_next_page,
        total_count=page.total_count,
    )
