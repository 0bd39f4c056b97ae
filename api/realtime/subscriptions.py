"""Live subscriptions (R35-R37): each sends the current state first, then changes (R36).

Over websockets only (graphql-transport-ws or graphql-ws, credentials in ``connection_init``:
see api/transport/websocket.py). What a subscriber sees and how it is re-read is domain/realtime/watch.py.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncGenerator
from datetime import datetime
from functools import partial

import strawberry
from strawberry.types import Info

from api.context import Context
from api.errors import ApiError
from api.runs.agent import MachineAssignment, MachineCommandType
from api.runs.runs import FlowRunFilterInput, FlowRunType
from api.transport.shared_execution import send_shared, shareable
from api.transport.websocket import fresh_principal
from domain.bus.live import PrincipalSource, Update
from domain.kernel.errors import DomainError, ErrorCode
from domain.realtime import watch
from domain.runs.runtime import Assignment
from domain.store.models import MachineCommand, MachineStatus, RunPriority


class _AsApiErrors:
    """``with AS_API_ERRORS:`` around a subscription's loop: expected failures end it with a
    coded error, like a query's. A plain object rather than a generator wrapping the stream: it
    keeps nothing alive for each subscriber while the subscription waits."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, error: BaseException | None, traceback: object) -> None:
        if isinstance(error, DomainError):
            raise ApiError(error.code, error.message) from None


AS_API_ERRORS = _AsApiErrors()


def who(info: Info[Context, None]) -> PrincipalSource:
    return partial(fresh_principal, info.context)


# --- machine status -----------------------------------------------------------------------------


@strawberry.type(description="One machine as a live fleet view shows it (R8, R9, R19).")
class MachineLiveStatus:
    machine_id: strawberry.ID
    name: str
    environment_id: strawberry.ID
    group_id: strawberry.ID | None
    status: MachineStatus
    maintenance: bool = strawberry.field(description="Effective maintenance (R16-R18).")
    drained: bool = strawberry.field(description="R19: nothing running on it.")
    key_action_required: bool
    running_count: int
    queued_count: int
    version: str

    @classmethod
    def from_domain(cls, m: watch.MachineLive) -> MachineLiveStatus:
        return cls(
            machine_id=strawberry.ID(m.machine_id),
            name=m.name,
            environment_id=strawberry.ID(m.environment_id),
            group_id=strawberry.ID(m.group_id) if m.group_id else None,
            status=m.status,
            maintenance=m.maintenance,
            drained=m.drained,
            key_action_required=m.key_action_required,
            running_count=m.running,
            queued_count=m.queued,
            version=m.version,
        )


@strawberry.type(
    description="A snapshot (`snapshot: true`: `machines` is the whole view, replace yours) or "
    "a change (the machines that changed, and the ids that left the view)."
)
class MachineStatusUpdate:
    snapshot: bool
    machines: list[MachineLiveStatus]
    removed_ids: list[strawberry.ID]


# One object per distinct update: every subscriber that gets the same change gets the same
# object, and api/transport/shared_execution.py executes a document over it once for all of them.
_UPDATES: OrderedDict[tuple[object, ...], MachineStatusUpdate] = OrderedDict()
_UPDATES_KEPT = 256


def shared_update(u: Update[watch.MachineLive]) -> MachineStatusUpdate:
    key = (u.snapshot, tuple(u.items), tuple(u.removed))
    found = _UPDATES.get(key)
    if found is None:
        found = MachineStatusUpdate(
            snapshot=u.snapshot,
            machines=[MachineLiveStatus.from_domain(m) for m in u.items],
            removed_ids=[strawberry.ID(i) for i in u.removed],
        )
        shareable(found)
        _UPDATES[key] = found
        if len(_UPDATES) > _UPDATES_KEPT:
            _UPDATES.popitem(last=False)
    return found


@strawberry.input(description="At most one of these; none: every machine the caller can see.")
class MachineStatusFilterInput:
    environment_id: strawberry.ID | None = None
    group_id: strawberry.ID | None = None
    machine_id: strawberry.ID | None = None


# --- queue depth ------------------------------------------------------------------------------


@strawberry.type
class PriorityCount:
    priority: RunPriority
    count: int


@strawberry.type(description="A machine's or a group's queue at a glance (R25).")
class QueueDepth:
    machine_id: strawberry.ID | None
    group_id: strawberry.ID | None
    depth: int
    oldest_queued_at: datetime | None
    oldest_wait_seconds: float | None
    by_priority: list[PriorityCount]

    @classmethod
    def from_domain(cls, q: watch.QueueDepth) -> QueueDepth:
        return cls(
            machine_id=strawberry.ID(q.machine_id) if q.machine_id else None,
            group_id=strawberry.ID(q.group_id) if q.group_id else None,
            depth=q.depth,
            oldest_queued_at=q.oldest_queued_at,
            oldest_wait_seconds=q.oldest_wait_seconds,
            by_priority=[PriorityCount(priority=p, count=n) for p, n in q.by_priority],
        )


