"""Live views over the event bus (R35, R36): a snapshot first, then what changed.

Every stream follows one pattern (:func:`follow`): register an inbox on the bus, read a snapshot,
send it, then on each batch of relevant events re-read and send what changed. Events only say
"re-read this"; a resync (inbox overflow, bus reconnect) re-sends a whole snapshot. A lost message
therefore delays an update and never corrupts one. Which reads a subscriber may make is the
business of the context that owns the view (:mod:`domain.realtime.watch`, recommendations).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from domain.bus.events import Event, EventBus
from domain.kernel.principals import Principal

T = TypeVar("T")
PrincipalSource = Callable[[], Awaitable[Principal]]


@dataclass(frozen=True)
class Update(Generic[T]):
    """A snapshot (``snapshot``: ``items`` is the whole view) or a change to the last one."""

    snapshot: bool
    items: list[T]
    removed: list[str] = field(default_factory=list)


# --- reads shared between subscribers --------------------------------------------------------
#
# A change reaches every subscriber at once; those that would read the same thing share one read.
# The bus counts deliveries (``generation``): a read started at generation g reflects every event
# delivered up to g (events are published after their commit), so a subscriber that has taken
# its events at generation n may use any read of the same key started at g >= n.

_SEEN: ContextVar[int | None] = ContextVar("deskfleet_watch_seen", default=None)
_SHARED: weakref.WeakKeyDictionary[object, dict[Hashable, tuple[int, asyncio.Future[Any]]]] = (
    weakref.WeakKeyDictionary()
)
_SHARED_KEYS = 4096  # per bus: past this, finished reads are forgotten


async def shared_read(bus: EventBus, key: Hashable, read: Callable[[], Awaitable[T]]) -> T:
    """``read()``, or the result of a read of ``key`` that started after the caller's events."""
    now = getattr(bus, "generation", None)
    seen = _SEEN.get()
    if now is None or seen is None:
        return await read()
    reads = _SHARED.setdefault(bus, {})
    entry = reads.get(key)
    if entry is not None and entry[0] >= seen:
        _, future = entry
        if not (future.done() and (future.cancelled() or future.exception() is not None)):
            return await asyncio.shield(future)
    if len(reads) >= _SHARED_KEYS:
        for stale in [k for k, (_, f) in reads.items() if f.done()]:
            del reads[stale]
    future = asyncio.ensure_future(read())
    reads[key] = (now, future)
    return await asyncio.shield(future)


async def follow(
    bus: EventBus,
    read: Callable[[], Awaitable[dict[str, T]]],
    relevant: Callable[[Event], bool],
) -> AsyncIterator[Update[T]]:
    """Snapshot first, then what changed, re-read after each batch of relevant events."""

    def seen_now() -> None:
        _SEEN.set(getattr(bus, "generation", None))

    with bus.inbox() as inbox:  # before the read: nothing committed after it is missed
        seen_now()
        current = await read()
        yield Update(snapshot=True, items=list(current.values()))
        while True:
            batch = await inbox.next_batch()
            seen_now()
            if batch.resync:
                current = await read()
                yield Update(snapshot=True, items=list(current.values()))
                continue
            if not any(relevant(event) for event in batch.events):
                continue
            fresh = await read()
            changed = [item for key, item in fresh.items() if current.get(key) != item]
            removed = [key for key in current if key not in fresh]
            current = fresh
            if changed or removed:
                yield Update(snapshot=False, items=changed, removed=removed)
