"""The dispatcher: gives queued runs to bots (R25, R26), times out what waits too long (R27), puts
back unconfirmed assignments and fails runs of lost machines (R28), never twice (R30).

Two entry points, both safe to call from any number of tasks or server instances at once:

- :func:`dispatch_once` plans every environment with queued runs and claims each assignment with
  a conditional ``UPDATE ... WHERE status = 'QUEUED'`` inside one transaction that also holds the
  environment's queue lock (a transaction-level advisory lock on PostgreSQL; SQLite writers are
  serialised by ``BEGIN IMMEDIATE``), so capacity read and capacity taken are the same.
- :func:`sweep_once` applies the time-based rules, each change a conditional update as well.

:class:`Dispatcher` is the asyncio task the app's lifespan runs: it wakes at once on any event that
can change a decision and sweeps every ``dispatch_sweep_interval_seconds``. Events are published
only after the transaction that made the change has committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from opentelemetry import trace
from opentelemetry.trace import Link
from sqlalchemy import bindparam, exists, or_, text, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.bus.events import (
    Inbox,
    MachineWorkChanged,
    RecommendationChanged,
    emit,
)
from domain.context import DomainContext
from domain.kernel.traces import continued
from domain.recommendations import recommendations
from domain.runs.queue_state import load_dispatch_state
from domain.runs.runs import (
    MACHINE_LOST,
    NO_CANDIDATE_MACHINE,
    TARGET_REMOVED,
    run_events,
)
from domain.statistics import rollups
from domain.store.db import Database
from domain.store.models import Environment, FlowRun, Machine, RunStatus
from domain.store.models.columns import UTCDateTime
from domain.store.models.tables import table_of
from domain.store.queue_lock import lock_environment_queue
from domain.store.storage import fault_of

log = logging.getLogger("deskfleet.dispatcher")


@dataclass(frozen=True)
class Dispatched:
    run_id: str
    machine_id: str
    attempt: int
    waited_seconds: float = 0.0  # queued -> dispatched, for the dispatch latency metric


@dataclass
class SweepResult:
    requeued: list[str] = field(default_factory=list)  # R28: dispatch not confirmed in time
    lost: list[str] = field(default_factory=list)  # R28: FAILED / MACHINE_LOST
    timed_out: list[str] = field(default_factory=list)  # R27: TIMED_OUT / NO_CANDIDATE_MACHINE
    orphaned: list[str] = field(default_factory=list)  # queue gone: CANCELLED / TARGET_REMOVED

    def __bool__(self) -> bool:
        return bool(self.requeued or self.lost or self.timed_out or self.orphaned)


# --- dispatching -------------------------------------------------------------------------------


# Core and built once: every pass asks, and through the ORM the asking cost ten times the query.
_QUEUED_ENVIRONMENTS = (
    select(table_of(FlowRun).c.environment_id)
    .where(table_of(FlowRun).c.status == RunStatus.QUEUED)
    .distinct()
)


@dataclass(frozen=True)
class _Work:
    queued: list[str]  # environments with queued runs
    to_review: list[str]  # environments needing an R32/R33 review


async def _work(ctx: DomainContext) -> _Work:
    """What a pass has to look at, in one read: a read transaction of its own cost several times
    the two queries."""
    async with ctx.db.read() as session:
        connection = await session.connection()
        queued = sorted((await connection.execute(_QUEUED_ENVIRONMENTS)).scalars().all())
        return _Work(queued, await recommendations.environments_to_review(connection))


MIN_COALESCE = 0.01  # seconds between passes: events of one burst make one pass
MAX_COALESCE = 0.25  # ... and never longer, however slow the last pass was
# Under a stream of triggers: passes' worth of time between passes. 8, not 3: a pass's fixed part
# (the fleet's four reads, the queue's, the review) then weighs on a third as many runs; runs per
# second from trigger to DISPATCHED rose ~7% on SQLite and ~12% on PostgreSQL (bench, 200
# machines), for at most MAX_COALESCE more wait while the stream lasts.
STREAM_COALESCE_PASSES = 8


# One statement for any number of runs: the assignments travel as one JSON parameter, so the
# statement is compiled once (an IN list and a CASE of as many branches were compiled anew at
# every pass). Conditional on QUEUED: a run cancelled or taken meanwhile is not returned. On
# SQLite the unary + keeps the planner on the primary key (walking the status index instead, it
# read the whole batch again for every queued run).
_CLAIM_SQL = {
    "sqlite": """