# --- runs -------------------------------------------------------------------------------------


@strawberry.type(
    description="A snapshot (`snapshot: true`: the run, or the filter's active runs) or runs "
    "that changed (terminal ones included); `removedIds` stopped matching or became invisible."
)
class RunUpdate:
    snapshot: bool
    runs: list[FlowRunType]
    removed_ids: list[strawberry.ID]


# --- the machine runtime ------------------------------------------------------------------------


@strawberry.type(
    description="Everything the machine runtime must act on now; sent again whole at each "
    "change. Act on assignments new to you (run id and attempt) and commands not yet done."
)
class MachineWork:
    assignments: list[MachineAssignment]
    commands: list[MachineCommandType]


def _assignment(a: Assignment) -> MachineAssignment:
    return MachineAssignment(
        run_id=strawberry.ID(a.run.id),
        attempt=a.run.attempt,
        flow_id=strawberry.ID(a.run.flow_id),
        flow_name=a.flow_name,
        mode=a.run.mode,
        priority=a.run.priority,
        run_as=a.run.run_as,
        username=a.username,
        password=a.password,
        dispatched_at=a.run.dispatched_at,
    )


def _command(c: MachineCommand) -> MachineCommandType:
    return MachineCommandType(
        id=strawberry.ID(c.id),
        kind=c.kind,
        run_id=strawberry.ID(c.run_id) if c.run_id else None,
        username=c.username,
        created_at=c.created_at,
    )


def _one_of(**given: object) -> None:
    named = [k for k, v in given.items() if v is not None]
    if len(named) > 1:
        raise ApiError(
            ErrorCode.INVALID_VALUE, f"give at most one of {', '.join(given)}; got {named}"
        )


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="R35/R36: machine status, maintenance, drained, running and queued counts and "
        "version; a snapshot first, then changes. Only machines the caller can see."
    )
    async def machine_status(
        self, info: Info[Context, None], filter: MachineStatusFilterInput | None = None
    ) -> AsyncGenerator[MachineStatusUpdate, None]:
        f = filter or MachineStatusFilterInput()
        _one_of(environmentId=f.environment_id, groupId=f.group_id, machineId=f.machine_id)
        flt = watch.MachineStatusFilter(f.environment_id, f.group_id, f.machine_id)
        with AS_API_ERRORS:
            async for u in watch.machine_status(info.context.domain, who(info), flt):
                update = shared_update(u)
                if not await send_shared(update):
                    yield update

    @strawberry.subscription(
        description="R35: depth, oldest wait and count by priority of one machine's or group's "
        "queue: now, then at each change. Needs run access, like machineQueue/groupQueue."
    )
    async def queue_depth(
        self,
        info: Info[Context, None],
        machine_id: strawberry.ID | None = None,
        group_id: strawberry.ID | None = None,
    ) -> AsyncGenerator[QueueDepth, None]:
        _one_of(machineId=machine_id, groupId=group_id)
        if machine_id is None and group_id is None:
            raise ApiError(ErrorCode.INVALID_VALUE, "give machineId or groupId")
        stream = watch.queue_depth(
            info.context.domain, who(info), machine_id=machine_id, group_id=group_id
        )
        with AS_API_ERRORS:
            async for q in stream:
                yield QueueDepth.from_domain(q)

    @strawberry.subscription(
        description="R35/R36: one run (runId), or runs matching a filter: a snapshot (the run, "
        "or the active runs), then each change. Only runs the caller can see."
    )
    async def run_updates(
        self,
        info: Info[Context, None],
        run_id: strawberry.ID | None = None,
        filter: FlowRunFilterInput | None = None,
    ) -> AsyncGenerator[RunUpdate, None]:
        flt = (filter or FlowRunFilterInput()).to_filter()
        stream = watch.run_updates(info.context.domain, who(info), run_id=run_id, flt=flt)
        with AS_API_ERRORS:
            async for u in stream:
                ctx = info.context
                yield RunUpdate(
                    snapshot=u.snapshot,
                    runs=[FlowRunType.from_model(r, ctx) for r in u.items],
                    removed_ids=[strawberry.ID(i) for i in u.removed],
                )

    @strawberry.subscription(
        description="For the machine runtime (machine key): its assignments and commands now, "
        "then again at each change, pushed instead of polled (R35)."
    )
    async def machine_assignments(
        self, info: Info[Context, None]
    ) -> AsyncGenerator[MachineWork, None]:
        with AS_API_ERRORS:
            async for work in watch.machine_work(info.context.domain, who(info)):
                yield MachineWork(
                    assignments=[_assignment(a) for a in work.assignments],
                    commands=[_command(c) for c in work.commands],
                )
