"""R44: sign-in through the organisation's OpenID Connect provider: who came in by it, and the
provider's groups that grant security roles per environment."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.types import Info

from api.context import Context
from api.errors import UserErrors, read, typed_errors
from api.identity.identity import UserType
from domain.identity import sign_in
from domain.kernel.permissions import Role
from domain.store.models import SignInGroupRole, SignInMatch

SignInMatchEnum = strawberry.enum(
    SignInMatch,
    name="SignInMatch",
    description="How a provider's person was first tied to a DeskFleet user: EMAIL, linked to "
    "the user with their verified e-mail; PROVISIONED, created at that first sign-in.",
)


@strawberry.type(name="SignInGroupRole", description="Members of `group` hold `role` (R44).")
class SignInGroupRoleType:
    environment_id: strawberry.ID
    group: str
    role: Role
    created_at: datetime

    @classmethod
    def from_model(cls, mapping: SignInGroupRole) -> SignInGroupRoleType:
        return cls(
            environment_id=strawberry.ID(mapping.environment_id),
            group=mapping.group,
            role=mapping.role,
            created_at=mapping.created_at,
        )


@strawberry.type(description="A person of the OpenID Connect provider and their user (R44).")
class SignedInPerson:
    issuer: str
    subject: str
    matched_by: SignInMatch
    created_at: datetime = strawberry.field(description="Their first sign-in.")
    user: UserType

    @classmethod
    def from_domain(cls, person: sign_in.SignedInPerson) -> SignedInPerson:
        identity = person.identity
        return cls(
            issuer=identity.issuer,
            subject=identity.subject,
            matched_by=identity.matched_by,
            created_at=identity.created_at,
            user=UserType.from_model(person.user),
        )


@strawberry.type
class SignInGroupRolePayload:
    mapping: SignInGroupRoleType


SignInGroupRoleResult = Annotated[
    SignInGroupRolePayload | UserErrors, strawberry.union("SignInGroupRoleResult")
]


@strawberry.input
class SignInGroupRoleInput:
    environment_id: strawberry.ID
    group: str = strawberry.field(description="The group as the provider's groups claim names it.")
    role: Role


@strawberry.type
class SignInQuery:
    @strawberry.field(
        description="Everyone tied to the OpenID Connect provider by sign-in and how they were "
        "matched, newest first (DeskFleet administrators; R44)."
    )
    async def signed_in_people(
        self, info: Info[Context, None], since: datetime | None = None
    ) -> list[SignedInPerson]:
        ctx = info.context
        people = await read(
            lambda: sign_in.signed_in_people(ctx.domain, ctx.principal, since=since)
        )
        return [SignedInPerson.from_domain(p) for p in people]

    @strawberry.field(
        description="The provider's groups that grant security roles in the environment "
        "(environment admins; R44)."
    )
    async def sign_in_group_roles(
        self, info: Info[Context, None], environment_id: strawberry.ID
    ) -> list[SignInGroupRoleType]:
        ctx = info.context
        mappings = await read(
            lambda: sign_in.group_roles(ctx.domain, ctx.principal, environment_id)
        )
        return [SignInGroupRoleType.from_model(m) for m in mappings]


@strawberry.type
class SignInMutation:
    @strawberry.mutation(
        description="Environment admins: members of the provider's group hold the role in the "
        "environment, from their next sign-in on (R44). Roles granted by hand stay as they are."
    )
    @typed_errors
    async def map_sign_in_group(
        self, info: Info[Context, None], input: SignInGroupRoleInput
    ) -> SignInGroupRoleResult:
        ctx = info.context
        mapping = await sign_in.map_group(
            ctx.domain,
            ctx.principal,
            environment_id=input.environment_id,
            group=input.group,
            role=input.role,
        )
        return SignInGroupRolePayload(mapping=SignInGroupRoleType.from_model(mapping))

    @strawberry.mutation(
        description="Environment admins remove a group mapping; the roles it granted are taken "
        "back at each member's next sign-in (R44)."
    )
    @typed_errors
    async def unmap_sign_in_group(
        self, info: Info[Context, None], input: SignInGroupRoleInput
    ) -> SignInGroupRoleResult:
        ctx = info.context
        mapping = await sign_in.unmap_group(
            ctx.domain,
            ctx.principal,
            environment_id=input.environment_id,
            group=input.group,
            role=input.role,
        )
        return SignInGroupRolePayload(mapping=SignInGroupRoleType.from_model(mapping))
