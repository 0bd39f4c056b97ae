"""Desktop flows: the automations that runs execute."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.types import Info

from api.context import Context
from api.errors import UserErrors, lookup, read, typed_errors
from api.fleet.environments import EnvironmentType
from api.fleet.retry_policy import RetryPolicyInput, RetryPolicyType
from api.identity.identity import UserType
from api.pagination import PageInfo
from domain.kernel.retry_policy import NO_RETRY
from domain.runs import flows
from domain.store.models import DesktopFlow


@strawberry.type(name="DesktopFlow", description="An automation to run; its script is opaque.")
class DesktopFlowType:
    id: strawberry.ID
    name: str
    created_at: datetime
    model: strawberry.Private[DesktopFlow]

    @classmethod
    def from_model(cls, flow: DesktopFlow) -> DesktopFlowType:
        return cls(
            id=strawberry.ID(flow.id), name=flow.name, created_at=flow.created_at, model=flow
        )

    @strawberry.field
    async def owner(self, info: Info[Context, None]) -> UserType | None:
        user = await info.context.loaders.users.load(self.model.owner_id)
        return UserType.from_model(user) if user else None

    @strawberry.field
    async def environment(self, info: Info[Context, None]) -> EnvironmentType | None:
        environment = await info.context.loaders.environments.load(self.model.environment_id)
        return EnvironmentType.from_model(environment) if environment else None

    @strawberry.field(description="R40: its own retry policy; null: it follows its environment's.")
    def retry_policy(self) -> RetryPolicyType | None:
        return RetryPolicyType.from_stored(self.model.retry_policy)

    @strawberry.field(
        description="R40: the retry policy its runs follow (its own or its environment's)."
    )
    async def effective_retry_policy(self, info: Info[Context, None]) -> RetryPolicyType:
        own = self.retry_policy()
        if own is not None:
            return own
        environment = await info.context.loaders.environments.load(self.model.environment_id)
        stored = environment.retry_policy if environment else None
        return RetryPolicyType.from_stored(stored) or RetryPolicyType.from_policy(NO_RETRY)


@strawberry.type
class DesktopFlowEdge:
    cursor: str
    node: DesktopFlowType


@strawberry.type
class DesktopFlowConnection:
    edges: list[DesktopFlowEdge]
    page_info: PageInfo
    total_count: int

    @strawberry.field
    def nodes(self) -> list[DesktopFlowType]:
        return [edge.node for edge in self.edges]


@strawberry.input
class DesktopFlowFilterInput:
    environment_id: strawberry.ID | None = None
    text: str | None = strawberry.field(default=None, description="Matches the name.")


@strawberry.input
class CreateDesktopFlowInput:
    environment_id: strawberry.ID
    name: str


@strawberry.type
class DesktopFlowPayload:
    flow: DesktopFlowType


@strawberry.type
class DeletedDesktopFlowPayload:
    id: strawberry.ID


CreateDesktopFlowResult = Annotated[
    DesktopFlowPayload | UserErrors, strawberry.union("CreateDesktopFlowResult")
]
RenameDesktopFlowResult = Annotated[
    DesktopFlowPayload | UserErrors, strawberry.union("RenameDesktopFlowResult")
]
SetDesktopFlowRetryPolicyResult = Annotated[
    DesktopFlowPayload | UserErrors, strawberry.union("SetDesktopFlowRetryPolicyResult")
]
DeleteDesktopFlowResult = Annotated[
    DeletedDesktopFlowPayload | UserErrors, strawberry.union("DeleteDesktopFlowResult")
]


@strawberry.type
class FlowQuery:
    @strawberry.field(description="One desktop flow the caller owns or administers, or null.")
    async def desktop_flow(
        self, info: Info[Context, None], id: strawberry.ID
    ) -> DesktopFlowType | None:
        ctx = info.context
        found = await lookup(lambda: flows.get_flow(ctx.domain, ctx.principal, id))
        return DesktopFlowType.from_model(found) if found else None

    @strawberry.field(
        description="The caller's flows, and all of the environments they administer."
    )
    async def desktop_flows(
        self,
        info: Info[Context, None],
        first: int = 50,
        after: str | None = None,
        filter: DesktopFlowFilterInput | None = None,
    ) -> DesktopFlowConnection:
        ctx = info.context
        f = filter or DesktopFlowFilterInput()
        page = await read(
            lambda: flows.list_flows(
                ctx.domain,
                ctx.principal,
                environment_id=f.environment_id,
                text=f.text,
                first=first,
                after=after,
            )
        )
        return DesktopFlowConnection(
            edges=[
                DesktopFlowEdge(cursor=cursor, node=DesktopFlowType.from_model(flow))
                for flow, cursor in zip(page.items, page.cursors, strict=True)
            ],
            page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
            total_count=page.total_count,
        )


@strawberry.type
class FlowMutation:
    @strawberry.mutation(description="Create a desktop flow (needs the run privilege, R13).")
    @typed_errors
    async def create_desktop_flow(
        self, info: Info[Context, None], input: CreateDesktopFlowInput
    ) -> CreateDesktopFlowResult:
        ctx = info.context
        flow = await flows.create_flow(
            ctx.domain, ctx.principal, environment_id=input.environment_id, name=input.name
        )
        return DesktopFlowPayload(flow=DesktopFlowType.from_model(flow))

    @strawberry.mutation(description="Rename a desktop flow (its owner or an environment admin).")
    @typed_errors
    async def rename_desktop_flow(
        self, info: Info[Context, None], id: strawberry.ID, name: str
    ) -> RenameDesktopFlowResult:
        ctx = info.context
        flow = await flows.rename_flow(ctx.domain, ctx.principal, id, name=name)
        return DesktopFlowPayload(flow=DesktopFlowType.from_model(flow))

    @strawberry.mutation(
        description="R40: a desktop flow's own retry policy, which overrides its environment's "
        "(its owner or an environment admin); null: it follows its environment's again. Runs that "
        "end from then on follow it."
    )
    @typed_errors
    async def set_desktop_flow_retry_policy(
        self, info: Info[Context, None], id: strawberry.ID, policy: RetryPolicyInput | None = None
    ) -> SetDesktopFlowRetryPolicyResult:
        ctx = info.context
        flow = await flows.set_retry_policy(
            ctx.domain, ctx.principal, id, policy.to_policy() if policy is not None else None
        )
        return DesktopFlowPayload(flow=DesktopFlowType.from_model(flow))

    @strawberry.mutation(
        description="Delete a desktop flow with no unfinished runs (its owner or an admin)."
    )
    @typed_errors
    async def delete_desktop_flow(
        self, info: Info[Context, None], id: strawberry.ID
    ) -> DeleteDesktopFlowResult:
        ctx = info.context
        flow = await flows.delete_flow(ctx.domain, ctx.principal, id)
        return DeletedDesktopFlowPayload(id=strawberry.ID(flow.id))
