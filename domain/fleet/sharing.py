"""Sharing machines and groups (R12, R14, R15), access lists, and what a caller may do.

- Sharing needs SHARE on the resource (R12 access x R13 privilege, admins excepted). A user with
  ``USER`` access shares only if they hold ``MACHINE_USER_CAN_SHARE`` (the role exists for this,
  see ``permissions.ROLE_RESOURCE_ACCESS``), and then at ``USER`` level only.
- R14: nobody grants more than they hold (owner and admins: ``CO_OWNER`` or ``USER``; co-owners:
  ``CO_OWNER`` or ``USER``; users: ``USER``). Changing or removing someone's share follows the same
  ceiling: a ``USER`` cannot demote or remove a ``CO_OWNER``.
- A group share is access to the group (flows run on the group), not to each of its machines.
- R15: shares to deactivated users stay listed, marked, until someone with share rights removes
  them; nobody can share anything with a deactivated user.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.audit import journal
from domain.bus.events import GroupChanged, MachineChanged, emit
from domain.context import DomainContext
from domain.fleet.access import (
    authorize_group,
    authorize_machine,
    group_access_levels,
    machine_access_levels,
)
from domain.identity.authorization import require_user
from domain.kernel import validation
from domain.kernel.errors import (
    Conflict,
    ErrorCode,
    NotFound,
    PermissionDenied,
    RuleViolation,
    ValidationFailed,
)
from domain.kernel.permissions import (
    SHAREABLE_LEVELS,
    AccessLevel,
    Action,
    Role,
    allows,
    grantable_levels,
)
from domain.kernel.principals import Principal, UserPrincipal
from domain.store.models import Machine, MachineGroup, RoleAssignment, Share, User

Resource = Machine | MachineGroup
_R = TypeVar("_R", bound=Resource)


@dataclass(frozen=True)
class ResourceKind(Generic[_R]):
    what: str
    field: str
    model: type[Any]
    share_column: Any
    authorize: Callable[[AsyncSession, UserPrincipal, str, Action], Awaitable[_R]]
    levels: Callable[[AsyncSession, UserPrincipal, Any], Awaitable[dict[str, AccessLevel | None]]]
    actions: tuple[Action, ...]  # the R12 actions that apply to this kind of resource

    def changed(self, resource: _R) -> MachineChanged | GroupChanged:
        if isinstance(resource, Machine):
            return MachineChanged(resource.id, resource.environment_id)
        return GroupChanged(resource.id, resource.environment_id)


MACHINE = ResourceKind(
    what="machine",
    field="machineId",
    model=Machine,
    share_column=Share.machine_id,
    authorize=authorize_machine,
    levels=machine_access_levels,
    actions=(Action.RUN, Action.SHARE, Action.ADD_TO_GROUP, Action.EDIT, Action.DELETE),
)
GROUP = ResourceKind(
    what="machine group",
    field="groupId",
    model=MachineGroup,
    share_column=Share.group_id,
    authorize=authorize_group,
    levels=group_access_levels,
    # Adding a machine to a group is an action on the machine; filling a group is EDIT on it.
    actions=(Action.RUN, Action.SHARE, Action.EDIT, Action.DELETE),
)


@dataclass(frozen=True)
class AccessEntry:
    """One line of a resource's access list (R15)."""

    user: User
    access: AccessLevel
    deactivated: bool
    granted_by_id: str | None
    granted_at: datetime


def _check_ceiling(held: AccessLevel | None, level: AccessLevel, verb: str) -> None:
    """R14: nobody grants, changes or removes access above the level they hold."""
    if held is None or level not in grantable_levels(held):
        raise PermissionDenied(
            ErrorCode.SHARE_ESCALATION,
            f"you hold {held.value if held else 'no'} access, so you cannot {verb} "
            f"{level.value} access: sharing never grants more than the sharer holds",
        )


