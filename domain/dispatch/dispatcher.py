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
from sqlalchemy import bindparam, case, exists, func, or_, text, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.bus.events import (
    Inbox,
    MachineChanged,
    MachineWorkChanged,
    QueueChanged,
    RecommendationChanged,
    RunChanged,
    emit,
)
from domain.context import DomainContext
from domain.kernel.traces import continued
from domain.recommendations import recommendations
from domain.runs.queue_state import load_dispatch_state
from domain.runs.retries import retry_ended
from domain.runs.runs import (
    MACHINE_LOST,
    NO_CANDIDATE_MACHINE,
    TARGET_REMOVED,
    run_events,
)
from domain.statistics import rollups
from domain.store import idempotency
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
    retries: list[str] = field(default_factory=list)  # R40: runs queued to retry those ended

    def __bool__(self) -> bool:
        return bool(self.requeued or self.lost or self.timed_out or self.orphaned)


# --- dispatching -------------------------------------------------------------------------------


_R = table_of(FlowRun).c
# Core and built once: every pass asks, and through the ORM the asking cost ten times the query.
# With each environment, the first instant one of its retries waiting out its delay may go
# (R40): nothing announces that instant, so the task sets its own alarm for it (one statement
# with the environments, not a second one each pass).
_QUEUED_ENVIRONMENTS = (
    select(
        _R.environment_id,
        func.min(case((_R.not_before > bindparam("now", type_=UTCDateTime), _R.not_before))),
    )
    .where(_R.status == RunStatus.QUEUED)
    .group_by(_R.environment_id)
)

_RETRIES_DUE = select(_R.id, _R.environment_id, _R.target_machine_id, _R.target_group_id).where(
    _R.status == RunStatus.QUEUED,
    _R.not_before > bindparam("since", type_=UTCDateTime),
    _R.not_before <= bindparam("now", type_=UTCDateTime),
)


async def announce_retries_due(ctx: DomainContext, since: datetime, now: datetime) -> list[str]:
    """R40: the retries whose delay ended in (``since``, ``now``] wait for something else now,
    or go: tell their run's and their queue's watchers (nothing else changed to say so)."""
    async with ctx.db.read() as session:
        connection = await session.connection()
        due = (await connection.execute(_RETRIES_DUE, {"since": since, "now": now})).all()
    for run_id, environment_id, machine_id, group_id in due:
        await ctx.events.publish(RunChanged(run_id, environment_id))
        await ctx.events.publish(QueueChanged(environment_id, machine_id, group_id))
    return [row[0] for row in due]


@dataclass(frozen=True)
class _Work:
    queued: list[str]  # environments with queued runs
    to_review: list[str]  # environments needing an R32/R33 review
    next_retry_at: datetime | None = None  # R40: the earliest delay of a retry to end


async def _work(ctx: DomainContext) -> _Work:
    """What a pass has to look at, in one read: a read transaction of its own cost several times
    the two queries."""
    async with ctx.db.read() as session:
        connection = await session.connection()
        rows = (await connection.execute(_QUEUED_ENVIRONMENTS, {"now": ctx.clock.now()})).all()
        queued = sorted(environment_id for environment_id, _ in rows)
        next_retry_at = min((at for _, at in rows if at is not None), default=None)
        return _Work(
            queued, await recommendations.environments_to_review(connection), next_retry_at
        )


MIN_COALESCE = 0.01  # seconds between passes: events of one burst make one pass
MAX_COALESCE = 0.25  # ... and never longer, however slow the last pass was
# Under a stream of triggers: passes' worth of time between passes. 8, not 3: a pass's fixed part
# (the fleet's four reads, the queue's, the review) then weighs on a third as many runs; runs per
# second from trigger to DISPATCHED rose ~7% on SQLite and ~12% on PostgreSQL (bench, 200
# machines), for at most MAX_COALESCE more wait while the stream lasts.
STREAM_COALESCE_PASSES = 8


# One statement for any number of runs: the assignments travel as one JSON parameter, so the
# statement is compiled once (an IN list and a CASE of as many branches were compiled anew at
# every pass). Conditional on QUEUED: a run cancelled or taken meanwhile is not returned; and on
# its delay (R40): the plan leaves a delayed retry out, the claim never takes one all the same. On
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
    AND (flow_runs.not_before IS NULL OR flow_runs.not_before <= :now)
