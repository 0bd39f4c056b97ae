"""Domain events: notifications that something changed, published only after the commit.

Events carry ids, not state: a subscriber re-reads what it shows from the database, so a lost or
late message can delay an update but never corrupt one (R36).

Two buses implement the port:

- :class:`LocalEventBus`: in-process fan-out (tests, tools).
- :class:`BroadcastEventBus`: broadcaster underneath (``memory://`` in one process, ``redis://``
  between processes, through domain/bus/redis_backend.py's backend). broadcaster 0.3.1 keeps
  unbounded queues, lets its listener die silently and never reconnects, so this bus keeps the
  one broadcaster subscription to itself, fans out into bounded per-subscriber inboxes,
  supervises the listener (and probes the backend end to end) and reconnects with a back-off,
  then tells every subscriber to re-read a snapshot.

A subscriber's inbox is bounded (R37): when it is full, its pending events collapse into one
"resync" marker that makes the subscription re-read a fresh snapshot. Memory per subscriber is
therefore constant, whatever the publish rate and however slowly it reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlparse

from sqlmodel.ext.asyncio.session import AsyncSession

from domain.store.db import after_commit
from domain.store.prepared import DriverTransaction

log = logging.getLogger("deskfleet.events")


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
    traceparent: str | None = None  # the dispatch's span, when traced (domain/kernel/traces.py)


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

EVENT_TYPES: dict[str, type[Event]] = {
    cls.__name__: cls
    for cls in (
        MachineChanged,
        GroupChanged,
        QueueChanged,
        RunChanged,
        MachineWorkChanged,
        RecommendationChanged,
    )
}


def encode(event: Event) -> str:
    """The wire form of an event: compact JSON naming its type."""
    return json.dumps(
        {"type": type(event).__name__, **dataclasses.asdict(event)}, separators=(",", ":")
    )


def decode(text: str | bytes) -> Event | None:
    """An event from its wire form; ``None`` for anything unknown (a newer peer, garbage)."""
    try:
        data = json.loads(text)
        cls = EVENT_TYPES[data.pop("type")]
        return cls(**data)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


# --- subscribers ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Batch:
    """What a subscriber gets at once: the events queued since it last read, or a resync.

    ``resync`` means events may have been lost (inbox overflow, backend reconnect): re-read a
    snapshot instead of applying ``events``.
    """

    events: tuple[Event, ...] = ()
    resync: bool = False


RESYNC = Batch(resync=True)

DEFAULT_INBOX_SIZE = 256


class Inbox:
    """One subscriber's bounded queue of events; overflow collapses it into a resync."""

    def __init__(self, limit: int = DEFAULT_INBOX_SIZE) -> None:
        self._limit = max(1, limit)
        self._events: deque[Event] = deque()
        self._resync = False
        self._ready = asyncio.Event()
        self.overflows = 0
        self.listeners = 1  # subscriptions it serves (a shared feed serves many)

    def __len__(self) -> int:
        return len(self._events)

    def put(self, event: Event) -> None:
        if self._resync:
            return  # a snapshot will be re-read anyway
        if len(self._events) >= self._limit:
            self.overflows += 1
            self.request_resync()
            return
        self._events.append(event)
        self._ready.set()

    def request_resync(self) -> None:
        self._events.clear()
        self._resync = True
        self._ready.set()

    def take(self) -> Batch | None:
        """What is pending, without waiting; ``None`` if nothing is."""
        if self._resync:
            self._resync = False
            self._events.clear()
            self._ready.clear()
            return RESYNC
        if not self._events:
            self._ready.clear()
            return None
        events = tuple(self._events)
        self._events.clear()
        self._ready.clear()
        return Batch(events=events)

    def wake(self) -> None:
        """Let whoever waits in :meth:`wait` look again, with nothing new to take."""
        self._ready.set()

    async def wait(self) -> None:
        """Until something may be pending (or :meth:`wake`); nothing is taken."""
        await self._ready.wait()

    async def next_batch(self) -> Batch:
        """Wait for at least one event (or a resync), then take everything pending at once."""
        while True:
            batch = self.take()
            if batch is not None:
                return batch
            await self._ready.wait()


class EventBus(Protocol):
    async def publish(self, event: Event) -> None: ...

    def inbox(self, machine_id: str | None = None) -> contextlib.AbstractContextManager[Inbox]: ...

    def subscribe(self) -> AsyncIterator[Event | Batch]: ...


