"""Maintenance mode (R16-R19) and how it meets key actions (R10).

Effective maintenance is computed, never copied: a machine is in maintenance when its own flag or
its group's flag is on (R18), and never while a key action is required (R10). The same rule exists
twice, as Python for what is shown and as SQL for filters and the dispatcher, side by side here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import BindParameter, ColumnElement, and_, bindparam, exists, not_, or_
from sqlalchemy.orm import aliased
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.audit import journal
from domain.bus.events import GroupChanged, MachineChanged, emit
from domain.context import DomainContext
from domain.fleet.access import authorize_group, authorize_machine
from domain.fleet.machines import KeyFacts, RunCounts, key_action_required, run_counts_in
from domain.identity.authorization import require_user
from domain.kernel import validation
from domain.kernel.errors import ErrorCode, RuleViolation
from domain.kernel.permissions import Action
from domain.kernel.principals import Principal
from domain.store.models import Machine, MachineGroup
from domain.webhooks import outbox

if TYPE_CHECKING:
    from domain.fleet.machine_views import GroupRecord, MachineRecord


class MaintenanceLock(str, Enum):
    """Why a machine's or group's maintenance toggle is refused right now."""

    KEY_ACTION_REQUIRED = "KEY_ACTION_REQUIRED"  # R10
    GROUP_IN_MAINTENANCE = "GROUP_IN_MAINTENANCE"  # R18 (machines only)


@dataclass(frozen=True)
class MachineMaintenance:
    maintenance: bool  # effective, what the dispatcher obeys (R16-R18)
    inherited: bool  # on because its group is (R18)
    lock: MaintenanceLock | None
    drained: bool  # nothing running (R19)


@dataclass(frozen=True)
class GroupMaintenance:
    maintenance: bool
    key_action_required: bool  # one of its machines needs a key action (R10)
    lock: MaintenanceLock | None


# --- the rule, in Python -------------------------------------------------------------------


class MachineMaintenanceFacts(KeyFacts, Protocol):
    """What R10/R16-R18 read of a machine: a model, a page's record, or a row of those columns."""

    @property
    def maintenance(self) -> bool: ...


class GroupMaintenanceFacts(Protocol):
    """What R10/R18 read of a group (see :class:`MachineMaintenanceFacts`)."""

    @property
    def maintenance(self) -> bool: ...


def group_in_maintenance(group: GroupMaintenanceFacts, group_key_action: bool) -> bool:
    """R10: a group that needs a key action is shown (and treated) out of maintenance."""
    return group.maintenance and not group_key_action


def machine_in_maintenance(
    machine: MachineMaintenanceFacts,
    group: GroupMaintenanceFacts | None,
    group_key_action: bool,
    now: datetime,
) -> bool:
    if key_action_required(machine, now):
        return False
    return machine.maintenance or (
        group is not None and group_in_maintenance(group, group_key_action)
    )


def machine_lock(
    machine: MachineRecord, group: GroupRecord | None, group_key_action: bool, now: datetime
) -> MaintenanceLock | None:
    if key_action_required(machine, now):
        return MaintenanceLock.KEY_ACTION_REQUIRED
    if group is not None and group_in_maintenance(group, group_key_action):
        return MaintenanceLock.GROUP_IN_MAINTENANCE
    return None


# --- the same rule, in SQL -----------------------------------------------------------------


def key_action_clause(
    machine: type[Machine], now: datetime | BindParameter[datetime]
) -> ColumnElement[bool]:
    return or_(col(machine.key_rotation_pending), col(machine.key_expires_at) <= now)


def in_maintenance_clause(now: datetime | BindParameter[datetime]) -> ColumnElement[bool]:
    """``Machine`` rows in effective maintenance (filters, and the dispatcher's "active" test)."""
    member = aliased(Machine)
    group_on = exists(
        select(col(MachineGroup.id)).where(
            col(MachineGroup.id) == col(Machine.group_id),
            col(MachineGroup.maintenance),
            not_(
                exists(
                    select(member.id).where(
                        member.group_id == col(MachineGroup.id),
                        key_action_clause(member, now),
                    )
                )
            ),
        )
    )
    return and_(not_(key_action_clause(Machine, now)), or_(col(Machine.maintenance), group_on))


# --- batched reads for what is shown ---------------------------------------------------------


# Built once, the ids and the instant bound per call: a page of machines asks, and building and
# keying the statement each time cost twice what SQLite spends on it (~0.5 ms a page).
_NEEDING_KEY_ACTION = (
    select(col(Machine.group_id))
    .where(
        col(Machine.group_id).in_(bindparam("group_ids", expanding=True)),
        key_action_clause(Machine, bindparam("now")),
    )
    .distinct()
)


async def groups_needing_key_action(
    session: AsyncSession, group_ids: Iterable[str], now: datetime
) -> set[str]:
    """R10: which of ``group_ids`` hold a machine that needs a key action."""
    ids = sorted(set(group_ids))
    if not ids:
        return set()
    connection = await session.connection()
    rows = await connection.execute(_NEEDING_KEY_ACTION, {"group_ids": ids, "now": now})
    return {gid for gid in rows.scalars().all() if gid is not None}


