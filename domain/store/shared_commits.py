"""Write scripts that wait for SQLite's write turn together: one trip and one commit for them all.

SQLite lets one writer in at a time. When many short write transactions come at once (a fleet's
heartbeats: in `heartbeats` 14 of the 16 requests under way were waiting for the turn, most of
the time), each paid its own hand-over of the turn, trip to the database thread, BEGIN and COMMIT.
:class:`SharedCommits` gives the turn to every script queued when it comes instead: they run in
one trip to the database thread, each under a savepoint of its own, and commit together
(domain/store/prepared.py's ``run_together``). A script that refuses (raises a DomainError) is
undone alone and its caller gets its error; anything else (a storage fault) fails them all, as it
would have failed each. Nothing waits for a batch to fill: a script that comes while a batch runs
goes with whatever else comes meanwhile, at the next turn. In `heartbeats` it took a heartbeat's
CPU from ~740 to ~550 us (docs/performance.md).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from domain.store.prepared import Outcome, Script

T = TypeVar("T")
RunTogether = Callable[[list[Script[Any]]], Awaitable[list[Outcome]]]


class SharedCommits:
    """The scripts of one database that wait for its write turn (see the module's docstring)."""

    def __init__(self, run_together: RunTogether) -> None:
        self._run_together = run_together  # one transaction: every script, then COMMIT
        self._queued: list[tuple[Script[Any], asyncio.Future[Any]]] = []
        self._turns: asyncio.Task[None] | None = None

    async def run(self, script: Script[T]) -> T:
        """What ``script`` returned, once its transaction has committed (or its error)."""
        answer: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queued.append((script, answer))
        if self._turns is None:
            # A task of its own: a caller that goes away (its request's deadline) must not take
            # the others' scripts with it. In a context of its own too: its spans and log lines
            # belong to no one request (the one that started it may be long answered).
            self._turns = asyncio.create_task(self._take_turns(), context=contextvars.Context())
        return await answer

    async def _take_turns(self) -> None:
        try:
            while self._queued:
                batch, self._queued = self._queued, []
                await self._commit(batch)
        except BaseException:  # cancelled: nobody is left to take the next turns
            for _, answer in self._queued:
                answer.cancel()
            self._queued = []
            raise
        finally:
            self._turns = None

    async def _commit(self, batch: list[tuple[Script[Any], asyncio.Future[Any]]]) -> None:
        try:
            outcomes = await self._run_together([script for script, _ in batch])
        except Exception as exc:
            for _, answer in batch:
                if not answer.done():
                    answer.set_exception(exc)
            return
        except BaseException:  # cancelled (the loop is closing): so are the callers
            for _, answer in batch:
                answer.cancel()
            raise
        for (_, answer), (returned, value) in zip(batch, outcomes, strict=True):
            if answer.done():  # its caller went away; the script has run all the same
                continue
            if returned:
                answer.set_result(value)
            else:
                answer.set_exception(value)
