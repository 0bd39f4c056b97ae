"""Connections (R20, R21) and what moving a machine does to them (R6), through the GraphQL API."""

from __future__ import annotations

import logging

import pytest

from domain.context import DomainContext
from domain.store.models import RunStatus
from tests.connection_steps import (
    DELETE_CONNECTION,
    GET_CONNECTION,
    LIST_CONNECTIONS,
    SECRET,
    UPDATE_CONNECTION,
    connection,
    connection_row,
    create_connection,
    flow,
    group,
    insert_run,
    runs_by_id,
    share_machine,
)
from tests.graphql import Fleet

pytestmark = pytest.mark.asyncio

CHANGE_ENVIRONMENT = """
mutation($id: ID!, $environmentId: ID!) {
  changeMachineEnvironment(id: $id, environmentId: $environmentId) {
    __typename ... on UserError { code message }
  }
}"""

CONNECTION_TYPE_FIELDS = '{ __type(name: "Connection") { fields { name } } }'


async def visible_connection_ids(fleet: Fleet, token: str) -> list[str]:
    data = await fleet.api.data(LIST_CONNECTIONS, {"first": 100}, token=token)
    return [e["node"]["id"] for e in data["connections"]["edges"]]


@pytest.mark.rule("R20")
async def test_r20_connection_targets_a_machine_and_never_returns_its_password(
    fleet: Fleet,
) -> None:
    maker = await fleet.person("ENVIRONMENT_MAKER")
    machine = await fleet.machine(maker, "bot-01")

    result = await create_connection(fleet, maker, name="Finance", machine_id=machine.id)
    fields = await fleet.api.data(CONNECTION_TYPE_FIELDS, token=maker.token)
    listed = await fleet.api.execute(LIST_CONNECTIONS, {"first": 10}, token=maker.token)

    assert result["__typename"] == "ConnectionPayload"
    created = result["connection"]
    assert created["name"] == "Finance"
    assert created["connectivity"] == "DIRECT"
    assert created["machine"] == {"id": machine.id, "name": "bot-01"}
    assert created["group"] is None
    assert created["owner"] == {"id": maker.id}
    assert created["environment"] == {"id": fleet.environment_id}
    assert created["windowsUsername"] == r"CONTOSO\robot"
    assert created["hasPassword"] is True
    names = {f["name"] for f in fields["__type"]["fields"]}
    assert not {n for n in names if "password" in n.lower()} - {"hasPassword"}
    assert SECRET not in str(result) and SECRET not in str(listed)


@pytest.mark.rule("R20")
async def test_r20_connection_targets_exactly_one_machine_or_group(fleet: Fleet) -> None:
    maker = await fleet.person("ENVIRONMENT_MAKER")
    machine = await fleet.machine(maker, "bot-01")
    group_id = await group(fleet, maker, "Finance bots")

    to_group = await create_connection(fleet, maker, name="to group", group_id=group_id)
    both = await create_connection(
        fleet, maker, name="both", machine_id=machine.id, group_id=group_id
    )
    neither = await create_connection(fleet, maker, name="neither")
    empty_password = await create_connection(fleet, maker, machine_id=machine.id, password="")

    assert to_group["__typename"] == "ConnectionPayload"
    assert to_group["connection"]["group"]["id"] == group_id
    assert to_group["connection"]["machine"] is None
    for refused in (both, neither):
        assert refused["__typename"] == "ValidationError"
        assert refused["field"] == "target"
    assert empty_password["__typename"] == "ValidationError"
    assert empty_password["code"] == "INVALID_PASSWORD"
    assert await visible_connection_ids(fleet, maker.token) == [to_group["connection"]["id"]]


@pytest.mark.rule("R20")
async def test_r20_password_never_logged(fleet: Fleet, caplog: pytest.LogCaptureFixture) -> None:
    maker = await fleet.person("ENVIRONMENT_MAKER")
    machine = await fleet.machine(maker, "bot-01")
    other_secret = "An0ther-S3cret!"

    with caplog.at_level(logging.DEBUG):
        created = await connection(fleet, maker, machine_id=machine.id)
        await fleet.api.data(
            UPDATE_CONNECTION,
            {"input": {"id": created["id"], "password": other_secret}},
            token=maker.token,
        )
        too_long = await create_connection(
            fleet, maker, machine_id=machine.id, password=SECRET * 20
        )

    assert too_long["__typename"] == "ValidationError"
    assert SECRET not in too_long["message"]
    assert caplog.records, "expected the app to log something at DEBUG"
    assert SECRET not in caplog.text
    assert other_secret not in caplog.text


