"""Admins watching a scope share one feed: one read and one diff per change for all of
them, and a subscriber that fell behind gets the whole view, never a stale one (R36)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from domain.context import DomainContext
from domain.identity.identity import authenticate
from domain.kernel.principals import Principal
from domain.realtime import watch
from tests.conftest import StatementCounter
from tests.graphql import Fleet

pytestmark = pytest.mark.asyncio

RENAME = """
mutation($input: UpdateMachineInput!) {
  updateMachine(input: $input) { __typename ... on UserError { code message } }
}"""


async def rename(fleet: Fleet, machine_id: str, name: str) -> None:
    data = await fleet.api.data(
        RENAME, {"input": {"id": machine_id, "name": name}}, token=fleet.admin_token
    )
    assert data["updateMachine"]["__typename"] == "MachinePayload", data


async def watching(
    domain: DomainContext, fleet: Fleet, count: int
) -> list[AsyncIterator[watch.Update[watch.MachineLive]]]:
    principal = await authenticate(domain, fleet.admin_token)

    async def who() -> Principal:
        return principal

    flt = watch.MachineStatusFilter(environment_id=fleet.environment_id)
    return [watch.machine_status(domain, who, flt) for _ in range(count)]


@pytest.mark.rule("R36")
async def test_many_admins_cost_one_read_per_change(
    fleet: Fleet, domain: DomainContext, sql_statements: StatementCounter
) -> None:
    owner = await fleet.person("MACHINE_OWNER")
    machine = await fleet.machine(owner, "bot")

    async def one_change(subscribers: int, name: str) -> int:
        streams = await watching(domain, fleet, subscribers)
        snapshots = [await anext(s) for s in streams]
        assert all(s is snapshots[0] and s.snapshot for s in snapshots)
        before = sql_statements.count
        await rename(fleet, machine.id, name)
        changes = await asyncio.wait_for(asyncio.gather(*(anext(s) for s in streams)), 10)
        assert all(c is changes[0] for c in changes)  # one diff, one object for everyone
        assert [m.name for m in changes[0].items] == [name]
        for s in streams:
            await s.aclose()
        return sql_statements.count - before

    assert await one_change(50, "renamed-for-fifty") == await one_change(1, "renamed-for-one")


@pytest.mark.rule("R36")
async def test_a_subscriber_that_fell_behind_gets_the_whole_view(
    fleet: Fleet, domain: DomainContext
) -> None:
    owner = await fleet.person("MACHINE_OWNER")
    first = await fleet.machine(owner, "first")
    second = await fleet.machine(owner, "second")
    keeping_up, behind = await watching(domain, fleet, 2)
    assert (await anext(keeping_up)).snapshot and (await anext(behind)).snapshot

    await rename(fleet, first.id, "first-renamed")
    assert [m.name for m in (await asyncio.wait_for(anext(keeping_up), 10)).items] == [
        "first-renamed"
    ]
    await rename(fleet, second.id, "second-renamed")
    assert [m.name for m in (await asyncio.wait_for(anext(keeping_up), 10)).items] == [
        "second-renamed"
    ]

    caught_up = await asyncio.wait_for(anext(behind), 10)
    assert caught_up.snapshot
    assert sorted(m.name for m in caught_up.items) == ["first-renamed", "second-renamed"]
    for s in (keeping_up, behind):
        await s.aclose()
