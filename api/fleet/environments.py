"""Environments and their settings."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.types import Info

import api.enums  # noqa: F401  (registers the domain enums with Strawberry)
from api.context import Context
from api.errors import UserErrors, read, typed_errors
from api.fleet.retry_policy import RetryPolicyInput, RetryPolicyType
from api.identity.identity import UserType
from domain.fleet import environments, members
from domain.kernel.permissions import Role
from domain.kernel.retry_policy import NO_RETRY
from domain.store.models import Environment, EnvironmentKind


@strawberry.type(name="Environment")
class EnvironmentType:
    id: strawberry.ID
    name: str
    kind: EnvironmentKind
    flow_extensions_version: str
    restrict_registration: bool = strawberry.field(
        description="R4: registration is restricted to Machine Owner holders."
    )
    max_queue_seconds: int = strawberry.field(description="R27: how long a run may stay queued.")
    session_recommendations: bool = strawberry.field(
        description="R31: receive user session related recommendations."
    )
    unattended_capacity: int = strawberry.field(
        description="R24: unattended bots this environment can allocate to its machines."
    )
    recommendation_window_seconds: int = strawberry.field(
        description=(
            "R45: how long a session-lock recommendation gives its recipient before the runs "
            "it lists fail (600 by default); a change applies to recommendations raised after it."
        )
    )
    min_runtime_version: str | None = strawberry.field(
        description=(
            "R41: machines whose runtime is older get no new run (null: any version will do)."
        )
    )
    retry_policy: RetryPolicyType = strawberry.field(
        description="R40: the retry policy of its desktop flows that have none of their own."
    )
    created_at: datetime

    @classmethod
    def from_model(cls, environment: Environment) -> EnvironmentType:
        return cls(
            id=strawberry.ID(environment.id),
            name=environment.name,
            kind=environment.kind,
            flow_extensions_version=environment.flow_extensions_version,
            restrict_registration=environment.restrict_registration,
            max_queue_seconds=environment.max_queue_seconds,
            session_recommendations=environment.session_recommendations,
            unattended_capacity=environment.unattended_capacity,
            recommendation_window_seconds=environment.recommendation_window_seconds,
            min_runtime_version=environment.min_runtime_version,
            retry_policy=RetryPolicyType.from_stored(environment.retry_policy)
            or RetryPolicyType.from_policy(NO_RETRY),
            created_at=environment.created_at,
        )


@strawberry.type
class EnvironmentPayload:
    environment: EnvironmentType


CreateEnvironmentResult = Annotated[
    EnvironmentPayload | UserErrors, strawberry.union("CreateEnvironmentResult")
]
UpdateEnvironmentResult = Annotated[
    EnvironmentPayload | UserErrors, strawberry.union("UpdateEnvironmentResult")
]


@strawberry.input
class CreateEnvironmentInput:
    name: str
    kind: EnvironmentKind
    flow_extensions_version: str


@strawberry.input
class UpdateEnvironmentInput:
    id: strawberry.ID
    name: str | None = None
    flow_extensions_version: str | None = None
    restrict_registration: bool | None = None
    max_queue_seconds: int | None = None
    session_recommendations: bool | None = None
    unattended_capacity: int | None = None
    recommendation_window_seconds: int | None = None
    min_runtime_version: str | None = strawberry.field(
        default=None, description='R41: a dotted version, or "" to take the minimum away.'
    )
    retry_policy: RetryPolicyInput | None = strawberry.field(
        default=None,
        description="R40: the default for its flows; maxAttempts 1 retries nothing.",
    )


@strawberry.type
class EnvironmentQuery:
    @strawberry.field(description="Environments where the caller holds a role (admins: all).")
    async def environments(self, info: Info[Context, None]) -> list[EnvironmentType]:
        ctx = info.context
        found = await read(lambda: environments.list_environments(ctx.domain, ctx.principal))
        return [EnvironmentType.from_model(e) for e in found]

    @strawberry.field(
        description="The active users holding a role in an environment, by name: whom its "
        "machines and groups may be shared with. For those who may share there (R13)."
    )
    async def environment_members(
        self, info: Info[Context, None], environment_id: strawberry.ID
    ) -> list[UserType]:
        ctx = info.context
        found = await read(
            lambda: members.environment_members(ctx.domain, ctx.principal, environment_id)
        )
        return [UserType.from_model(u) for u in found]


@strawberry.type(description="R38: what removing a user from an environment took away.")
class RemovedFromEnvironmentPayload:
    user: UserType
    environment_id: strawberry.ID
    revoked_roles: list[Role] = strawberry.field(description="The security roles revoked there.")
    removed_shares: int = strawberry.field(
        description="Shares of the environment's machines and groups taken away."
    )


RemoveUserFromEnvironmentResult = Annotated[
    RemovedFromEnvironmentPayload | UserErrors, strawberry.union("RemoveUserFromEnvironmentResult")
]


@strawberry.type
class EnvironmentMutation:
    @strawberry.mutation(description="DeskFleet administrators create an environment.")
    @typed_errors
    async def create_environment(
        self, info: Info[Context, None], input: CreateEnvironmentInput
    ) -> CreateEnvironmentResult:
        ctx = info.context
        environment = await environments.create_environment(
            ctx.domain,
            ctx.principal,
            name=input.name,
            kind=input.kind,
            flow_extensions_version=input.flow_extensions_version,
        )
        return EnvironmentPayload(environment=EnvironmentType.from_model(environment))

    @strawberry.mutation(description="Environment admins change its version or settings.")
    @typed_errors
    async def update_environment(
        self, info: Info[Context, None], input: UpdateEnvironmentInput
    ) -> UpdateEnvironmentResult:
        ctx = info.context
        environment = await environments.update_environment(
            ctx.domain,
            ctx.principal,
            input.id,
            name=input.name,
            flow_extensions_version=input.flow_extensions_version,
            restrict_registration=input.restrict_registration,
            max_queue_seconds=input.max_queue_seconds,
            session_recommendations=input.session_recommendations,
            unattended_capacity=input.unattended_capacity,
            recommendation_window_seconds=input.recommendation_window_seconds,
            min_runtime_version=input.min_runtime_version,
            retry_policy=input.retry_policy.to_policy() if input.retry_policy else None,
        )
        return EnvironmentPayload(environment=EnvironmentType.from_model(environment))

    @strawberry.mutation(
        description="R38: environment admins cut a user off from their environment: every "
        "security role the user holds there and every share of its machines and groups with them "
        "are taken away (audited). What they own stays theirs. No other environment's admin can "
        "prevent it."
    )
    @typed_errors
    async def remove_user_from_environment(
        self, info: Info[Context, None], environment_id: strawberry.ID, user_id: strawberry.ID
    ) -> RemoveUserFromEnvironmentResult:
        ctx = info.context
        removal = await members.remove_user_from_environment(
            ctx.domain, ctx.principal, environment_id=environment_id, user_id=user_id
        )
        return RemovedFromEnvironmentPayload(
            user=UserType.from_model(removal.user),
            environment_id=strawberry.ID(removal.environment_id),
            revoked_roles=removal.revoked_roles,
            removed_shares=removal.removed_shares,
        )
