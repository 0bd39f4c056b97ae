"""Environments and their settings (R1, R2, R4, R27, R31, R24's capacity pool)."""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.bus.events import QueueChanged, emit
from domain.context import DomainContext
from domain.identity.authorization import (
    require_environment_admin,
    require_user,
    visible_environment_ids,
)
from domain.kernel import validation
from domain.kernel.errors import Conflict, ErrorCode, PermissionDenied, RuleViolation
from domain.kernel.principals import Principal
from domain.kernel.retry_policy import RetryPolicy
from domain.kernel.versions import normalise
from domain.store.models import Environment, EnvironmentKind, Machine

MAX_QUEUE_SECONDS_LIMIT = 7 * 24 * 60 * 60
RECOMMENDATION_WINDOW_SECONDS_LIMIT = 24 * 60 * 60  # R45: a day at most


async def list_environments(ctx: DomainContext, principal: Principal) -> list[Environment]:
    user = require_user(principal)
    async with ctx.db.read() as session:
        visible = await visible_environment_ids(session, user)
        stmt = select(Environment).order_by(col(Environment.name))
        if visible is not None:
            stmt = stmt.where(col(Environment.id).in_(visible))
        return list((await session.exec(stmt)).all())


async def create_environment(
    ctx: DomainContext,
    principal: Principal,
    *,
    name: str,
    kind: EnvironmentKind,
    flow_extensions_version: str,
) -> Environment:
    user = require_user(principal)
    if not user.is_admin:
        raise PermissionDenied(
            ErrorCode.NOT_ADMIN, "only DeskFleet administrators can create environments"
        )
    name = validation.name(name)
    version = normalise(flow_extensions_version, field="flowExtensionsVersion")
    async with ctx.db.write() as session:
        taken = (await session.exec(select(Environment.id).where(Environment.name == name))).first()
        if taken is not None:
            raise Conflict(ErrorCode.NAME_TAKEN, f"an environment named {name!r} already exists")
        environment = Environment(
            name=name, kind=kind, flow_extensions_version=version, created_at=ctx.clock.now()
        )
        session.add(environment)
    return environment


async def update_environment(
    ctx: DomainContext,
    principal: Principal,
    environment_id: str,
    *,
    name: str | None = None,
    flow_extensions_version: str | None = None,
    restrict_registration: bool | None = None,
    max_queue_seconds: int | None = None,
    session_recommendations: bool | None = None,
    unattended_capacity: int | None = None,
    recommendation_window_seconds: int | None = None,
    min_runtime_version: str | None = None,
    retry_policy: RetryPolicy | None = None,
) -> Environment:
    """``retry_policy``: R40's default for the environment's flows (checked when made)."""
    user = require_user(principal)
    environment_id = validation.ident(environment_id, field="environmentId")
    if name is not None:
        name = validation.name(name)
    if flow_extensions_version is not None:
        flow_extensions_version = normalise(flow_extensions_version, field="flowExtensionsVersion")
    if max_queue_seconds is not None:
        validation.bounded_int(
            max_queue_seconds, field="maxQueueSeconds", minimum=1, maximum=MAX_QUEUE_SECONDS_LIMIT
        )
    if unattended_capacity is not None:
        validation.bounded_int(
            unattended_capacity, field="unattendedCapacity", minimum=0, maximum=100_000
        )
    if min_runtime_version:  # "" takes the minimum away
        min_runtime_version = normalise(min_runtime_version, field="minRuntimeVersion")
    if recommendation_window_seconds is not None:
        validation.bounded_int(
            recommendation_window_seconds,
            field="recommendationWindowSeconds",
            minimum=1,
            maximum=RECOMMENDATION_WINDOW_SECONDS_LIMIT,
        )
    async with ctx.db.write() as session:
        environment = await require_environment_admin(session, user, environment_id)
        if name is not None and name != environment.name:
            taken = (
                await session.exec(select(Environment.id).where(Environment.name == name))
            ).first()
            if taken is not None:
                raise Conflict(
                    ErrorCode.NAME_TAKEN, f"an environment named {name!r} already exists"
                )
            environment.name = name
        if flow_extensions_version is not None:
            environment.flow_extensions_version = flow_extensions_version
        if restrict_registration is not None:
            environment.restrict_registration = restrict_registration
        if max_queue_seconds is not None:
            environment.max_queue_seconds = max_queue_seconds
        if session_recommendations is not None:
            environment.session_recommendations = session_recommendations
        if unattended_capacity is not None:
            await _check_pool_covers_allocations(session, environment, unattended_capacity)
            environment.unattended_capacity = unattended_capacity
        if recommendation_window_seconds is not None:
            # Recommendations raised from now on; an open one keeps the end it was given.
            environment.recommendation_window_seconds = recommendation_window_seconds
        if (
            min_runtime_version is not None
            and (min_runtime_version or None) != environment.min_runtime_version
        ):
            environment.min_runtime_version = min_runtime_version or None
            # R41: queued runs may now go elsewhere, or wait on other machines: plan again.
            emit(ctx.events, session, QueueChanged(environment.id))
        if retry_policy is not None:
            environment.retry_policy = retry_policy.to_json()  # runs that end from now on (R40)
        session.add(environment)
    return environment


async def _check_pool_covers_allocations(
    session: AsyncSession, environment: Environment, capacity: int
) -> None:
    """R24: bots come from the pool, so the pool never shrinks below what machines hold."""
    allocated = (
        await session.exec(
            select(func.coalesce(func.sum(Machine.unattended_bots), 0)).where(
                Machine.environment_id == environment.id
            )
        )
    ).one()
    if capacity < int(allocated):
        raise RuleViolation(
            ErrorCode.CAPACITY_EXCEEDED,
            f"{int(allocated)} unattended bots of environment {environment.name!r} are allocated "
            f"to machines: release some before shrinking its pool to {capacity}",
            rule="R24",
        )


async def environments_by_ids(ctx: DomainContext, ids: list[str]) -> list[Environment | None]:
    async with ctx.db.read() as session:
        rows = await session.exec(select(Environment).where(col(Environment.id).in_(ids)))
        found = {e.id: e for e in rows.all()}
    return [found.get(i) for i in ids]