UPDATE flow_runs SET status = :dispatched, machine_id = batch.machine_id,
    attempt = flow_runs.attempt + 1, dispatched_at = :now
FROM (SELECT json_extract(value, '$.run_id') AS run_id,
             json_extract(value, '$.machine_id') AS machine_id
      FROM json_each(:batch)) AS batch
WHERE flow_runs.id = batch.run_id AND +flow_runs.status = :queued
RETURNING flow_runs.id, flow_runs.traceparent""",
    "postgresql": """
UPDATE flow_runs SET status = :dispatched, machine_id = batch.machine_id,
    attempt = flow_runs.attempt + 1, dispatched_at = :now
FROM jsonb_to_recordset(CAST(:batch AS jsonb)) AS batch(run_id text, machine_id text)
WHERE flow_runs.id = batch.run_id AND flow_runs.status = :queued
RETURNING flow_runs.id, flow_runs.traceparent""",
}
_CLAIMS = {
    backend: text(sql).bindparams(
        bindparam("now", type_=UTCDateTime),
        dispatched=RunStatus.DISPATCHED.name,
        queued=RunStatus.QUEUED.name,
    )
    for backend, sql in _CLAIM_SQL.items()
}


async def _claim(ctx: DomainContext, environment_id: str) -> list[Dispatched]:
    """Claim every assignment the plan makes in one transaction, with one conditional
    ``UPDATE ... RETURNING id`` for all of them (not one per run)."""
    claimed: list[Dispatched] = []
    async with ctx.db.write() as session:
        await lock_environment_queue(session, ctx.db, environment_id)
        now = ctx.clock.now()
        state = await load_dispatch_state(session, environment_id, now, ctx.settings)
        assignments = state.plan.assignments
        if not assignments:
            return claimed
        conn = await session.connection()
        batch = json.dumps([{"run_id": r, "machine_id": m} for r, m in assignments.items()])
        result = await conn.execute(_CLAIMS[conn.dialect.name], {"batch": batch, "now": now})
        taken: dict[str, str | None] = {row[0]: row[1] for row in result.all()}
        for run in state.queued:
            if run.id not in taken:
                continue
            machine_id = state.plan.assignments[run.id]
            waited = (now - run.queued_at).total_seconds()
            claimed.append(Dispatched(run.id, machine_id, run.attempt + 1, waited))
            run_events(ctx, session, run, machine_id)
            traceparent = _traced_dispatch(ctx, taken[run.id], run.id, machine_id, run.attempt + 1)
            emit(ctx.events, session, MachineWorkChanged(machine_id, traceparent))
    return claimed


def _traced_dispatch(
    ctx: DomainContext, traceparent: str | None, run_id: str, machine_id: str, attempt: int
) -> str | None:
    """The dispatch as a span of its trigger's trace (linked to the pass that made it); its
    traceparent travels with the event that tells the machine."""
    if traceparent is None:  # not traced (the default): nothing to continue
        return None
    pass_span = trace.get_current_span().get_span_context()
    with continued(
        ctx.tracer,
        "run dispatched",
        [traceparent],
        {
            "deskfleet.run.id": run_id,
            "deskfleet.machine.id": machine_id,
            "deskfleet.run.attempt": attempt,
        },
        links=[Link(pass_span)] if pass_span.is_valid else [],
    ) as dispatched:
        return dispatched  # a moment's span: the claim is the pass's


async def dispatch_once(
    ctx: DomainContext,
    *,
    plan_first: bool = True,
    on_dispatched: Callable[[list[Dispatched]], None] | None = None,
) -> list[Dispatched]:
    """One pass over every queue: assign whatever R26 allows, in R25's order, then review
    R32-R33 (each environment decided on its queues as the pass left them).

    ``plan_first``: plan without the write lock first and take it only if there is something to
    claim (most passes find nothing to do); off, claim at once (the queue is known to be busy).
    ``on_dispatched``: told of the claims once they have committed, before the review.
    """
    with ctx.tracer.start_as_current_span("dispatcher pass") as span:
        work = await _work(ctx)
        claimed = await _dispatch_queues(ctx, work, plan_first=plan_first)
        span.set_attribute("deskfleet.runs.dispatched", len(claimed))
        if claimed and on_dispatched is not None:
            on_dispatched(claimed)
        await recommendations.review(ctx, environments=work.to_review)
    return claimed


async def _dispatch_queues(
    ctx: DomainContext, work: _Work, *, plan_first: bool
) -> list[Dispatched]:
    # The review's list is read before the claims: claims only shorten queues, and the review
    # decides each environment again on what it reads then.
    claimed: list[Dispatched] = []
    for environment_id in work.queued:
        if plan_first:
            async with ctx.db.read() as session:
                state = await load_dispatch_state(
                    session, environment_id, ctx.clock.now(), ctx.settings
                )
        if not plan_first or state.plan.assignments:
            claimed.extend(await _claim(ctx, environment_id))
    return claimed


# --- sweeping ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Due:
    unconfirmed: list[tuple[str, int]]
    running: list[tuple[str, int, str | None]]
    expired: list[str]
    orphaned: list[str]

    def __bool__(self) -> bool:
        return bool(self.unconfirmed or self.running or self.expired or self.orphaned)


def _silent_since(ctx: DomainContext, now: datetime) -> datetime:
    settings = ctx.settings
    return now - timedelta(
        seconds=settings.heartbeat_timeout_seconds + settings.machine_lost_grace_seconds
    )


def _machine_lost(machine_id: object, cutoff: datetime):  # type: ignore[no-untyped-def]
    """The run's machine is gone, or silent since before ``cutoff`` (R9 + grace)."""
    alive = exists(
        select(Machine.id).where(
            col(Machine.id) == machine_id,
            col(Machine.last_heartbeat_at).is_not(None),
            col(Machine.last_heartbeat_at) >= cutoff,
        )
    )
    return ~alive