async def machine_maintenance(
    ctx: DomainContext, machines: list[Machine]
) -> list[MachineMaintenance]:
    """R19 for a batch of machines: three statements whatever the batch size."""
    async with ctx.db.read() as session:
        return await machine_maintenance_in(session, machines, ctx.clock.now())


async def machine_maintenance_in(
    session: AsyncSession, machines: list[Machine], now: datetime
) -> list[MachineMaintenance]:
    group_ids = sorted({m.group_id for m in machines if m.group_id is not None})
    groups: dict[str, MachineGroup] = {}
    if group_ids:
        rows = await session.exec(select(MachineGroup).where(col(MachineGroup.id).in_(group_ids)))
        groups = {g.id: g for g in rows.all()}
    needing = await groups_needing_key_action(session, group_ids, now)
    counts = await run_counts_in(session, [m.id for m in machines])
    return [
        maintenance_of(machine, groups.get(machine.group_id or ""), needing, count, now)
        for machine, count in zip(machines, counts, strict=True)
    ]


def maintenance_of(
    machine: MachineRecord,
    group: GroupRecord | None,
    groups_needing_key_action: set[str],
    counts: RunCounts,
    now: datetime,
) -> MachineMaintenance:
    key_action = group is not None and group.id in groups_needing_key_action
    on = machine_in_maintenance(machine, group, key_action, now)
    return MachineMaintenance(
        maintenance=on,
        inherited=on
        and not machine.maintenance
        and group is not None
        and group_in_maintenance(group, key_action),
        lock=machine_lock(machine, group, key_action, now),
        drained=counts.running == 0,
    )


# --- the toggles --------------------------------------------------------------------------


async def set_machine_maintenance(
    ctx: DomainContext, principal: Principal, machine_id: str, enabled: bool
) -> Machine:
    """R16: turn a machine's maintenance on or off. Running runs are never cancelled by it."""
    user = require_user(principal)
    machine_id = validation.ident(machine_id, field="id")
    now = ctx.clock.now()
    async with ctx.db.write() as session:
        machine = await authorize_machine(session, user, machine_id, Action.EDIT)
        if key_action_required(machine, now):
            raise RuleViolation(
                ErrorCode.KEY_ACTION_REQUIRED,
                f"machine {machine.name!r} needs a key action (rotation pending or key "
                "expired): its maintenance toggle is unavailable until the runtime takes a new key",
                rule="R10",
            )
        if machine.group_id is not None:
            group = await session.get(MachineGroup, machine.group_id)
            needing = await groups_needing_key_action(session, [machine.group_id], now)
            if group is not None and group_in_maintenance(group, group.id in needing):
                raise RuleViolation(
                    ErrorCode.GROUP_IN_MAINTENANCE,
                    f"machine {machine.name!r} is in maintenance because its group "
                    f"{group.name!r} is; its own toggle is locked until the group leaves "
                    "maintenance",
                    rule="R18",
                )
        if machine.maintenance != enabled:
            machine.maintenance = enabled
            session.add(machine)
            journal.on_resource(
                ctx, session, user, "MAINTENANCE", machine, "on" if enabled else "off"
            )
            emit(ctx.events, session, MachineChanged(machine.id, machine.environment_id))
            _maintenance_changed(session, machine.environment_id, machine.id, enabled, now)
    return machine


async def set_group_maintenance(
    ctx: DomainContext, principal: Principal, group_id: str, enabled: bool
) -> MachineGroup:
    """R18: a group in maintenance puts all its machines in maintenance and locks their toggle."""
    user = require_user(principal)
    group_id = validation.ident(group_id, field="id")
    now = ctx.clock.now()
    async with ctx.db.write() as session:
        group = await authorize_group(session, user, group_id, Action.EDIT)
        if await groups_needing_key_action(session, [group.id], now):
            raise RuleViolation(
                ErrorCode.KEY_ACTION_REQUIRED,
                f"a machine of group {group.name!r} needs a key action: the group's maintenance "
                "toggle is unavailable until it is done",
                rule="R10",
            )
        if group.maintenance != enabled:
            group.maintenance = enabled
            session.add(group)
            journal.on_resource(
                ctx, session, user, "MAINTENANCE", group, "on" if enabled else "off"
            )
            emit(ctx.events, session, GroupChanged(group.id, group.environment_id))
            members = await session.exec(select(Machine.id).where(Machine.group_id == group.id))
            for member_id in members.all():
                emit(ctx.events, session, MachineChanged(member_id, group.environment_id))
                _maintenance_changed(
                    session, group.environment_id, member_id, enabled, now, group_id=group.id
                )
    return group


def _maintenance_changed(
    session: AsyncSession,
    environment_id: str,
    machine_id: str,
    maintenance: bool,
    now: datetime,
    *,
    group_id: str | None = None,
) -> None:
    """R43: a machine.maintenance.changed event, recorded with the change (``groupId``: its
    group's maintenance changed it, R18)."""
    data = {"machineId": machine_id, "maintenance": maintenance, "groupId": group_id}
    outbox.record(
        session,
        outbox.Happened(environment_id, outbox.MACHINE_MAINTENANCE_CHANGED, data, now),
    )
