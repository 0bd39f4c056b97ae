"""The request time limit (``request_timeout_seconds``), watched by one timer for every request.

``asyncio.timeout`` schedules a timer per request and cancels it when the request ends. A
cancelled timer stays in the event loop's heap until its time comes, so with a 30 s limit and a
few thousand requests a second the heap holds tens of thousands of dead timers, and every request
pays to push onto it: about 4% of a small query's time. Here a request only records its deadline,
and one watcher task, ticking every ``tick`` seconds while requests are in flight, cancels those
past theirs. A request may so run up to ``tick`` longer than its limit.

The cancellation is undone as ``asyncio.timeout`` does it: the request's own code sees
:class:`TimeoutError`, and a cancellation from elsewhere (the client went away, shutdown) still
propagates as :class:`asyncio.CancelledError`.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

DEFAULT_TICK = 0.25


class RequestDeadlines:
    def __init__(self, tick: float = DEFAULT_TICK) -> None:
        self._tick = tick
        self._in_flight: dict[asyncio.Task[object], _Limit] = {}
        self._watcher: asyncio.Task[None] | None = None

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def limit(self, seconds: float) -> _Limit:
        """``async with deadlines.limit(s):`` raises TimeoutError once ``s`` seconds are up."""
        return _Limit(self, seconds)

    def _enter(self, limit: _Limit) -> None:
        self._in_flight[limit.task] = limit
        watcher = self._watcher
        if watcher is None or watcher.done():
            self._watcher = asyncio.get_running_loop().create_task(
                self._watch(), name="deskfleet-request-deadlines"
            )

    def _leave(self, limit: _Limit) -> None:
        if self._in_flight.get(limit.task) is limit:
            del self._in_flight[limit.task]

    async def _watch(self) -> None:
        # Ends when nothing is in flight: an idle server keeps no timer, and every event loop
        # (a test's, a server's) gets its own watcher on its next request.
        loop = asyncio.get_running_loop()
        while self._in_flight:
            await asyncio.sleep(self._tick)
            now = loop.time()
            for task, limit in list(self._in_flight.items()):
                if not limit.expired and now >= limit.deadline:
                    limit.expired = True
                    task.cancel()


class _Limit:
    __slots__ = ("_cancelling", "_deadlines", "_seconds", "deadline", "expired", "task")

    def __init__(self, deadlines: RequestDeadlines, seconds: float) -> None:
        self._deadlines = deadlines
        self._seconds = seconds
        self.expired = False

    async def __aenter__(self) -> _Limit:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a request time limit needs a task")
        self.task = task
        self._cancelling = task.cancelling()
        self.deadline = asyncio.get_running_loop().time() + self._seconds
        self._deadlines._enter(self)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._deadlines._leave(self)
        if not self.expired:
            return
        # Ours was one of the task's cancellations: take it back; the request's time is up only
        # if nobody else cancelled it too.
        if self.task.uncancel() <= self._cancelling and exc_type is asyncio.CancelledError:
            raise TimeoutError(f"the request ran past its {self._seconds:g}s") from exc