@pytest.mark.rule("R21")
async def test_r21_run_access_to_a_shared_machine_allows_a_connection(fleet: Fleet) -> None:
    owner = await fleet.person("ENVIRONMENT_MAKER")
    machine = await fleet.machine(owner, "bot-01")
    user = await fleet.person("MACHINE_USER")
    await share_machine(fleet, owner, machine.id, user, "USER")

    result = await create_connection(fleet, user, machine_id=machine.id)

    assert result["__typename"] == "ConnectionPayload"
    assert result["connection"]["owner"]["id"] == user.id


@pytest.mark.rule("R21")
async def test_r21_no_run_access_no_connection(fleet: Fleet) -> None:
    owner = await fleet.person("ENVIRONMENT_MAKER")
    machine = await fleet.machine(owner, "bot-01")
    group_id = await group(fleet, owner, "Finance bots")
    stranger = await fleet.person("MACHINE_USER")  # the role, but no share
    shared_no_role = await fleet.person()  # a share, but no role in the environment
    await share_machine(fleet, owner, machine.id, shared_no_role, "USER")

    to_machine = await create_connection(fleet, stranger, machine_id=machine.id)
    to_group = await create_connection(fleet, stranger, group_id=group_id)
    without_role = await create_connection(fleet, shared_no_role, machine_id=machine.id)

    assert to_machine["__typename"] == "NotFoundError"
    assert to_group["__typename"] == "NotFoundError"
    assert without_role["__typename"] == "PermissionDeniedError"
    assert "security roles" in without_role["message"]
    admin_view = await visible_connection_ids(fleet, fleet.admin_token)
    assert admin_view == []


@pytest.mark.rule("R21")
async def test_r21_editing_the_target_needs_run_access_and_the_same_environment(
    fleet: Fleet,
) -> None:
    maker = await fleet.person("ENVIRONMENT_MAKER")
    other = await fleet.person("ENVIRONMENT_MAKER")
    mine = await fleet.machine(maker, "bot-01")
    also_mine = await fleet.machine(maker, "bot-02")
    theirs = await fleet.machine(other, "bot-03")
    elsewhere_env = await fleet.environment("Sales")
    await fleet.grant(maker.id, "ENVIRONMENT_MAKER", environment_id=elsewhere_env)
    elsewhere = await fleet.machine(maker, "bot-04", environment_id=elsewhere_env)
    created = await connection(fleet, maker, machine_id=mine.id)

    async def retarget(machine_id: str) -> dict:
        data = await fleet.api.data(
            UPDATE_CONNECTION,
            {"input": {"id": created["id"], "machineId": machine_id}},
            token=maker.token,
        )
        return data["updateConnection"]

    no_access = await retarget(theirs.id)
    cross = await retarget(elsewhere.id)
    after_refusals = await fleet.api.data(GET_CONNECTION, {"id": created["id"]}, token=maker.token)
    accepted = await retarget(also_mine.id)

    assert no_access["__typename"] == "NotFoundError"
    assert cross["__typename"] == "ConflictError"
    assert cross["code"] == "CROSS_ENVIRONMENT"
    assert after_refusals["connection"]["machine"]["id"] == mine.id
    assert accepted["__typename"] == "ConnectionPayload"
    assert accepted["connection"]["machine"]["id"] == also_mine.id


@pytest.mark.rule("R20")
async def test_only_the_owner_edits_a_connection(fleet: Fleet, domain: DomainContext) -> None:
    maker = await fleet.person("ENVIRONMENT_MAKER")
    env_admin = await fleet.person("ENVIRONMENT_ADMIN")
    stranger = await fleet.person("ENVIRONMENT_MAKER")
    machine = await fleet.machine(maker, "bot-01")
    created = await connection(fleet, maker, machine_id=machine.id, name="Finance")
    before = await connection_row(domain, created["id"])

    async def rename(token: str, **changes: str) -> dict:
        data = await fleet.api.data(
            UPDATE_CONNECTION, {"input": {"id": created["id"], **changes}}, token=token
        )
        return data["updateConnection"]

    by_admin = await rename(env_admin.token, name="Hijacked", password="x")
    by_stranger = await rename(stranger.token, name="Hijacked")
    unchanged = await connection_row(domain, created["id"])
    by_owner = await rename(maker.token, name="Finance EU", windowsUsername="robot2")
    changed = await connection_row(domain, created["id"])

    assert by_admin["__typename"] == "PermissionDeniedError"
    assert by_stranger["__typename"] == "NotFoundError"
    assert before is not None and unchanged is not None and changed is not None
    assert unchanged.name == "Finance"
    assert unchanged.password_ciphertext == before.password_ciphertext
    assert by_owner["__typename"] == "ConnectionPayload"
    assert by_owner["connection"]["name"] == "Finance EU"
    assert by_owner["connection"]["windowsUsername"] == "robot2"
    assert changed.password_ciphertext == before.password_ciphertext  # no new password given


