"""Graceful shutdown: stopping the event bus is prompt even when it is in the middle of
closing a failed backend connection (a Redis that went away), so SIGTERM never hangs on it."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from domain.bus.events import BroadcastEventBus, QueueChanged

pytestmark = pytest.mark.asyncio


class SlowToClose:
    """A backend whose publish fails and whose disconnect takes a while."""

    def __init__(self, url: str) -> None:
        self.closing = asyncio.Event()
        self._backend = self
        SlowToClose.last = self

    async def connect(self) -> None:
        pass

    async def disconnect(self) -> None:
        self.closing.set()
        await asyncio.sleep(3)

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator["SlowToClose"]:
        yield self

    async def get(self) -> None:
        await asyncio.Event().wait()  # nothing ever arrives

    async def publish(self, channel: str, message: str) -> None:
        raise ConnectionError("the backend went away")


@pytest.mark.rule("R36")
async def test_stopping_the_bus_while_it_closes_a_broken_backend_is_prompt() -> None:
    bus = BroadcastEventBus(
        "redis://127.0.0.1:1/0", probe_interval=0, broadcast_factory=SlowToClose
    )
    await bus.start()
    assert bus.connected
    await bus.publish(QueueChanged("env"))  # fails: the bus drops the backend and closes it
    await asyncio.wait_for(SlowToClose.last.closing.wait(), 5)  # now inside the close

    stopping = asyncio.create_task(bus.stop())
    done, _ = await asyncio.wait({stopping}, timeout=5)

    assert done, "the bus did not stop within 5 s"
    assert not bus.connected
