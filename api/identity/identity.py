"""Users, API tokens, ``me`` and security roles."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.types import Info

import api.enums  # noqa: F401  (registers the domain enums with Strawberry)
from api.context import Context
from api.errors import UserErrors, read, typed_errors
from domain.fleet.machine_views import ListedUser
from domain.identity import identity, roles
from domain.kernel.permissions import Role
from domain.kernel.principals import UserPrincipal
from domain.store.models import ApiToken, RoleAssignment, User


@strawberry.type(name="User")
class UserType:
    id: strawberry.ID
    display_name: str
    email: str
    active: bool
    deactivated_at: datetime | None
    is_admin: bool
    attended_licence: bool
    created_at: datetime

    @classmethod
    def from_model(cls, user: User | ListedUser) -> UserType:
        return cls(
            id=strawberry.ID(user.id),
            display_name=user.display_name,
            email=user.email,
            active=user.active,
            deactivated_at=user.deactivated_at,
            is_admin=user.is_admin,
            attended_licence=user.attended_licence,
            created_at=user.created_at,
        )


@strawberry.type(
    name="ApiToken", description="A token's metadata; its secret is never returned again."
)
class ApiTokenType:
    id: strawberry.ID
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def from_model(cls, token: ApiToken) -> ApiTokenType:
        return cls(
            id=strawberry.ID(token.id),
            name=token.name,
            prefix=token.prefix,
            created_at=token.created_at,
            last_used_at=token.last_used_at,
            revoked_at=token.revoked_at,
        )


@strawberry.type
class RoleGrant:
    environment_id: strawberry.ID
    role: Role

    @classmethod
    def from_model(cls, assignment: RoleAssignment) -> RoleGrant:
        return cls(environment_id=strawberry.ID(assignment.environment_id), role=assignment.role)


@strawberry.type
class Me:
    """The caller. Each part is read only when asked for: ``{ me { id } }`` costs no query."""

    id: strawberry.ID
    principal: strawberry.Private[UserPrincipal]

    @strawberry.field
    async def user(self, info: Info[Context, None]) -> UserType:
        ctx = info.context
        user = await read(lambda: identity.current_user(ctx.domain, self.principal))
        return UserType.from_model(user)

    @strawberry.field(description="Security roles per environment (R13).")
    async def roles(self, info: Info[Context, None]) -> list[RoleGrant]:
        grants = await roles.roles_of(info.context.domain, self.principal.user_id)
        return [RoleGrant.from_model(g) for g in grants]

    @strawberry.field(description="The caller's API tokens (never their secrets).")
    async def tokens(self, info: Info[Context, None]) -> list[ApiTokenType]:
        tokens = await identity.list_tokens(info.context.domain, self.principal)
        return [ApiTokenType.from_model(t) for t in tokens]


@strawberry.type
class IssuedApiToken:
    token: ApiTokenType
    secret: str = strawberry.field(description="The token itself. Shown this once only.")


@strawberry.type
class UserPayload:
    user: UserType


@strawberry.type
class ApiTokenPayload:
    token: ApiTokenType


@strawberry.type
class RoleGrantPayload:
    user_id: strawberry.ID
    grant: RoleGrant


CreateUserResult = Annotated[UserPayload | UserErrors, strawberry.union("CreateUserResult")]
UpdateUserResult = Annotated[UserPayload | UserErrors, strawberry.union("UpdateUserResult")]
IssueApiTokenResult = Annotated[
    IssuedApiToken | UserErrors, strawberry.union("IssueApiTokenResult")
]
RevokeApiTokenResult = Annotated[
    ApiTokenPayload | UserErrors, strawberry.union("RevokeApiTokenResult")
]
RoleResult = Annotated[RoleGrantPayload | UserErrors, strawberry.union("RoleResult")]


@strawberry.input
class CreateUserInput:
    display_name: str
    email: str
    attended_licence: bool = False
    is_admin: bool = False


@strawberry.input
class UpdateUserInput:
    id: strawberry.ID
    display_name: str | None = None
    attended_licence: bool | None = None


@strawberry.input
class RoleInput:
    environment_id: strawberry.ID
    user_id: strawberry.ID
    role: Role


@strawberry.type(description="One security role held in an environment (R13).")
class EnvironmentRole:
    user: UserType
    role: Role


@strawberry.type
class IdentityQuery:
    @strawberry.field(description="The caller: user, security roles and tokens.")
    def me(self, info: Info[Context, None]) -> Me:
        principal = info.context.user_principal()
        return Me(id=strawberry.ID(principal.user_id), principal=principal)

    @strawberry.field(
        description="Who holds which security role in an environment, by name (its admins only)."
    )
    async def environment_roles(
        self, info: Info[Context, None], environment_id: strawberry.ID
    ) -> list[EnvironmentRole]:
        ctx = info.context
        found = await read(
            lambda: roles.environment_roles(ctx.domain, ctx.principal, environment_id)
        )
        return [EnvironmentRole(user=UserType.from_model(u), role=r) for u, r in found]

    @strawberry.field(
        description="R13: the active user with this e-mail, or null: whom an environment admin "
        "grants a first role in their environment. One exact address at a time (environment "
        "admins only)."
    )
    async def person_by_email(self, info: Info[Context, None], email: str) -> UserType | None:
        ctx = info.context
        found = await read(lambda: roles.person_by_email(ctx.domain, ctx.principal, email))
        return UserType.from_model(found) if found else None


@strawberry.type
class IdentityMutation:
    @strawberry.mutation(description="Administrators add a user.")
    @typed_errors
    async def create_user(
        self, info: Info[Context, None], input: CreateUserInput
    ) -> CreateUserResult:
        ctx = info.context
        user = await identity.create_user(
            ctx.domain,
            ctx.principal,
            display_name=input.display_name,
            email=input.email,
            attended_licence=input.attended_licence,
            is_admin=input.is_admin,
        )
        return UserPayload(user=UserType.from_model(user))

    @strawberry.mutation(description="Administrators edit a user's name or attended-RPA licence.")
    @typed_errors
    async def update_user(
        self, info: Info[Context, None], input: UpdateUserInput
    ) -> UpdateUserResult:
        ctx = info.context
        user = await identity.update_user(
            ctx.domain,
            ctx.principal,
            input.id,
            display_name=input.display_name,
            attended_licence=input.attended_licence,
        )
        return UserPayload(user=UserType.from_model(user))

    @strawberry.mutation(description="Mint an API token for yourself (admins: for anyone).")
    @typed_errors
    async def issue_api_token(
        self, info: Info[Context, None], name: str, user_id: strawberry.ID | None = None
    ) -> IssueApiTokenResult:
        ctx = info.context
        issued = await identity.issue_token(ctx.domain, ctx.principal, name=name, user_id=user_id)
        return IssuedApiToken(token=ApiTokenType.from_model(issued.token), secret=issued.secret)

    @strawberry.mutation
    @typed_errors
    async def revoke_api_token(
        self, info: Info[Context, None], id: strawberry.ID
    ) -> RevokeApiTokenResult:
        ctx = info.context
        token = await identity.revoke_token(ctx.domain, ctx.principal, id)
        return ApiTokenPayload(token=ApiTokenType.from_model(token))

    @strawberry.mutation(description="Environment admins grant a security role (R13).")
    @typed_errors
    async def assign_role(self, info: Info[Context, None], input: RoleInput) -> RoleResult:
        ctx = info.context
        grant = await roles.assign_role(
            ctx.domain,
            ctx.principal,
            environment_id=input.environment_id,
            user_id=input.user_id,
            role=input.role,
        )
        return RoleGrantPayload(
            user_id=strawberry.ID(grant.user_id), grant=RoleGrant.from_model(grant)
        )

    @strawberry.mutation(description="Environment admins take a security role away (R13).")
    @typed_errors
    async def revoke_role(self, info: Info[Context, None], input: RoleInput) -> RoleResult:
        ctx = info.context
        grant = await roles.revoke_role(
            ctx.domain,
            ctx.principal,
            environment_id=input.environment_id,
            user_id=input.user_id,
            role=input.role,
        )
        return RoleGrantPayload(
            user_id=strawberry.ID(grant.user_id), grant=RoleGrant.from_model(grant)
        )

    @strawberry.mutation(
        description="Deactivate a user (R15): their tokens stop working and they can do nothing; "
        "their shares stay listed, marked deactivated. DeskFleet administrators, or admins of "
        "every environment where the user holds a role; to an environment admin, a user with no "
        "role in their environments is an unknown id (R38). removeUserFromEnvironment cuts a "
        "user off from one environment."
    )
    @typed_errors
    async def deactivate_user(
        self, info: Info[Context, None], id: strawberry.ID
    ) -> UpdateUserResult:
        ctx = info.context
        user = await identity.deactivate_user(ctx.domain, ctx.principal, id)
        return UserPayload(user=UserType.from_model(user))

    @strawberry.mutation(description="Reactivate a deactivated user (same rights as deactivating).")
    @typed_errors
    async def reactivate_user(
        self, info: Info[Context, None], id: strawberry.ID
    ) -> UpdateUserResult:
        ctx = info.context
        user = await identity.reactivate_user(ctx.domain, ctx.principal, id)
        return UserPayload(user=UserType.from_model(user))
