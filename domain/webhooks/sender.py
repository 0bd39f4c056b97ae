"""Sending webhooks (R43): every instance runs a :class:`Sender`; each due delivery is claimed
with a lease by one of them (a conditional ``UPDATE ... RETURNING``: whoever's update takes the
row sends it), signed (domain/webhooks/signing.py), posted, and its attempt logged. No 2xx answer
and it is retried with a growing delay for up to a day, then fails; an endpoint none of whose
deliveries succeeded for that day is disabled with the reason. A sender killed mid-attempt leaves
its lease to expire: the delivery is sent again (at least once; receivers dedupe by webhook-id).

Each pass also records the time-based events that became due (domain/webhooks/conditions.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from opentelemetry.trace import SpanKind, Status, StatusCode
from sqlalchemy import and_, delete, exists, false, func, or_, select, update
from sqlmodel import col
from sqlmodel import select as orm_select

from domain.connections.credentials import SecretKeyError, vault_for
from domain.context import DomainContext
from domain.store.db import Database
from domain.store.models import (
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from domain.store.models.tables import table_of
from domain.store.storage import fault_of
from domain.webhooks import conditions, network, outbox, signing

log = logging.getLogger("deskfleet.webhooks")

# Delays after the 1st, 2nd, ... failed attempt; the last one repeats until the day is over.
BACKOFF = (
    timedelta(seconds=5),
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(minutes=30),
    timedelta(hours=1),
    timedelta(hours=2),
    timedelta(hours=4),
)
ERROR_MAX = 500


def backoff(failed_attempts: int) -> timedelta:
    return BACKOFF[min(failed_attempts, len(BACKOFF)) - 1]


def lease(ctx: DomainContext) -> timedelta:
    """Long enough for one attempt and its log (a lease that runs out only risks a repeat)."""
    return timedelta(seconds=2 * ctx.settings.webhook_timeout_seconds + 5)


def instance_name() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


# --- claiming and sending --------------------------------------------------------------------

_D = table_of(WebhookDelivery)
_E = table_of(WebhookEndpoint)
_V = table_of(WebhookEvent)


async def claim(ctx: DomainContext, owner: str, limit: int) -> list[str]:
    """Lease up to ``limit`` due deliveries to ``owner``; their ids."""
    now = ctx.clock.now()
    free = or_(_D.c.leased_until.is_(None), _D.c.leased_until < now)
    active = or_(
        and_(_E.c.paused == false(), _E.c.disabled_reason.is_(None)), _V.c.type == outbox.PING
    )
    due = (
        select(_D.c.id)
        .join(_E, _E.c.id == _D.c.endpoint_id)
        .join(_V, _V.c.id == _D.c.event_id)
        .where(_D.c.status == DeliveryStatus.PENDING, _D.c.next_attempt_at <= now, free, active)
        .order_by(_D.c.next_attempt_at, _D.c.id)
        .limit(limit)
        # PostgreSQL: instances claiming at once each take other rows, instead of waiting for
        # the same ones and finding them taken (SQLite's writers take turns anyway).
        .with_for_update(skip_locked=True, of=_D)
    )
    async with ctx.db.write() as session:
        connection = await session.connection()
        result = await connection.execute(
            update(_D)
            .where(_D.c.id.in_(due.scalar_subquery()), free)
            .values(leased_by=owner, leased_until=now + lease(ctx))
            .returning(_D.c.id)
        )
        return [row[0] for row in result.all()]


@dataclass(frozen=True)
class Message:
    delivery_id: str
    endpoint_id: str
    url: str
    secret_sealed: str
    type: str
    body: bytes


async def _messages(ctx: DomainContext, ids: list[str]) -> list[Message]:
    if not ids:
        return []
    async with ctx.db.read() as session:
        connection = await session.connection()
        rows = await connection.execute(
            select(
                _D.c.id,
                _E.c.id,
                _E.c.url,
                _E.c.secret_sealed,
                _V.c.type,
                _V.c.occurred_at,
                _V.c.data,
            )
            .join(_E, _E.c.id == _D.c.endpoint_id)
            .join(_V, _V.c.id == _D.c.event_id)
            .where(_D.c.id.in_(ids))
        )
        return [
            Message(
                delivery_id=d_id,
                endpoint_id=e_id,
                url=url,
                secret_sealed=sealed,
                type=event_type,
                body=body(event_type, occurred_at, data),
            )
            for d_id, e_id, url, sealed, event_type, occurred_at, data in rows.all()
        ]


def body(event_type: str, occurred_at: datetime, data: str) -> bytes:
    """The Standard Webhooks payload: ``{"type", "timestamp", "data"}``."""
    payload = {"type": event_type, "timestamp": occurred_at.isoformat(), "data": json.loads(data)}
    return json.dumps(payload, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Outcome:
    succeeded: bool
    status: int | None
    duration_ms: int
    error: str | None


async def post(ctx: DomainContext, client: httpx.AsyncClient, message: Message) -> Outcome:
    """One attempt: check where it goes, sign, post to the checked address; never raises."""
    started = time.perf_counter()

    def done(status: int | None, error: str | None) -> Outcome:
        elapsed = int((time.perf_counter() - started) * 1000)
        ok = status is not None and 200 <= status < 300
        return Outcome(ok, status, elapsed, None if ok else (error or f"HTTP {status}")[:ERROR_MAX])

    try:
        target = await network.resolve(
            message.url, network.networks(ctx.settings.webhook_allowed_networks)
        )
    except network.TargetRefused as refused:
        return done(None, f"not sent: {refused}")
    try:
        secret = vault_for(ctx.settings).reveal(message.secret_sealed)
    except SecretKeyError as unreadable:  # the key changed: an operator's fault, not the target's
        return done(None, f"not sent: {unreadable}")
    # The timestamp is the wall clock's: receivers compare it with theirs to refuse replays.
    headers = signing.headers(secret, message.delivery_id, int(time.time()), message.body)
    headers["host"] = target.host_header()
    headers["user-agent"] = "DeskFleet-Webhooks/1"
    extensions = {"sni_hostname": target.host} if target.parts.scheme == "https" else {}
    try:
        async with client.stream(
            "POST",
            target.pinned_url(),
            content=message.body,
            headers=headers,
            extensions=extensions,
        ) as response:
            return done(response.status_code, None)
    except httpx.TimeoutException:
        return done(None, f"no answer within {ctx.settings.webhook_timeout_seconds:g}s")
    except httpx.HTTPError as exc:
        return done(None, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)


async def log_attempt(ctx: DomainContext, delivery_id: str, outcome: Outcome) -> None:
    """Log the attempt and schedule what follows: done, the next attempt, or failed (and the
    endpoint disabled when nothing succeeded for it during the retry window)."""
    now = ctx.clock.now()
    async with ctx.db.write() as session:
        delivery = await session.get(WebhookDelivery, delivery_id)
        if delivery is None:  # its endpoint was deleted meanwhile
            return
        session.add(
            WebhookAttempt(
                delivery_id=delivery_id,
                at=now,
                succeeded=outcome.succeeded,
                response_status=outcome.status,
                duration_ms=outcome.duration_ms,
                error=outcome.error,
            )
        )
        delivery.attempts += 1
        delivery.leased_by = None
        delivery.leased_until = None
        if delivery.status is not DeliveryStatus.PENDING:
            pass  # another instance finished it after our lease ran out: keep its outcome
        elif outcome.succeeded:
            delivery.status = DeliveryStatus.SUCCEEDED
            delivery.ended_at = now
            delivery.next_attempt_at = None
        elif now + backoff(delivery.attempts) <= delivery.give_up_at:
            delivery.next_attempt_at = now + backoff(delivery.attempts)
        else:
            delivery.status = DeliveryStatus.FAILED
            delivery.ended_at = now
            delivery.next_attempt_at = None
            await _disable_if_failing(session, delivery.endpoint_id, now, outcome)
        session.add(delivery)


async def _disable_if_failing(session: Any, endpoint_id: str, now: datetime, last: Outcome) -> None:
    since = now - outbox.RETRY_WINDOW
    succeeded = await session.exec(
        orm_select(func.count())
        .select_from(WebhookDelivery)
        .where(
            col(WebhookDelivery.endpoint_id) == endpoint_id,
            col(WebhookDelivery.status) == DeliveryStatus.SUCCEEDED,
            col(WebhookDelivery.ended_at) >= since,
        )
    )
    if succeeded.one():
        return
    endpoint = await session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.disabled_reason is not None:
        return
    endpoint.disabled_reason = (
        "no delivery succeeded for a day of retries; the last attempt: "
        + (last.error or f"HTTP {last.status}")
    )[:500]
    endpoint.disabled_at = now
    session.add(endpoint)
    log.warning("webhook endpoint %s disabled: %s", endpoint_id, endpoint.disabled_reason)


async def deliver_due(ctx: DomainContext, client: httpx.AsyncClient, owner: str) -> int:
    """Claim what is due and send it, each attempt in a span of its own; how many were sent."""
    messages = await _messages(ctx, await claim(ctx, owner, ctx.settings.webhook_concurrency))

    async def send(message: Message) -> None:
        with ctx.tracer.start_as_current_span(
            "webhook delivery",
            kind=SpanKind.CLIENT,
            attributes={
                "deskfleet.webhook.delivery.id": message.delivery_id,
                "deskfleet.webhook.endpoint.id": message.endpoint_id,
                "deskfleet.webhook.event.type": message.type,
            },
        ) as span:
            outcome = await post(ctx, client, message)
            if outcome.status is not None:
                span.set_attribute("http.response.status_code", outcome.status)
            if not outcome.succeeded:
                span.set_status(Status(StatusCode.ERROR, outcome.error))
            await log_attempt(ctx, message.delivery_id, outcome)

    outcomes = await asyncio.gather(*(send(m) for m in messages), return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, Exception):  # its lease runs out and it is sent again
            log.error("webhook delivery failed unexpectedly", exc_info=outcome)
    return len(messages)


def http_client(ctx: DomainContext) -> httpx.AsyncClient:
    """Redirects are not followed (a 3xx is a failed attempt); no proxy from the environment."""
    return httpx.AsyncClient(
        timeout=ctx.settings.webhook_timeout_seconds, follow_redirects=False, trust_env=False
    )


async def prune(ctx: DomainContext) -> None:
    """Forget events whose deliveries all ended more than the retention ago."""
    cutoff = ctx.clock.now() - timedelta(days=ctx.settings.webhook_retention_days)
    pending = exists().where(
        _D.c.event_id == _V.c.id,
        or_(_D.c.status == DeliveryStatus.PENDING, _D.c.ended_at >= cutoff),
    )
    async with ctx.db.write() as session:
        connection = await session.connection()
        await connection.execute(delete(_V).where(_V.c.occurred_at < cutoff, ~pending))


# --- the task ----------------------------------------------------------------------------------

PRUNE_SECONDS = 3600.0


class Sender:
    """Sends due deliveries every ``webhook_poll_seconds`` (at once again while there are more),
    checks the time-based conditions every ``webhook_check_seconds``."""

    def __init__(self, ctx: DomainContext) -> None:
        # Its own connection pool, as the dispatcher's: requests never starve it, nor it them.
        self.ctx = dataclasses.replace(ctx, db=Database(ctx.settings.database_url))
        if ctx.db.tracer is not None:
            self.ctx.db.trace_with(ctx.db.tracer)
        self.owner = instance_name()
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        self._client = http_client(self.ctx)
        self._stopping.clear()
        self._task = asyncio.create_task(self._loop(), name="deskfleet-webhooks")

    async def stop(self) -> None:
        """Let a pass in flight finish (its attempts end within their timeout), so a clean stop
        sends nothing twice; then close."""
        if self._task is not None:
            self._stopping.set()
            try:
                async with asyncio.timeout(self.ctx.settings.webhook_timeout_seconds + 2):
                    await asyncio.shield(self._task)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self._task = None
        if self._client is not None:
            await self._client.aclose()
        await self.ctx.db.dispose()

    async def _loop(self) -> None:
        assert self._client is not None
        loop = asyncio.get_running_loop()
        settings = self.ctx.settings
        next_check = next_prune = loop.time()
        while not self._stopping.is_set():
            sent = 0
            try:
                if loop.time() >= next_check:
                    next_check = loop.time() + settings.webhook_check_seconds
                    await conditions.check_conditions(self.ctx)
                if loop.time() >= next_prune:
                    next_prune = loop.time() + PRUNE_SECONDS
                    await prune(self.ctx)
                sent = await deliver_due(self.ctx, self._client, self.owner)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                fault = fault_of(exc)
                if fault is None:
                    log.exception("webhook pass failed; retrying")
                else:  # not a defect: one line a pass until storage takes writes again
                    log.warning("webhook pass failed: %s (%s); retrying", fault.problem, fault.code)
            if not sent:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(settings.webhook_poll_seconds):
                        await self._stopping.wait()
