"""R46: creating mutations take an idempotency key. The same key from the same caller within 24
hours answers the first result and creates nothing; with another input it is refused; another
caller's key is another key; after 24 hours the key is new; two requests at once create one."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, text
from sqlmodel import select

from domain.context import DomainContext
from domain.kernel.clock import ManualClock
from domain.store import idempotency
from domain.store.models import Connection, FlowRun, IdempotencyKey, Machine, MachineGroup
from tests.databases import backend_name
from tests.graphql import GOOD_EDITION, GOOD_RUNTIME, REGISTER_MACHINE, Fleet, Person
from tests.runs_given import PASSWORD, Runs, Target

pytestmark = pytest.mark.rule("R46")

CREATE_CONNECTION = """
mutation($input: CreateConnectionInput!) {
  createConnection(input: $input) {
    __typename ... on ConnectionPayload { connection { id name } }
    ... on UserError { code message } ... on ValidationError { field }
  }
}"""
CREATE_GROUP_TYPED = """
mutation($input: CreateMachineGroupInput!) {
  createMachineGroup(input: $input) {
    __typename ... on MachineGroupPayload { group { id name } } ... on UserError { code message }
  }
}"""
TRIGGER_TYPED = """
mutation($input: TriggerRunInput!) {
  triggerRun(input: $input) {
    __typename ... on FlowRunPayload { run { id status } }
    ... on UserError { code message } ... on ValidationError { field }
  }
}"""
HEARTBEAT = """
mutation($input: HeartbeatInput!) {
  machineHeartbeat(input: $input) { __typename ... on UserError { code message } }
}"""


async def count(domain: DomainContext, model: Any) -> int:
    async with domain.db.read() as session:
        return int((await session.exec(select(func.count()).select_from(model))).one())


@pytest.fixture
async def target(runs: Runs, fleet: Fleet) -> Target:
    owner = await fleet.person("ENVIRONMENT_MAKER")
    machine = await runs.machine(owner)
    await runs.capacity(2)
    await runs.allocate(machine.id, 1)
    return await runs.target(owner, machine=machine)


async def trigger(
    runs: Runs, target: Target, key: str | None, *, by: Person | None = None, **extra: Any
) -> dict[str, Any]:
    given = {
        "flowId": target.flow_id,
        "connectionId": target.connection_id,
        "mode": "UNATTENDED",
        "idempotencyKey": key,
        **extra,
    }
    data = await runs.api.data(TRIGGER_TYPED, {"input": given}, token=(by or target.owner).token)
    return data["triggerRun"]


async def test_a_retried_trigger_answers_the_first_run_and_queues_nothing(
    runs: Runs, target: Target, domain: DomainContext
) -> None:
    key = str(uuid.uuid4())

    first = await trigger(runs, target, key)
    again = await trigger(runs, target, key)
    # Spelled otherwise, the same ids are the same input.
    upper = await trigger(
        runs,
        target,
        key,
        flowId=target.flow_id.upper(),
        connectionId=target.connection_id.upper(),
    )

    assert first["__typename"] == "FlowRunPayload", first
    assert again == first
    assert upper == first
    assert await count(domain, FlowRun) == 1


async def test_the_same_key_with_another_input_is_refused_and_creates_nothing(
    runs: Runs, target: Target, domain: DomainContext
) -> None:
    key = "order-1234"
    first = await trigger(runs, target, key)

    refused = await trigger(runs, target, key, priority="HIGH")

    assert first["__typename"] == "FlowRunPayload"
    assert refused["__typename"] == "ConflictError"
    assert refused["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert (
        "idempotencyKey was already used with another input for triggerRun" in (refused["message"])
    )
    assert await count(domain, FlowRun) == 1


async def test_another_callers_key_is_another_key(
    runs: Runs, target: Target, fleet: Fleet, domain: DomainContext
) -> None:
    admin = Person(id="admin", token=fleet.admin_token)

    mine = await trigger(runs, target, "nightly")
    theirs = await trigger(runs, target, "nightly", by=admin)

    assert mine["__typename"] == theirs["__typename"] == "FlowRunPayload"
    assert mine["run"]["id"] != theirs["run"]["id"]
    assert await count(domain, FlowRun) == 2


async def test_after_24_hours_the_key_is_new(
    runs: Runs, target: Target, clock: ManualClock, domain: DomainContext
) -> None:
    first = await trigger(runs, target, "daily-report")
    clock.advance(timedelta(hours=23, minutes=59))
    within = await trigger(runs, target, "daily-report")
    clock.advance(timedelta(minutes=1))
    later = await trigger(runs, target, "daily-report")
    # ... and the new run is the key's answer from then on.
    again = await trigger(runs, target, "daily-report")

    assert within == first
    assert later["__typename"] == "FlowRunPayload"
    assert later["run"]["id"] != first["run"]["id"]
    assert again == later
    assert await count(domain, FlowRun) == 2


async def test_two_requests_at_once_with_one_key_queue_one_run(
    runs: Runs, target: Target, domain: DomainContext
) -> None:
    """Both look before either has written; the second's record then meets the first's in the
    table's primary key, its transaction (run included) rolls back, and it answers the first's."""
    answers = await asyncio.gather(*(trigger(runs, target, "at-once") for _ in range(4)))

    assert all(a["__typename"] == "FlowRunPayload" for a in answers), answers
    assert len({a["run"]["id"] for a in answers}) == 1
    assert await count(domain, FlowRun) == 1
    assert await count(domain, IdempotencyKey) == 1


async def test_a_refused_trigger_records_nothing_and_the_key_works_once_it_can_run(
    runs: Runs, fleet: Fleet, domain: DomainContext
) -> None:
    owner = await fleet.person("ENVIRONMENT_MAKER")
    machine = await runs.machine(owner)
    target = await runs.target(owner, machine=machine)

    refused = await trigger(runs, target, "after-bots")  # no unattended bots yet (R23)
    await runs.capacity(1)
    await runs.allocate(machine.id, 1)
    queued = await trigger(runs, target, "after-bots")

    assert refused["__typename"] == "RuleViolationError"
    assert queued["__typename"] == "FlowRunPayload"
    assert await count(domain, FlowRun) == 1


@pytest.mark.parametrize("key", ["", " ", "a" * 256, "tab\there", "naïve", "new\nline"])
async def test_a_malformed_key_is_refused_naming_the_field(
    runs: Runs, target: Target, domain: DomainContext, key: str
) -> None:
    refused = await trigger(runs, target, key)

    assert refused["__typename"] == "ValidationError"
    assert refused["code"] == "INVALID_IDEMPOTENCY_KEY"
    assert refused["field"] == "idempotencyKey"
    assert await count(domain, FlowRun) == 0


async def test_a_key_of_255_visible_characters_is_taken(runs: Runs, target: Target) -> None:
    key = "k" * 254 + "~"
    assert (await trigger(runs, target, key)) == (await trigger(runs, target, key))


async def test_without_a_key_every_trigger_queues_a_run(
    runs: Runs, target: Target, domain: DomainContext
) -> None:
    await trigger(runs, target, None)
    await trigger(runs, target, None)

    assert await count(domain, FlowRun) == 2
    assert await count(domain, IdempotencyKey) == 0


REFUSE_RUNS = {
    "sqlite": [
        "CREATE TRIGGER refuse_runs BEFORE INSERT ON flow_runs "
        "BEGIN SELECT RAISE(ABORT, 'refused'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION refuse_runs() RETURNS trigger AS $$ "
        "BEGIN RAISE EXCEPTION 'refused'; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER refuse_runs BEFORE INSERT ON flow_runs "
        "FOR EACH ROW EXECUTE FUNCTION refuse_runs()",
    ],
}
ACCEPT_RUNS = {
    "sqlite": ["DROP TRIGGER refuse_runs"],
    "postgresql": ["DROP TRIGGER refuse_runs ON flow_runs", "DROP FUNCTION refuse_runs()"],
}


async def test_a_failed_transaction_keeps_neither_the_run_nor_its_record(
    runs: Runs, target: Target, domain: DomainContext
) -> None:
    """The record is written in the run's own transaction, before the run: when the run's
    insert then fails (a database trigger refuses it here), neither stays, and the key is new."""
    await _sql(domain, *REFUSE_RUNS[backend_name()])
    given = {
        "flowId": target.flow_id,
        "connectionId": target.connection_id,
        "mode": "UNATTENDED",
        "idempotencyKey": "crash",
    }
    failed = await runs.api.execute(TRIGGER_TYPED, {"input": given}, token=target.owner.token)
    failed_records = await count(domain, IdempotencyKey)
    await _sql(domain, *ACCEPT_RUNS[backend_name()])

    retried = await trigger(runs, target, "crash")

    assert failed["errors"][0]["message"] == "Unexpected error."
    assert failed_records == 0
    assert retried["__typename"] == "FlowRunPayload"
    assert await count(domain, FlowRun) == 1


async def _sql(domain: DomainContext, *statements: str) -> None:
    async with domain.db.write() as session:
        connection = await session.connection()
        for statement in statements:
            await connection.execute(text(statement))


# --- the other creating mutations ----------------------------------------------------------------


async def register(fleet: Fleet, owner: Person, name: str, key: str | None) -> dict[str, Any]:
    given = {
        "environmentId": fleet.environment_id,
        "name": name,
        "runtimeVersion": GOOD_RUNTIME,
        "osEdition": GOOD_EDITION,
        "idempotencyKey": key,
    }
    return (await fleet.api.data(REGISTER_MACHINE, {"input": given}, token=owner.token))[
        "registerMachine"
    ]


async def test_a_retried_registration_answers_the_machine_and_its_working_key(
    fleet: Fleet, domain: DomainContext
) -> None:
    """The key is shown once per registration: a replay is that registration, so its caller gets
    the key again (kept sealed for the day); without it the machine could never be used."""
    owner = await fleet.person("ENVIRONMENT_MAKER")

    first = await register(fleet, owner, "retried-bot", "register-1")
    again = await register(fleet, owner, "retried-bot", "register-1")
    renamed = await register(fleet, owner, "other-bot", "register-1")
    beat = await fleet.api.data(
        HEARTBEAT,
        {"input": {"runtimeVersion": GOOD_RUNTIME, "osEdition": GOOD_EDITION}},
        token=again["machineKey"],
    )

    assert first["__typename"] == "RegisteredMachinePayload", first
    assert again == first
    assert renamed["__typename"] == "ConflictError"
    assert renamed["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert beat["machineHeartbeat"]["__typename"] == "HeartbeatPayload"
    assert await count(domain, Machine) == 1
    async with domain.db.read() as session:
        record = (await session.exec(select(IdempotencyKey))).one()
    assert record.secret is not None and first["machineKey"] not in record.secret


async def test_a_replayed_registration_whose_key_was_rotated_since_is_refused(
    fleet: Fleet, domain: DomainContext
) -> None:
    owner = await fleet.person("ENVIRONMENT_MAKER")
    first = await register(fleet, owner, "rotated-bot", "register-2")
    async with domain.db.write() as session:
        machine = await session.get(Machine, first["machine"]["id"])
        assert machine is not None
        machine.key_hash = "0" * 64  # as completeMachineKeyRotation leaves it: another key
        session.add(machine)

    again = await register(fleet, owner, "rotated-bot", "register-2")

    assert again["__typename"] == "ConflictError"
    assert again["code"] == "KEY_EXPIRED"
    assert first["machineKey"] not in again["message"]


async def test_a_retried_connection_is_the_first_one_and_the_password_counts(
    runs: Runs, fleet: Fleet, domain: DomainContext
) -> None:
    owner = await fleet.person("ENVIRONMENT_MAKER")
    machine = await runs.machine(owner)
    given = {
        "name": "payroll",
        "machineId": machine.id,
        "windowsUsername": r"CONTOSO\payroll",
        "password": PASSWORD,
        "idempotencyKey": "connection-1",
    }

    async def create(**change: Any) -> dict[str, Any]:
        data = await fleet.api.data(
            CREATE_CONNECTION, {"input": {**given, **change}}, token=owner.token
        )
        return data["createConnection"]

    first = await create()
    again = await create()
    other_password = await create(password=PASSWORD + "!")

    assert first["__typename"] == "ConnectionPayload", first
    assert again == first
    assert other_password["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert await count(domain, Connection) == 1
    async with domain.db.read() as session:
        record = (await session.exec(select(IdempotencyKey))).one()
    # The password is in the fingerprint only through the vault's keyed digest (R20).
    plain = idempotency.fingerprint(
        {
            "name": "payroll",
            "machineId": machine.id,
            "groupId": None,
            "windowsUsername": r"CONTOSO\payroll",
            "password": hashlib.sha256(PASSWORD.encode()).hexdigest(),
        }
    )
    assert record.fingerprint != plain
    assert record.secret is None


async def test_a_retried_group_creation_is_the_first_group(
    fleet: Fleet, domain: DomainContext
) -> None:
    owner = await fleet.person("ENVIRONMENT_MAKER")
    given = {"environmentId": fleet.environment_id, "name": "night shift", "idempotencyKey": "g"}

    first = await fleet.api.data(CREATE_GROUP_TYPED, {"input": given}, token=owner.token)
    again = await fleet.api.data(CREATE_GROUP_TYPED, {"input": given}, token=owner.token)

    assert first["createMachineGroup"]["__typename"] == "MachineGroupPayload", first
    assert again == first
    assert await count(domain, MachineGroup) == 1


async def test_records_older_than_a_day_are_pruned(
    runs: Runs, target: Target, clock: ManualClock, domain: DomainContext
) -> None:
    await trigger(runs, target, "old")
    clock.advance(timedelta(hours=20))
    await trigger(runs, target, "recent")
    clock.advance(timedelta(hours=4))

    assert await idempotency.prune(domain.db, clock.now()) == 1
    assert await count(domain, IdempotencyKey) == 1
    assert (await trigger(runs, target, "recent"))["__typename"] == "FlowRunPayload"
    assert await count(domain, FlowRun) == 2


async def test_a_key_is_per_mutation_and_a_replay_of_something_deleted_is_not_found(
    fleet: Fleet, domain: DomainContext
) -> None:
    owner = await fleet.person("ENVIRONMENT_MAKER")
    given = {"environmentId": fleet.environment_id, "name": "day shift", "idempotencyKey": "same"}
    group = await fleet.api.data(CREATE_GROUP_TYPED, {"input": given}, token=owner.token)
    machine = await register(fleet, owner, "day-bot", "same")  # another mutation: another key
    group_id = group["createMachineGroup"]["group"]["id"]
    await fleet.api.data(
        "mutation($id: ID!) { deleteMachineGroup(id: $id) { __typename } }",
        {"id": group_id},
        token=owner.token,
    )

    again = await fleet.api.data(CREATE_GROUP_TYPED, {"input": given}, token=owner.token)

    assert machine["__typename"] == "RegisteredMachinePayload"
    assert again["createMachineGroup"] == {
        "__typename": "NotFoundError",
        "code": "NOT_FOUND",
        "message": f"machine group {group_id} does not exist or is not visible to you",
    }
    assert await count(domain, MachineGroup) == 0