async def test_owner_or_environment_admin_deletes_a_connection(
    fleet: Fleet, domain: DomainContext
) -> None:
    maker = await fleet.person("ENVIRONMENT_MAKER")
    env_admin = await fleet.person("ENVIRONMENT_ADMIN")
    stranger = await fleet.person("ENVIRONMENT_MAKER")
    machine = await fleet.machine(maker, "bot-01")
    first = await connection(fleet, maker, machine_id=machine.id, name="one")
    second = await connection(fleet, maker, machine_id=machine.id, name="two")

    async def delete(token: str, connection_id: str) -> dict:
        data = await fleet.api.data(DELETE_CONNECTION, {"id": connection_id}, token=token)
        return data["deleteConnection"]

    by_stranger = await delete(stranger.token, first["id"])
    still_there = await connection_row(domain, first["id"])
    by_owner = await delete(maker.token, first["id"])
    by_admin = await delete(env_admin.token, second["id"])

    assert by_stranger["__typename"] == "NotFoundError"
    assert still_there is not None
    assert by_owner == {
        "__typename": "DeletedConnectionPayload",
        "id": first["id"],
        "cancelledRunIds": [],
    }
    assert by_admin["__typename"] == "DeletedConnectionPayload"
    assert await visible_connection_ids(fleet, maker.token) == []


async def test_deleting_a_connection_cancels_its_runs_not_yet_started(
    fleet: Fleet, domain: DomainContext
) -> None:
    maker = await fleet.person("ENVIRONMENT_MAKER")
    machine = await fleet.machine(maker, "bot-01")
    await fleet.heartbeat(machine)
    created = await connection(fleet, maker, machine_id=machine.id)
    flow_id = await flow(fleet, maker)
    queued = await insert_run(domain, connection_id=created["id"], flow_id=flow_id)
    running = await insert_run(
        domain,
        connection_id=created["id"],
        flow_id=flow_id,
        status=RunStatus.RUNNING,
        machine_id=machine.id,
    )

    data = await fleet.api.data(DELETE_CONNECTION, {"id": created["id"]}, token=maker.token)
    runs = await runs_by_id(domain, [queued, running])

    assert data["deleteConnection"]["cancelledRunIds"] == [queued]
    assert runs[queued].status is RunStatus.CANCELLED
    assert runs[queued].error_code == "CONNECTION_REMOVED"
    assert runs[queued].ended_at == domain.clock.now()
    assert runs[running].status is RunStatus.RUNNING
    assert runs[running].ended_at is None


async def test_connections_list_owner_sees_theirs_admin_sees_all_paginated(
    fleet: Fleet,
) -> None:
    alice = await fleet.person("ENVIRONMENT_MAKER")
    bob = await fleet.person("ENVIRONMENT_MAKER")
    env_admin = await fleet.person("ENVIRONMENT_ADMIN")
    alice_machine = await fleet.machine(alice, "bot-01")
    bob_machine = await fleet.machine(bob, "bot-02")
    for name in ("c", "a", "e"):
        await connection(fleet, alice, name=name, machine_id=alice_machine.id)
    for name in ("b", "d"):
        await connection(fleet, bob, name=name, machine_id=bob_machine.id)

    alice_page = await fleet.api.data(LIST_CONNECTIONS, {"first": 10}, token=alice.token)
    seen: list[str] = []
    after = None
    while True:
        page = await fleet.api.data(
            LIST_CONNECTIONS, {"first": 2, "after": after}, token=env_admin.token
        )
        seen += [e["node"]["name"] for e in page["connections"]["edges"]]
        total = page["connections"]["totalCount"]
        if not page["connections"]["pageInfo"]["hasNextPage"]:
            break
        after = page["connections"]["pageInfo"]["endCursor"]
    filtered = await fleet.api.data(
        LIST_CONNECTIONS,
        {"first": 10, "filter": {"machineId": bob_machine.id}},
        token=env_admin.token,
    )

    assert [e["node"]["name"] for e in alice_page["connections"]["edges"]] == ["a", "c", "e"]
    assert seen == ["a", "b", "c", "d", "e"]
    assert total == 5
    assert [e["node"]["name"] for e in filtered["connections"]["edges"]] == ["b", "d"]


