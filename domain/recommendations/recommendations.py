"""Session-lock recommendations, "Desktop flows not running" (R31-R34).

Detection (R32) reads the same planning snapshot as the dispatcher and the queue views
(:func:`domain.runs.queue_state.load_environment_state`): a queued unattended run is *affected* when
its wait reason is ``USER_SESSION_EXISTS`` and one of its candidate machines holds a ``LOCKED`` or
``DISCONNECTED`` session of its user while being connected, out of maintenance and with a free bot
(R26's checks in that order, so that session is its only obstacle there). An ``ACTIVE`` session is
someone at work: never a recommendation.

Lifecycle (R33): :func:`review` runs once per dispatcher pass and sweep. Per environment with the
setting on (R31) it keeps one OPEN recommendation per recipient (the owner of the runs'
connection): affected runs join it, runs that start, end or stop being blocked leave it, and an
empty list resolves it. Its window ends the environment's window (10 minutes unless an admin set
another) after it was raised; runs still blocked then
end ``FAILED`` with ``SESSION_EXISTS_FOR_USER`` and their entry says so. Runs that join a
recommendation late share its window. Every change holds the environment's queue lock (R30) and
publishes :class:`RecommendationChanged` after commit.

Actions (R34): :func:`disconnect_users` queues an ``END_SESSION`` command to the machine runtime
for the selected runs' users; once a heartbeat no longer reports the session, the dispatcher
starts the runs. :func:`refresh` re-evaluates now. Flow and run details are the ids (and nested
objects) each entry carries.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import union, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.bus.events import Event, MachineWorkChanged, RecommendationChanged, emit
from domain.bus.live import PrincipalSource, Update, follow
from domain.context import DomainContext
from domain.fleet.sessions import user_key
from domain.identity.authorization import admin_environment_ids, require_user
from domain.kernel import validation
from domain.kernel.errors import Conflict, ErrorCode, NotFound, ValidationFailed
from domain.kernel.principals import Principal
from domain.recommendations.visibility import recommendations_visible_to, visible_recommendation
from domain.runs.candidates import RunRequest, WaitReason, check
from domain.runs.queue_state import EnvironmentState, candidate_ids, load_environment_state
from domain.runs.runs import run_events
from domain.store.models import (
    DesktopFlow,
    Environment,
    FlowRun,
    ItemOutcome,
    Machine,
    MachineCommand,
    RecommendationStatus,
    RunMode,
    RunStatus,
    SessionRecommendation,
    SessionRecommendationItem,
    SessionState,
    UserSession,
)
from domain.store.models.tables import table_of
from domain.store.queue_lock import lock_environment_queue
from domain.webhooks import outbox

TITLE = "Desktop flows not running"
SESSION_EXISTS_FOR_USER = "SESSION_EXISTS_FOR_USER"  # the error code a run ends with (R33)
END_SESSION_COMMAND = "END_SESSION"  # R34: the machine runtime signs the user out
BLOCKING_STATES = frozenset({SessionState.LOCKED, SessionState.DISCONNECTED})
LIVE_OUTCOMES = frozenset({ItemOutcome.BLOCKED, ItemOutcome.UNBLOCKED})  # may still change
MAX_SELECTED_RUNS = 200
MAX_RESOLVED_LISTED = 100


# --- detection (R32), pure ---------------------------------------------------------------------


@dataclass(frozen=True)
class Blocked:
    """A queued unattended run held back only by its user's locked or disconnected session."""

    run_id: str
    recipient_id: str  # the owner of the connection the run uses (R32)
    flow_id: str
    machine_id: str
    username: str  # the run's user (run_as)
    session_state: SessionState


