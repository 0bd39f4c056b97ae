"""Machine groups (R11): create, edit, delete, add and remove machines, list; their state (R18-R19).

Who may: creating a group needs the privilege to edit machine / group details (R13) in its
environment; editing, deleting and putting it in maintenance need EDIT / DELETE on the group (R12);
adding machine M to group G needs ADD_TO_GROUP on M and EDIT on G (and, when M moves out of another
group H, EDIT on H too); taking M out of its group needs EDIT on the group or ADD_TO_GROUP on M.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, and_, false, func, or_, true, tuple_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.audit import journal
from domain.bus.events import GroupChanged, MachineChanged, emit
from domain.context import DomainContext
from domain.fleet.access import authorize_group, authorize_machine
from domain.fleet.departures import remove_connections_for, withdraw_group_assignments
from domain.fleet.machines import check_environment_accepts_machines, run_counts, status_of
from domain.fleet.maintenance import (
    group_in_maintenance,
    groups_needing_key_action,
    key_action_clause,
)
from domain.identity.authorization import (
    admin_environment_ids,
    require_user,
    visible_environment,
)
from domain.kernel import validation
from domain.kernel.errors import Conflict, ErrorCode, NotFound, PermissionDenied, RuleViolation
from domain.kernel.permissions import Action, privileges
from domain.kernel.principals import Principal, UserPrincipal
from domain.kernel.text_search import contains_pattern
from domain.store import idempotency
from domain.store.models import FlowRun, Machine, MachineGroup, MachineStatus, RunStatus, Share
from domain.store.pagination import Page, decode_cursor, encode_cursor, page_size

if TYPE_CHECKING:
    from domain.fleet.machine_views import GroupRecord


@dataclass(frozen=True)
class GroupFilter:
    environment_id: str | None = None
    maintenance: bool | None = None
    text: str | None = None


@dataclass(frozen=True)
class GroupState:
    """What a group shows next to its name (R11, R18, R19)."""

    machines: list[Machine] = field(default_factory=list)
    machine_count: int = 0
    connected_count: int = 0
    running_count: int = 0
    queued_count: int = 0
    maintenance: bool = False  # effective (R10, R18)
    key_action_required: bool = False  # one of its machines needs one (R10)
    drained: bool = True  # nothing running on any of its machines (R19)


async def groups_by_ids(ctx: DomainContext, ids: list[str]) -> list[MachineGroup | None]:
    async with ctx.db.read() as session:
        rows = await session.exec(select(MachineGroup).where(col(MachineGroup.id).in_(ids)))
        found = {g.id: g for g in rows.all()}
    return [found.get(i) for i in ids]


def _name_taken_error(name: str) -> Conflict:
    return Conflict(
        ErrorCode.NAME_TAKEN, f"a machine group named {name!r} already exists in this environment"
    )


async def _name_taken(
    session: AsyncSession, environment_id: str, name: str, *, other_than: str | None = None
) -> bool:
    stmt = select(MachineGroup.id).where(
        MachineGroup.environment_id == environment_id, MachineGroup.name == name
    )
    if other_than is not None:
        stmt = stmt.where(MachineGroup.id != other_than)
    return (await session.exec(stmt)).first() is not None


async def create_group(
    ctx: DomainContext,
    principal: Principal,
    *,
    environment_id: str,
    name: str,
    description: str = "",
    idempotency_key: str | None = None,
) -> MachineGroup:
    """R11. R46: with ``idempotency_key``, the same key from the same caller within a day
    answers the group created first and creates nothing."""
    user = require_user(principal)
    environment_id = validation.ident(environment_id, field="environmentId")
    name = validation.name(name)
    description = validation.text(description)
    now = ctx.clock.now()
    request = idempotency.request(
        user.user_id,
        "createMachineGroup",
        idempotency_key,
        {"environmentId": environment_id, "name": name, "description": description},
    )

    async def create() -> MachineGroup:
        async with ctx.db.write() as session:
            environment, roles = await visible_environment(session, user, environment_id)
            if Action.EDIT not in privileges(roles, restrict_registration=False):
                held = ", ".join(sorted(r.value for r in roles))
                raise PermissionDenied(
                    ErrorCode.PERMISSION_DENIED,
                    f"you cannot create machine groups in environment {environment.name!r}: "
                    f"your security roles there ({held}) do not grant editing machine groups",
                )
            check_environment_accepts_machines(environment)
            if await _name_taken(session, environment_id, name):
                raise _name_taken_error(name)
            group = MachineGroup(
                environment_id=environment_id,
                name=name,
                description=description,
                owner_id=user.user_id,
                created_at=now,
            )
            await idempotency.remember(session, request, group.id, now)
            session.add(group)
            await session.flush()
            journal.on_group(ctx, session, user, journal.AuditAction.GROUP_CREATED, group)
            emit(ctx.events, session, GroupChanged(group.id, group.environment_id))
        return group

    async def replay(earlier: idempotency.Earlier) -> MachineGroup:
        async with ctx.db.read() as session:
            return await authorize_group(session, user, earlier.result_id, Action.RUN)

    return await idempotency.once(ctx.db, request, now, create=create, replay=replay)


async def update_group(
    ctx: DomainContext,
    principal: Principal,
    group_id: str,
    *,
    name: str | None = None,
    description: str | None = None,
) -> MachineGroup:
    user = require_user(principal)
    group_id = validation.ident(group_id, field="id")
    if name is not None:
        name = validation.name(name)
    if description is not None:
        description = validation.text(description)
    async with ctx.db.write() as session:
        group = await authorize_group(session, user, group_id, Action.EDIT)
        if name is not None and name != group.name:
            if await _name_taken(session, group.environment_id, name, other_than=group.id):
                raise _name_taken_error(name)
            group.name = name
        if description is not None:
            group.description = description
        session.add(group)
        journal.on_group(ctx, session, user, journal.AuditAction.GROUP_UPDATED, group)
        emit(ctx.events, session, GroupChanged(group.id, group.environment_id))
    return group


async def delete_group(ctx: DomainContext, principal: Principal, group_id: str) -> MachineGroup:
    """Its machines become standalone (keeping their own maintenance flag); its shares go; its
    connections are removed, their runs not yet started ending CANCELLED (running ones finish)."""
    user = require_user(principal)
    group_id = validation.ident(group_id, field="id")
    async with ctx.db.write() as session:
        group = await authorize_group(session, user, group_id, Action.DELETE)
        await remove_connections_for(
            session,
            group_id=group.id,
            reason=f"machine group {group.name!r} was deleted",
            now=ctx.clock.now(),
            events=ctx.events,
        )
        members = list(
            (await session.exec(select(Machine).where(Machine.group_id == group.id))).all()
        )
        for machine in members:
            machine.group_id = None
            session.add(machine)
            emit(ctx.events, session, MachineChanged(machine.id, machine.environment_id))
        await session.flush()
        await session.delete(group)
        journal.on_group(ctx, session, user, journal.AuditAction.GROUP_DELETED, group)
        emit(ctx.events, session, GroupChanged(group.id, group.environment_id))
    return group


async def add_machine(
    ctx: DomainContext, principal: Principal, group_id: str, machine_id: str
) -> tuple[Machine, MachineGroup]:
    """R11: at most ``settings.group_machine_limit`` machines, all of the group's environment.

    A machine is in at most one group: adding one that is in another group moves it.
    """
    user = require_user(principal)
    group_id = validation.ident(group_id, field="groupId")
    machine_id = validation.ident(machine_id, field="machineId")
    async with ctx.db.write() as session:
        machine = await authorize_machine(session, user, machine_id, Action.ADD_TO_GROUP)
        group = await authorize_group(session, user, group_id, Action.EDIT)
        if machine.group_id == group.id:
            raise Conflict(
                ErrorCode.ALREADY_IN_STATE,
                f"machine {machine.name!r} is already in group {group.name!r}",
            )
        if machine.environment_id != group.environment_id:
            raise RuleViolation(
                ErrorCode.CROSS_ENVIRONMENT,
                f"machine {machine.name!r} and group {group.name!r} are in different "
                "environments: a group holds machines of its own environment only",
                rule="R11",
            )
        previous = machine.group_id
        if previous is not None:
            await authorize_group(session, user, previous, Action.EDIT)
        await _lock_group(session, group.id)
        members = (
            await session.exec(
                select(func.count()).select_from(Machine).where(Machine.group_id == group.id)
            )
        ).one()
        limit = ctx.settings.group_machine_limit
        if members >= limit:
            raise RuleViolation(
                ErrorCode.GROUP_FULL,
                f"group {group.name!r} already holds {members} machines; a group holds at most "
                f"{limit}",
                rule="R11",
            )
        if previous is not None:  # R6/R28: the old group's assignments go back to its queue
            await withdraw_group_assignments(
                ctx,
                session,
                machine_id=machine.id,
                group_id=previous,
                environment_id=machine.environment_id,
            )
        machine.group_id = group.id
        session.add(machine)
        journal.on_group(
            ctx, session, user, journal.AuditAction.GROUP_MACHINE_ADDED, group, machine.id
        )
        emit(ctx.events, session, MachineChanged(machine.id, machine.environment_id))
        emit(ctx.events, session, GroupChanged(group.id, group.environment_id))
        if previous is not None:
            emit(ctx.events, session, GroupChanged(previous, group.environment_id))
    return machine, group


async def remove_machine(
    ctx: DomainContext, principal: Principal, machine_id: str
) -> tuple[Machine, MachineGroup | None]:
    """The machine becomes standalone; its own maintenance flag applies again."""
    user = require_user(principal)
    machine_id = validation.ident(machine_id, field="machineId")
    async with ctx.db.write() as session:
        machine = await session.get(Machine, machine_id)
        if machine is None:
            raise NotFound("machine", machine_id)
        group_id = machine.group_id
        if group_id is None:
            machine = await authorize_machine(session, user, machine_id, Action.ADD_TO_GROUP)
            raise Conflict(ErrorCode.ALREADY_IN_STATE, f"machine {machine.name!r} is in no group")
        try:
            # The group's editors manage its membership...
            await authorize_group(session, user, group_id, Action.EDIT)
        except (NotFound, PermissionDenied) as group_refusal:
            # ... and whoever may place the machine in a group may also take it out.
            try:
                machine = await authorize_machine(session, user, machine_id, Action.ADD_TO_GROUP)
            except NotFound:
                if isinstance(group_refusal, NotFound):
                    # R38: neither the machine nor its group is visible: the machine id given
                    # is answered as unknown, never naming the group.
                    raise NotFound("machine", machine_id) from None
                raise group_refusal from None
        # R6/R28: the group's runs dispatched to it and not yet started go back to its queue.
        await withdraw_group_assignments(
            ctx,
            session,
            machine_id=machine.id,
            group_id=group_id,
            environment_id=machine.environment_id,
        )
        machine.group_id = None
        session.add(machine)
        emit(ctx.events, session, MachineChanged(machine.id, machine.environment_id))
        emit(ctx.events, session, GroupChanged(group_id, machine.environment_id))
        group = await session.get(MachineGroup, group_id)
        if group is not None:
            journal.on_group(
                ctx, session, user, journal.AuditAction.GROUP_MACHINE_REMOVED, group, machine.id
            )
    return machine, group


async def _lock_group(session: AsyncSession, group_id: str) -> None:
    """Serialise adds to one group so concurrent adds cannot pass the limit together (R11).

    PostgreSQL takes a row lock; SQLite's write transactions are already serialised.
    """
    await session.exec(select(MachineGroup.id).where(MachineGroup.id == group_id).with_for_update())


async def get_group(ctx: DomainContext, principal: Principal, group_id: str) -> MachineGroup:
    user = require_user(principal)
    group_id = validation.ident(group_id, field="id")
    async with ctx.db.read() as session:
        return await authorize_group(session, user, group_id, Action.RUN)


def _visible(user: UserPrincipal, admin_of: set[str] | None) -> ColumnElement[bool]:
    if admin_of is None:
        return true()
    shared = select(Share.group_id).where(
        Share.user_id == user.user_id, col(Share.group_id).is_not(None)
    )
    return or_(
        col(MachineGroup.environment_id).in_(admin_of) if admin_of else false(),
        col(MachineGroup.owner_id) == user.user_id,
        col(MachineGroup.id).in_(shared),
    )


def _filtered(flt: GroupFilter, now: datetime) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    if flt.environment_id is not None:
        clauses.append(col(MachineGroup.environment_id) == flt.environment_id)
    if flt.maintenance is not None:
        member = select(Machine.id).where(
            Machine.group_id == MachineGroup.id, key_action_clause(Machine, now)
        )
        on = and_(col(MachineGroup.maintenance), ~member.exists())
        clauses.append(on if flt.maintenance else ~on)
    if flt.text:
        needle = contains_pattern(flt.text)
        clauses.append(
            or_(
                col(MachineGroup.name).ilike(needle, escape="\\"),
                col(MachineGroup.description).ilike(needle, escape="\\"),
            )
        )
    return clauses


async def list_groups(
    ctx: DomainContext,
    principal: Principal,
    flt: GroupFilter,
    *,
    first: int,
    after: str | None = None,
) -> Page[MachineGroup]:
    """The groups the caller may see (owned, shared with them, or in environments they admin)."""
    user = require_user(principal)
    first = page_size(first, ctx.settings.max_page_size)
    if flt.text is not None:
        flt = replace(flt, text=validation.text(flt.text, field="text"))
    if flt.environment_id is not None:
        validation.ident(flt.environment_id, field="environmentId")
    key = decode_cursor(after, 2) if after else None
    async with ctx.db.read() as session:
        admin_of = await admin_environment_ids(session, user)
        where = and_(_visible(user, admin_of), *_filtered(flt, ctx.clock.now()))
        total = (
            await session.exec(select(func.count()).select_from(MachineGroup).where(where))
        ).one()
        stmt = select(MachineGroup).where(where)
        if key is not None:
            stmt = stmt.where(tuple_(col(MachineGroup.name), col(MachineGroup.id)) > tuple_(*key))
        stmt = stmt.order_by(col(MachineGroup.name), col(MachineGroup.id)).limit(first + 1)
        rows = list((await session.exec(stmt)).all())
    items = rows[:first]
    return Page(
        items=items,
        cursors=[encode_cursor(g.name, g.id) for g in items],
        has_next_page=len(rows) > first,
        total_count=total,
    )


async def group_states(ctx: DomainContext, groups: Sequence[GroupRecord]) -> list[GroupState]:
    """Members, counts and maintenance of a batch of groups: three statements plus the run counts."""
    if not groups:
        return []
    now = ctx.clock.now()
    timeout = ctx.settings.heartbeat_timeout_seconds
    async with ctx.db.read() as session:
        rows = await session.exec(
            select(Machine)
            .where(col(Machine.group_id).in_([g.id for g in groups]))
            .order_by(col(Machine.name), col(Machine.id))
        )
        members = list(rows.all())
        needing = await groups_needing_key_action(session, [g.id for g in groups], now)
        # R25: the group's own queue, the one groupQueue lists (runs sent to the group).
        queued_rows = await session.exec(
            select(FlowRun.target_group_id, func.count())
            .where(
                col(FlowRun.target_group_id).in_([g.id for g in groups]),
                FlowRun.status == RunStatus.QUEUED,
            )
            .group_by(col(FlowRun.target_group_id))
        )
        group_queued = {group_id: n for group_id, n in queued_rows.all()}
    counts = dict(
        zip([m.id for m in members], await run_counts(ctx, [m.id for m in members]), strict=True)
    )
    states = []
    for group in groups:
        machines = [m for m in members if m.group_id == group.id]
        running = sum(counts[m.id].running for m in machines)
        states.append(
            GroupState(
                machines=machines,
                machine_count=len(machines),
                connected_count=sum(
                    1 for m in machines if status_of(m, now, timeout) is MachineStatus.CONNECTED
                ),
                running_count=running,
                queued_count=group_queued.get(group.id, 0),
                maintenance=group_in_maintenance(group, group.id in needing),
                key_action_required=group.id in needing,
                drained=running == 0,
            )
        )
    return states