async def test_connection_is_invisible_to_others(fleet: Fleet) -> None:
    maker = await fleet.person("ENVIRONMENT_MAKER")
    stranger = await fleet.person("ENVIRONMENT_MAKER")
    machine = await fleet.machine(maker, "bot-01")
    created = await connection(fleet, maker, machine_id=machine.id)

    as_owner = await fleet.api.data(GET_CONNECTION, {"id": created["id"]}, token=maker.token)
    as_stranger = await fleet.api.data(GET_CONNECTION, {"id": created["id"]}, token=stranger.token)
    as_admin = await fleet.api.data(GET_CONNECTION, {"id": created["id"]}, token=fleet.admin_token)

    assert as_owner["connection"]["id"] == created["id"]
    assert as_stranger["connection"] is None
    assert as_admin["connection"]["id"] == created["id"]


@pytest.mark.rule("R6")
async def test_r6_moving_a_machine_removes_its_connections_and_cancels_their_queued_runs(
    fleet: Fleet, domain: DomainContext
) -> None:
    maker = await fleet.person("ENVIRONMENT_MAKER")
    machine = await fleet.machine(maker, "bot-01")
    stays = await fleet.machine(maker, "bot-02")
    await fleet.heartbeat(machine)
    await fleet.heartbeat(stays)
    sales = await fleet.environment("Sales")
    await fleet.grant(maker.id, "ENVIRONMENT_MAKER", environment_id=sales)
    moved_conn = await connection(fleet, maker, name="moved", machine_id=machine.id)
    other_conn = await connection(fleet, maker, name="other", machine_id=stays.id)
    flow_id = await flow(fleet, maker)
    queued = await insert_run(domain, connection_id=moved_conn["id"], flow_id=flow_id)
    dispatched = await insert_run(
        domain,
        connection_id=moved_conn["id"],
        flow_id=flow_id,
        status=RunStatus.DISPATCHED,
        machine_id=machine.id,
    )
    running = await insert_run(
        domain,
        connection_id=moved_conn["id"],
        flow_id=flow_id,
        status=RunStatus.RUNNING,
        machine_id=machine.id,
    )
    done = await insert_run(
        domain,
        connection_id=moved_conn["id"],
        flow_id=flow_id,
        status=RunStatus.SUCCEEDED,
        machine_id=machine.id,
    )
    untouched = await insert_run(domain, connection_id=other_conn["id"], flow_id=flow_id)

    result = await fleet.api.data(
        CHANGE_ENVIRONMENT, {"id": machine.id, "environmentId": sales}, token=maker.token
    )
    runs = await runs_by_id(domain, [queued, dispatched, running, done, untouched])
    remaining = await visible_connection_ids(fleet, maker.token)

    assert result["changeMachineEnvironment"]["__typename"] == "MachinePayload", result
    assert remaining == [other_conn["id"]]
    for cancelled in (queued, dispatched):
        assert runs[cancelled].status is RunStatus.CANCELLED
        assert runs[cancelled].error_code == "CONNECTION_REMOVED"
        assert "bot-01" in (runs[cancelled].error_message or "")
        assert "Sales" in (runs[cancelled].error_message or "")
        assert runs[cancelled].ended_at == domain.clock.now()
    assert runs[running].status is RunStatus.RUNNING  # running runs finish
    assert runs[running].ended_at is None
    assert runs[done].status is RunStatus.SUCCEEDED
    assert runs[done].error_code is None
    assert runs[untouched].status is RunStatus.QUEUED


@pytest.mark.rule("R6")
async def test_r6_a_refused_move_keeps_connections_and_queued_runs(
    fleet: Fleet, domain: DomainContext
) -> None:
    maker = await fleet.person("ENVIRONMENT_MAKER")
    machine = await fleet.machine(maker, "bot-01")
    teams = await fleet.environment("Teams space", kind="TEAMS")
    await fleet.grant(maker.id, "ENVIRONMENT_MAKER", environment_id=teams)
    created = await connection(fleet, maker, machine_id=machine.id)
    flow_id = await flow(fleet, maker)
    queued = await insert_run(domain, connection_id=created["id"], flow_id=flow_id)

    result = await fleet.api.data(
        CHANGE_ENVIRONMENT, {"id": machine.id, "environmentId": teams}, token=maker.token
    )
    runs = await runs_by_id(domain, [queued])

    assert result["changeMachineEnvironment"]["__typename"] == "RuleViolationError"
    assert await visible_connection_ids(fleet, maker.token) == [created["id"]]
    assert runs[queued].status is RunStatus.QUEUED
    assert runs[queued].error_code is None
