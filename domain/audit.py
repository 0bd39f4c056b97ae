"""The audit trail (issue 9): every change of who may do what to which machine, recorded by the use
case in the SAME transaction as the change (so a rolled-back change leaves no entry, and a committed
one always has its entry), readable by environment admins a page at a time, newest first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain import validation
from domain.access import require_environment_admin, require_user
from domain.context import DomainContext
from domain.errors import ErrorCode, ValidationFailed
from domain.models import (
    AuditAction,
    AuditEntry,
    AuditTargetKind,
    Connection,
    Machine,
    MachineGroup,
    RoleAssignment,
    User,
)
from domain.pagination import Page, decode_cursor, encode_cursor, page_size
from domain.principals import Principal, UserPrincipal

__all__ = ["AuditAction", "AuditFilter", "AuditTargetKind", "list_audit", "record"]


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


@dataclass(frozen=True)
class AuditFilter:
    actions: tuple[AuditAction, ...] = ()
    actor_id: str | None = None
    target_id: str | None = None


def _filtered(flt: AuditFilter) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    if flt.actions:
        clauses.append(col(AuditEntry.action).in_(flt.actions))
    if flt.actor_id is not None:
        clauses.append(col(AuditEntry.actor_id) == validation.ident(flt.actor_id, field="actorId"))
    if flt.target_id is not None:
        clauses.append(
            col(AuditEntry.target_id) == validation.ident(flt.target_id, field="targetId")
        )
    return clauses


async def list_audit(
    ctx: DomainContext,
    principal: Principal,
    environment_id: str,
    flt: AuditFilter = AuditFilter(),
    *,
    first: int,
    after: str | None = None,
) -> Page[AuditEntry]:
    """An environment's entries, newest first; for its admins (and DeskFleet administrators)."""
    user = require_user(principal)
    environment_id = validation.ident(environment_id, field="environmentId")
    first = page_size(first, ctx.settings.max_page_size)
    key = decode_cursor(after, 2) if after else None
    where = and_(col(AuditEntry.environment_id) == environment_id, *_filtered(flt))
    async with ctx.db.read() as session:
        await require_environment_admin(session, user, environment_id)
        total = (
            await session.exec(select(func.count()).select_from(AuditEntry).where(where))
        ).one()
        stmt = select(AuditEntry).where(where)
        if key is not None:
            at, entry_id = key
            # Newest first: strictly older, or as old with a smaller id.
            stmt = stmt.where(
                or_(
                    col(AuditEntry.at) < _at(at),
                    and_(col(AuditEntry.at) == _at(at), col(AuditEntry.id) < entry_id),
                )
            )
        stmt = stmt.order_by(col(AuditEntry.at).desc(), col(AuditEntry.id).desc()).limit(first + 1)
        rows = list((await session.exec(stmt)).all())
    items = rows[:first]
    return Page(
        items=items,
        cursors=[encode_cursor(e.at.isoformat(), e.id) for e in items],
        has_next_page=len(rows) > first,
        total_count=total,
    )


def _at(value: str) -> datetime:
    """The time part of a cursor this API issued."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationFailed(
            ErrorCode.INVALID_CURSOR, "the cursor 'after' is not one this API issued", field="after"
        ) from None
    if parsed.tzinfo is None:
        raise ValidationFailed(
            ErrorCode.INVALID_CURSOR, "the cursor 'after' is not one this API issued", field="after"
        )
    return parsed


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
