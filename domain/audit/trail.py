"""Reading the audit trail: an environment's entries for its admins, a page at a time, newest
first (entries are written by :mod:`domain.audit.journal`)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, func, or_
from sqlmodel import col, select

from domain.context import DomainContext
from domain.identity.authorization import require_environment_admin, require_user
from domain.kernel import validation
from domain.kernel.principals import Principal
from domain.store.models import AuditAction, AuditEntry
from domain.store.pagination import (
    Page,
    cursor_instant,
    decode_cursor,
    encode_cursor,
    page_size,
)


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
                    col(AuditEntry.at) < cursor_instant(at),
                    and_(col(AuditEntry.at) == cursor_instant(at), col(AuditEntry.id) < entry_id),
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
