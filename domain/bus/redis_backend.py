"""A Redis backend for broadcaster, on its public ``BroadcastBackend`` interface and redis-py's
public pub/sub; and the ``Broadcast`` the event bus (domain/bus/events.py) uses over it.

It differs from broadcaster 0.3.1's own Redis backend in three ways:

- its subscriber connection never retries. redis-py silently reconnects and re-subscribes a
  pub/sub connection, and every message published meanwhile is lost with nobody knowing to
  re-read a snapshot. Without retries the error surfaces, the listener stops, and the bus's
  supervisor reconnects and resyncs. The publishing connection keeps redis-py's retries: a
  duplicated notification is harmless.
- its listener wakes only once SUBSCRIBE has completed (0.3.1's wakes before: with redis-py >= 5
  it then finds no channel, stops listening and never wakes again), and ends when the
  subscription does, so that :attr:`RedisPubSubBackend.listener` ending tells the supervisor
  (never a silent hang).
- :class:`SupervisedBroadcast` closes it whatever state connecting or listening left it in.
"""

from __future__ import annotations

import asyncio
import contextlib

from broadcaster import Broadcast, BroadcastBackend, Event
from redis import asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff


class RedisPubSubBackend(BroadcastBackend):
    def __init__(self, url: str) -> None:
        self._publisher = aioredis.Redis.from_url(url)
        self._subscriber = aioredis.Redis.from_url(
            url, retry=Retry(NoBackoff(), 0), socket_connect_timeout=5
        )
        self._pubsub = self._subscriber.pubsub()
        self._subscribed = asyncio.Event()
        self._published: asyncio.Queue[Event] = asyncio.Queue()
        self.listener: asyncio.Task[None] | None = None
        """Moves what arrives to :meth:`next_published`; it ends when the subscription does."""

    async def connect(self) -> None:
        await self._pubsub.connect()  # type: ignore[no-untyped-call]
        self.listener = asyncio.create_task(self._listen(), name="deskfleet-redis-listener")

    async def disconnect(self) -> None:
        """Close both connections; safe to call again, and after a failed :meth:`connect`."""
        if self.listener is not None:
            self.listener.cancel()
        for close in (self._pubsub.aclose, self._subscriber.aclose, self._publisher.aclose):
            with contextlib.suppress(Exception):
                await close()

    async def subscribe(self, group: str) -> None:
        await self._pubsub.subscribe(group)
        self._subscribed.set()

    async def unsubscribe(self, group: str) -> None:
        await self._pubsub.unsubscribe(group)

    async def publish(self, channel: str, message: str | bytes) -> None:
        await self._publisher.publish(channel, message)

    async def next_published(self) -> Event:
        return await self._published.get()

    async def _listen(self) -> None:
        await self._subscribed.wait()
        async for message in self._pubsub.listen():
            if message["type"] == "message":
                data = message["data"]
                self._published.put_nowait(
                    Event(
                        channel=message["channel"].decode(),
                        message=data.decode() if isinstance(data, bytes) else data,
                    )
                )


class SupervisedBroadcast(Broadcast):
    """broadcaster's fan-out over a :class:`RedisPubSubBackend` the bus watches and closes."""

    def __init__(self, url: str) -> None:
        self.backend = RedisPubSubBackend(url)
        super().__init__(backend=self.backend)

    @property
    def listener(self) -> asyncio.Task[None] | None:
        """The backend's listener: when it ends, nothing more arrives (see the module)."""
        return self.backend.listener

    async def disconnect(self) -> None:
        # Broadcast.disconnect() stops at a listener that failed, or one never started (connect
        # failed): the backend is closed all the same.
        try:
            await super().disconnect()
        finally:
            await self.backend.disconnect()