RETURNING flow_runs.id, flow_runs.traceparent""",
    "postgresql": """
UPDATE flow_runs SET status = :dispatched, machine_id = batch.machine_id,
    attempt = flow_runs.attempt + 1, dispatched_at = :now
FROM jsonb_to_recordset(CAST(:batch AS jsonb)) AS batch(run_id text, machine_id text)
WHERE flow_runs.id = batch.run_id AND flow_runs.status = :queued
    AND (flow_runs.not_before IS NULL OR flow_runs.not_before <= :now)
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
    on_next_retry: Callable[[datetime | None], None] | None = None,
    on_idle: Callable[[bool], None] | None = None,
) -> list[Dispatched]:
    """One pass over every queue: assign whatever R26 allows, in R25's order, then review
    R32-R33 (each environment decided on its queues as the pass left them).

    ``plan_first``: plan without the write lock first and take it only if there is something to
    claim (most passes find nothing to do); off, claim at once (the queue is known to be busy).
    ``on_dispatched``: told of the claims once they have committed, before the review.
    ``on_next_retry``: told when the first delayed retry may go (R40), None if none waits.
    ``on_idle``: told whether the pass found no queued run and nothing to review.
    """
    with ctx.tracer.start_as_current_span("dispatcher pass") as span:
        work = await _work(ctx)
        if on_next_retry is not None:
            on_next_retry(work.next_retry_at)
        if on_idle is not None:
            on_idle(not work.queued and not work.to_review)
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
                FlowRun.not_before,
            )
            .join(Environment, col(Environment.id) == col(FlowRun.environment_id))
            .where(FlowRun.status == RunStatus.QUEUED)
        )
        expired: list[str] = []
        orphaned: list[str] = []
        for run_id, queued_at, max_seconds, machine_id, group_id, not_before in queued.all():
            # R27 counts from when it may be dispatched: a retry's delay is no wait (R40).
            if now - max(queued_at, not_before or queued_at) > timedelta(seconds=max_seconds):
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
                    if retry := await retry_ended(ctx, session, run, now):  # R40
                        done.retries.append(retry.id)
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
                if retry := await retry_ended(ctx, session, run, now):  # R40
                    done.retries.append(retry.id)
    return done


# --- the task ----------------------------------------------------------------------------------

# R46's records live a day; forgetting the old ones hourly keeps the table at a day's worth.
PRUNE_INTERVAL_SECONDS = 3600.0

# Everything else (runs, queues, machines, groups, a bus resync marker) may change a decision.
_IDLE_EVENTS = (MachineWorkChanged, RecommendationChanged)
# ... but with no run queued and no recommendation open, a machine's change has nothing to
# decide: a run is queued, and a review opened, only by what publishes other events. A fleet's
# heartbeats publish one whenever a machine's sessions or status change, and a pass for each
# took ~20 us of CPU per heartbeat (of ~550) in `heartbeats` (docs/performance.md).
_IDLE_EVENTS_WHEN_NOTHING_WAITS = (*_IDLE_EVENTS, MachineChanged)


