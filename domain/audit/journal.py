"""Writing the audit trail: every change of who may do what to which machine is recorded by the
use case in the SAME transaction as the change, so a rolled-back change leaves no entry and a
committed one always has its entry. No checks here (the use case made them); reading the trail is
:mod:`domain.audit.trail`."""

from __future__ import annotations

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.context import DomainContext
from domain.kernel.principals import Principal, UserPrincipal
from domain.store.models import (
    AuditAction,
    AuditEntry,
    AuditTargetKind,
    Connection,
    Machine,
    MachineGroup,
    RoleAssignment,
    SignInGroupRole,
    User,
)

__all__ = ["AuditAction", "AuditTargetKind", "record"]


def record(
    ctx: DomainContext,
    session: AsyncSession,
    actor: Principal | None,
    action: AuditAction,
    target_kind: AuditTargetKind,
    target_id: str,
    *,
    environment_id: str | None,
    target_name: str | None = None,
    detail: str | None = None,
) -> AuditEntry:
    """Adds one entry to ``session``: it commits or rolls back with the change it describes."""
    entry = AuditEntry(
        at=ctx.clock.now(),
        environment_id=environment_id,
        actor_id=actor.user_id if isinstance(actor, UserPrincipal) else None,
        action=action,
        target_kind=target_kind,
        target_id=target_id,
        target_name=target_name[:200] if target_name else None,
        detail=detail[:500] if detail else None,
    )
    session.add(entry)
    return entry


# One-line helpers for the use cases: the target's environment and name come from the row.


def on_machine(
    ctx: DomainContext,
    session: AsyncSession,
    actor: Principal,
    action: AuditAction,
    machine: Machine,
    detail: str | None = None,
    *,
    environment_id: str | None = None,
) -> None:
    record(
        ctx,
        session,
        actor,
        action,
        AuditTargetKind.MACHINE,
        machine.id,
        environment_id=environment_id or machine.environment_id,
        target_name=machine.name,
        detail=detail,
    )


def on_group(
    ctx: DomainContext,
    session: AsyncSession,
    actor: Principal,
    action: AuditAction,
    group: MachineGroup,
    detail: str | None = None,
) -> None:
    record(
        ctx,
        session,
        actor,
        action,
        AuditTargetKind.GROUP,
        group.id,
        environment_id=group.environment_id,
        target_name=group.name,
        detail=detail,
    )


def on_connection(
    ctx: DomainContext,
    session: AsyncSession,
    actor: Principal,
    action: AuditAction,
    connection: Connection,
    detail: str | None = None,
) -> None:
    record(
        ctx,
        session,
        actor,
        action,
        AuditTargetKind.CONNECTION,
        connection.id,
        environment_id=connection.environment_id,
        target_name=connection.name,
        detail=detail,
    )


async def on_user(
    ctx: DomainContext,
    session: AsyncSession,
    actor: Principal,
    action: AuditAction,
    user: User,
    *,
    environment_id: str | None = None,
    detail: str | None = None,
) -> None:
    """In ``environment_id``, or else in every environment where the user holds a role."""
    if environment_id is not None:
        environments = [environment_id]
    else:
        held = await session.exec(
            select(RoleAssignment.environment_id).where(RoleAssignment.user_id == user.id)
        )
        environments = sorted(set(held.all()))
    for env in environments:
        record(
            ctx,
            session,
            actor,
            action,
            AuditTargetKind.USER,
            user.id,
            environment_id=env,
            target_name=user.display_name,
            detail=detail,
        )


def share_detail(user_id: str, access: object | None = None) -> str:
    level = getattr(access, "value", access)
    return f"{level} access for user {user_id}" if level else f"access of user {user_id}"


def on_resource(
    ctx: DomainContext,
    session: AsyncSession,
    actor: Principal,
    verb: str,
    resource: Machine | MachineGroup,
    detail: str | None = None,
) -> None:
    """A machine or a group: ``verb`` SHARED, UNSHARED or MAINTENANCE picks the action."""
    if isinstance(resource, Machine):
        on_machine(ctx, session, actor, AuditAction[f"MACHINE_{verb}"], resource, detail)
    else:
        on_group(ctx, session, actor, AuditAction[f"GROUP_{verb}"], resource, detail)


def on_role(
    ctx: DomainContext,
    session: AsyncSession,
    actor: Principal,
    assignment: RoleAssignment,
    *,
    granted: bool,
) -> None:
    record(
        ctx,
        session,
        actor,
        AuditAction.ROLE_ASSIGNED if granted else AuditAction.ROLE_REVOKED,
        AuditTargetKind.USER,
        assignment.user_id,
        environment_id=assignment.environment_id,
        detail=assignment.role.value,
    )


def on_sign_in_group(
    ctx: DomainContext,
    session: AsyncSession,
    actor: Principal,
    mapping: SignInGroupRole,
    *,
    mapped: bool,
) -> None:
    """R44: a group of the provider mapped to a role in the environment, or no longer."""
    record(
        ctx,
        session,
        actor,
        AuditAction.SIGN_IN_GROUP_MAPPED if mapped else AuditAction.SIGN_IN_GROUP_UNMAPPED,
        AuditTargetKind.SIGN_IN_GROUP,
        mapping.id,
        environment_id=mapping.environment_id,
        target_name=mapping.group,
        detail=mapping.role.value,
    )
