"""Webhook endpoints (R43), for environment admins: subscribe a URL to event types, pause,
resume, delete, ping, rotate its secret, read its deliveries and their attempts, redeliver.

An endpoint or delivery of an environment the caller does not administer does not exist for them.
The signing secret is sealed with the installation's key (R20's vault) and shown once, when made.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import and_, func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.audit import journal
from domain.context import DomainContext
from domain.identity.authorization import require_environment_admin, require_user, roles_in
from domain.kernel import validation
from domain.kernel.errors import Conflict, ErrorCode, NotFound, ValidationFailed
from domain.kernel.permissions import Role
from domain.kernel.principals import Principal, UserPrincipal
from domain.kernel.vault import vault_for
from domain.store import idempotency
from domain.store.models import (
    AuditAction,
    AuditTargetKind,
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from domain.store.pagination import Page, cursor_instant, decode_cursor, encode_cursor, page_size
from domain.webhooks import network, outbox, signing

THRESHOLD_MAX_MINUTES = 7 * 24 * 60
QUEUE_DEPTH_MAX = 1_000_000


@dataclass(frozen=True)
class EndpointChanges:
    """What an update sets; None keeps the current value."""

    url: str | None = None
    description: str | None = None
    event_types: list[str] | None = None
    offline_minutes: int | None = None
    waiting_minutes: int | None = None
    queue_depth: int | None = None


@dataclass(frozen=True)
class CreatedEndpoint:
    endpoint: WebhookEndpoint
    secret: str  # shown once


def _audited(
    ctx: DomainContext,
    session: AsyncSession,
    user: UserPrincipal,
    action: AuditAction,
    endpoint: WebhookEndpoint,
) -> None:
    """Who pointed the environment's events where, and when (an endpoint receives its data)."""
    journal.record(
        ctx,
        session,
        user,
        action,
        AuditTargetKind.WEBHOOK_ENDPOINT,
        endpoint.id,
        environment_id=endpoint.environment_id,
        target_name=endpoint.url,
        detail=", ".join(outbox.subscribed(endpoint.event_types)),
    )


def _event_types(value: list[str]) -> str:
    unknown = sorted({t for t in value if t not in outbox.EVENT_TYPES})
    if unknown:
        raise ValidationFailed(
            ErrorCode.INVALID_EVENT_TYPE,
            f"eventTypes: {', '.join(repr(t) for t in unknown)} is not an event type; "
            f"choose among {', '.join(outbox.EVENT_TYPES)}",
            field="eventTypes",
        )
    if not value:
        raise ValidationFailed(
            ErrorCode.INVALID_EVENT_TYPE,
            "eventTypes must name at least one event type",
            field="eventTypes",
        )
    ordered = [t for t in outbox.EVENT_TYPES if t in value]
    return json.dumps(ordered, separators=(",", ":"))


def _minutes(value: int, field: str) -> int:
    return validation.bounded_int(value, field=field, minimum=1, maximum=THRESHOLD_MAX_MINUTES)


async def _url(ctx: DomainContext, url: str) -> str:
    allowed = network.networks(ctx.settings.webhook_allowed_networks)
    return await network.checked_url(url, allowed)


async def _administered(
    session: AsyncSession, user: UserPrincipal, endpoint_id: str
) -> WebhookEndpoint:
    """The endpoint, if the caller administers its environment; else it does not exist."""
    endpoint = await session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or Role.ENVIRONMENT_ADMIN not in await roles_in(
        session, user, endpoint.environment_id
    ):
        raise NotFound("webhook endpoint", endpoint_id)
    return endpoint