async def _existing(
    session: AsyncSession, kind: ResourceKind[Any], resource_id: str, user_id: str
) -> Share | None:
    return (
        await session.exec(
            select(Share).where(kind.share_column == resource_id, Share.user_id == user_id)
        )
    ).first()


async def share(
    ctx: DomainContext,
    principal: Principal,
    kind: ResourceKind[_R],
    resource_id: str,
    *,
    user_id: str,
    access: AccessLevel,
) -> _R:
    """Grant ``user_id`` CO_OWNER or USER on a machine or group, or change their level."""
    caller = require_user(principal)
    resource_id = validation.ident(resource_id, field=kind.field)
    user_id = validation.ident(user_id, field="userId")
    if access not in SHAREABLE_LEVELS:
        raise ValidationFailed(
            ErrorCode.INVALID_VALUE,
            f"access must be one of {', '.join(a.value for a in SHAREABLE_LEVELS)}",
            field="access",
        )
    if user_id == caller.user_id:
        raise ValidationFailed(
            ErrorCode.INVALID_VALUE, "you cannot share with yourself", field="userId"
        )
    async with ctx.db.write() as session:
        resource = await kind.authorize(session, caller, resource_id, Action.SHARE)
        held = (await kind.levels(session, caller, [resource]))[resource.id]
        _check_ceiling(held, access, "grant")
        target = await session.get(User, user_id)
        if target is None:
            raise NotFound("user", user_id)
        if not target.active:
            raise RuleViolation(
                ErrorCode.USER_DEACTIVATED,
                f"{target.display_name} is deactivated: nothing can be shared with them",
                rule="R15",
            )
        if target.id == resource.owner_id:
            raise Conflict(
                ErrorCode.ALREADY_IN_STATE,
                f"{target.display_name} owns {kind.what} {resource.name!r}",
            )
        existing = await _existing(session, kind, resource.id, target.id)
        if existing is None:
            session.add(
                Share(
                    user_id=target.id,
                    access=access,
                    granted_by_id=caller.user_id,
                    created_at=ctx.clock.now(),
                    **{kind.share_column.key: resource.id},
                )
            )
        elif existing.access != access:
            _check_ceiling(held, existing.access, "change")
            existing.access = access
            existing.granted_by_id = caller.user_id
            session.add(existing)
        journal.on_resource(
            ctx, session, caller, "SHARED", resource, journal.share_detail(target.id, access)
        )
        emit(ctx.events, session, kind.changed(resource))
    return resource


async def unshare(
    ctx: DomainContext,
    principal: Principal,
    kind: ResourceKind[_R],
    resource_id: str,
    *,
    user_id: str,
) -> _R:
    """Take a user's access away (R15: this is how deactivated users' shares are cleared)."""
    caller = require_user(principal)
    resource_id = validation.ident(resource_id, field=kind.field)
    user_id = validation.ident(user_id, field="userId")
    async with ctx.db.write() as session:
        resource = await kind.authorize(session, caller, resource_id, Action.SHARE)
        existing = await _existing(session, kind, resource.id, user_id)
        if existing is None:
            raise NotFound(f"share of {kind.what} {resource.name!r} with user", user_id)
        held = (await kind.levels(session, caller, [resource]))[resource.id]
        _check_ceiling(held, existing.access, "remove")
        await session.delete(existing)
        journal.on_resource(
            ctx, session, caller, "UNSHARED", resource, journal.share_detail(user_id)
        )
        emit(ctx.events, session, kind.changed(resource))
    return resource


# --- batched reads ----------------------------------------------------------------------------


async def access_types(
    ctx: DomainContext,
    user: UserPrincipal | None,
    kind: ResourceKind[Any],
    resources: Sequence[Any],
) -> list[AccessLevel | None]:
    if user is None:
        return [None for _ in resources]
    async with ctx.db.read() as session:
        levels = await kind.levels(session, user, resources)
    return [levels.get(r.id) for r in resources]


