"""Desktop flows: the automations runs execute (name, owner, environment); the script is opaque.

Creating one needs the run privilege in its environment (a role granting R13's "run a desktop
flow", or environment admin). A flow is seen and managed by its owner and by admins of its
environment; anyone else gets "not found".
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, func, tuple_
from sqlmodel import col, select

from domain.context import DomainContext
from domain.identity.authorization import (
    admin_environment_ids,
    require_user,
    visible_environment,
)
from domain.kernel import validation
from domain.kernel.errors import Conflict, ErrorCode, PermissionDenied
from domain.kernel.permissions import Action, privileges
from domain.kernel.principals import Principal, UserPrincipal
from domain.kernel.retry_policy import RetryPolicy
from domain.kernel.text_search import contains_pattern
from domain.runs.visibility import flows_visible_to, visible_flow
from domain.store.models import TERMINAL_STATUSES, DesktopFlow, FlowRun
from domain.store.pagination import Page, decode_cursor, encode_cursor, page_size


async def create_flow(
    ctx: DomainContext, principal: Principal, *, environment_id: str, name: str
) -> DesktopFlow:
    user = require_user(principal)
    environment_id = validation.ident(environment_id, field="environmentId")
    name = validation.name(name)
    async with ctx.db.write() as session:
        environment, roles = await visible_environment(session, user, environment_id)
        granted = privileges(roles, restrict_registration=environment.restrict_registration)
        if Action.RUN not in granted:
            raise PermissionDenied(
                ErrorCode.PERMISSION_DENIED,
                f"you cannot create desktop flows in environment {environment.name!r}: "
                "it needs a security role that can run desktop flows",
            )
        flow = DesktopFlow(
            environment_id=environment_id,
            owner_id=user.user_id,
            name=name,
            created_at=ctx.clock.now(),
        )
        session.add(flow)
    return flow


async def rename_flow(
    ctx: DomainContext, principal: Principal, flow_id: str, *, name: str
) -> DesktopFlow:
    user = require_user(principal)
    flow_id = validation.ident(flow_id, field="id")
    name = validation.name(name)
    async with ctx.db.write() as session:
        flow = await visible_flow(session, user, flow_id)
        flow.name = name
        session.add(flow)
    return flow


async def set_retry_policy(
    ctx: DomainContext, principal: Principal, flow_id: str, policy: RetryPolicy | None
) -> DesktopFlow:
    """R40: the flow's own retry policy, which overrides its environment's; None: it follows its
    environment's again. Its owner or an environment admin; runs that end from now on."""
    user = require_user(principal)
    flow_id = validation.ident(flow_id, field="id")
    async with ctx.db.write() as session:
        flow = await visible_flow(session, user, flow_id)
        flow.retry_policy = policy.to_json() if policy is not None else None
        session.add(flow)
    return flow


async def delete_flow(ctx: DomainContext, principal: Principal, flow_id: str) -> DesktopFlow:
    """Refused while the flow has runs not yet finished (they would be lost, R30); deleting it
    removes its finished runs' history with it."""
    user = require_user(principal)
    flow_id = validation.ident(flow_id, field="id")
    async with ctx.db.write() as session:
        flow = await visible_flow(session, user, flow_id)
        active = (
            await session.exec(
                select(func.count())
                .select_from(FlowRun)
                .where(
                    FlowRun.flow_id == flow.id, col(FlowRun.status).not_in(list(TERMINAL_STATUSES))
                )
            )
        ).one()
        if active:
            raise Conflict(
                ErrorCode.FLOW_IN_USE,
                f"desktop flow {flow.name!r} has {active} run(s) queued or running: "
                "cancel them or let them finish first",
            )
        await session.delete(flow)
    return flow


async def get_flow(ctx: DomainContext, principal: Principal, flow_id: str) -> DesktopFlow:
    user = require_user(principal)
    flow_id = validation.ident(flow_id, field="id")
    async with ctx.db.read() as session:
        return await visible_flow(session, user, flow_id)


async def list_flows(
    ctx: DomainContext,
    principal: Principal,
    *,
    environment_id: str | None = None,
    text: str | None = None,
    first: int,
    after: str | None = None,
) -> Page[DesktopFlow]:
    """The caller's flows and every flow of the environments they administer, by name."""
    user = require_user(principal)
    first = page_size(first, ctx.settings.max_page_size)
    key = decode_cursor(after, 2) if after else None
    clauses: list[ColumnElement[bool]] = []
    if environment_id is not None:
        environment_id = validation.ident(environment_id, field="environmentId")
        clauses.append(col(DesktopFlow.environment_id) == environment_id)
    if text:
        text = validation.text(text, field="text")
        needle = contains_pattern(text)
        clauses.append(col(DesktopFlow.name).ilike(needle, escape="\\"))
    async with ctx.db.read() as session:
        admin_of = await admin_environment_ids(session, user)
        where = and_(flows_visible_to(user, admin_of), *clauses)
        total = (
            await session.exec(select(func.count()).select_from(DesktopFlow).where(where))
        ).one()
        stmt = select(DesktopFlow).where(where)
        if key is not None:
            stmt = stmt.where(tuple_(col(DesktopFlow.name), col(DesktopFlow.id)) > tuple_(*key))
        stmt = stmt.order_by(col(DesktopFlow.name), col(DesktopFlow.id)).limit(first + 1)
        rows = list((await session.exec(stmt)).all())
    items = rows[:first]
    return Page(
        items=items,
        cursors=[encode_cursor(f.name, f.id) for f in items],
        has_next_page=len(rows) > first,
        total_count=total,
    )


async def flows_by_ids(
    ctx: DomainContext, viewer: UserPrincipal | None, ids: list[str]
) -> list[DesktopFlow | None]:
    """A run's flow, for the API's loader: ``None`` where ``viewer`` may not see it (R38), as
    for ``desktopFlow(id)``; a machine key (``viewer`` None) sees none."""
    if viewer is None:
        return [None for _ in ids]
    async with ctx.db.read() as session:
        admin_of = await admin_environment_ids(session, viewer)
        rows = await session.exec(
            select(DesktopFlow).where(
                col(DesktopFlow.id).in_(ids), flows_visible_to(viewer, admin_of)
            )
        )
        found = {f.id: f for f in rows.all()}
    return [found.get(i) for i in ids]