async def _due(ctx: DomainContext, now: datetime) -> _Due:
    confirm_by = now - timedelta(seconds=ctx.settings.dispatch_confirm_timeout_seconds)
    cutoff = _silent_since(ctx, now)
    async with ctx.db.read() as session:
        unconfirmed = await session.exec(
            select(FlowRun.id, FlowRun.attempt).where(
                FlowRun.status == RunStatus.DISPATCHED,
                or_(col(FlowRun.dispatched_at) <= confirm_by, col(FlowRun.machine_id).is_(None)),
            )
        )
        running = await session.exec(
            select(FlowRun.id, FlowRun.attempt, FlowRun.machine_id).where(
                FlowRun.status == RunStatus.RUNNING, _machine_lost(FlowRun.machine_id, cutoff)
            )
        )
        queued = await session.exec(
            select(  # type: ignore[call-overload]  # SQLModel types select() for up to 4 columns
                FlowRun.id,
                FlowRun.queued_at,
                Environment.max_queue_seconds,
                FlowRun.target_machine_id,
                FlowRun.target_group_id,
            )
            .join(Environment, col(Environment.id) == col(FlowRun.environment_id))
            .where(FlowRun.status == RunStatus.QUEUED)
        )
        expired: list[str] = []
        orphaned: list[str] = []
        for run_id, queued_at, max_seconds, machine_id, group_id in queued.all():
            if now - queued_at > timedelta(seconds=max_seconds):  # R27
                expired.append(run_id)
            elif machine_id is None and group_id is None:
                orphaned.append(run_id)
        return _Due(
            unconfirmed=list(unconfirmed.all()),
            running=list(running.all()),
            expired=expired,
            orphaned=orphaned,
        )