async def create_endpoint(
    ctx: DomainContext,
    principal: Principal,
    environment_id: str,
    url: str,
    event_types: list[str],
    *,
    description: str = "",
    offline_minutes: int = 30,
    waiting_minutes: int = 30,
    queue_depth: int = 100,
    idempotency_key: str | None = None,
) -> CreatedEndpoint:
    """R43. R46: with ``idempotency_key``, a retry within a day answers the endpoint created
    first, with its signing secret as it is now, and creates nothing."""
    user = require_user(principal)
    environment_id = validation.ident(environment_id, field="environmentId")
    types = _event_types(event_types)
    description = validation.text(description)
    offline_minutes = _minutes(offline_minutes, "offlineMinutes")
    waiting_minutes = _minutes(waiting_minutes, "waitingMinutes")
    queue_depth = validation.bounded_int(
        queue_depth, field="queueDepth", minimum=1, maximum=QUEUE_DEPTH_MAX
    )
    async with ctx.db.read() as session:  # who may, before resolving anything for them
        await require_environment_admin(session, user, environment_id)
    url = await _url(ctx, url)
    now = ctx.clock.now()
    request = idempotency.request(
        user.user_id,
        "createWebhookEndpoint",
        idempotency_key,
        {
            "environmentId": environment_id,
            "url": url,
            "eventTypes": types,
            "description": description,
            "offlineMinutes": offline_minutes,
            "waitingMinutes": waiting_minutes,
            "queueDepth": queue_depth,
        },
    )

    async def create() -> CreatedEndpoint:
        secret = signing.new_secret()
        async with ctx.db.write() as session:
            await require_environment_admin(session, user, environment_id)
            endpoint = WebhookEndpoint(
                environment_id=environment_id,
                url=url,
                description=description,
                event_types=types,
                secret_sealed=vault_for(ctx.settings).seal(secret),
                offline_minutes=offline_minutes,
                waiting_minutes=waiting_minutes,
                queue_depth=queue_depth,
                created_at=now,
                updated_at=now,
            )
            await idempotency.remember(session, request, endpoint.id, now)
            session.add(endpoint)
            _audited(ctx, session, user, AuditAction.WEBHOOK_ENDPOINT_CREATED, endpoint)
        return CreatedEndpoint(endpoint, secret)

    async def replay(earlier: idempotency.Earlier) -> CreatedEndpoint:
        # The secret is the endpoint's own, sealed with it: an admin of its environment (checked
        # again) could rotate it anyway, and the first answer may never have arrived.
        async with ctx.db.read() as session:
            endpoint = await _administered(session, user, earlier.result_id)
        return CreatedEndpoint(endpoint, vault_for(ctx.settings).reveal(endpoint.secret_sealed))

    return await idempotency.once(ctx.db, request, now, create=create, replay=replay)


async def update_endpoint(
    ctx: DomainContext, principal: Principal, endpoint_id: str, changes: EndpointChanges
) -> WebhookEndpoint:
    user = require_user(principal)
    endpoint_id = validation.ident(endpoint_id, field="id")
    types = _event_types(changes.event_types) if changes.event_types is not None else None
    description = validation.text(changes.description) if changes.description is not None else None
    offline = (
        _minutes(changes.offline_minutes, "offlineMinutes")
        if changes.offline_minutes is not None
        else None
    )
    waiting = (
        _minutes(changes.waiting_minutes, "waitingMinutes")
        if changes.waiting_minutes is not None
        else None
    )
    depth = (
        validation.bounded_int(
            changes.queue_depth, field="queueDepth", minimum=1, maximum=QUEUE_DEPTH_MAX
        )
        if changes.queue_depth is not None
        else None
    )
    async with ctx.db.read() as session:
        await _administered(session, user, endpoint_id)
    url = await _url(ctx, changes.url) if changes.url is not None else None
    async with ctx.db.write() as session:
        endpoint = await _administered(session, user, endpoint_id)
        endpoint.url = url if url is not None else endpoint.url
        endpoint.event_types = types if types is not None else endpoint.event_types
        endpoint.description = description if description is not None else endpoint.description
        endpoint.offline_minutes = offline or endpoint.offline_minutes
        endpoint.waiting_minutes = waiting or endpoint.waiting_minutes
        endpoint.queue_depth = depth or endpoint.queue_depth
        endpoint.updated_at = ctx.clock.now()
        session.add(endpoint)
        _audited(ctx, session, user, AuditAction.WEBHOOK_ENDPOINT_UPDATED, endpoint)
    return endpoint