def detect(state: EnvironmentState) -> dict[str, Blocked]:
    """R32 on one planning snapshot: the affected runs, by run id."""
    found: dict[str, Blocked] = {}
    for run in state.queued:
        if run.mode is not RunMode.UNATTENDED:
            continue
        if state.plan.reasons.get(run.id) is not WaitReason.USER_SESSION_EXISTS:
            continue  # it can start, or something besides a session stops it everywhere
        request = RunRequest(id=run.id, mode=run.mode, run_as=run.run_as)
        user = user_key(run.run_as)
        for machine_id in candidate_ids(run, state.machines, state.members):
            machine = state.machines[machine_id]
            session = machine.sessions.get(user)
            if check(request, machine) is WaitReason.USER_SESSION_EXISTS and (
                session in BLOCKING_STATES
            ):
                found[run.id] = Blocked(
                    run_id=run.id,
                    recipient_id=run.connection_owner_id,
                    flow_id=run.flow_id,
                    machine_id=machine_id,
                    username=run.run_as,
                    session_state=session,
                )
                break
    return found


def left_outcome(run: FlowRun | None) -> ItemOutcome:
    """How a run that is no longer affected left the list."""
    if run is None:
        return ItemOutcome.ENDED
    if run.status is RunStatus.QUEUED:
        return ItemOutcome.UNBLOCKED
    if run.status in (RunStatus.DISPATCHED, RunStatus.RUNNING) or run.started_at is not None:
        return ItemOutcome.STARTED
    if run.status is RunStatus.FAILED and run.error_code == SESSION_EXISTS_FOR_USER:
        return ItemOutcome.FAILED_SESSION_EXISTS
    return ItemOutcome.ENDED


@dataclass
class Actions:
    """What :func:`reconcile` decided for one environment; empty when nothing changes."""

    environment_id: str
    open_by_id: dict[str, SessionRecommendation]
    outcomes: list[tuple[SessionRecommendationItem, ItemOutcome, Blocked | None]] = field(
        default_factory=list
    )
    fail: list[SessionRecommendationItem] = field(default_factory=list)  # R33: window ended
    add: list[tuple[SessionRecommendation, Blocked]] = field(default_factory=list)
    raise_for: dict[str, list[Blocked]] = field(default_factory=dict)  # recipient -> runs
    resolve: list[SessionRecommendation] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.outcomes or self.fail or self.add or self.raise_for or self.resolve)


def _same_block(item: SessionRecommendationItem, blocked: Blocked) -> bool:
    return (
        item.outcome is ItemOutcome.BLOCKED
        and item.machine_id == blocked.machine_id
        and item.session_state is blocked.session_state
    )


FINAL_OUTCOMES = frozenset(
    {ItemOutcome.ENDED, ItemOutcome.FAILED_SESSION_EXISTS, ItemOutcome.WITHDRAWN}
)


def reconcile(
    *,
    environment_id: str,
    enabled: bool,
    detected: dict[str, Blocked],
    open_recommendations: Sequence[SessionRecommendation],
    items: dict[str, list[SessionRecommendationItem]],  # by recommendation id
    runs: dict[str, FlowRun],  # the runs of live items that are not detected
    now: datetime,
) -> Actions:
    """R32/R33: bring one environment's open recommendations in line with what is detected
    (``detected`` is empty when the setting is off: every open one is then withdrawn)."""
    actions = Actions(environment_id, {r.id: r for r in open_recommendations})
    failing: set[str] = set()
    staying_open: set[str] = set()  # recipients
    for rec in open_recommendations:
        blocked_left = 0
        window_over = now >= rec.window_ends_at
        rec_items = items.get(rec.id, [])
        for item in rec_items:
            if item.outcome in FINAL_OUTCOMES:
                continue
            hit = detected.get(item.run_id)
            if hit is not None:
                if not _same_block(item, hit):
                    actions.outcomes.append((item, ItemOutcome.BLOCKED, hit))
                if window_over:
                    actions.fail.append(item)  # R33: still blocked when the window ends
                    failing.add(item.run_id)
                else:
                    blocked_left += 1
            elif item.outcome in LIVE_OUTCOMES:
                new = left_outcome(runs.get(item.run_id)) if enabled else ItemOutcome.WITHDRAWN
                if item.outcome is ItemOutcome.UNBLOCKED and new is ItemOutcome.WITHDRAWN:
                    continue  # it had left the list already
                if new is not item.outcome:
                    actions.outcomes.append((item, new, None))
        if not window_over:
            listed = {i.run_id for i in rec_items}
            for hit in detected.values():
                if hit.recipient_id == rec.recipient_id and hit.run_id not in listed:
                    actions.add.append((rec, hit))  # R33: the list grows while it is open
                    blocked_left += 1
        if blocked_left:
            staying_open.add(rec.recipient_id)
        else:
            actions.resolve.append(rec)  # R33: an empty list resolves it
    for hit in detected.values():
        if hit.recipient_id not in staying_open and hit.run_id not in failing:
            actions.raise_for.setdefault(hit.recipient_id, []).append(hit)
    return actions