async def _end_queued(
    session: AsyncSession, run_id: str, status: RunStatus, code: str, message: str, now: datetime
) -> bool:
    result = await session.exec(
        update(FlowRun)
        .where(col(FlowRun.id) == run_id, col(FlowRun.status) == RunStatus.QUEUED)
        .values(status=status, ended_at=now, error_code=code, error_message=message)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


async def sweep_once(ctx: DomainContext) -> SweepResult:
    """The time-based rules, once. Each change is conditional on the state it was decided on."""
    await recommendations.review(ctx)  # R33: a recommendation's window may have ended
    now = ctx.clock.now()
    due = await _due(ctx, now)
    done = SweepResult()
    if not due:
        return done
    cutoff = _silent_since(ctx, now)
    async with ctx.db.write() as session:
        for run_id, attempt in due.unconfirmed:
            run = await session.get(FlowRun, run_id)
            previous = run.machine_id if run else None
            result = await session.exec(
                update(FlowRun)
                .where(
                    col(FlowRun.id) == run_id,
                    col(FlowRun.status) == RunStatus.DISPATCHED,
                    col(FlowRun.attempt) == attempt,
                )
                # Its queued_at is kept, so it goes back to its place in the queue (R28).
                .values(status=RunStatus.QUEUED, machine_id=None, dispatched_at=None)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount == 1 and run is not None:
                done.requeued.append(run_id)
                run_events(ctx, session, run, previous)
                if previous:
                    emit(ctx.events, session, MachineWorkChanged(previous))
        for run_id, attempt, machine_id in due.running:
            result = await session.exec(
                update(FlowRun)
                .where(
                    col(FlowRun.id) == run_id,
                    col(FlowRun.status) == RunStatus.RUNNING,
                    col(FlowRun.attempt) == attempt,
                    _machine_lost(FlowRun.machine_id, cutoff),
                )
                .values(
                    status=RunStatus.FAILED,
                    ended_at=now,
                    error_code=MACHINE_LOST,
                    error_message="the machine stopped sending heartbeats while the run was running",
                )
                .execution_options(synchronize_session=False)
            )
            if result.rowcount == 1:
                done.lost.append(run_id)
                run = await session.get(FlowRun, run_id)
                if run is not None:
                    run_events(ctx, session, run, machine_id)
        for run_id in due.expired:
            if await _end_queued(
                session,
                run_id,
                RunStatus.TIMED_OUT,
                NO_CANDIDATE_MACHINE,
                "no machine could take the run within the environment's max queue time",
                now,
            ):
                done.timed_out.append(run_id)
        for run_id in due.orphaned:
            if await _end_queued(
                session,
                run_id,
                RunStatus.CANCELLED,
                TARGET_REMOVED,
                "the machine or group the run was queued for no longer exists",
                now,
            ):
                done.orphaned.append(run_id)
        for run_id in done.timed_out + done.orphaned:
            run = await session.get(FlowRun, run_id)
            if run is not None:
                run_events(ctx, session, run)
    return done


# --- the task ----------------------------------------------------------------------------------

# Everything else (runs, queues, machines, groups, a bus resync marker) may change a decision.
_IDLE_EVENTS = (MachineWorkChanged, RecommendationChanged)


class Dispatcher:
    """Runs :func:`dispatch_once` whenever something changed and :func:`sweep_once` on a timer."""

    def __init__(
        self,
        ctx: DomainContext,
        on_dispatched: Callable[[list[Dispatched]], None] | None = None,
    ) -> None:
        # Its own connection pool: request traffic never starves it, nor it the requests.
        self.ctx = dataclasses.replace(ctx, db=Database(ctx.settings.database_url))
        self._on_dispatched = on_dispatched  # e.g. the app's dispatch latency histogram
        self._tasks: list[asyncio.Task[None]] = []
        self._subscription = contextlib.ExitStack()
        self._inbox: Inbox | None = None
        self._poked = False

    def poke(self) -> None:
        self._poked = True
        if self._inbox is not None:
            self._inbox.wake()

    async def start(self) -> None:
        # An inbox the loop reads itself, not a listener task: a task woken at every event
        # cost ~5% of a trigger's time; events that come while a pass runs or while a stream's
        # passes coalesce only fill the inbox, and the loop looks when it is ready to act.
        self._inbox = self._subscription.enter_context(self.ctx.events.inbox())
        self._poked = True  # whatever happened before it listened
        self._tasks = [asyncio.create_task(self._loop(), name="deskfleet-dispatcher")]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        self._subscription.close()
        self._inbox = None
        await self.ctx.db.dispose()

    def _woken(self) -> bool:
        """Whether anything that may change a decision came since the last look (a poke, or an
        event other than :data:`_IDLE_EVENTS`, or a resync: events may have been lost). Takes
        what came."""
        assert self._inbox is not None, "start() the dispatcher first"
        poked, self._poked = self._poked, False
        batch = self._inbox.take()
        if batch is None:
            return poked
        return poked or batch.resync or not all(isinstance(e, _IDLE_EVENTS) for e in batch.events)

    async def _wait(self, deadline: float) -> None:
        """Until something that may change a decision comes, or ``deadline`` (loop time)."""
        assert self._inbox is not None, "start() the dispatcher first"
        with contextlib.suppress(TimeoutError):
            # asyncio.timeout_at, not wait_for: on 3.11 wait_for can swallow the task's
            # cancellation when the event is set at the same moment (stop() would hang).
            async with asyncio.timeout_at(deadline):
                while not self._woken():
                    await self._inbox.wait()

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        interval = self.ctx.settings.dispatch_sweep_interval_seconds
        next_sweep = loop.time()
        busy, took = False, 0.0
        while True:
            try:
                if loop.time() >= next_sweep:
                    next_sweep = loop.time() + interval
                    await sweep_once(self.ctx)
                    await self._fold()
                self._woken()  # what came until now, this pass covers
                started = loop.time()
                # While runs keep coming the queue is busy: claim at once, without planning
                # twice (the unlocked look first only saves the write lock when idle).
                claimed = await dispatch_once(
                    self.ctx, plan_first=not busy, on_dispatched=self._on_dispatched
                )
                busy = bool(claimed)
                took = loop.time() - started
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                fault = fault_of(exc)
                if fault is None:
                    log.exception("dispatcher pass failed; retrying")
                else:  # not a defect: one line a pass until storage takes writes again
                    log.warning(
                        "dispatcher pass failed: %s (%s); retrying", fault.problem, fault.code
                    )
                await asyncio.sleep(min(interval, 1.0))
                continue
            await self._wait(next_sweep)
            # Let a burst of events coalesce into one pass. While runs keep coming (the last
            # pass claimed some), wait a few passes' time: each pass then claims many runs and
            # the dispatcher spends about a ninth of its time (and of the write lock) on
            # passes, not half; a lone trigger after a quiet spell still goes out at once.
            window = STREAM_COALESCE_PASSES * took if busy else 0.0
            await self._gather(min(max(MIN_COALESCE, window), MAX_COALESCE))

    async def _fold(self) -> None:
        """The fleet's statistics since the last sweep; a failure there never holds up runs."""
        try:
            await rollups.fold(self.ctx)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("statistics fold failed; the next sweep folds the same interval")

    async def _gather(self, window: float) -> None:
        """Wait up to ``window`` while events keep coming, and no longer than MIN_COALESCE of
        quiet: the last runs of a stream go out at once, not a whole window later. It looks
        once per MIN_COALESCE whether anything came."""
        loop = asyncio.get_running_loop()
        end = loop.time() + window
        while (left := end - loop.time()) > 0:
            await asyncio.sleep(min(MIN_COALESCE, left))
            if not self._woken():
                return


__all__ = ["Dispatched", "Dispatcher", "SweepResult", "dispatch_once", "sweep_once"]
