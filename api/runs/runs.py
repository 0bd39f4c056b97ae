"""Desktop-flow runs, their queues and unattended bots (R23-R29)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.types import Info

from api.connections.connections import ConnectionType
from api.context import Context
from api.errors import UserErrors, idempotency_key_field, lookup, read, typed_errors
from api.fleet.environments import EnvironmentType
from api.fleet.groups import MachineGroupType
from api.fleet.machines import MachinePayload, MachineType
from api.identity.identity import UserType
from api.pagination import PageInfo
from api.runs.flows import DesktopFlowType
from domain.fleet import allocation
from domain.runs import retries, runs
from domain.runs.candidates import WaitReason
from domain.runs.start_estimates import EstimateUnknown
from domain.store.models import FlowRun, RunMode, RunPriority, RunStatus, SessionState

RunModeEnum = strawberry.enum(RunMode, name="RunMode")
RunPriorityEnum = strawberry.enum(RunPriority, name="RunPriority")
RunStatusEnum = strawberry.enum(RunStatus, name="RunStatus", description="R28.")
SessionStateEnum = strawberry.enum(SessionState, name="SessionState")
WaitReasonEnum = strawberry.enum(
    WaitReason, name="WaitReason", description="R29: why a queued run is not running yet."
)
EstimateUnknownEnum = strawberry.enum(
    EstimateUnknown,
    name="EstimateUnknown",
    description="R42: why a queued run has no estimated start.",
)


@strawberry.type(description="R29: one stretch of a run's wait, and why it waited.")
class RunWaitStretch:
    reason: WaitReason
    since: datetime
    until: datetime | None = strawberry.field(description="Null while it still waits so.")


@strawberry.type(name="FlowRun", description="One run of a desktop flow through a connection.")
class FlowRunType:
    id: strawberry.ID
    mode: RunMode
    priority: RunPriority
    status: RunStatus
    run_as: str = strawberry.field(description="The Windows user the run signs in as.")
    attempt: int = strawberry.field(description="How many times it was dispatched (R28, R30).")
    queued_at: datetime
    dispatched_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    wait_seconds: float | None = strawberry.field(
        description="Queued until started (or ended, or now while it waits)."
    )
    run_seconds: float | None = strawberry.field(
        description="Started until ended (or now while it runs); null if it never started."
    )
    error_code: str | None = strawberry.field(
        description="NO_CANDIDATE_MACHINE (R27), MACHINE_LOST (R28), SESSION_EXISTS_FOR_USER "
        "(R33), CANCELLED_BY_USER, CONNECTION_REMOVED (R6), or the runtime's own."
    )
    error_message: str | None
    reported_runtime_version: str | None
    retry_attempt: int = strawberry.field(
        description="R40: its place in its retry chain: 1 for a first run, 2 for its retry, ..."
    )
    not_before: datetime | None = strawberry.field(
        description="R40: a retry is not dispatched before this instant (its delay)."
    )
    model: strawberry.Private[FlowRun]

    @classmethod
    def from_model(cls, run: FlowRun, ctx: Context) -> FlowRunType:
        timings = runs.timings(run, ctx.now)
        return cls(
            id=strawberry.ID(run.id),
            mode=run.mode,
            priority=run.priority,
            status=run.status,
            run_as=run.run_as,
            attempt=run.attempt,
            queued_at=run.queued_at,
            dispatched_at=run.dispatched_at,
            started_at=run.started_at,
            ended_at=run.ended_at,
            wait_seconds=timings.wait_seconds,
            run_seconds=timings.run_seconds,
            error_code=run.error_code,
            error_message=run.error_message,
            reported_runtime_version=run.reported_runtime_version,
            retry_attempt=run.retry_attempt,
            not_before=run.not_before,
            model=run,
        )

    @strawberry.field(description="R29: its place in its queue, while queued.")
    async def queue_position(self, info: Info[Context, None]) -> int | None:
        wait = await info.context.loaders.run_waits.load(self.model)
        return wait.position if wait else None

    @strawberry.field(description="R29: why it waits, while queued; null if starting now.")
    async def wait_reason(self, info: Info[Context, None]) -> WaitReason | None:
        wait = await info.context.loaders.run_waits.load(self.model)
        return wait.reason if wait else None

    @strawberry.field(
        description="R42: when it is likely to start, while queued: the queue played forward "
        "with each flow's recent run length. Null when it cannot be known "
        "(`estimatedStartUnknown` says why) or once it left the queue."
    )
    async def estimated_start_at(self, info: Info[Context, None]) -> datetime | None:
        wait = await info.context.loaders.run_waits.load(self.model)
        return wait.estimate.at if wait else None

    @strawberry.field(
        description="R29: why it waited and how long, stretch by stretch, as read at each fold of "
        "the statistics (every DESKFLEET_STATISTICS_FOLD_SECONDS, 30 s unless set) while it was "
        "queued; empty if it never waited that long."
    )
    async def wait_history(self, info: Info[Context, None]) -> list[RunWaitStretch]:
        found = await info.context.loaders.wait_histories.load(self.model.id)
        return [
            RunWaitStretch(reason=WaitReason(w.reason), since=w.since, until=w.until) for w in found
        ]

    @strawberry.field(description="R42: why a queued run has no `estimatedStartAt`.")
    async def estimated_start_unknown(self, info: Info[Context, None]) -> EstimateUnknown | None:
        wait = await info.context.loaders.run_waits.load(self.model)
        return wait.estimate.unknown if wait else None

    @strawberry.field(
        description="R40: the run this one retries; null for a first run (or one you cannot see)."
    )
    async def retry_of(self, info: Info[Context, None]) -> FlowRunType | None:
        if self.model.retry_of_id is None:
            return None
        found = await info.context.loaders.retried_runs.load(self.model.retry_of_id)
        return FlowRunType.from_model(found, info.context) if found else None

    @strawberry.field(
        description="R40: the run that retries this one, if any (a run is retried at most once)."
    )
    async def retried_by(self, info: Info[Context, None]) -> FlowRunType | None:
        found = await info.context.loaders.retrying_runs.load(self.model.id)
        return FlowRunType.from_model(found, info.context) if found else None

    @strawberry.field(description="Null unless you may see the flow (`desktopFlow(id:)`, R38).")
    async def flow(self, info: Info[Context, None]) -> DesktopFlowType | None:
        flow = await info.context.loaders.flows.load(self.model.flow_id)
        return DesktopFlowType.from_model(flow) if flow else None

    @strawberry.field(
        description="Null unless you may see the connection (`connection(id:)`, R38)."
    )
    async def connection(self, info: Info[Context, None]) -> ConnectionType | None:
        if self.model.connection_id is None:
            return None
        found = await info.context.loaders.connections.load(self.model.connection_id)
        return ConnectionType.from_model(found) if found else None

    @strawberry.field(description="The machine it was dispatched to or runs on.")
    async def machine(self, info: Info[Context, None]) -> MachineType | None:
        return await _machine(info, self.model.machine_id)

    @strawberry.field(description="The machine whose queue it is in (or null for a group).")
    async def target_machine(self, info: Info[Context, None]) -> MachineType | None:
        return await _machine(info, self.model.target_machine_id)

    @strawberry.field(description="The group whose queue it is in (or null for a machine).")
    async def target_group(self, info: Info[Context, None]) -> MachineGroupType | None:
        if self.model.target_group_id is None:
            return None
        group = await info.context.loaders.groups.load(self.model.target_group_id)
        return MachineGroupType.from_model(group) if group else None

    @strawberry.field
    async def environment(self, info: Info[Context, None]) -> EnvironmentType | None:
        environment = await info.context.loaders.environments.load(self.model.environment_id)
        return EnvironmentType.from_model(environment) if environment else None

    @strawberry.field(
        description="Null to whoever sees the run only through its machine or group (R38)."
    )
    async def triggered_by(self, info: Info[Context, None]) -> UserType | None:
        return await self._person(info, self.model.triggered_by_id)

    @strawberry.field(
        description="Null to whoever sees the run only through its machine or group (R38)."
    )
    async def connection_owner(self, info: Info[Context, None]) -> UserType | None:
        return await self._person(info, self.model.connection_owner_id)

    async def _person(self, info: Info[Context, None], user_id: str) -> UserType | None:
        """R38: null to whoever sees the run only through its machine or group."""
        if not await info.context.loaders.run_people.load(self.model):
            return None
        user = await info.context.loaders.users.load(user_id)
        return UserType.from_model(user) if user else None


async def _machine(info: Info[Context, None], machine_id: str | None) -> MachineType | None:
    if machine_id is None:
        return None
    machine = await info.context.loaders.machines.load(machine_id)
    return MachineType.from_model(machine, info.context) if machine else None


@strawberry.type
class QueueEntry:
    position: int = strawberry.field(description="1-based place in the queue (R25).")
    wait_reason: WaitReason | None = strawberry.field(
        description="R29: why it waits; null when it is being dispatched now."
    )
    run: FlowRunType


@strawberry.type
class FlowRunEdge:
    cursor: str
    node: FlowRunType


@strawberry.type
class FlowRunConnection:
    edges: list[FlowRunEdge]
    page_info: PageInfo
    total_count: int

    @strawberry.field
    def nodes(self) -> list[FlowRunType]:
        return [edge.node for edge in self.edges]


@strawberry.input
class FlowRunFilterInput:
    environment_id: strawberry.ID | None = None
    flow_id: strawberry.ID | None = None
    connection_id: strawberry.ID | None = None
    machine_id: strawberry.ID | None = strawberry.field(
        default=None, description="Runs queued for the machine or dispatched to it."
    )
    group_id: strawberry.ID | None = None
    status: RunStatus | None = None
    triggered_by_id: strawberry.ID | None = strawberry.field(
        default=None, description="Runs this user triggered."
    )
    queued_after: datetime | None = strawberry.field(
        default=None, description="Runs queued at or after this instant."
    )
    queued_before: datetime | None = strawberry.field(
        default=None, description="Runs queued before this instant."
    )

    def to_filter(self) -> runs.RunFilter:
        return runs.RunFilter(
            environment_id=self.environment_id,
            flow_id=self.flow_id,
            connection_id=self.connection_id,
            machine_id=self.machine_id,
            group_id=self.group_id,
            status=self.status,
            triggered_by_id=self.triggered_by_id,
            queued_after=self.queued_after,
            queued_before=self.queued_before,
        )


@strawberry.input
class TriggerRunInput:
    flow_id: strawberry.ID
    connection_id: strawberry.ID
    mode: RunMode
    priority: RunPriority = RunPriority.NORMAL
    idempotency_key: str | None = idempotency_key_field()


@strawberry.type
class FlowRunPayload:
    run: FlowRunType


TriggerRunResult = Annotated[FlowRunPayload | UserErrors, strawberry.union("TriggerRunResult")]
CancelRunResult = Annotated[FlowRunPayload | UserErrors, strawberry.union("CancelRunResult")]
ChangeRunPriorityResult = Annotated[
    FlowRunPayload | UserErrors, strawberry.union("ChangeRunPriorityResult")
]
RetryRunResult = Annotated[FlowRunPayload | UserErrors, strawberry.union("RetryRunResult")]
MoveRunToTopResult = Annotated[FlowRunPayload | UserErrors, strawberry.union("MoveRunToTopResult")]
AllocateUnattendedBotsResult = Annotated[
    MachinePayload | UserErrors, strawberry.union("AllocateUnattendedBotsResult")
]


def _entries(entries: list[runs.QueueEntry], ctx: Context) -> list[QueueEntry]:
    return [
        QueueEntry(
            position=e.position,
            wait_reason=e.wait_reason,
            run=FlowRunType.from_model(e.run, ctx),
        )
        for e in entries
    ]


@strawberry.type
class RunQuery:
    @strawberry.field(description="One run the caller can see, or null.")
    async def run(self, info: Info[Context, None], id: strawberry.ID) -> FlowRunType | None:
        ctx = info.context
        found = await lookup(lambda: runs.get_run(ctx.domain, ctx.principal, id))
        return FlowRunType.from_model(found, ctx) if found else None

    @strawberry.field(description="Runs the caller can see, newest first. At most 100 a page.")
    async def flow_runs(
        self,
        info: Info[Context, None],
        first: int = 50,
        after: str | None = None,
        filter: FlowRunFilterInput | None = None,
    ) -> FlowRunConnection:
        ctx = info.context
        flt = (filter or FlowRunFilterInput()).to_filter()
        page = await read(
            lambda: runs.list_runs(ctx.domain, ctx.principal, flt, first=first, after=after)
        )
        return FlowRunConnection(
            edges=[
                FlowRunEdge(cursor=c, node=FlowRunType.from_model(r, ctx))
                for r, c in zip(page.items, page.cursors, strict=True)
            ],
            page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
            total_count=page.total_count,
        )

    @strawberry.field(description="R25/R29: the runs queued for a machine, in order.")
    async def machine_queue(
        self, info: Info[Context, None], machine_id: strawberry.ID
    ) -> list[QueueEntry]:
        ctx = info.context
        found = await read(lambda: runs.machine_queue(ctx.domain, ctx.principal, machine_id))
        return _entries(found, ctx)

    @strawberry.field(description="R25/R29: the runs queued for a group, in order.")
    async def group_queue(
        self, info: Info[Context, None], group_id: strawberry.ID
    ) -> list[QueueEntry]:
        ctx = info.context
        found = await read(lambda: runs.group_queue(ctx.domain, ctx.principal, group_id))
        return _entries(found, ctx)


@strawberry.type
class RunMutation:
    @strawberry.mutation(description="Queue a run of a desktop flow through a connection (R23).")
    @typed_errors
    async def trigger_run(
        self, info: Info[Context, None], input: TriggerRunInput
    ) -> TriggerRunResult:
        ctx = info.context
        found = await runs.trigger_run(
            ctx.domain,
            ctx.principal,
            flow_id=input.flow_id,
            connection_id=input.connection_id,
            mode=input.mode,
            priority=input.priority,
            idempotency_key=input.idempotency_key,
        )
        return FlowRunPayload(run=FlowRunType.from_model(found, ctx))

    @strawberry.mutation(description="Cancel a run that has not ended (R25, R28).")
    @typed_errors
    async def cancel_run(self, info: Info[Context, None], id: strawberry.ID) -> CancelRunResult:
        ctx = info.context
        found = await runs.cancel_run(ctx.domain, ctx.principal, id)
        return FlowRunPayload(run=FlowRunType.from_model(found, ctx))

    @strawberry.mutation(
        description="R40: retry a finished run now, as a new run linked to it (same flow, "
        "connection, queue and priority; triggered by you). Refused while the run has not ended "
        "or once it has been retried: one retry chain never has two live runs."
    )
    @typed_errors
    async def retry_run(self, info: Info[Context, None], id: strawberry.ID) -> RetryRunResult:
        ctx = info.context
        found = await retries.retry_run(ctx.domain, ctx.principal, id)
        return FlowRunPayload(run=FlowRunType.from_model(found, ctx))

    @strawberry.mutation(description="Change a queued run's priority (R25).")
    @typed_errors
    async def change_run_priority(
        self, info: Info[Context, None], id: strawberry.ID, priority: RunPriority
    ) -> ChangeRunPriorityResult:
        ctx = info.context
        found = await runs.change_priority(ctx.domain, ctx.principal, id, priority)
        return FlowRunPayload(run=FlowRunType.from_model(found, ctx))

    @strawberry.mutation(description="Put a queued run first in its queue; last moved first (R25).")
    @typed_errors
    async def move_run_to_top(
        self, info: Info[Context, None], id: strawberry.ID
    ) -> MoveRunToTopResult:
        ctx = info.context
        found = await runs.move_to_top(ctx.domain, ctx.principal, id)
        return FlowRunPayload(run=FlowRunType.from_model(found, ctx))

    @strawberry.mutation(
        description="Set a machine's unattended bots, from its environment's pool (R24)."
    )
    @typed_errors
    async def allocate_unattended_bots(
        self, info: Info[Context, None], machine_id: strawberry.ID, count: int
    ) -> AllocateUnattendedBotsResult:
        ctx = info.context
        machine = await allocation.allocate_unattended_bots(
            ctx.domain, ctx.principal, machine_id, count
        )
        return MachinePayload(machine=MachineType.from_model(machine, ctx))