class LocalEventBus:
    """In-process fan-out into bounded inboxes."""

    def __init__(self, queue_size: int = DEFAULT_INBOX_SIZE) -> None:
        self._inboxes: set[Inbox] = set()
        # The inboxes that want one machine's events only (a runtime's own work), by machine.
        self._by_machine: dict[str, set[Inbox]] = {}
        self._queue_size = queue_size
        # Counts deliveries (and resyncs): a read started at generation g reflects every
        # event delivered up to g, so subscribers can share it (domain/realtime/watch.py).
        self.generation = 0

    @property
    def subscriber_count(self) -> int:
        every = sum(inbox.listeners for inbox in self._inboxes)
        return every + sum(len(boxes) for boxes in self._by_machine.values())

    async def publish(self, event: Event) -> None:
        self.deliver(event)

    def deliver(self, event: Event) -> None:
        self.generation += 1
        for inbox in list(self._inboxes):
            inbox.put(event)
        machine_id = getattr(event, "machine_id", None)
        if machine_id is not None:
            for inbox in list(self._by_machine.get(machine_id, ())):
                inbox.put(event)

    def resync_all(self) -> None:
        self.generation += 1
        for inbox in [*self._inboxes, *(b for boxes in self._by_machine.values() for b in boxes)]:
            inbox.request_resync()

    @contextlib.contextmanager
    def inbox(self, machine_id: str | None = None) -> Iterator[Inbox]:
        """An inbox registered at once: enter it *before* reading a snapshot, so nothing that
        commits after the read can be missed.

        ``machine_id``: only the events of that machine (those with that ``machine_id``), and
        resyncs. Thousands of runtimes each subscribed to their own work would otherwise all wake
        at every event of the fleet: at 2,000 machines and 20 runs a second that took the event
        loop whole, and a run reached its machine seconds after it was dispatched.
        """
        box = Inbox(self._queue_size)
        registry = (
            self._inboxes if machine_id is None else self._by_machine.setdefault(machine_id, set())
        )
        registry.add(box)
        try:
            yield box
        finally:
            registry.discard(box)
            if machine_id is not None and not registry:
                self._by_machine.pop(machine_id, None)

    async def subscribe(self) -> AsyncIterator[Event | Batch]:
        """Events one by one; :data:`RESYNC` where some may have been lost."""
        with self.inbox() as box:
            while True:
                batch = await box.next_batch()
                if batch.resync:
                    yield RESYNC
                for event in batch.events:
                    yield event

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


# --- broadcaster underneath -----------------------------------------------------------------

CHANNEL = "deskfleet.events"
SCHEMES = ("memory", "redis", "rediss")
_PROBE = "probe:"


class BackendLost(RuntimeError):
    pass


def _broadcast(url: str) -> Any:
    if urlparse(url).scheme == "memory":
        from broadcaster import Broadcast

        return Broadcast(url)
    from domain.bus.redis_backend import SupervisedBroadcast

    return SupervisedBroadcast(url)


