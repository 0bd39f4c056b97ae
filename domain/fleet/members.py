"""Cutting a user off from one environment (R38): its admins take away every security role the
user holds there and every share of its machines and groups with them, in one transaction.

Deactivation (R15) acts on the whole instance, so it needs the admins of every environment where
the user holds a role (domain/identity/identity.py). This is the cut-off that no other
environment's admin can block: granting the user a role elsewhere never takes it away.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import col, select

from domain.audit import journal
from domain.bus.events import GroupChanged, MachineChanged, QueueChanged, emit
from domain.context import DomainContext
from domain.identity.authorization import (
    require_environment_admin,
    require_user,
    visible_environment,
)
from domain.kernel import validation
from domain.kernel.errors import ErrorCode, NotFound, PermissionDenied
from domain.kernel.permissions import Action, Role, privileges
from domain.kernel.principals import Principal
from domain.store.models import Machine, MachineGroup, RoleAssignment, Share, User


@dataclass(frozen=True)
class Removal:
    user: User
    environment_id: str
    revoked_roles: list[Role]
    removed_shares: int


async def remove_user_from_environment(
    ctx: DomainContext, principal: Principal, *, environment_id: str, user_id: str
) -> Removal:
    """The environment's admins (installation admins too) remove a user from it. A user who
    holds no role and no share there is answered as an unknown id (R38); nobody removes
    themself (an environment could be left without its admin)."""
    caller = require_user(principal)
    environment_id = validation.ident(environment_id, field="environmentId")
    user_id = validation.ident(user_id, field="userId")
    async with ctx.db.write() as session:
        await require_environment_admin(session, caller, environment_id)
        if user_id == caller.user_id:
            raise PermissionDenied(
                ErrorCode.PERMISSION_DENIED, "you cannot remove yourself from an environment"
            )
        user = await session.get(User, user_id)
        assignments = list(
            (
                await session.exec(
                    select(RoleAssignment).where(
                        RoleAssignment.user_id == user_id,
                        RoleAssignment.environment_id == environment_id,
                    )
                )
            ).all()
        )
        machine_shares = list(
            (
                await session.exec(
                    select(Share, Machine)
                    .join(Machine, col(Machine.id) == col(Share.machine_id))
                    .where(Share.user_id == user_id, Machine.environment_id == environment_id)
                )
            ).all()
        )
        group_shares = list(
            (
                await session.exec(
                    select(Share, MachineGroup)
                    .join(MachineGroup, col(MachineGroup.id) == col(Share.group_id))
                    .where(Share.user_id == user_id, MachineGroup.environment_id == environment_id)
                )
            ).all()
        )
        if user is None or not (assignments or machine_shares or group_shares):
            raise NotFound("user", user_id)
        for assignment in assignments:
            await session.delete(assignment)
            journal.on_role(ctx, session, caller, assignment, granted=False)
        resources: list[tuple[Share, Machine | MachineGroup]] = [*machine_shares, *group_shares]
        for share, resource in resources:
            await session.delete(share)
            journal.on_resource(
                ctx, session, caller, "UNSHARED", resource, journal.share_detail(user_id)
            )
        # Open subscriptions re-read what these name: the machines and groups whose access
        # lists changed, and, when an admin leaves, every machine and group they saw.
        machine_ids = {m.id for _, m in machine_shares}
        group_ids = {g.id for _, g in group_shares}
        if any(a.role is Role.ENVIRONMENT_ADMIN for a in assignments):
            machine_ids |= set(
                (
                    await session.exec(
                        select(Machine.id).where(Machine.environment_id == environment_id)
                    )
                ).all()
            )
            group_ids |= set(
                (
                    await session.exec(
                        select(MachineGroup.id).where(MachineGroup.environment_id == environment_id)
                    )
                ).all()
            )
        for machine_id in sorted(machine_ids):
            emit(ctx.events, session, MachineChanged(machine_id, environment_id))
        for group_id in sorted(group_ids):
            emit(ctx.events, session, GroupChanged(group_id, environment_id))
        emit(ctx.events, session, QueueChanged(environment_id))
    return Removal(
        user=user,
        environment_id=environment_id,
        revoked_roles=sorted((a.role for a in assignments), key=lambda r: r.value),
        removed_shares=len(machine_shares) + len(group_shares),
    )


async def environment_members(
    ctx: DomainContext, principal: Principal, environment_id: str
) -> list[User]:
    """The active users who hold a role in an environment, by name: whom a machine or group there
    may be shared with (the dashboard's user picker). Listed to those who may share there (R13);
    an environment the caller cannot see is not found (R38)."""
    caller = require_user(principal)
    environment_id = validation.ident(environment_id, field="environmentId")
    async with ctx.db.read() as session:
        environment, roles = await visible_environment(session, caller, environment_id)
        granted = privileges(roles, restrict_registration=environment.restrict_registration)
        if Action.SHARE not in granted:
            raise PermissionDenied(
                ErrorCode.PERMISSION_DENIED,
                f"only who may share in environment {environment.name!r} can list its members",
            )
        rows = await session.exec(
            select(User)
            .where(
                col(User.id).in_(
                    select(RoleAssignment.user_id).where(
                        RoleAssignment.environment_id == environment_id
                    )
                ),
                col(User.active).is_(True),
            )
            .order_by(col(User.display_name), col(User.id))
        )
        return list(rows.all())
