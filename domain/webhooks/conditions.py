"""The time-based webhook events (R43): a machine that went DISCONNECTED (R9's timeout passed),
a machine offline longer than an endpoint's ``offlineMinutes``, a run queued longer than its
``waitingMinutes``, an environment's queue deeper than its ``queueDepth``. No write announces
them, so each sender pass looks, and records each once per episode and endpoint: a
:class:`~domain.store.models.WebhookAlert` row is kept while the condition lasts, in the
transaction that records the event (two instances looking at once: one row wins).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import false, func, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import col
from sqlmodel import select as orm_select

from domain.context import DomainContext
from domain.fleet.heartbeats import machine_status_data
from domain.store.models import (
    FlowRun,
    Machine,
    MachineStatus,
    RunStatus,
    WebhookAlert,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from domain.webhooks import outbox

log = logging.getLogger("deskfleet.webhooks")

_TIMED = (
    outbox.MACHINE_STATUS_CHANGED,
    outbox.MACHINE_OFFLINE,
    outbox.RUN_WAITING,
    outbox.QUEUE_DEPTH_EXCEEDED,
)
_DISCONNECTED = "machine.disconnected"


@dataclass(frozen=True)
class _Condition:
    marker: str
    happened: outbox.Happened
    # When the condition began to hold: an endpoint hears of those that began after it existed
    # (None: whenever it is first seen, as a queue's depth).
    since: datetime | None


async def _conditions(
    session: Any, ctx: DomainContext, endpoint: WebhookEndpoint, now: datetime
) -> dict[tuple[str, str], _Condition]:
    types = set(outbox.subscribed(endpoint.event_types))
    env = endpoint.environment_id
    found: dict[tuple[str, str], _Condition] = {}
    timeout = timedelta(seconds=ctx.settings.heartbeat_timeout_seconds)
    if outbox.MACHINE_STATUS_CHANGED in types:
        rows = await session.exec(
            orm_select(Machine.id, Machine.name, Machine.last_heartbeat_at).where(
                col(Machine.environment_id) == env,
                col(Machine.last_heartbeat_at).is_not(None),
                col(Machine.last_heartbeat_at) <= now - timeout,
            )
        )
        for machine_id, name, last in rows.all():
            data = machine_status_data(machine_id, name, MachineStatus.DISCONNECTED, last)
            happened = outbox.Happened(env, outbox.MACHINE_STATUS_CHANGED, data, now)
            found[(_DISCONNECTED, machine_id)] = _Condition(
                last.isoformat(), happened, last + timeout
            )
    if outbox.MACHINE_OFFLINE in types:
        threshold = timedelta(minutes=endpoint.offline_minutes)
        seen = func.coalesce(col(Machine.last_heartbeat_at), col(Machine.created_at))
        rows = await session.exec(
            orm_select(
                Machine.id, Machine.name, Machine.last_heartbeat_at, Machine.created_at
            ).where(col(Machine.environment_id) == env, seen <= now - threshold)
        )
        for machine_id, name, last, created in rows.all():
            since = last or created
            data = {
                "machineId": machine_id,
                "machineName": name,
                "lastHeartbeatAt": last.isoformat() if last else None,
                "offlineMinutes": endpoint.offline_minutes,
            }
            happened = outbox.Happened(env, outbox.MACHINE_OFFLINE, data, now)
            found[(outbox.MACHINE_OFFLINE, machine_id)] = _Condition(
                since.isoformat(), happened, since + threshold
            )
    if outbox.RUN_WAITING in types:
        threshold = timedelta(minutes=endpoint.waiting_minutes)
        rows = await session.exec(
            orm_select(FlowRun.id, FlowRun.flow_id, FlowRun.queued_at).where(
                col(FlowRun.environment_id) == env,
                col(FlowRun.status) == RunStatus.QUEUED,
                col(FlowRun.queued_at) <= now - threshold,
            )
        )
        for run_id, flow_id, queued_at in rows.all():
            data = {
                "runId": run_id,
                "flowId": flow_id,
                "queuedAt": queued_at.isoformat(),
                "waitingMinutes": endpoint.waiting_minutes,
            }
            happened = outbox.Happened(env, outbox.RUN_WAITING, data, now)
            found[(outbox.RUN_WAITING, run_id)] = _Condition(
                queued_at.isoformat(), happened, queued_at + threshold
            )
    if outbox.QUEUE_DEPTH_EXCEEDED in types:
        depth = (
            await session.exec(
                orm_select(func.count())
                .select_from(FlowRun)
                .where(col(FlowRun.environment_id) == env, col(FlowRun.status) == RunStatus.QUEUED)
            )
        ).one()
        if depth > endpoint.queue_depth:
            data = {"queuedRuns": depth, "queueDepth": endpoint.queue_depth}
            happened = outbox.Happened(env, outbox.QUEUE_DEPTH_EXCEEDED, data, now)
            found[(outbox.QUEUE_DEPTH_EXCEEDED, env)] = _Condition("over", happened, None)
    return found


async def _check_endpoint(ctx: DomainContext, endpoint_id: str) -> int:
    now = ctx.clock.now()
    sent = 0
    async with ctx.db.write() as session:
        endpoint = await session.get(WebhookEndpoint, endpoint_id)
        if endpoint is None or endpoint.paused or endpoint.disabled_reason is not None:
            return 0
        current = await _conditions(session, ctx, endpoint, now)
        alerts = await session.exec(
            orm_select(WebhookAlert).where(col(WebhookAlert.endpoint_id) == endpoint_id)
        )
        known = {(a.kind, a.subject_id): a for a in alerts.all()}
        for key, alert in known.items():
            if key not in current or current[key].marker != alert.marker:
                await session.delete(alert)  # the episode ended
        await session.flush()
        for (kind, subject), condition in current.items():
            same = known.get((kind, subject))
            if same is not None and same.marker == condition.marker:
                continue
            session.add(
                WebhookAlert(
                    endpoint_id=endpoint_id, kind=kind, subject_id=subject, marker=condition.marker
                )
            )
            if condition.since is None or condition.since >= endpoint.created_at:
                event = outbox.event_row(condition.happened)
                session.add(WebhookEvent(**event))
                await session.flush()
                session.add(WebhookDelivery(**outbox.delivery_row(event["id"], endpoint_id, now)))
                sent += 1
    return sent


async def check_conditions(ctx: DomainContext) -> int:
    """Record the time-based events that became due, once per episode and endpoint; how many."""
    async with ctx.db.read() as session:
        rows = await session.exec(
            orm_select(WebhookEndpoint.id).where(
                col(WebhookEndpoint.paused) == false(),
                col(WebhookEndpoint.disabled_reason).is_(None),
                or_(
                    *(
                        col(WebhookEndpoint.event_types).like(outbox.subscription_pattern(t))
                        for t in _TIMED
                    )
                ),
            )
        )
        endpoint_ids = list(rows.all())
    recorded = 0
    for endpoint_id in endpoint_ids:
        try:
            recorded += await _check_endpoint(ctx, endpoint_id)
        except IntegrityError:  # another instance recorded the same episode first
            log.debug("webhook conditions of %s were checked elsewhere", endpoint_id)
    return recorded