class BroadcastEventBus(LocalEventBus):
    """Events through broadcaster: serialised once per publish, decoded once per process."""

    def __init__(
        self,
        url: str = "memory://",
        *,
        queue_size: int = DEFAULT_INBOX_SIZE,
        probe_interval: float | None = None,
        publish_timeout: float = 2.0,
        reconnect_delays: tuple[float, float] = (0.2, 5.0),
        broadcast_factory: Callable[[str], Any] = _broadcast,
    ) -> None:
        super().__init__(queue_size)
        self.url = url
        self._factory = broadcast_factory
        scheme = urlparse(url).scheme
        if broadcast_factory is _broadcast and scheme not in SCHEMES:
            raise ValueError(
                f"unsupported broadcast URL {url!r}: use memory:// or redis://host:port "
                "(broadcaster's postgres backend breaks under concurrent publishes)"
            )
        if probe_interval is None:
            probe_interval = 0.0 if scheme == "memory" else 5.0
        self._probe_interval = probe_interval
        self._publish_timeout = publish_timeout
        self._delays = reconnect_delays
        self._broadcast: Any = None
        self._connected = asyncio.Event()
        self._broken = asyncio.Event()
        self._probe_seen = asyncio.Event()
        self._probe_nonce = ""
        self._instance = uuid.uuid4().hex
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.connects = 0  # how many times the backend (re)connected

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def start(self, wait: float = 5.0) -> None:
        """Start the supervised listener; wait a little for the first connection (not forever:
        the server still starts while the backend is down, and catches up when it is back)."""
        self._stopping = False
        self._task = asyncio.create_task(self._supervise(), name="deskfleet-event-bus")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._connected.wait(), wait)
        if not self.connected:
            log.warning("event bus: %s is not reachable yet; retrying in the background", self.url)

    async def stop(self) -> None:
        if self._task is not None:
            # A cancellation landing while a broken backend is being closed is swallowed there
            # (_close suppresses everything); the flag still ends the loop (graceful shutdown).
            self._stopping = True
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def publish(self, event: Event) -> None:
        text = encode(event)
        broadcast = self._broadcast
        if broadcast is None or not self.connected:
            # The backend is down: local subscribers still hear it; everyone resyncs on reconnect.
            self.deliver(event)
            return
        try:
            await asyncio.wait_for(broadcast.publish(CHANNEL, text), self._publish_timeout)
        except Exception as exc:
            log.warning("event bus: publish failed (%s); reconnecting", exc)
            self.deliver(event)
            self._broken.set()

    async def _supervise(self) -> None:
        delay = self._delays[0]
        while not self._stopping:
            broadcast = None
            try:
                broadcast = self._factory(self.url)
                await asyncio.wait_for(broadcast.connect(), 10)
                async with broadcast.subscribe(CHANNEL) as subscriber:
                    self._broken.clear()
                    self._broadcast = broadcast
                    self._connected.set()
                    self.connects += 1
                    if self.connects > 1:
                        log.info("event bus: reconnected to %s", self.url)
                    # Whatever was published while we were away is lost: re-read snapshots.
                    self.resync_all()
                    delay = self._delays[0]
                    await self._pump(broadcast, subscriber)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("event bus: backend %s failed (%r); reconnecting", self.url, exc)
            finally:
                self._connected.clear()
                self._broadcast = None
                if broadcast is not None:
                    await self._close(broadcast)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._delays[1])

    @staticmethod
    async def _close(broadcast: Any) -> None:
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(broadcast.disconnect(), 5)

    async def _pump(self, broadcast: Any, subscriber: Any) -> None:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._read(subscriber))
            tasks.create_task(self._watch(broadcast))
            if self._probe_interval > 0:
                tasks.create_task(self._probe(broadcast))

    async def _read(self, subscriber: Any) -> None:
        # Whatever get() raises (broadcaster's Unsubscribed too) ends the pump: the supervisor
        # reconnects.
        while True:
            message = (await subscriber.get()).message
            if isinstance(message, bytes):
                message = message.decode()
            if message.startswith(_PROBE):
                if message == self._probe_nonce:
                    self._probe_seen.set()
                continue
            event = decode(message)
            if event is None:
                log.warning("event bus: ignored an unknown message")
                continue
            self.deliver(event)

    async def _watch(self, broadcast: Any) -> None:
        """Fail as soon as the backend's listener stops (domain/bus/redis_backend.py's
        ``listener``; broadcaster's own fan-out task never ends by itself over it), or a publish
        failed."""
        watched: list[asyncio.Future[Any]] = [asyncio.ensure_future(self._broken.wait())]
        listener = getattr(broadcast, "listener", None)
        if isinstance(listener, asyncio.Future):
            watched.append(listener)
        try:
            await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
        finally:
            watched[0].cancel()
        raise BackendLost("the backend listener stopped")

    async def _probe(self, broadcast: Any) -> None:
        """End to end: a message we publish must come back, or the backend is gone."""
        while True:
            await asyncio.sleep(self._probe_interval)
            self._probe_nonce = f"{_PROBE}{self._instance}:{uuid.uuid4().hex}"
            self._probe_seen.clear()
            await asyncio.wait_for(
                broadcast.publish(CHANNEL, self._probe_nonce), self._publish_timeout
            )
            try:
                await asyncio.wait_for(self._probe_seen.wait(), self._probe_interval)
            except TimeoutError:
                raise BackendLost("a probe message did not come back") from None


def emit(bus: EventBus, session: AsyncSession | DriverTransaction, event: Event) -> None:
    """Publish ``event`` once the session's transaction has committed, never before; the same
    event emitted twice in one transaction is published once (events only say "re-read this").
    Events go out in the order first emitted, by one callback per transaction (a dispatcher
    pass emits four per run)."""
    emitted: dict[Event, None] | None = session.info.get("emitted")
    if emitted is None:
        emitted = session.info["emitted"] = {}
        pending = emitted

        async def publish() -> None:
            for each in pending:
                await bus.publish(each)

        after_commit(session, publish)
    emitted[event] = None
