"""The event bus over Redis (domain/bus/redis_backend.py, broadcaster's public backend interface):
events go between buses, and a Redis that goes away ends the listener, so the bus reconnects
once it is back and has its subscribers re-read a snapshot (R36)."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from broadcaster import Broadcast, BroadcastBackend, Event
from redis.exceptions import ConnectionError as RedisConnectionError

from domain.bus.events import (
    RESYNC,
    BroadcastEventBus,
    MachineWorkChanged,
    QueueChanged,
    RunChanged,
)
from domain.bus.redis_backend import RedisPubSubBackend, SupervisedBroadcast


class _Redis:
    """A redis-server of this test's own, in the foreground (its process is ours to stop)."""

    def __init__(self, directory: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.directory = directory
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                *("redis-server", "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--dir", str(self.directory), "--save", "", "--appendonly", "no"),
            ],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[_Redis]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (.ci/services.sh installs it)")
    server = _Redis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_broadcasters_public_interface_is_what_the_backend_needs() -> None:
    """What domain/bus/redis_backend.py builds on, by its public names."""
    assert issubclass(RedisPubSubBackend, BroadcastBackend)
    assert issubclass(SupervisedBroadcast, Broadcast)
    for name in ("connect", "disconnect", "subscribe", "publish"):
        assert callable(getattr(Broadcast, name, None)), f"broadcaster.Broadcast.{name}"
    event = Event(channel="c", message="m")
    assert (event.channel, event.message) == ("c", "m")


async def _next(subscription: object) -> object:
    return await asyncio.wait_for(subscription.__anext__(), 10)  # type: ignore[attr-defined]


async def test_events_go_between_buses_on_one_redis(redis: _Redis) -> None:
    sender, receiver = (BroadcastEventBus(redis.url, probe_interval=0) for _ in range(2))
    await sender.start()
    await receiver.start()
    try:
        assert sender.connected and receiver.connected
        subscription = receiver.subscribe()
        listening = asyncio.ensure_future(_next(subscription))
        await asyncio.sleep(0)  # the subscriber's inbox is registered
        await sender.publish(RunChanged("run-1", "env"))
        assert await listening == RunChanged("run-1", "env")
    finally:
        await sender.stop()
        await receiver.stop()


async def test_a_dispatch_s_trace_travels_with_its_machine_s_event(redis: _Redis) -> None:
    """The traceparent a dispatch passes on (docs/operations.md, "Traces") reaches a machine's
    subscription on another instance."""
    traced = MachineWorkChanged("machine-1", "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01")
    sender, receiver = (BroadcastEventBus(redis.url, probe_interval=0) for _ in range(2))
    await sender.start()
    await receiver.start()
    try:
        with receiver.inbox("machine-1") as inbox:
            await sender.publish(traced)
            batch = await asyncio.wait_for(inbox.next_batch(), 5)
        assert batch.events == (traced,)
    finally:
        await sender.stop()
        await receiver.stop()


async def test_a_redis_restart_ends_the_listener_and_the_bus_resyncs(redis: _Redis) -> None:
    bus = BroadcastEventBus(redis.url, probe_interval=0, reconnect_delays=(0.05, 0.2))
    await bus.start()
    try:
        subscription = bus.subscribe()
        first = asyncio.ensure_future(_next(subscription))
        await asyncio.sleep(0)
        redis.stop()
        redis.start()
        assert await first == RESYNC  # reconnected: whatever was missed, re-read
        assert bus.connects == 2
        following = asyncio.ensure_future(_next(subscription))
        await asyncio.sleep(0)
        await bus.publish(QueueChanged("env"))
        assert await following == QueueChanged("env")
    finally:
        await bus.stop()


async def test_closing_a_broadcast_that_never_connected_closes_its_backend() -> None:
    broadcast = SupervisedBroadcast("redis://127.0.0.1:1/0")  # nothing listens there
    closed: list[bool] = []
    close_backend = broadcast.backend.disconnect

    async def disconnect() -> None:
        closed.append(True)
        await close_backend()

    broadcast.backend.disconnect = disconnect  # type: ignore[method-assign]
    with pytest.raises(RedisConnectionError):
        await broadcast.connect()
    assert broadcast.listener is None
    with pytest.raises(AttributeError):  # broadcaster's own disconnect: it never started
        await broadcast.disconnect()
    assert closed == [True]
