"""Domain events: notifications that something changed, published only after the commit.

Events carry ids, not state: a subscriber re-reads what it shows from the database, so a lost or
late message can delay an update but never corrupt one (R36).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from sqlmodel.ext.asyncio.session import AsyncSession

from domain.db import after_commit


@dataclass(frozen=True)
class MachineChanged:
    """Status, maintenance, group, counts or details of a machine changed."""

    machine_id: str
    environment_id: str


@dataclass(frozen=True)
class GroupChanged:
    group_id: str
    environment_id: str


@dataclass(frozen=True)
class QueueChanged:
    environment_id: str
    machine_id: str | None = None
    group_id: str | None = None


@dataclass(frozen=True)
class RunChanged:
    run_id: str
    environment_id: str


@dataclass(frozen=True)
class MachineWorkChanged:
    """A machine runtime has new assignments or commands to fetch."""

    machine_id: str


@dataclass(frozen=True)
class RecommendationChanged:
    environment_id: str
    recipient_id: str


Event = (
    MachineChanged
    | GroupChanged
    | QueueChanged
    | RunChanged
    | MachineWorkChanged
    | RecommendationChanged
)


class EventBus(Protocol):
    async def publish(self, event: Event) -> None: ...

    def subscribe(self) -> AsyncIterator[Event]: ...


class LocalEventBus:
    """In-process fan-out; each subscriber's queue is bounded and drops its oldest when full."""

    def __init__(self, queue_size: int = 1000) -> None:
        self._queues: set[asyncio.Queue[Event]] = set()
        self._queue_size = queue_size

    async def publish(self, event: Event) -> None:
        for queue in list(self._queues):
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(event)

    async def subscribe(self) -> AsyncIterator[Event]:
        queue: asyncio.Queue[Event] = asyncio.Queue(self._queue_size)
        self._queues.add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._queues.discard(queue)


def emit(bus: EventBus, session: AsyncSession, event: Event) -> None:
    """Publish ``event`` once the session's transaction has committed, never before."""

    async def publish() -> None:
        await bus.publish(event)

    after_commit(session, publish)