# --- the review, once per dispatcher pass ------------------------------------------------------


@dataclass
class ReviewResult:
    raised: list[str] = field(default_factory=list)  # recommendation ids
    resolved: list[str] = field(default_factory=list)
    failed_runs: list[str] = field(default_factory=list)  # R33: SESSION_EXISTS_FOR_USER


# One Core statement, built once: every dispatcher pass asks (R32-R33), and two ORM queries cost
# a dispatcher pass more than the queries themselves.
_FLOW_RUNS = table_of(FlowRun).c
_TO_REVIEW = union(
    select(_FLOW_RUNS.environment_id)
    .join(Environment, col(Environment.id) == _FLOW_RUNS.environment_id)
    .where(
        col(Environment.session_recommendations).is_(True),
        _FLOW_RUNS.status == RunStatus.QUEUED,
        _FLOW_RUNS.mode == RunMode.UNATTENDED,
    ),
    select(table_of(SessionRecommendation).c.environment_id).where(
        table_of(SessionRecommendation).c.status == RecommendationStatus.OPEN
    ),
)


async def environments_to_review(connection: AsyncConnection) -> list[str]:
    """The environments :func:`review` would look at (the dispatcher asks in its own read)."""
    return sorted((await connection.execute(_TO_REVIEW)).scalars().all())


async def _environments_to_review(ctx: DomainContext) -> list[str]:
    async with ctx.db.read() as session:
        return await environments_to_review(await session.connection())


async def _decide(
    session: AsyncSession, ctx: DomainContext, environment_id: str, now: datetime
) -> Actions:
    environment = await session.get(Environment, environment_id)
    if environment is None:
        return Actions(environment_id, {})
    enabled = environment.session_recommendations
    detected: dict[str, Blocked] = {}
    if enabled:
        state = await load_environment_state(session, environment_id, now, ctx.settings)
        detected = detect(state)
    recs = list(
        (
            await session.exec(
                select(SessionRecommendation)
                .where(
                    SessionRecommendation.environment_id == environment_id,
                    SessionRecommendation.status == RecommendationStatus.OPEN,
                )
                .order_by(col(SessionRecommendation.raised_at), col(SessionRecommendation.id))
            )
        ).all()
    )
    items: dict[str, list[SessionRecommendationItem]] = defaultdict(list)
    runs: dict[str, FlowRun] = {}
    if recs:
        rows = await session.exec(
            select(SessionRecommendationItem)
            .where(col(SessionRecommendationItem.recommendation_id).in_([r.id for r in recs]))
            .order_by(
                col(SessionRecommendationItem.blocked_since), col(SessionRecommendationItem.id)
            )
        )
        for item in rows.all():
            items[item.recommendation_id].append(item)
        wanted = [
            i.run_id
            for rec_items in items.values()
            for i in rec_items
            if i.outcome in LIVE_OUTCOMES and i.run_id not in detected
        ]
        if wanted:
            found = await session.exec(select(FlowRun).where(col(FlowRun.id).in_(wanted)))
            runs = {r.id: r for r in found.all()}
    return reconcile(
        environment_id=environment_id,
        enabled=enabled,
        detected=detected,
        open_recommendations=recs,
        items=items,
        runs=runs,
        now=now,
    )


async def _window_seconds(session: AsyncSession, environment_id: str) -> int:
    """R45: the environment's window for a recommendation raised now (R33)."""
    seconds = (
        await session.exec(
            select(Environment.recommendation_window_seconds).where(
                Environment.id == environment_id
            )
        )
    ).one()
    return seconds