class Dispatcher:
    """Runs :func:`dispatch_once` whenever something changed and :func:`sweep_once` on a timer."""

    def __init__(
        self,
        ctx: DomainContext,
        on_dispatched: Callable[[list[Dispatched]], None] | None = None,
    ) -> None:
        # Its own connection pool: request traffic never starves it, nor it the requests.
        self.ctx = dataclasses.replace(ctx, db=Database(ctx.settings.database_url))
        self._served = ctx  # whose triggers it takes at once while it runs (dispatch_now)
        self._on_dispatched = on_dispatched  # e.g. the app's dispatch latency histogram
        self._tasks: list[asyncio.Task[None]] = []
        self._subscription = contextlib.ExitStack()
        self._inbox: Inbox | None = None
        self._poked = False
        self._next_retry_at: datetime | None = None  # R40: when a delayed retry may go
        self._last_pass_at = ctx.clock.now()  # the clock when the last pass began
        self._last_asked = float("-inf")  # loop time of the last trigger's dispatch_now
        self._nothing_waits = False  # the last pass found no queued run and nothing to review

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
        self._served.dispatch_now = self.dispatch_now

    async def stop(self) -> None:
        self._served.dispatch_now = None
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        self._subscription.close()
        self._inbox = None
        await self.ctx.db.dispose()

    async def dispatch_now(self, environment_id: str) -> list[str]:
        """Claim what ``environment_id``'s queue allows now, outside the loop's passes (a
        trigger with nothing queued ahead of its run asks); the ids of the runs dispatched.

        Only for a lone trigger: one that asks within MIN_COALESCE of the one before is part of
        a burst, which the loop's next pass takes whole. A claim of its own per run made a stream
        of triggers nine times slower (`dispatch_sqlite` 0.11, from 0.98)."""
        now = asyncio.get_running_loop().time()
        lone, self._last_asked = now - self._last_asked >= MIN_COALESCE, now
        if not lone:
            return []
        claimed = await _claim(self.ctx, environment_id)
        if claimed and self._on_dispatched is not None:
            self._on_dispatched(claimed)
        return [d.run_id for d in claimed]

    def _woken(self) -> bool:
        """Whether anything that may change a decision came since the last look (a poke, or an
        event other than :data:`_IDLE_EVENTS`, and than a machine's while nothing waits, or a
        resync: events may have been lost). Takes what came."""
        assert self._inbox is not None, "start() the dispatcher first"
        poked, self._poked = self._poked, False
        batch = self._inbox.take()
        if batch is None:
            return poked
        idle = _IDLE_EVENTS_WHEN_NOTHING_WAITS if self._nothing_waits else _IDLE_EVENTS
        return poked or batch.resync or not all(isinstance(e, idle) for e in batch.events)

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
        next_sweep = next_prune = next_fold = loop.time()
        busy, took = False, 0.0
        while True:
            try:
                if loop.time() >= next_sweep:
                    next_sweep = loop.time() + interval
                    await sweep_once(self.ctx)
                if loop.time() >= next_fold:
                    next_fold = loop.time() + self.ctx.settings.statistics_fold_seconds
                    await self._fold()
                if loop.time() >= next_prune:
                    next_prune = loop.time() + PRUNE_INTERVAL_SECONDS
                    await idempotency.prune(self.ctx.db, self.ctx.clock.now())
                passed_at = self.ctx.clock.now()
                if self._next_retry_at is not None and self._next_retry_at <= passed_at:
                    await announce_retries_due(self.ctx, self._last_pass_at, passed_at)
                self._last_pass_at = passed_at
                self._woken()  # what came until now, this pass covers
                started = loop.time()
                # While runs keep coming the queue is busy: claim at once, without planning
                # twice (the unlocked look first only saves the write lock when idle).
                claimed = await dispatch_once(
                    self.ctx,
                    plan_first=not busy,
                    on_dispatched=self._on_dispatched,
                    on_next_retry=self._set_retry_alarm,
                    on_idle=self._set_nothing_waits,
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
            await self._wait(min(next_sweep, self._retry_alarm(loop.time())))
            # Let a burst of events coalesce into one pass. While runs keep coming (the last
            # pass claimed some), wait a few passes' time: each pass then claims many runs and
            # the dispatcher spends about a ninth of its time (and of the write lock) on
            # passes, not half; a lone trigger after a quiet spell still goes out at once.
            window = STREAM_COALESCE_PASSES * took if busy else 0.0
            await self._gather(min(max(MIN_COALESCE, window), MAX_COALESCE))

    def _set_retry_alarm(self, at: datetime | None) -> None:
        self._next_retry_at = at

    def _set_nothing_waits(self, nothing_waits: bool) -> None:
        self._nothing_waits = nothing_waits

    def _retry_alarm(self, loop_now: float) -> float:
        """The loop time at which the next delayed retry may go (R40); never, if none waits."""
        if self._next_retry_at is None:
            return float("inf")
        left = (self._next_retry_at - self.ctx.clock.now()).total_seconds()
        return loop_now + max(left, 0.0)

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


__all__ = [
    "Dispatched",
    "Dispatcher",
    "SweepResult",
    "announce_retries_due",
    "dispatch_once",
    "sweep_once",
]
