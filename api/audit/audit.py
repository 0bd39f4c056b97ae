"""The audit trail: who registered, shared, moved, deleted... — for environment admins."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.types import Info

from api.context import Context
from api.errors import read
from api.identity.identity import UserType
from api.pagination import PageInfo
from domain.audit import trail
from domain.store.models import AuditAction, AuditEntry, AuditTargetKind

AuditActionEnum = strawberry.enum(AuditAction, name="AuditAction")
AuditTargetKindEnum = strawberry.enum(AuditTargetKind, name="AuditTargetKind")


@strawberry.type(
    description="One change: who did what to which machine, group, user or connection."
)
class AuditEntryType:
    id: strawberry.ID
    at: datetime
    action: AuditActionEnum  # type: ignore[valid-type]
    target_kind: AuditTargetKindEnum  # type: ignore[valid-type]
    target_id: strawberry.ID
    target_name: str | None = strawberry.field(description="The target's name at the time.")
    detail: str | None
    actor_id: strawberry.ID | None = strawberry.field(description="Null: done by DeskFleet.")

    @classmethod
    def from_model(cls, e: AuditEntry) -> AuditEntryType:
        return cls(
            id=strawberry.ID(e.id),
            at=e.at,
            action=e.action,
            target_kind=e.target_kind,
            target_id=strawberry.ID(e.target_id),
            target_name=e.target_name,
            detail=e.detail,
            actor_id=strawberry.ID(e.actor_id) if e.actor_id else None,
        )

    @strawberry.field(description="Who did it (null: DeskFleet itself, or a deleted user).")
    async def actor(self, info: Info[Context, None]) -> UserType | None:
        if self.actor_id is None:
            return None
        user = await info.context.loaders.users.load(self.actor_id)
        return UserType.from_model(user) if user else None


@strawberry.type
class AuditEntryEdge:
    cursor: str
    node: AuditEntryType


@strawberry.type
class AuditEntryConnection:
    edges: list[AuditEntryEdge]
    page_info: PageInfo
    total_count: int

    @strawberry.field
    def nodes(self) -> list[AuditEntryType]:
        return [edge.node for edge in self.edges]


@strawberry.input
class AuditFilterInput:
    actions: list[AuditActionEnum] | None = None  # type: ignore[valid-type]
    actor_id: strawberry.ID | None = None
    target_id: strawberry.ID | None = None


@strawberry.type
class AuditQuery:
    @strawberry.field(
        description="An environment's audit trail, newest first (environment admins)."
    )
    async def audit_trail(
        self,
        info: Info[Context, None],
        environment_id: strawberry.ID,
        first: int = 50,
        after: str | None = None,
        filter: AuditFilterInput | None = None,
    ) -> AuditEntryConnection:
        ctx = info.context
        f = filter or AuditFilterInput()
        flt = trail.AuditFilter(tuple(f.actions or ()), f.actor_id, f.target_id)
        page = await read(
            lambda: trail.list_audit(
                ctx.domain, ctx.principal, environment_id, flt, first=first, after=after
            )
        )
        return AuditEntryConnection(
            edges=[
                AuditEntryEdge(cursor=cursor, node=AuditEntryType.from_model(e))
                for e, cursor in zip(page.items, page.cursors, strict=True)
            ],
            page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
            total_count=page.total_count,
        )