async def access_lists(
    ctx: DomainContext,
    user: UserPrincipal | None,
    kind: ResourceKind[Any],
    resources: Sequence[Any],
) -> list[list[AccessEntry] | None]:
    """Owner first, then shares by name; ``None`` where the caller has no access (R15)."""
    if user is None or not resources:
        return [None for _ in resources]
    async with ctx.db.read() as session:
        levels = await kind.levels(session, user, resources)
        visible = [r for r in resources if levels.get(r.id) is not None]
        rows = await session.exec(
            select(Share, User)
            .join(User, col(User.id) == col(Share.user_id))
            .where(col(kind.share_column).in_([r.id for r in visible]))
            .order_by(col(User.display_name), col(User.id))
        )
        shares = list(rows.all())
        owner_ids = sorted({r.owner_id for r in visible})
        owners = {
            u.id: u for u in (await session.exec(select(User).where(col(User.id).in_(owner_ids))))
        }
    lists: list[list[AccessEntry] | None] = []
    for resource in resources:
        if levels.get(resource.id) is None:
            lists.append(None)
            continue
        owner = owners[resource.owner_id]
        entries = [
            AccessEntry(
                user=owner,
                access=AccessLevel.OWNER,
                deactivated=not owner.active,
                granted_by_id=None,
                granted_at=resource.created_at,
            )
        ]
        entries += [
            AccessEntry(
                user=u,
                access=s.access,
                deactivated=not u.active,
                granted_by_id=s.granted_by_id,
                granted_at=s.created_at,
            )
            for s, u in shares
            if getattr(s, kind.share_column.key) == resource.id
        ]
        lists.append(entries)
    return lists


async def deactivated_shares(
    ctx: DomainContext, kind: ResourceKind[Any], resources: Sequence[Any]
) -> list[bool]:
    """R15: whether each resource is shared with a deactivated user."""
    if not resources:
        return []
    async with ctx.db.read() as session:
        rows = await session.exec(
            select(kind.share_column)
            .join(User, col(User.id) == col(Share.user_id))
            .where(
                col(kind.share_column).in_([r.id for r in resources]), col(User.active).is_(False)
            )
            .distinct()
        )
        flagged = set(rows.all())
    return [r.id in flagged for r in resources]


async def deactivated_shares_for(
    ctx: DomainContext,
    _user: UserPrincipal | None,
    kind: ResourceKind[Any],
    resources: Sequence[Any],
) -> list[bool]:
    return await deactivated_shares(ctx, kind, resources)


async def _roles_by_environment(
    session: AsyncSession, user: UserPrincipal, environment_ids: set[str]
) -> dict[str, frozenset[Role]]:
    if user.is_admin:
        return {e: frozenset({Role.ENVIRONMENT_ADMIN}) for e in environment_ids}
    rows = await session.exec(
        select(RoleAssignment.environment_id, col(RoleAssignment.role)).where(
            RoleAssignment.user_id == user.user_id,
            col(RoleAssignment.environment_id).in_(sorted(environment_ids)),
        )
    )
    held: dict[str, set[Role]] = {e: set() for e in environment_ids}
    for environment_id, role in rows.all():
        held[environment_id].add(role)
    return {e: frozenset(r) for e, r in held.items()}


async def allowed_actions(
    ctx: DomainContext,
    user: UserPrincipal | None,
    kind: ResourceKind[Any],
    resources: Sequence[Any],
) -> list[list[Action]]:
    """What the caller may do to each resource: R12 x R13 from permissions.py, as enforced."""
    if user is None or not resources:
        return [[] for _ in resources]
    async with ctx.db.read() as session:
        levels = await kind.levels(session, user, resources)
        roles = await _roles_by_environment(session, user, {r.environment_id for r in resources})
    return [
        [a for a in kind.actions if allows(roles[r.environment_id], levels.get(r.id), a)]
        if levels.get(r.id) is not None
        else []
        for r in resources
    ]
