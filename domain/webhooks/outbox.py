"""The webhooks' outbox (R43): an event is recorded in the transaction of the change that caused
it, one delivery per subscribed endpoint, so a crash (kill -9) after the commit loses nothing and
one before it loses the change too. The sender (domain/webhooks/sender.py) sends what is recorded.

The use cases call :func:`record` where they emit their bus events; the rows are written just
before the commit (``before_commit``), after one indexed read of the environment's subscribed
endpoints: a change nobody subscribed to writes nothing. A script on the driver (the heartbeat)
yields :func:`steps` itself, before its last statement.
"""

from __future__ import annotations

import json
from collections.abc import Generator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, false, insert, select
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.store.db import before_commit
from domain.store.models import (
    DeliveryStatus,
    FlowRun,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from domain.store.models.columns import new_id
from domain.store.models.tables import table_of
from domain.store.prepared import DriverTransaction, Execute, Fetch, Prepared

# The event types an endpoint can subscribe to (docs/api.md#webhooks).
MACHINE_STATUS_CHANGED = "machine.status.changed"
MACHINE_OFFLINE = "machine.offline"  # longer than the endpoint's offlineMinutes
MACHINE_MAINTENANCE_CHANGED = "machine.maintenance.changed"
RUN_FINISHED = "run.finished"  # succeeded, failed, timed out or cancelled
RUN_WAITING = "run.waiting"  # queued longer than the endpoint's waitingMinutes
QUEUE_DEPTH_EXCEEDED = "queue.depth.exceeded"  # more queued runs than the endpoint's queueDepth
RECOMMENDATION_RAISED = "recommendation.raised"
RECOMMENDATION_RESOLVED = "recommendation.resolved"
EVENT_TYPES = (
    MACHINE_STATUS_CHANGED,
    MACHINE_OFFLINE,
    MACHINE_MAINTENANCE_CHANGED,
    RUN_FINISHED,
    RUN_WAITING,
    QUEUE_DEPTH_EXCEEDED,
    RECOMMENDATION_RAISED,
    RECOMMENDATION_RESOLVED,
)
PING = "webhook.ping"  # sent to one endpoint on request, whatever it subscribed to

# How long a delivery is retried (R43: up to a day).
RETRY_WINDOW = timedelta(days=1)


def subscribed(event_types: str) -> list[str]:
    """An endpoint's ``event_types`` column as a list."""
    types: list[str] = json.loads(event_types)
    return types


def subscription_pattern(event_type: str) -> str:
    """What ``event_types`` (a JSON list of names, none holding % or _) is LIKE when it holds
    ``event_type``."""
    return f'%"{event_type}"%'


@dataclass(frozen=True)
class Happened:
    environment_id: str
    type: str
    data: dict[str, Any]
    at: datetime


_SUBSCRIBERS = Prepared(
    select(col(WebhookEndpoint.id)).where(
        col(WebhookEndpoint.environment_id) == bindparam("environment_id"),
        col(WebhookEndpoint.event_types).like(bindparam("pattern")),
        col(WebhookEndpoint.paused) == false(),
        col(WebhookEndpoint.disabled_reason).is_(None),
    )
)
_EVENT_COLUMNS = tuple(c.key for c in table_of(WebhookEvent).columns)
_ADD_EVENT = Prepared(
    insert(table_of(WebhookEvent)).values({key: bindparam(key) for key in _EVENT_COLUMNS})
)
_DELIVERY_COLUMNS = (
    "id",
    "event_id",
    "endpoint_id",
    "status",
    "attempts",
    "created_at",
    "give_up_at",
    "next_attempt_at",
)
_ADD_DELIVERY = Prepared(
    insert(table_of(WebhookDelivery)).values({key: bindparam(key) for key in _DELIVERY_COLUMNS})
)


def event_row(happened: Happened) -> dict[str, Any]:
    return {
        "id": new_id(),
        "environment_id": happened.environment_id,
        "type": happened.type,
        "occurred_at": happened.at,
        "data": json.dumps(happened.data, separators=(",", ":"), sort_keys=True),
    }


def delivery_row(event_id: str, endpoint_id: str, at: datetime) -> dict[str, Any]:
    return {
        "id": new_id(),
        "event_id": event_id,
        "endpoint_id": endpoint_id,
        "status": DeliveryStatus.PENDING,
        "attempts": 0,
        "created_at": at,
        "give_up_at": at + RETRY_WINDOW,
        "next_attempt_at": at,
    }


def steps(happened: Happened) -> Generator[Fetch | Execute, Any, int]:
    """The statements that record ``happened`` for its subscribers; how many there are."""
    rows = yield Fetch(
        _SUBSCRIBERS,
        {
            "environment_id": happened.environment_id,
            "pattern": subscription_pattern(happened.type),
        },
    )
    if not rows:
        return 0
    event = event_row(happened)
    yield Execute(_ADD_EVENT, event)
    for row in rows:
        yield Execute(_ADD_DELIVERY, delivery_row(event["id"], row["id"], happened.at))
    return len(rows)


async def run_steps(
    session: AsyncSession | DriverTransaction, script: Generator[Fetch | Execute, Any, int]
) -> int:
    """Drive :func:`steps` in an ORM session or on a driver transaction."""
    if isinstance(session, DriverTransaction):
        return await session.run(script)
    connection = await session.connection()
    outcome: Any = None
    try:
        while True:
            step = script.send(outcome)
            result = await connection.execute(step.statement.statement, dict(step.parameters))
            if isinstance(step, Fetch):
                outcome = [dict(row) for row in result.mappings().all()]
            else:
                outcome = result.rowcount
    except StopIteration as done:
        return int(done.value)


def record(session: AsyncSession | DriverTransaction, happened: Happened) -> None:
    """Record ``happened`` for the environment's subscribed endpoints, in ``session``'s
    transaction, just before it commits."""
    pending: list[Happened] | None = session.info.get("webhook_events")
    if pending is None:
        pending = session.info["webhook_events"] = []
        recorded = pending

        async def write() -> None:
            session.info.pop("webhook_events", None)
            for each in recorded:
                await run_steps(session, steps(each))

        before_commit(session, write)
    pending.append(happened)


def run_finished(session: AsyncSession | DriverTransaction, run: FlowRun, at: datetime) -> None:
    """A run.finished event, recorded in the transaction that ended the run."""
    data = {
        "runId": run.id,
        "flowId": run.flow_id,
        "status": run.status.value,
        "errorCode": run.error_code,
        "errorMessage": run.error_message,
        "machineId": run.machine_id,
        "attempt": run.attempt,
        "queuedAt": run.queued_at.isoformat(),
        "startedAt": run.started_at.isoformat() if run.started_at else None,
        "endedAt": run.ended_at.isoformat() if run.ended_at else None,
    }
    record(session, Happened(run.environment_id, RUN_FINISHED, data, at))