async def set_paused(
    ctx: DomainContext, principal: Principal, endpoint_id: str, paused: bool
) -> WebhookEndpoint:
    """Pause: nothing is sent to it and no event is recorded for it until resumed. Resume also
    enables an endpoint disabled for failing (its pending deliveries go out again)."""
    user = require_user(principal)
    endpoint_id = validation.ident(endpoint_id, field="id")
    async with ctx.db.write() as session:
        endpoint = await _administered(session, user, endpoint_id)
        endpoint.paused = paused
        if not paused:
            endpoint.disabled_reason = None
            endpoint.disabled_at = None
        endpoint.updated_at = ctx.clock.now()
        session.add(endpoint)
        action = (
            AuditAction.WEBHOOK_ENDPOINT_PAUSED if paused else AuditAction.WEBHOOK_ENDPOINT_RESUMED
        )
        _audited(ctx, session, user, action, endpoint)
    return endpoint


async def delete_endpoint(ctx: DomainContext, principal: Principal, endpoint_id: str) -> str:
    user = require_user(principal)
    endpoint_id = validation.ident(endpoint_id, field="id")
    async with ctx.db.write() as session:
        endpoint = await _administered(session, user, endpoint_id)
        await session.delete(endpoint)  # its deliveries, attempts and alerts go with it
        _audited(ctx, session, user, AuditAction.WEBHOOK_ENDPOINT_DELETED, endpoint)
    return endpoint_id


async def rotate_secret(
    ctx: DomainContext, principal: Principal, endpoint_id: str
) -> CreatedEndpoint:
    """A new signing secret, shown once; the old one signs nothing from now on."""
    user = require_user(principal)
    endpoint_id = validation.ident(endpoint_id, field="id")
    secret = signing.new_secret()
    async with ctx.db.write() as session:
        endpoint = await _administered(session, user, endpoint_id)
        endpoint.secret_sealed = vault_for(ctx.settings).seal(secret)
        endpoint.updated_at = ctx.clock.now()
        session.add(endpoint)
        _audited(ctx, session, user, AuditAction.WEBHOOK_ENDPOINT_SECRET_ROTATED, endpoint)
    return CreatedEndpoint(endpoint, secret)


async def ping(ctx: DomainContext, principal: Principal, endpoint_id: str) -> WebhookDelivery:
    """A webhook.ping event for this endpoint only, sent even while it is paused or disabled."""
    user = require_user(principal)
    endpoint_id = validation.ident(endpoint_id, field="id")
    now = ctx.clock.now()
    async with ctx.db.write() as session:
        endpoint = await _administered(session, user, endpoint_id)
        event = outbox.event_row(
            outbox.Happened(endpoint.environment_id, outbox.PING, {"endpointId": endpoint.id}, now)
        )
        session.add(WebhookEvent(**event))
        await session.flush()
        delivery = WebhookDelivery(**outbox.delivery_row(event["id"], endpoint.id, now))
        session.add(delivery)
    return delivery


async def redeliver(ctx: DomainContext, principal: Principal, delivery_id: str) -> WebhookDelivery:
    """Send a delivery again (same webhook-id, receivers dedupe by it), retried as a new one."""
    user = require_user(principal)
    delivery_id = validation.ident(delivery_id, field="id")
    now = ctx.clock.now()
    async with ctx.db.write() as session:
        delivery = await session.get(WebhookDelivery, delivery_id)
        if delivery is None:
            raise NotFound("webhook delivery", delivery_id)
        try:
            endpoint = await _administered(session, user, delivery.endpoint_id)
        except NotFound:
            raise NotFound("webhook delivery", delivery_id) from None
        if endpoint.disabled_reason is not None or endpoint.paused:
            raise Conflict(
                ErrorCode.ENDPOINT_DISABLED,
                "the endpoint is paused or disabled: resume it first",
            )
        delivery.status = DeliveryStatus.PENDING
        delivery.next_attempt_at = now
        delivery.give_up_at = now + outbox.RETRY_WINDOW
        delivery.ended_at = None
        delivery.leased_by = None
        delivery.leased_until = None
        session.add(delivery)
    return delivery


# --- reads -------------------------------------------------------------------------------------


