"""The run history the dashboard pages through: `flowRuns` filtered by who triggered a run and
when it was queued, besides status, flow, machine and group (R28's timings on each run)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.context import DomainContext
from domain.kernel.clock import ManualClock
from domain.realtime.watch import run_matches
from domain.runs.runs import RunFilter, runs_by_ids
from domain.statistics import rollups
from tests.runs_given import FLOW_RUNS, Runs

pytestmark = pytest.mark.asyncio


async def page(runs: Runs, **flt: object) -> dict:
    data = await runs.api.execute(FLOW_RUNS, {"first": 50, "filter": flt}, token=runs.admin)
    return data


async def test_runs_are_filtered_by_who_triggered_them_and_when_they_were_queued(
    runs: Runs, clock: ManualClock
) -> None:
    await runs.capacity(1)
    owner = await runs.fleet.person("ENVIRONMENT_MAKER")
    other = await runs.fleet.person("ENVIRONMENT_ADMIN")
    machine = await runs.machine(owner, bots=1)
    mine = await runs.target(owner, machine=machine)
    theirs = await runs.target(other, machine=machine)
    early = await runs.trigger(mine)
    clock.advance(timedelta(minutes=10))
    late = await runs.trigger(mine)
    by_other = await runs.trigger(theirs)

    answer = await page(runs, triggeredById=owner.id)
    assert {e["node"]["id"] for e in answer["data"]["flowRuns"]["edges"]} == {early, late}
    after = (clock.now() - timedelta(minutes=5)).isoformat()
    answer = await page(runs, queuedAfter=after)
    assert {e["node"]["id"] for e in answer["data"]["flowRuns"]["edges"]} == {late, by_other}
    answer = await page(runs, queuedBefore=after, triggeredById=owner.id)
    assert [e["node"]["id"] for e in answer["data"]["flowRuns"]["edges"]] == [early]


async def test_a_time_range_the_wrong_way_round_is_refused_naming_the_field(runs: Runs) -> None:
    answer = await page(
        runs, queuedAfter="2026-01-02T00:00:00+00:00", queuedBefore="2026-01-01T00:00:00+00:00"
    )
    (error,) = answer["errors"]
    assert error["extensions"]["code"] == "INVALID_VALUE"
    assert "queuedBefore" in error["message"]
    answer = await page(runs, triggeredById="not an id")
    assert answer["errors"][0]["extensions"]["code"] == "INVALID_ID"


async def test_run_updates_match_the_same_filter(
    runs: Runs, clock: ManualClock, domain: DomainContext
) -> None:
    """runUpdates(filter:) follows the runs flowRuns(filter:) lists."""
    await runs.capacity(1)
    owner = await runs.fleet.person("ENVIRONMENT_MAKER")
    machine = await runs.machine(owner, bots=1)
    run_id = await runs.trigger(await runs.target(owner, machine=machine))
    (run,) = await runs_by_ids(domain, [run_id])
    assert run is not None
    now = clock.now()
    assert run_matches(run, RunFilter(triggered_by_id=owner.id, queued_after=now))
    assert not run_matches(run, RunFilter(triggered_by_id=machine.id))
    assert not run_matches(run, RunFilter(queued_before=now))


HISTORY = """query($id: ID!) { run(id: $id) { status waitHistory { reason since until } } }"""


@pytest.mark.rule("R29")
async def test_a_runs_wait_history_says_why_it_waited_and_how_long(
    runs: Runs, clock: ManualClock, domain: DomainContext
) -> None:
    """Read at each fold (every sweep): a stretch per reason, ended when the reason changes."""
    await rollups.fold(domain)  # the first fold
    await runs.capacity(2)
    owner = await runs.fleet.person("ENVIRONMENT_MAKER")
    machine = await runs.machine(owner, bots=1, connected=False)
    run_id = await runs.trigger(await runs.target(owner, machine=machine))
    clock.advance(timedelta(seconds=10))
    await rollups.fold(domain)
    opened = clock.now()
    clock.advance(timedelta(seconds=30))
    await runs.heartbeat(machine, {})  # online: it can start now (no reason)
    await rollups.fold(domain)
    answer = await runs.api.data(HISTORY, {"id": run_id}, token=runs.admin)
    (stretch,) = answer["run"]["waitHistory"]
    assert stretch["reason"] == "MACHINE_OFFLINE"
    assert (stretch["since"], stretch["until"]) == (opened.isoformat(), clock.now().isoformat())
