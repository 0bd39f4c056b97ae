"""Security roles (R13, R4) and user deactivation (R15), through the GraphQL API."""

from __future__ import annotations

import pytest

from domain.context import DomainContext
from tests.api.group_steps import (
    DEACTIVATE,
    REACTIVATE,
    REVOKE_ROLE,
    UPDATE_MACHINE,
    Steps,
    snapshot,
)
from tests.graphql import ASSIGN_ROLE, UPDATE_ENVIRONMENT, Fleet

pytestmark = pytest.mark.asyncio

ME = "query { me { user { id active } roles { environmentId role } } }"
USER_STATE = """
mutation($id: ID!) {
  deactivateUser(id: $id) {
    __typename ... on UserPayload { user { active deactivatedAt } } ... on UserError { code }
  }
}"""


def role_input(env: str, user_id: str, role: str) -> dict[str, object]:
    return {"input": {"environmentId": env, "userId": user_id, "role": role}}


@pytest.mark.rule("R13")
async def test_r13_environment_admins_assign_and_revoke_roles(
    fleet: Fleet, domain: DomainContext
) -> None:
    steps = Steps(fleet)
    env = fleet.environment_id
    admin = await fleet.person("ENVIRONMENT_ADMIN")
    maker = await fleet.person("ENVIRONMENT_MAKER")
    target = await fleet.person()

    before = await snapshot(domain)
    refused = await steps.call(ASSIGN_ROLE, role_input(env, target.id, "MACHINE_OWNER"), maker)
    assert refused["code"] == "NOT_ADMIN"
    assert await snapshot(domain) == before

    granted = await steps.call(ASSIGN_ROLE, role_input(env, target.id, "MACHINE_OWNER"), admin)
    assert granted["__typename"] == "RoleGrantPayload"
    assert (await fleet.api.data(ME, token=target.token))["me"]["roles"] == [
        {"environmentId": env, "role": "MACHINE_OWNER"}
    ]
    assert (await fleet.register(target, "bot-1"))["__typename"] == "RegisteredMachinePayload"

    revoked = await steps.call(REVOKE_ROLE, role_input(env, target.id, "MACHINE_OWNER"), admin)
    assert revoked["__typename"] == "RoleGrantPayload"
    assert (await fleet.api.data(ME, token=target.token))["me"]["roles"] == []
    assert (await fleet.register(target, "bot-2"))["__typename"] == "NotFoundError"


@pytest.mark.rule("R13")
async def test_r13_an_owner_without_the_privilege_cannot_manage_their_machine(
    fleet: Fleet, domain: DomainContext
) -> None:
    steps = Steps(fleet)
    env = fleet.environment_id
    owner = await fleet.person("MACHINE_OWNER")
    machine = await fleet.machine(owner, "bot-1")
    await steps.call(REVOKE_ROLE, role_input(env, owner.id, "MACHINE_OWNER"), fleet.admin_token)
    await fleet.grant(owner.id, "MACHINE_USER")
    before = await snapshot(domain)

    refused = await steps.call(
        UPDATE_MACHINE, {"input": {"id": machine.id, "description": "x"}}, owner
    )

    assert refused["__typename"] == "PermissionDeniedError"
    assert "MACHINE_USER" in refused["message"]
    assert await snapshot(domain) == before
    assert (await steps.machine(owner, machine.id))["allowedActions"] == ["RUN"]


@pytest.mark.rule("R4")
async def test_r4_admins_restrict_registration_to_machine_owners(fleet: Fleet) -> None:
    maker = await fleet.person("ENVIRONMENT_MAKER")
    owner = await fleet.person("MACHINE_OWNER")
    admin = await fleet.person("ENVIRONMENT_ADMIN")
    restrict = {"input": {"id": fleet.environment_id, "restrictRegistration": True}}

    by_maker = await fleet.api.data(UPDATE_ENVIRONMENT, restrict, token=maker.token)
    assert by_maker["updateEnvironment"]["code"] == "NOT_ADMIN"
    by_admin = await fleet.api.data(UPDATE_ENVIRONMENT, restrict, token=admin.token)
    assert by_admin["updateEnvironment"]["__typename"] == "EnvironmentPayload"

    refused = await fleet.register(maker, "bot-maker")
    assert refused["__typename"] == "PermissionDeniedError"
    assert "restricted" in refused["message"]
    assert (await fleet.register(owner, "bot-owner"))["__typename"] == "RegisteredMachinePayload"


@pytest.mark.rule("R15")
async def test_r15_environment_admins_deactivate_and_reactivate_users(
    fleet: Fleet, domain: DomainContext
) -> None:
    steps = Steps(fleet)
    other_env = await fleet.environment("Other")
    admin = await fleet.person("ENVIRONMENT_ADMIN")
    other_admin = await fleet.person("ENVIRONMENT_ADMIN", environment_id=other_env)
    user = await fleet.person("MACHINE_OWNER")
    machine = await fleet.machine(user, "bot-1")

    before = await snapshot(domain)
    # Not themself; not a user of their environments: to that admin, as an unknown id (R38).
    refused = await steps.call(DEACTIVATE, {"id": user.id}, user)
    assert refused["__typename"] == "PermissionDeniedError", refused
    for target in (user, admin):
        hidden = await steps.call(DEACTIVATE, {"id": target.id}, other_admin)
        assert hidden["__typename"] == "NotFoundError", hidden
    assert await snapshot(domain) == before

    done = await steps.call(USER_STATE, {"id": user.id}, admin)
    assert done["user"]["active"] is False and done["user"]["deactivatedAt"] is not None
    again = await steps.call(USER_STATE, {"id": user.id}, admin)
    assert again == {"__typename": "ConflictError", "code": "ALREADY_IN_STATE"}

    # A deactivated user can do nothing at all.
    locked_out = await fleet.api.execute(
        UPDATE_MACHINE, {"input": {"id": machine.id, "description": "x"}}, token=user.token
    )
    assert locked_out["errors"][0]["extensions"]["code"] == "USER_DEACTIVATED"

    back = await steps.call(REACTIVATE, {"id": user.id}, admin)
    assert back["__typename"] == "UserPayload"
    assert (await fleet.api.data(ME, token=user.token))["me"]["user"]["active"] is True
    edited = await steps.call(
        UPDATE_MACHINE, {"input": {"id": machine.id, "description": "x"}}, user
    )
    assert edited["__typename"] == "MachinePayload"
