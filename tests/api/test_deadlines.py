"""The request time limit's watcher (api/transport/deadlines.py): what asyncio.timeout did, one timer for all.

The HTTP path (a request answered TIMEOUT while a writer holds the lock) is in test_limits.py.
"""

from __future__ import annotations

import asyncio

import pytest

from api.transport.deadlines import RequestDeadlines


async def test_a_request_past_its_limit_gets_timeout_error_within_a_tick() -> None:
    deadlines = RequestDeadlines(tick=0.05)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TimeoutError):
        async with deadlines.limit(0.2):
            await asyncio.sleep(5)
    took = loop.time() - started
    assert 0.2 <= took < 0.2 + 0.05 + 0.5  # the limit, at most a tick late (plus a busy host)
    assert deadlines.in_flight == 0
    # Nothing of the cancellation is left on the task: it carries on normally.
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0
    await asyncio.sleep(0.01)


async def test_a_request_within_its_limit_is_untouched() -> None:
    deadlines = RequestDeadlines(tick=0.01)
    async with deadlines.limit(1):
        await asyncio.sleep(0.05)
        value = 42
    assert value == 42
    assert deadlines.in_flight == 0


async def test_requests_time_out_each_on_its_own_deadline() -> None:
    deadlines = RequestDeadlines(tick=0.02)

    async def request(limit: float, work: float) -> str:
        try:
            async with deadlines.limit(limit):
                await asyncio.sleep(work)
                return "done"
        except TimeoutError:
            return "timed out"

    results = await asyncio.gather(
        request(0.1, 1), request(2, 0.2), request(0.3, 0.05), request(0.15, 3)
    )
    assert results == ["timed out", "done", "done", "timed out"]
    assert deadlines.in_flight == 0


async def test_a_cancellation_from_elsewhere_stays_a_cancellation() -> None:
    """The client went away or the server stops: not a TIMEOUT answer, the task is cancelled."""
    deadlines = RequestDeadlines(tick=0.01)
    entered = asyncio.Event()

    async def request() -> None:
        async with deadlines.limit(10):
            entered.set()
            await asyncio.sleep(10)

    task = asyncio.create_task(request())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert deadlines.in_flight == 0


async def test_cancelled_from_elsewhere_as_the_limit_ends_is_still_cancelled() -> None:
    """Both at once (as asyncio.timeout): the outer cancellation wins."""
    deadlines = RequestDeadlines(tick=0.01)

    async def request() -> None:
        async with deadlines.limit(0.05):
            try:
                await asyncio.sleep(10)
            finally:
                # The watcher has cancelled us (our limit is up); someone else does too.
                asyncio.current_task().cancel()  # type: ignore[union-attr]
                await asyncio.sleep(0)

    task = asyncio.create_task(request())
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_the_watcher_stops_when_nothing_is_in_flight_and_comes_back() -> None:
    deadlines = RequestDeadlines(tick=0.01)
    async with deadlines.limit(1):
        await asyncio.sleep(0)
    watcher = deadlines._watcher
    assert watcher is not None
    await asyncio.wait_for(watcher, 1)  # an idle server keeps no timer
    with pytest.raises(TimeoutError):
        async with deadlines.limit(0.05):
            await asyncio.sleep(5)
    assert deadlines._watcher is not watcher
