"""Security roles per environment (R13), assigned and revoked by environment admins."""

from __future__ import annotations

from sqlmodel import col, select

from domain.audit import journal
from domain.context import DomainContext
from domain.identity.authorization import (
    admin_environment_ids,
    require_environment_admin,
    require_user,
)
from domain.kernel import validation
from domain.kernel.errors import Conflict, ErrorCode, NotFound, PermissionDenied
from domain.kernel.permissions import Role
from domain.kernel.principals import Principal
from domain.store.models import RoleAssignment, User


async def assign_role(
    ctx: DomainContext, principal: Principal, *, environment_id: str, user_id: str, role: Role
) -> RoleAssignment:
    caller = require_user(principal)
    environment_id = validation.ident(environment_id, field="environmentId")
    user_id = validation.ident(user_id, field="userId")
    async with ctx.db.write() as session:
        await require_environment_admin(session, caller, environment_id)
        if await session.get(User, user_id) is None:
            raise NotFound("user", user_id)
        existing = (
            await session.exec(
                select(RoleAssignment).where(
                    RoleAssignment.environment_id == environment_id,
                    RoleAssignment.user_id == user_id,
                    RoleAssignment.role == role,
                )
            )
        ).first()
        if existing is not None:
            raise Conflict(ErrorCode.ALREADY_IN_STATE, f"the user already holds {role.value}")
        assignment = RoleAssignment(
            environment_id=environment_id, user_id=user_id, role=role, created_at=ctx.clock.now()
        )
        session.add(assignment)
        journal.on_role(ctx, session, caller, assignment, granted=True)
    return assignment


async def revoke_role(
    ctx: DomainContext, principal: Principal, *, environment_id: str, user_id: str, role: Role
) -> RoleAssignment:
    caller = require_user(principal)
    environment_id = validation.ident(environment_id, field="environmentId")
    user_id = validation.ident(user_id, field="userId")
    async with ctx.db.write() as session:
        await require_environment_admin(session, caller, environment_id)
        existing = (
            await session.exec(
                select(RoleAssignment).where(
                    RoleAssignment.environment_id == environment_id,
                    RoleAssignment.user_id == user_id,
                    RoleAssignment.role == role,
                )
            )
        ).first()
        if existing is None:
            raise NotFound("role assignment", f"{role.value} of user {user_id}")
        await session.delete(existing)
        journal.on_role(ctx, session, caller, existing, granted=False)
    return existing


async def roles_of(ctx: DomainContext, user_id: str) -> list[RoleAssignment]:
    async with ctx.db.read() as session:
        rows = await session.exec(select(RoleAssignment).where(RoleAssignment.user_id == user_id))
        return list(rows.all())


async def environment_roles(
    ctx: DomainContext, principal: Principal, environment_id: str
) -> list[tuple[User, Role]]:
    """Who holds which role in an environment, by name: for its admins (R13); an environment the
    caller cannot see is not found (R38)."""
    caller = require_user(principal)
    environment_id = validation.ident(environment_id, field="environmentId")
    async with ctx.db.read() as session:
        await require_environment_admin(session, caller, environment_id)
        rows = await session.exec(
            select(User, RoleAssignment.role)
            .join(RoleAssignment, col(RoleAssignment.user_id) == col(User.id))
            .where(RoleAssignment.environment_id == environment_id)
            .order_by(col(User.display_name), col(User.id), col(RoleAssignment.role))
        )
        return [(user, Role(role)) for user, role in rows.all()]


async def person_by_email(ctx: DomainContext, principal: Principal, email: str) -> User | None:
    """The active user with this e-mail, for an environment admin about to grant a first role
    (R13). The organisation's people are not behind the environment boundary (an admin may add
    any of them, docs/security.md), but they are found one exact address at a time, never
    listed; a deactivated user is not offered."""
    caller = require_user(principal)
    email = validation.email(email)
    async with ctx.db.read() as session:
        if await admin_environment_ids(session, caller) == set():
            raise PermissionDenied(
                ErrorCode.NOT_ADMIN, "only environment admins look people up by e-mail"
            )
        found = await session.exec(select(User).where(User.email == email, col(User.active)))
        return found.first()