async def get_endpoint(
    ctx: DomainContext, principal: Principal, endpoint_id: str
) -> WebhookEndpoint:
    user = require_user(principal)
    endpoint_id = validation.ident(endpoint_id, field="id")
    async with ctx.db.read() as session:
        return await _administered(session, user, endpoint_id)


async def list_endpoints(
    ctx: DomainContext,
    principal: Principal,
    environment_id: str,
    *,
    first: int,
    after: str | None = None,
) -> Page[WebhookEndpoint]:
    """An environment's endpoints, oldest first."""
    user = require_user(principal)
    environment_id = validation.ident(environment_id, field="environmentId")
    first = page_size(first, ctx.settings.max_page_size)
    key = decode_cursor(after, 2) if after else None
    where = col(WebhookEndpoint.environment_id) == environment_id
    async with ctx.db.read() as session:
        await require_environment_admin(session, user, environment_id)
        total = (
            await session.exec(select(func.count()).select_from(WebhookEndpoint).where(where))
        ).one()
        stmt = select(WebhookEndpoint).where(where)
        if key is not None:
            at = cursor_instant(key[0])
            stmt = stmt.where(
                or_(
                    col(WebhookEndpoint.created_at) > at,
                    and_(col(WebhookEndpoint.created_at) == at, col(WebhookEndpoint.id) > key[1]),
                )
            )
        stmt = stmt.order_by(col(WebhookEndpoint.created_at), col(WebhookEndpoint.id))
        rows = list((await session.exec(stmt.limit(first + 1))).all())
    return Page.of(rows, first, total, lambda e: encode_cursor(e.created_at.isoformat(), e.id))


@dataclass(frozen=True)
class DeliveryView:
    delivery: WebhookDelivery
    event: WebhookEvent


async def list_deliveries(
    ctx: DomainContext,
    principal: Principal,
    endpoint_id: str,
    *,
    status: DeliveryStatus | None = None,
    first: int,
    after: str | None = None,
) -> Page[DeliveryView]:
    """An endpoint's deliveries, newest first."""
    user = require_user(principal)
    endpoint_id = validation.ident(endpoint_id, field="endpointId")
    first = page_size(first, ctx.settings.max_page_size)
    key = decode_cursor(after, 2) if after else None
    where = [col(WebhookDelivery.endpoint_id) == endpoint_id]
    if status is not None:
        where.append(col(WebhookDelivery.status) == status)
    async with ctx.db.read() as session:
        await _administered(session, user, endpoint_id)
        total = (
            await session.exec(select(func.count()).select_from(WebhookDelivery).where(*where))
        ).one()
        stmt = (
            select(WebhookDelivery, WebhookEvent)
            .join(WebhookEvent, col(WebhookEvent.id) == col(WebhookDelivery.event_id))
            .where(*where)
        )
        if key is not None:
            at = cursor_instant(key[0])
            stmt = stmt.where(
                or_(
                    col(WebhookDelivery.created_at) < at,
                    and_(col(WebhookDelivery.created_at) == at, col(WebhookDelivery.id) < key[1]),
                )
            )
        stmt = stmt.order_by(col(WebhookDelivery.created_at).desc(), col(WebhookDelivery.id).desc())
        rows = [DeliveryView(d, e) for d, e in (await session.exec(stmt.limit(first + 1))).all()]
    return Page.of(
        rows,
        first,
        total,
        lambda v: encode_cursor(v.delivery.created_at.isoformat(), v.delivery.id),
    )


async def attempts_of(
    ctx: DomainContext, delivery_ids: list[str]
) -> dict[str, list[WebhookAttempt]]:
    """The attempts of deliveries the caller was already allowed to read, oldest first."""
    found: dict[str, list[WebhookAttempt]] = {d: [] for d in delivery_ids}
    if not delivery_ids:
        return found
    async with ctx.db.read() as session:
        rows = await session.exec(
            select(WebhookAttempt)
            .where(col(WebhookAttempt.delivery_id).in_(delivery_ids))
            .order_by(col(WebhookAttempt.at), col(WebhookAttempt.id))
        )
        for attempt in rows.all():
            found[attempt.delivery_id].append(attempt)
    return found
