"""`environmentMembers`: whom a machine or group may be shared with (the dashboard's user picker),
listed to those who may share in the environment (R13), not found elsewhere (R38)."""

from __future__ import annotations

import pytest

from tests.graphql import Fleet

pytestmark = pytest.mark.asyncio

MEMBERS = "query($env: ID!) { environmentMembers(environmentId: $env) { id displayName } }"


@pytest.mark.rule("R13")
async def test_who_may_share_sees_the_environments_active_members(fleet: Fleet) -> None:
    maker = await fleet.person("ENVIRONMENT_MAKER", name="Ann")
    user = await fleet.person("MACHINE_USER", name="Bob")
    answer = await fleet.api.execute(MEMBERS, {"env": fleet.environment_id}, token=maker.token)
    names = [m["displayName"] for m in answer["data"]["environmentMembers"]]
    assert names == ["Administrator", "Ann", "Bob"]  # the first run made the admin one
    refused = await fleet.api.execute(MEMBERS, {"env": fleet.environment_id}, token=user.token)
    assert refused["errors"][0]["extensions"]["code"] == "PERMISSION_DENIED"


@pytest.mark.rule("R38")
async def test_an_environment_the_caller_cannot_see_is_not_found(fleet: Fleet) -> None:
    maker = await fleet.person("ENVIRONMENT_MAKER")
    elsewhere = await fleet.environment("Elsewhere")
    answer = await fleet.api.execute(MEMBERS, {"env": elsewhere}, token=maker.token)
    assert answer["errors"][0]["extensions"]["code"] == "NOT_FOUND"


ROLES = "query($env: ID!) { environmentRoles(environmentId: $env) { role user { displayName } } }"


@pytest.mark.rule("R13")
async def test_admins_see_who_holds_which_role(fleet: Fleet) -> None:
    admin = await fleet.person("ENVIRONMENT_ADMIN", name="Ada")
    await fleet.person("ENVIRONMENT_MAKER", "MACHINE_OWNER", name="Max")
    answer = await fleet.api.execute(ROLES, {"env": fleet.environment_id}, token=admin.token)
    held = [(r["user"]["displayName"], r["role"]) for r in answer["data"]["environmentRoles"]]
    assert ("Ada", "ENVIRONMENT_ADMIN") in held
    assert [r for n, r in held if n == "Max"] == ["ENVIRONMENT_MAKER", "MACHINE_OWNER"]
    maker = await fleet.person("ENVIRONMENT_MAKER")
    refused = await fleet.api.execute(ROLES, {"env": fleet.environment_id}, token=maker.token)
    assert refused["errors"][0]["extensions"]["code"] == "NOT_ADMIN"


PERSON = "query($email: String!) { personByEmail(email: $email) { displayName } }"


@pytest.mark.rule("R13")
async def test_an_admin_finds_someone_without_a_role_by_exact_email_only(fleet: Fleet) -> None:
    admin = await fleet.person("ENVIRONMENT_ADMIN", name="Ada")
    await fleet.person(name="Nina")  # of the organisation, no role anywhere yet
    found = await fleet.api.execute(PERSON, {"email": "NINA@example.test "}, token=admin.token)
    partial = await fleet.api.execute(PERSON, {"email": "nin@example.test"}, token=admin.token)
    bad = await fleet.api.execute(PERSON, {"email": "not an address"}, token=admin.token)

    assert found["data"]["personByEmail"] == {"displayName": "Nina"}
    assert partial["data"]["personByEmail"] is None  # looked up, never searched or listed
    assert bad["errors"][0]["extensions"]["code"] == "INVALID_EMAIL"


@pytest.mark.rule("R13")
async def test_only_environment_admins_look_people_up(fleet: Fleet) -> None:
    maker = await fleet.person("ENVIRONMENT_MAKER", name="Max")
    await fleet.person(name="Nina")

    refused = await fleet.api.execute(PERSON, {"email": "nina@example.test"}, token=maker.token)

    assert refused["errors"][0]["extensions"]["code"] == "NOT_ADMIN"
    assert refused["data"] is None or refused["data"]["personByEmail"] is None
