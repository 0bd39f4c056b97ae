"""Who the caller is and which roles they hold in an environment (R5, R13): the checks every
context makes before its own resource rules."""

from __future__ import annotations

from typing import cast

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.kernel.errors import AuthenticationFailed, ErrorCode, NotFound, PermissionDenied
from domain.kernel.permissions import Role
from domain.kernel.principals import MachinePrincipal, Principal, UserPrincipal
from domain.store.models import Environment, RoleAssignment


def require_user(principal: Principal) -> UserPrincipal:
    """Machine keys authenticate the machine runtime only (R5), never a person's operations."""
    if isinstance(principal, MachinePrincipal):
        raise AuthenticationFailed(
            ErrorCode.WRONG_CREDENTIAL_KIND,
            "a machine key was used where a user token is needed",
        )
    return principal


def require_machine(principal: Principal) -> MachinePrincipal:
    if not isinstance(principal, MachinePrincipal):
        raise AuthenticationFailed(
            ErrorCode.WRONG_CREDENTIAL_KIND,
            "a user token was used where the machine runtime's machine key is needed",
        )
    return principal


async def roles_in(
    session: AsyncSession, user: UserPrincipal, environment_id: str
) -> frozenset[Role]:
    if user.is_admin:
        return frozenset({Role.ENVIRONMENT_ADMIN})
    rows = await session.exec(
        select(col(RoleAssignment.role)).where(
            RoleAssignment.user_id == user.user_id,
            RoleAssignment.environment_id == environment_id,
        )
    )
    return cast("frozenset[Role]", frozenset(rows.all()))  # the column holds Role values


async def admin_environment_ids(session: AsyncSession, user: UserPrincipal) -> set[str] | None:
    """Environments the user administers; ``None`` means every environment."""
    if user.is_admin:
        return None
    rows = await session.exec(
        select(RoleAssignment.environment_id).where(
            RoleAssignment.user_id == user.user_id,
            RoleAssignment.role == Role.ENVIRONMENT_ADMIN,
        )
    )
    return set(rows.all())


async def visible_environment_ids(session: AsyncSession, user: UserPrincipal) -> set[str] | None:
    """Environments where the user holds any role; ``None`` means every environment."""
    if user.is_admin:
        return None
    rows = await session.exec(
        select(RoleAssignment.environment_id).where(RoleAssignment.user_id == user.user_id)
    )
    return set(rows.all())


async def get_environment(session: AsyncSession, environment_id: str) -> Environment:
    environment = await session.get(Environment, environment_id)
    if environment is None:
        raise NotFound("environment", environment_id)
    return environment


async def visible_environment(
    session: AsyncSession, user: UserPrincipal, environment_id: str
) -> tuple[Environment, frozenset[Role]]:
    """The environment and the caller's roles in it. An environment is seen by whoever holds a
    role in it (installation admins: every one); to anyone else it does not exist (R38)."""
    environment = await session.get(Environment, environment_id)
    roles = frozenset() if environment is None else await roles_in(session, user, environment_id)
    if environment is None or not roles:
        raise NotFound("environment", environment_id)
    return environment, roles


async def require_environment_admin(
    session: AsyncSession, user: UserPrincipal, environment_id: str
) -> Environment:
    """An environment admin's environment; one the caller cannot see is not found (R38)."""
    environment, roles = await visible_environment(session, user, environment_id)
    if Role.ENVIRONMENT_ADMIN not in roles:
        raise PermissionDenied(
            ErrorCode.NOT_ADMIN, f"only admins of environment {environment.name!r} can do this"
        )
    return environment
