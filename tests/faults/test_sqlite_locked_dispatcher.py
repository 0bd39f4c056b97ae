"""Faults: the dispatcher through a period of SQLite's ``database is locked``.

tests/faults/test_database_busy.py shows requests failing cleanly while another process holds the
write lock; this is the dispatcher's side (R30). Runs are queued, another process takes SQLite's
write lock for longer than the busy timeout, and the background dispatcher (the real task, its
own connection pool) is started: its passes fail with "database is locked" (logged), nothing is
half-written (every run still QUEUED, attempt 0). Once the lock is released it resumes by
itself, without a restart or a poke: the runs are dispatched once each, worked through the API,
and a run triggered afterwards is dispatched too (it still listens). No run lost, none twice.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from pathlib import Path

import pytest

from domain.context import DomainContext
from domain.dispatch.dispatcher import Dispatcher
from domain.kernel.settings import Settings
from domain.store.db import SQLITE_BUSY_TIMEOUT_MS
from tests.databases import backend_name
from tests.graphql import Fleet
from tests.runs_given import Runs

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.rule("R30"),
    pytest.mark.skipif(backend_name() != "sqlite", reason="holds SQLite's write lock"),
]


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        cause = record.exc_info[1] if record.exc_info else None
        self.messages.append(f"{record.getMessage()} | {cause}")


async def eventually(predicate, within: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within
    while not await predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


async def test_the_dispatcher_fails_its_passes_while_locked_and_resumes_by_itself(
    fleet: Fleet, domain: DomainContext, settings: Settings
) -> None:
    runs = Runs(fleet)
    owner = await fleet.person("ENVIRONMENT_MAKER")
    await runs.capacity(3)
    machine = await runs.machine(owner, bots=2)
    target = await runs.target(owner, machine=machine)
    queued = [await runs.trigger(target) for _ in range(3)]  # two bots: the third waits

    capture = Capture()
    logger = logging.getLogger("deskfleet.dispatcher")
    logger.addHandler(capture)
    path = Path(settings.database_url.removeprefix("sqlite:///"))
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    locked = True
    dispatcher = Dispatcher(domain)
    try:
        await dispatcher.start()
        started = time.monotonic()

        async def failed_once() -> bool:
            return any(m.startswith("dispatcher pass failed") for m in capture.messages)

        await eventually(failed_once, SQLITE_BUSY_TIMEOUT_MS / 1000 + 20, "a failed pass")
        during = [await runs.run(r) for r in queued]  # reads go on meanwhile (WAL)
        held_for = time.monotonic() - started
        other.execute("ROLLBACK")
        other.close()
        locked = False

        # It resumes by itself: two runs dispatched (once each), the third waits for a bot.
        async def two_dispatched() -> bool:
            states = [(await runs.run(r))["status"] for r in queued]
            return states.count("DISPATCHED") == 2

        await eventually(two_dispatched, 30, "the dispatcher to resume")
        work = await runs.assignments(machine)
        for assignment in work:
            confirmed = await runs.confirm(machine, assignment["runId"], assignment["attempt"])
            assert confirmed["__typename"] == "FlowRunPayload", confirmed
            finished = await runs.finish(machine, assignment["runId"], assignment["attempt"])
            assert finished["__typename"] == "FlowRunPayload", finished

        # ... and keeps listening: the third run, then one triggered now, are dispatched too.
        later = await runs.trigger(target)
        for run_id in [r for r in queued if r not in {a["runId"] for a in work}] + [later]:

            async def dispatched(run_id: str = run_id) -> bool:
                return (await runs.run(run_id))["status"] == "DISPATCHED"

            await eventually(dispatched, 30, f"{run_id} dispatched")
            run = await runs.run(run_id)
            assert (await runs.confirm(machine, run_id, run["attempt"]))["__typename"] == (
                "FlowRunPayload"
            )
            assert (await runs.finish(machine, run_id, run["attempt"]))["__typename"] == (
                "FlowRunPayload"
            )
    finally:
        await dispatcher.stop()
        logger.removeHandler(capture)
        if locked:
            other.execute("ROLLBACK")
            other.close()

    failures = [m for m in capture.messages if m.startswith("dispatcher pass failed")]
    assert failures and all("database is locked" in m for m in failures), failures
    assert held_for >= SQLITE_BUSY_TIMEOUT_MS / 1000 * 0.9  # it waited its turn first
    # Nothing half-written while locked: still queued, never attempted.
    assert [(r["status"], r["attempt"], r["machine"]) for r in during] == [("QUEUED", 0, None)] * 3
    # Every run ended once, on its first attempt: none lost, none dispatched twice.
    for run_id in [*queued, later]:
        run = await runs.run(run_id)
        assert (run["status"], run["attempt"]) == ("SUCCEEDED", 1), run
