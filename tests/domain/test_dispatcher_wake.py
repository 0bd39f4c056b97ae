"""The dispatcher's task wakes for what can change a decision (R25-R28, R30), and only for that.

It reads its own inbox on the event bus instead of running a listener task per event; these
tests pin what that inbox wakes it for. Passes are counted by a spy that calls the real
``dispatch_once`` on the test's database.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from domain.bus.events import (
    Inbox,
    MachineChanged,
    MachineWorkChanged,
    QueueChanged,
    RecommendationChanged,
)
from domain.context import DomainContext
from domain.dispatch import dispatcher as dispatcher_module
from domain.dispatch.dispatcher import Dispatcher
from tests.graphql import Fleet
from tests.runs_given import Runs

QUIET = 0.3  # seconds: several coalescing windows (MIN_COALESCE) with nothing to do


async def test_an_inbox_wait_returns_on_an_event_or_a_wake_and_takes_nothing() -> None:
    inbox = Inbox(limit=4)
    waiting = asyncio.create_task(inbox.wait())
    await asyncio.sleep(0.01)
    assert not waiting.done()
    inbox.put(QueueChanged("e1"))
    await asyncio.wait_for(waiting, 1)
    assert len(inbox) == 1  # wait() took nothing
    batch = inbox.take()
    assert batch is not None and batch.events == (QueueChanged("e1"),)

    waiting = asyncio.create_task(inbox.wait())
    await asyncio.sleep(0.01)
    assert not waiting.done()
    inbox.wake()
    await asyncio.wait_for(waiting, 1)
    assert inbox.take() is None  # woken with nothing new


@pytest.fixture
async def passes(
    domain: DomainContext, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Dispatcher, list[bool]]]:
    """A started dispatcher on the test's database, and the ``plan_first`` of every pass it
    has made."""
    made: list[bool] = []
    real = dispatcher_module.dispatch_once

    async def counted(ctx: DomainContext, **kwargs: Any) -> Any:
        made.append(bool(kwargs.get("plan_first", True)))
        return await real(ctx, **kwargs)

    monkeypatch.setattr(dispatcher_module, "dispatch_once", counted)
    dispatcher = Dispatcher(domain)
    await dispatcher.start()
    try:
        await _until(lambda: len(made) >= 1, "the pass at start")
        await asyncio.sleep(QUIET)
        yield dispatcher, made
    finally:
        await dispatcher.stop()


async def _until(predicate: Callable[[], bool], what: str, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


@pytest.mark.rule("R26")
async def test_events_that_cannot_change_a_decision_start_no_pass(
    domain: DomainContext, passes: tuple[Dispatcher, list[bool]]
) -> None:
    _, made = passes
    before = len(made)
    for _ in range(20):
        await domain.events.publish(MachineWorkChanged("m1"))
        await domain.events.publish(RecommendationChanged("e1", "u1"))
    await asyncio.sleep(QUIET)
    assert len(made) == before


@pytest.mark.rule("R26")
async def test_a_queue_change_starts_one_pass_for_a_burst(
    domain: DomainContext, passes: tuple[Dispatcher, list[bool]]
) -> None:
    _, made = passes
    before = len(made)
    for _ in range(50):  # one burst, delivered at once (no await between: no timing to race)
        domain.events.deliver(QueueChanged("e1"))  # type: ignore[attr-defined]
    await _until(lambda: len(made) > before, "a pass after the queue changed")
    await asyncio.sleep(QUIET)
    assert len(made) == before + 1
    assert made[-1] is True  # nothing was claimed before: it plans before taking the lock


@pytest.mark.rule("R26")
async def test_a_poke_starts_a_pass(passes: tuple[Dispatcher, list[bool]]) -> None:
    dispatcher, made = passes
    before = len(made)
    dispatcher.poke()
    await _until(lambda: len(made) > before, "a pass after the poke")


@pytest.mark.rule("R30")
async def test_an_overflowing_inbox_wakes_it_as_a_resync(
    domain: DomainContext, passes: tuple[Dispatcher, list[bool]]
) -> None:
    """More idle events than its inbox holds: events were dropped, and one of them might have
    been a queued run's, so it must look again rather than leave the run waiting (R30)."""
    _, made = passes
    before = len(made)
    for _ in range(600):  # past the inbox's bound, without a pause
        domain.events.deliver(MachineWorkChanged("m1"))  # type: ignore[attr-defined]
    await _until(lambda: len(made) > before, "a pass after the resync")


@pytest.mark.rule("R26")
async def test_a_machine_change_starts_a_pass_only_while_something_waits(
    domain: DomainContext, fleet: Fleet, runs: Runs, passes: tuple[Dispatcher, list[bool]]
) -> None:
    """With no run queued and no recommendation open, a machine's change (a fleet's heartbeats
    publish one at every session change) has nothing to decide; with a run queued, the change
    may be what lets it go."""
    _, made = passes
    before = len(made)
    for _ in range(20):
        await domain.events.publish(MachineChanged("m1", "e1"))
    await asyncio.sleep(QUIET)
    assert len(made) == before

    owner = await fleet.person("ENVIRONMENT_MAKER", attended_licence=True)
    await runs.capacity(10)
    machine = await runs.machine(owner, bots=1)
    target = await runs.target(owner, machine=machine)
    await runs.heartbeat(machine, {target.username: "ACTIVE"})  # R26: the run has to wait
    await runs.trigger(target)
    await asyncio.sleep(QUIET)
    queued = len(made)
    await domain.events.publish(MachineChanged(machine.id, fleet.environment_id))
    await _until(lambda: len(made) > queued, "a pass after the machine changed")
