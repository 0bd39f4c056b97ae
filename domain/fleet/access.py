"""Who may do what to which machine or group: R12-R13 applied from the tables in permissions.py."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.identity.authorization import admin_environment_ids, roles_in, visible_environment
from domain.kernel.errors import ErrorCode, NotFound, PermissionDenied
from domain.kernel.permissions import RESOURCE_ACCESS, AccessLevel, Action, Role, allows, privileges
from domain.kernel.principals import UserPrincipal
from domain.store.models import Environment, Machine, MachineGroup, Share

if TYPE_CHECKING:
    from domain.fleet.machine_views import GroupRecord, MachineRecord

ACTION_WORDS: dict[Action, str] = {
    Action.REGISTER: "register machines in",
    Action.RUN: "run desktop flows on",
    Action.SHARE: "share",
    Action.ADD_TO_GROUP: "add to a group",
    Action.EDIT: "edit",
    Action.DELETE: "delete",
}


def _level(owner_id: str, user_id: str, shared: AccessLevel | None) -> AccessLevel | None:
    return AccessLevel.OWNER if owner_id == user_id else shared


async def machine_access_levels(
    session: AsyncSession, user: UserPrincipal, machines: Iterable[MachineRecord]
) -> dict[str, AccessLevel | None]:
    """The caller's access type on each machine, in a constant number of statements."""
    machines = list(machines)
    if not machines:
        return {}
    admin_of = await admin_environment_ids(session, user)
    levels: dict[str, AccessLevel | None] = {}
    others = []
    for machine in machines:
        if admin_of is None or machine.environment_id in admin_of:
            levels[machine.id] = AccessLevel.ADMIN  # whatever is shared with them
        else:
            others.append(machine)
    if others:
        shares = await session.exec(
            select(Share.machine_id, col(Share.access)).where(
                Share.user_id == user.user_id, col(Share.machine_id).in_([m.id for m in others])
            )
        )
        shared = {machine_id: AccessLevel(access) for machine_id, access in shares.all()}
        for machine in others:
            levels[machine.id] = _level(machine.owner_id, user.user_id, shared.get(machine.id))
    return levels


async def group_access_levels(
    session: AsyncSession, user: UserPrincipal, groups: Iterable[GroupRecord]
) -> dict[str, AccessLevel | None]:
    groups = list(groups)
    if not groups:
        return {}
    admin_of = await admin_environment_ids(session, user)
    shares = await session.exec(
        select(Share.group_id, col(Share.access)).where(
            Share.user_id == user.user_id, col(Share.group_id).in_([g.id for g in groups])
        )
    )
    shared = {group_id: AccessLevel(access) for group_id, access in shares.all()}
    levels: dict[str, AccessLevel | None] = {}
    for group in groups:
        if admin_of is None or group.environment_id in admin_of:
            levels[group.id] = AccessLevel.ADMIN
        else:
            levels[group.id] = _level(group.owner_id, user.user_id, shared.get(group.id))
    return levels


def check_access(
    roles: frozenset[Role],
    access: AccessLevel | None,
    action: Action,
    what: str,
    label: str,
    ident: str,
) -> None:
    """R12/R13 on facts already read: ``roles`` in the resource's environment, ``access`` on it."""
    if access is None:
        # No access at all: the resource is not even visible to the caller.
        raise NotFound(what, ident)
    if allows(roles, access, action):
        return
    if action not in RESOURCE_ACCESS[access]:
        reason = f"your access to it is {access.value}"
    else:
        held = ", ".join(sorted(r.value for r in roles)) or "no security role"
        reason = f"your security roles in its environment ({held}) do not grant it"
    raise PermissionDenied(
        ErrorCode.PERMISSION_DENIED,
        f"you cannot {ACTION_WORDS[action]} {what} {label!r}: {reason}",
    )


def access_level(
    owner_id: str, user_id: str, shared: AccessLevel | None, *, environment_admin: bool
) -> AccessLevel | None:
    """The caller's access type on one machine or group (R12)."""
    if environment_admin:
        return AccessLevel.ADMIN
    return _level(owner_id, user_id, shared)


async def _authorize(
    session: AsyncSession,
    user: UserPrincipal,
    environment_id: str,
    access: AccessLevel | None,
    action: Action,
    what: str,
    label: str,
    ident: str,
) -> None:
    if access is None:
        raise NotFound(what, ident)
    roles = await roles_in(session, user, environment_id)
    check_access(roles, access, action, what, label, ident)


async def authorize_machine(
    session: AsyncSession, user: UserPrincipal, machine_id: str, action: Action
) -> Machine:
    machine = await session.get(Machine, machine_id)
    if machine is None:
        raise NotFound("machine", machine_id)
    levels = await machine_access_levels(session, user, [machine])
    await _authorize(
        session,
        user,
        machine.environment_id,
        levels[machine.id],
        action,
        "machine",
        machine.name,
        machine_id,
    )
    return machine


async def authorize_group(
    session: AsyncSession, user: UserPrincipal, group_id: str, action: Action
) -> MachineGroup:
    group = await session.get(MachineGroup, group_id)
    if group is None:
        raise NotFound("machine group", group_id)
    levels = await group_access_levels(session, user, [group])
    await _authorize(
        session,
        user,
        group.environment_id,
        levels[group.id],
        action,
        "machine group",
        group.name,
        group_id,
    )
    return group


async def authorize_registration(
    session: AsyncSession, user: UserPrincipal, environment_id: str
) -> Environment:
    """R4/R13: registering needs the privilege in that environment (makers lose it if restricted)."""
    environment, roles = await visible_environment(session, user, environment_id)
    if Action.REGISTER in privileges(
        roles, restrict_registration=environment.restrict_registration
    ):
        return environment
    if Role.ENVIRONMENT_MAKER in roles and environment.restrict_registration:
        reason = "registration is restricted to Machine Owners in this environment"
    else:
        reason = "registering needs the Environment Maker or Machine Owner role"
    raise PermissionDenied(
        ErrorCode.PERMISSION_DENIED,
        f"you cannot register machines in environment {environment.name!r}: {reason}",
    )
