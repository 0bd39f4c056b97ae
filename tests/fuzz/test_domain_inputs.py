"""Hypothesis on the domain's inputs, through the GraphQL API in process: strings of any
length and alphabet, numbers past their ranges, ids that are not ids. Every answer is the success
type or a typed UserError — never an error in ``errors``, never a half-written change — and the
invariants hold after each batch (counts never negative, groups never over 50)."""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from domain.context import DomainContext
from tests import connection_steps as steps
from tests.graphql import CREATE_ENVIRONMENT, REGISTER_MACHINE, UPDATE_ENVIRONMENT, Fleet

pytestmark = pytest.mark.asyncio

EXAMPLES = int(os.environ.get("DESKFLEET_FUZZ_EXAMPLES", "25"))
UPDATE_MACHINE = """mutation($input: UpdateMachineInput!) {
  updateMachine(input: $input) { __typename ... on UserError { code message } } }"""

strings = st.one_of(
    st.text(max_size=300),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=190, max_size=5000),
    st.sampled_from(["", " ", "\x00", "a" * 201, "../../etc", "'; DROP TABLE machines;--", "🤖"]),
)
ints = st.one_of(st.integers(min_value=-(2**31), max_value=2**31 - 1), st.sampled_from([0, -1]))
ids = st.one_of(st.uuids().map(str), strings)


def samples(strategy: st.SearchStrategy[Any], n: int = EXAMPLES) -> list[Any]:
    """Examples drawn by Hypothesis (generation only: the checks below are async)."""
    drawn: list[Any] = []

    @given(strategy)
    @settings(
        max_examples=n,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def collect(value: Any) -> None:
        drawn.append(value)

    collect()
    return drawn


def typed(result: dict[str, Any], field: str) -> dict[str, Any]:
    assert not result.get("errors"), result["errors"]
    answer = result["data"][field]
    assert answer["__typename"].endswith(("Payload", "Error")), answer
    return answer


async def check_invariants(domain: DomainContext) -> None:
    async with domain.db.read() as session:
        over = (
            await session.exec(  # type: ignore[call-overload]
                text(
                    "SELECT COUNT(*) FROM (SELECT group_id FROM machines WHERE group_id IS NOT "
                    "NULL GROUP BY group_id HAVING COUNT(*) > 50) AS g"
                )
            )
        ).scalar_one()
        negative = (
            await session.exec(  # type: ignore[call-overload]
                text(
                    "SELECT (SELECT COUNT(*) FROM machines WHERE unattended_bots < 0) + "
                    "(SELECT COUNT(*) FROM environments WHERE unattended_capacity < 0 "
                    "OR max_queue_seconds <= 0)"
                )
            )
        ).scalar_one()
    assert over == 0
    assert negative == 0


async def test_registration_and_edits_take_any_string_and_answer_typed(
    fleet: Fleet, domain: DomainContext
) -> None:
    owner = await fleet.person("MACHINE_OWNER")
    machine = await fleet.machine(owner, "bot")
    for name, description, edition, version in samples(
        st.tuples(strings, strings, strings, strings)
    ):
        registered = typed(
            await fleet.api.execute(
                REGISTER_MACHINE,
                {
                    "input": {
                        "environmentId": fleet.environment_id,
                        "name": name,
                        "description": description,
                        "osEdition": edition,
                        "runtimeVersion": version,
                    }
                },
                token=owner.token,
            ),
            "registerMachine",
        )
        updated = typed(
            await fleet.api.execute(
                UPDATE_MACHINE,
                {"input": {"id": machine.id, "name": name, "description": description}},
                token=owner.token,
            ),
            "updateMachine",
        )
        group = await fleet.api.execute(
            steps.CREATE_GROUP,
            {"input": {"environmentId": fleet.environment_id, "name": name}},
            token=owner.token,
        )
        typed(group, "createMachineGroup")
        if registered["__typename"].endswith("Error"):
            assert registered["message"] and registered["code"]
        if updated["__typename"].endswith("Error"):
            assert updated["code"] in {"INVALID_NAME", "INVALID_TEXT", "NAME_TAKEN"}, updated
    await check_invariants(domain)


async def test_numbers_out_of_range_and_bad_ids_are_refused_cleanly(
    fleet: Fleet, domain: DomainContext
) -> None:
    env = await fleet.environment("Fuzzed")
    for queue, capacity, some_id, name in samples(st.tuples(ints, ints, ids, strings)):
        updated = typed(
            await fleet.api.execute(
                UPDATE_ENVIRONMENT,
                {"input": {"id": env, "maxQueueSeconds": queue, "unattendedCapacity": capacity}},
                token=fleet.admin_token,
            ),
            "updateEnvironment",
        )
        if queue <= 0 or capacity < 0:
            assert updated["__typename"] == "ValidationError", (queue, capacity, updated)
        wrong = typed(
            await fleet.api.execute(
                UPDATE_MACHINE, {"input": {"id": some_id, "name": "x"}}, token=fleet.admin_token
            ),
            "updateMachine",
        )
        assert wrong["__typename"] in {"ValidationError", "NotFoundError"}, wrong
        typed(
            await fleet.api.execute(
                CREATE_ENVIRONMENT,
                {"input": {"name": name, "kind": "SANDBOX", "flowExtensionsVersion": name}},
                token=fleet.admin_token,
            ),
            "createEnvironment",
        )
    await check_invariants(domain)
