"""Session-lock recommendations, "Desktop flows not running" (R31-R34, R35-R36)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.types import Info

from api.context import Context
from api.errors import UserErrors, lookup, read, typed_errors
from api.fleet.environments import EnvironmentType
from api.fleet.machines import MachineType
from api.identity.identity import UserType
from api.realtime.subscriptions import AS_API_ERRORS, who
from api.runs.flows import DesktopFlowType
from api.runs.runs import FlowRunType
from domain.recommendations import recommendations
from domain.store.models import ItemOutcome, RecommendationStatus, SessionState

RecommendationStatusEnum = strawberry.enum(
    RecommendationStatus,
    name="RecommendationStatus",
    description="OPEN while a run is blocked; RESOLVED once the list is empty (R33).",
)
AffectedRunOutcomeEnum = strawberry.enum(
    ItemOutcome,
    name="AffectedRunOutcome",
    description="BLOCKED: still listed. The others say how the run left the list (R33).",
)


@strawberry.type(description="A run a recommendation lists (R32): where and by whom it is blocked.")
class AffectedRun:
    run_id: strawberry.ID = strawberry.field(description="Run details: `run(id:)` resolves it.")
    flow_id: strawberry.ID = strawberry.field(description="Flow details: the run's desktop flow.")
    machine_id: strawberry.ID | None = strawberry.field(
        description="The machine holding the user's session."
    )
    username: str = strawberry.field(description="The run's Windows user (the session's user).")
    session_state: SessionState = strawberry.field(description="LOCKED or DISCONNECTED.")
    blocked_since: datetime
    blocked_seconds: float = strawberry.field(description="Until it left the list, or now.")
    outcome: ItemOutcome
    left_at: datetime | None
    disconnect_requested_at: datetime | None = strawberry.field(
        description="R34: when the machine was told to end the session."
    )
    view: strawberry.Private[recommendations.AffectedRun]

    @classmethod
    def from_domain(cls, a: recommendations.AffectedRun, ctx: Context) -> AffectedRun:
        return cls(
            run_id=strawberry.ID(a.run_id),
            flow_id=strawberry.ID(a.flow_id),
            machine_id=strawberry.ID(a.machine_id) if a.machine_id else None,
            username=a.username,
            session_state=a.session_state,
            blocked_since=a.blocked_since,
            blocked_seconds=((a.left_at or ctx.now) - a.blocked_since).total_seconds(),
            outcome=a.outcome,
            left_at=a.left_at,
            disconnect_requested_at=a.disconnect_requested_at,
            view=a,
        )

    @strawberry.field(description="R34 run details.")
    def run(self, info: Info[Context, None]) -> FlowRunType | None:
        return FlowRunType.from_model(self.view.run, info.context) if self.view.run else None

    @strawberry.field(description="R34 flow details.")
    def flow(self) -> DesktopFlowType | None:
        return DesktopFlowType.from_model(self.view.flow) if self.view.flow else None

    @strawberry.field
    def machine(self, info: Info[Context, None]) -> MachineType | None:
        m = self.view.machine
        return MachineType.from_model(m, info.context) if m else None


@strawberry.type(
    name="SessionRecommendation",
    description='R32 "Desktop flows not running": unattended runs waiting only because their '
    "user has a locked or disconnected session on an otherwise eligible machine.",
)
class SessionRecommendationType:
    id: strawberry.ID
    title: str
    environment_id: strawberry.ID
    recipient_id: strawberry.ID = strawberry.field(description="The runs' connection owner.")
    status: RecommendationStatus
    raised_at: datetime
    window_ends_at: datetime = strawberry.field(
        description="R33: runs still blocked then fail with SESSION_EXISTS_FOR_USER."
    )
    window_seconds_left: float = strawberry.field(description="0 once the window ended.")
    updated_at: datetime
    resolved_at: datetime | None
    affected_runs: list[AffectedRun] = strawberry.field(description="The runs still blocked.")
    runs: list[AffectedRun] = strawberry.field(
        description="Every run it listed, with how each left the list."
    )

    @classmethod
    def from_domain(
        cls, r: recommendations.Recommendation, ctx: Context
    ) -> SessionRecommendationType:
        entries = [AffectedRun.from_domain(a, ctx) for a in r.runs]
        return cls(
            id=strawberry.ID(r.id),
            title=r.title,
            environment_id=strawberry.ID(r.environment_id),
            recipient_id=strawberry.ID(r.recipient_id),
            status=r.status,
            raised_at=r.raised_at,
            window_ends_at=r.window_ends_at,
            window_seconds_left=max(0.0, (r.window_ends_at - ctx.now).total_seconds())
            if r.status is RecommendationStatus.OPEN
            else 0.0,
            updated_at=r.updated_at,
            resolved_at=r.resolved_at,
            affected_runs=[e for e in entries if e.outcome is ItemOutcome.BLOCKED],
            runs=entries,
        )

    @strawberry.field
    async def environment(self, info: Info[Context, None]) -> EnvironmentType | None:
        found = await info.context.loaders.environments.load(self.environment_id)
        return EnvironmentType.from_model(found) if found else None

    @strawberry.field
    async def recipient(self, info: Info[Context, None]) -> UserType | None:
        found = await info.context.loaders.users.load(self.recipient_id)
        return UserType.from_model(found) if found else None


@strawberry.type
class SessionRecommendationPayload:
    recommendation: SessionRecommendationType


DisconnectSessionUsersResult = Annotated[
    SessionRecommendationPayload | UserErrors, strawberry.union("DisconnectSessionUsersResult")
]
RefreshSessionRecommendationResult = Annotated[
    SessionRecommendationPayload | UserErrors,
    strawberry.union("RefreshSessionRecommendationResult"),
]


@strawberry.type(
    description="A snapshot (`snapshot: true`: the whole list, replace yours) or the "
    "recommendations that changed (a resolved one is sent once more, RESOLVED)."
)
class SessionRecommendationUpdate:
    snapshot: bool
    recommendations: list[SessionRecommendationType]
    removed_ids: list[strawberry.ID]


@strawberry.type
class RecommendationQuery:
    @strawberry.field(
        description="R32: the caller's recommendations (it is their recipient), open ones first. "
        "everyRecipient: also everyone else's in environments the caller administers."
    )
    async def session_recommendations(
        self,
        info: Info[Context, None],
        environment_id: strawberry.ID | None = None,
        include_resolved: bool = False,
        every_recipient: bool = False,
    ) -> list[SessionRecommendationType]:
        ctx = info.context
        flt = recommendations.RecommendationFilter(
            environment_id=environment_id,
            include_resolved=include_resolved,
            every_recipient=every_recipient,
        )
        found = await read(
            lambda: recommendations.list_recommendations(ctx.domain, ctx.principal, flt)
        )
        return [SessionRecommendationType.from_domain(r, ctx) for r in found]

    @strawberry.field(description="One recommendation: its recipient's, or an env admin's.")
    async def session_recommendation(
        self, info: Info[Context, None], id: strawberry.ID
    ) -> SessionRecommendationType | None:
        ctx = info.context
        found = await lookup(
            lambda: recommendations.get_recommendation(ctx.domain, ctx.principal, id)
        )
        return SessionRecommendationType.from_domain(found, ctx) if found else None


@strawberry.type
class RecommendationMutation:
    @strawberry.mutation(
        description="R34 Disconnect users: the machines of the selected runs are told to end "
        "their users' sessions (END_SESSION); once reported gone, the runs start."
    )
    @typed_errors
    async def disconnect_session_users(
        self,
        info: Info[Context, None],
        recommendation_id: strawberry.ID,
        run_ids: list[strawberry.ID],
    ) -> DisconnectSessionUsersResult:
        ctx = info.context
        found = await recommendations.disconnect_users(
            ctx.domain, ctx.principal, recommendation_id, run_ids
        )
        return SessionRecommendationPayload(
            recommendation=SessionRecommendationType.from_domain(found, ctx)
        )

    @strawberry.mutation(description="R34 Refresh: re-evaluate the list now and return it.")
    @typed_errors
    async def refresh_session_recommendation(
        self, info: Info[Context, None], id: strawberry.ID
    ) -> RefreshSessionRecommendationResult:
        ctx = info.context
        found = await recommendations.refresh(ctx.domain, ctx.principal, id)
        return SessionRecommendationPayload(
            recommendation=SessionRecommendationType.from_domain(found, ctx)
        )


@strawberry.type
class RecommendationSubscription:
    @strawberry.subscription(
        description="R35/R36: the caller's recommendations (as the query): a snapshot of the open "
        "ones, then each change, including the moment one resolves."
    )
    async def session_recommendations(
        self, info: Info[Context, None], environment_id: strawberry.ID | None = None
    ) -> AsyncGenerator[SessionRecommendationUpdate, None]:
        ctx = info.context
        stream = recommendations.watch(ctx.domain, who(info), environment_id=environment_id)
        with AS_API_ERRORS:
            async for u in stream:
                yield SessionRecommendationUpdate(
                    snapshot=u.snapshot,
                    recommendations=[
                        SessionRecommendationType.from_domain(r, ctx) for r in u.items
                    ],
                    removed_ids=[strawberry.ID(i) for i in u.removed],
                )
