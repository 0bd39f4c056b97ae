"""Subscribers share reads without ever getting one older than their events (R36)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from domain.bus.events import LocalEventBus, MachineChanged
from domain.bus.live import _SEEN, shared_read


@pytest.mark.rule("R36")
async def test_a_read_is_shared_until_an_event_arrives_then_read_again() -> None:
    bus = LocalEventBus()
    ctx = SimpleNamespace(events=bus)
    reads: list[int] = []

    async def read() -> int:
        reads.append(bus.generation)
        await asyncio.sleep(0)
        return len(reads)

    _SEEN.set(bus.generation)
    together = await asyncio.gather(*(shared_read(ctx.events, "view", read) for _ in range(50)))
    assert together == [1] * 50 and len(reads) == 1  # fifty subscribers, one read

    bus.deliver(MachineChanged("m1", "e1"))
    _SEEN.set(bus.generation)  # this subscriber has taken the event: the old read is too old
    assert await shared_read(ctx.events, "view", read) == 2
    assert await shared_read(ctx.events, "view", read) == 2  # and the new one is shared again
    assert await shared_read(ctx.events, "other view", read) == 3  # per key


@pytest.mark.rule("R36")
async def test_outside_a_subscription_every_call_reads() -> None:
    bus = LocalEventBus()
    ctx = SimpleNamespace(events=bus)
    count = [0]

    async def read() -> int:
        count[0] += 1
        return count[0]

    _SEEN.set(None)
    assert [await shared_read(ctx.events, "view", read) for _ in range(3)] == [1, 2, 3]