def _new_item(rec: SessionRecommendation, hit: Blocked, now: datetime) -> SessionRecommendationItem:
    return SessionRecommendationItem(
        recommendation_id=rec.id,
        run_id=hit.run_id,
        flow_id=hit.flow_id,
        machine_id=hit.machine_id,
        username=hit.username,
        session_state=hit.session_state,
        blocked_since=now,
        outcome=ItemOutcome.BLOCKED,
    )


async def _fail_run(
    ctx: DomainContext, session: AsyncSession, item: SessionRecommendationItem, now: datetime
) -> bool:
    result = await session.exec(
        update(FlowRun)
        .where(col(FlowRun.id) == item.run_id, col(FlowRun.status) == RunStatus.QUEUED)
        .values(
            status=RunStatus.FAILED,
            ended_at=now,
            error_code=SESSION_EXISTS_FOR_USER,
            error_message=(
                f"the user {item.username!r} still had a {item.session_state.value.lower()} "
                "session on the machine when the recommendation's window ended"
            ),
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return False
    run = await session.get(FlowRun, item.run_id)
    if run is not None:
        await session.refresh(run)
        run_events(ctx, session, run, item.machine_id)
    return True


async def _apply(
    ctx: DomainContext, session: AsyncSession, actions: Actions, now: datetime, done: ReviewResult
) -> None:
    touched: set[str] = set()
    for item, outcome, hit in actions.outcomes:
        if outcome is ItemOutcome.BLOCKED and hit is not None:
            if item.outcome is not ItemOutcome.BLOCKED:
                item.blocked_since = now  # blocked again
            item.machine_id = hit.machine_id
            item.session_state = hit.session_state
            item.left_at = None
        else:
            item.left_at = now
        item.outcome = outcome
        session.add(item)
        touched.add(item.recommendation_id)
    for item in actions.fail:
        if await _fail_run(ctx, session, item, now):
            item.outcome = ItemOutcome.FAILED_SESSION_EXISTS
            done.failed_runs.append(item.run_id)
        else:
            item.outcome = left_outcome(await session.get(FlowRun, item.run_id))
        item.left_at = now
        session.add(item)
        touched.add(item.recommendation_id)
    for rec, hit in actions.add:
        session.add(_new_item(rec, hit, now))
        touched.add(rec.id)
    for rec in actions.resolve:
        rec.status = RecommendationStatus.RESOLVED
        rec.resolved_at = now
        done.resolved.append(rec.id)
        touched.add(rec.id)
        _webhook(session, outbox.RECOMMENDATION_RESOLVED, rec, now)
    await session.flush()  # a resolved one frees its recipient's slot before a new one is raised
    for rec_id in sorted(touched):
        rec = actions.open_by_id[rec_id]
        rec.updated_at = now
        session.add(rec)
        emit(ctx.events, session, RecommendationChanged(rec.environment_id, rec.recipient_id))
    if actions.raise_for:
        window = timedelta(seconds=await _window_seconds(session, actions.environment_id))
    for recipient_id, hits in actions.raise_for.items():
        rec = SessionRecommendation(
            environment_id=actions.environment_id,
            recipient_id=recipient_id,
            status=RecommendationStatus.OPEN,
            raised_at=now,
            window_ends_at=now + window,  # R33: the environment's window
            updated_at=now,
        )
        session.add(rec)
        await session.flush()  # the partial unique index refuses a second OPEN one (R30)
        for hit in hits:
            session.add(_new_item(rec, hit, now))
        done.raised.append(rec.id)
        emit(ctx.events, session, RecommendationChanged(rec.environment_id, recipient_id))
        _webhook(session, outbox.RECOMMENDATION_RAISED, rec, now, runs=[h.run_id for h in hits])


def _webhook(
    session: AsyncSession,
    event_type: str,
    rec: SessionRecommendation,
    now: datetime,
    *,
    runs: list[str] | None = None,
) -> None:
    """R43: a recommendation raised or resolved, recorded with the change."""
    data: dict[str, object] = {
        "recommendationId": rec.id,
        "recipientId": rec.recipient_id,
        "raisedAt": rec.raised_at.isoformat(),
        "windowEndsAt": rec.window_ends_at.isoformat(),
        "resolvedAt": rec.resolved_at.isoformat() if rec.resolved_at else None,
    }
    if runs is not None:
        data["runIds"] = sorted(runs)
    outbox.record(session, outbox.Happened(rec.environment_id, event_type, data, now))


async def review(
    ctx: DomainContext,
    environment_id: str | None = None,
    *,
    environments: Sequence[str] | None = None,
) -> ReviewResult:
    """R32/R33 for every environment that needs it (or one, or ``environments`` as
    :func:`environments_to_review` listed them): raise, update, expire, resolve.

    Safe to call from any number of dispatchers at once: each change is decided again under the
    environment's queue lock, and most calls find nothing to do without taking it.
    """
    done = ReviewResult()
    now = ctx.clock.now()
    if environment_id is not None:
        environments = [environment_id]
    elif environments is None:
        environments = await _environments_to_review(ctx)
    for env_id in environments:
        async with ctx.db.read() as session:
            if not await _decide(session, ctx, env_id, now):
                continue
        async with ctx.db.write() as session:
            await lock_environment_queue(session, ctx.db, env_id)
            actions = await _decide(session, ctx, env_id, now)
            if actions:
                await _apply(ctx, session, actions, now, done)
    return done


# --- reads -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AffectedRun:
    """One run of a recommendation (R32), with what the flow / run details actions open."""

    run_id: str
    flow_id: str
    machine_id: str | None
    username: str
    session_state: SessionState
    blocked_since: datetime
    outcome: ItemOutcome
    left_at: datetime | None
    disconnect_requested_at: datetime | None
    # Shown, not compared: a subscription sends a change when the entry itself changes.
    run: FlowRun | None = field(default=None, compare=False)
    flow: DesktopFlow | None = field(default=None, compare=False)
    machine: Machine | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Recommendation:
    id: str
    environment_id: str
    recipient_id: str
    status: RecommendationStatus
    raised_at: datetime
    window_ends_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    runs: tuple[AffectedRun, ...]
    title: str = TITLE

    @property
    def affected(self) -> tuple[AffectedRun, ...]:
        return tuple(r for r in self.runs if r.outcome is ItemOutcome.BLOCKED)


async def _views(
    session: AsyncSession, recs: Sequence[SessionRecommendation]
) -> list[Recommendation]:
    """Recommendations with their runs, flows and machines: four statements whatever the count."""
    if not recs:
        return []
    rows = (
        await session.exec(
            select(SessionRecommendationItem)
            .where(col(SessionRecommendationItem.recommendation_id).in_([r.id for r in recs]))
            .order_by(
                col(SessionRecommendationItem.blocked_since), col(SessionRecommendationItem.id)
            )
        )
    ).all()
    run_ids = sorted({i.run_id for i in rows})
    flow_ids = sorted({i.flow_id for i in rows})
    machine_ids = sorted({i.machine_id for i in rows if i.machine_id})
    runs = {r.id: r for r in await _all(session, FlowRun, run_ids)}
    flows = {f.id: f for f in await _all(session, DesktopFlow, flow_ids)}
    machines = {m.id: m for m in await _all(session, Machine, machine_ids)}
    by_rec: dict[str, list[AffectedRun]] = defaultdict(list)
    queued_at = {r.id: r.queued_at for r in runs.values()}
    for i in sorted(rows, key=lambda i: (i.blocked_since, queued_at.get(i.run_id), i.run_id)):
        by_rec[i.recommendation_id].append(
            AffectedRun(
                run_id=i.run_id,
                flow_id=i.flow_id,
                machine_id=i.machine_id,
                username=i.username,
                session_state=i.session_state,
                blocked_since=i.blocked_since,
                outcome=i.outcome,
                left_at=i.left_at,
                disconnect_requested_at=i.disconnect_requested_at,
                run=runs.get(i.run_id),
                flow=flows.get(i.flow_id),
                machine=machines.get(i.machine_id) if i.machine_id else None,
            )
        )
    return [
        Recommendation(
            id=r.id,
            environment_id=r.environment_id,
            recipient_id=r.recipient_id,
            status=r.status,
            raised_at=r.raised_at,
            window_ends_at=r.window_ends_at,
            updated_at=r.updated_at,
            resolved_at=r.resolved_at,
            runs=tuple(by_rec[r.id]),
        )
        for r in recs
    ]


async def _all(session: AsyncSession, model: type, ids: list[str]) -> list:  # type: ignore[type-arg]
    if not ids:
        return []
    return list((await session.exec(select(model).where(col(model.id).in_(ids)))).all())  # type: ignore[attr-defined]


@dataclass(frozen=True)
class RecommendationFilter:
    environment_id: str | None = None
    include_resolved: bool = False
    resolved_since: datetime | None = None  # with include_resolved: only those resolved since
    every_recipient: bool = False  # environment admins: everyone's, not only their own


async def list_recommendations(
    ctx: DomainContext, principal: Principal, flt: RecommendationFilter | None = None
) -> list[Recommendation]:
    """The caller's recommendations (R32: its recipients), open ones first, newest first; with
    ``every_recipient``, everyone's in the environments the caller administers."""
    user = require_user(principal)
    flt = flt or RecommendationFilter()
    if flt.environment_id is not None:
        validation.ident(flt.environment_id, field="environmentId")
    async with ctx.db.read() as session:
        if flt.every_recipient:
            admin_of = await admin_environment_ids(session, user)
            whose = recommendations_visible_to(user, admin_of)
        else:
            whose = col(SessionRecommendation.recipient_id) == user.user_id
        base = select(SessionRecommendation).where(whose)
        if flt.environment_id is not None:
            base = base.where(SessionRecommendation.environment_id == flt.environment_id)
        newest = [col(SessionRecommendation.raised_at).desc(), col(SessionRecommendation.id)]
        recs = list(
            (
                await session.exec(
                    base.where(SessionRecommendation.status == RecommendationStatus.OPEN).order_by(
                        *newest
                    )
                )
            ).all()
        )
        if flt.include_resolved:
            resolved = base.where(SessionRecommendation.status == RecommendationStatus.RESOLVED)
            if flt.resolved_since is not None:
                resolved = resolved.where(
                    col(SessionRecommendation.resolved_at) >= flt.resolved_since
                )
            recs += (
                await session.exec(resolved.order_by(*newest).limit(MAX_RESOLVED_LISTED))
            ).all()
        return await _views(session, recs)


async def get_recommendation(
    ctx: DomainContext, principal: Principal, recommendation_id: str
) -> Recommendation:
    user = require_user(principal)
    recommendation_id = validation.ident(recommendation_id, field="id")
    async with ctx.db.read() as session:
        rec = await visible_recommendation(session, user, recommendation_id)
        (view,) = await _views(session, [rec])
    return view


# --- actions (R34) -----------------------------------------------------------------------------


def _selected(run_ids: Iterable[str]) -> list[str]:
    selected = list(dict.fromkeys(validation.ident(r, field="runIds") for r in run_ids))
    if not selected:
        raise ValidationFailed(ErrorCode.INVALID_VALUE, "select at least one run", field="runIds")
    if len(selected) > MAX_SELECTED_RUNS:
        raise ValidationFailed(
            ErrorCode.INVALID_VALUE,
            f"select at most {MAX_SELECTED_RUNS} runs, got {len(selected)}",
            field="runIds",
        )
    return selected


async def disconnect_users(
    ctx: DomainContext, principal: Principal, recommendation_id: str, run_ids: Iterable[str]
) -> Recommendation:
    """R34 "Disconnect users": tell each selected run's machine to end its user's session.

    Only the recommendation's recipient (the runs' connection owner) or an admin of its
    environment may; every selected run must still be blocked in it, or nothing is done.
    """
    user = require_user(principal)
    recommendation_id = validation.ident(recommendation_id, field="recommendationId")
    selected = _selected(run_ids)
    now = ctx.clock.now()
    async with ctx.db.write() as session:
        rec = await visible_recommendation(session, user, recommendation_id, for_update=True)
        if rec.status is not RecommendationStatus.OPEN:
            raise Conflict(
                ErrorCode.RECOMMENDATION_RESOLVED,
                "the recommendation is resolved: no run in it is blocked any more",
            )
        items = {
            i.run_id: i
            for i in (
                await session.exec(
                    select(SessionRecommendationItem).where(
                        SessionRecommendationItem.recommendation_id == rec.id,
                        col(SessionRecommendationItem.run_id).in_(selected),
                    )
                )
            ).all()
        }
        for run_id in selected:
            item = items.get(run_id)
            if item is None:
                raise NotFound("affected run", run_id)
            if item.outcome is not ItemOutcome.BLOCKED or item.machine_id is None:
                raise Conflict(
                    ErrorCode.RUN_NOT_BLOCKED,
                    f"run {run_id} is no longer blocked by a user session ({item.outcome.value})",
                )
        wanted = {(items[r].machine_id, user_key(items[r].username)) for r in selected}
        await _end_sessions(ctx, session, wanted, now)  # type: ignore[arg-type]
        for run_id in selected:
            items[run_id].disconnect_requested_at = now
            session.add(items[run_id])
        rec.updated_at = now
        session.add(rec)
        emit(ctx.events, session, RecommendationChanged(rec.environment_id, rec.recipient_id))
    return await get_recommendation(ctx, principal, recommendation_id)


async def _end_sessions(
    ctx: DomainContext, session: AsyncSession, wanted: set[tuple[str, str]], now: datetime
) -> None:
    """One END_SESSION command per machine and user, unless one is already pending."""
    machine_ids = sorted({m for m, _ in wanted})
    reported = (
        await session.exec(select(UserSession).where(col(UserSession.machine_id).in_(machine_ids)))
    ).all()
    pending = (
        await session.exec(
            select(MachineCommand.machine_id, MachineCommand.username).where(
                col(MachineCommand.machine_id).in_(machine_ids),
                MachineCommand.kind == END_SESSION_COMMAND,
                col(MachineCommand.completed_at).is_(None),
            )
        )
    ).all()
    already = {(m, user_key(u or "")) for m, u in pending}
    for s in reported:
        key = (s.machine_id, user_key(s.username))
        if key not in wanted or key in already:
            continue
        session.add(
            MachineCommand(
                machine_id=s.machine_id,
                kind=END_SESSION_COMMAND,
                username=s.username,  # as the runtime reported it
                created_at=now,
            )
        )
        already.add(key)
        emit(ctx.events, session, MachineWorkChanged(s.machine_id))


# --- live (R35, R36) ----------------------------------------------------------------------------


async def watch(
    ctx: DomainContext, who: PrincipalSource, *, environment_id: str | None = None
) -> AsyncIterator[Update[Recommendation]]:
    """The caller's recommendations as :func:`list_recommendations` shows them: the open ones,
    then each change; one that resolves while watched is sent once more, RESOLVED, and stays."""
    user = require_user(await who())
    since = ctx.clock.now()
    flt = RecommendationFilter(
        environment_id=environment_id, include_resolved=True, resolved_since=since
    )

    async def read() -> dict[str, Recommendation]:
        return {r.id: r for r in await list_recommendations(ctx, await who(), flt)}

    def relevant(event: Event) -> bool:
        return (
            isinstance(event, RecommendationChanged)
            and event.recipient_id == user.user_id
            and environment_id in (None, event.environment_id)
        )

    async for change in follow(ctx.events, read, relevant):
        yield change


async def refresh(
    ctx: DomainContext, principal: Principal, recommendation_id: str
) -> Recommendation:
    """R34 "Refresh": re-evaluate the recommendation's environment now, then return it."""
    await get_recommendation(ctx, principal, recommendation_id)  # visible to the caller?
    async with ctx.db.read() as session:
        rec = await session.get(SessionRecommendation, recommendation_id)
    if rec is not None:
        await review(ctx, rec.environment_id)
    return await get_recommendation(ctx, principal, recommendation_id)


__all__ = [
    "END_SESSION_COMMAND",
    "SESSION_EXISTS_FOR_USER",
    "TITLE",
    "AffectedRun",
    "Blocked",
    "Recommendation",
    "RecommendationFilter",
    "ReviewResult",
    "detect",
    "disconnect_users",
    "get_recommendation",
    "list_recommendations",
    "reconcile",
    "refresh",
    "review",
    "watch",
]
