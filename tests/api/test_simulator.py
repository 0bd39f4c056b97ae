"""The machine-runtime simulator works runs end to end through the real API."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from deskfleet.simulator import Simulator, SimulatorConfig, check_log, read_log
from domain.kernel.settings import Settings
from tests.connection_steps import connection, flow, group
from tests.graphql import UPDATE_ENVIRONMENT, Fleet

pytestmark = pytest.mark.asyncio


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The simulator works through the API while the lifespan's dispatcher assigns its runs.
    return settings.model_copy(update={"dispatcher_enabled": True})


TRIGGER = """
mutation($input: TriggerRunInput!) {
  triggerRun(input: $input) {
    __typename ... on FlowRunPayload { run { id } } ... on UserError { code message }
  }
}"""

RUNS = """
query($filter: FlowRunFilterInput) {
  flowRuns(first: 100, filter: $filter) { nodes { id status machine { id } reportedRuntimeVersion } }
}"""

TERMINAL = {"SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT"}


@pytest.mark.rule("R30")
@pytest.mark.rule("R26")
async def test_simulated_machines_work_every_run_once_and_spread_the_load(
    fleet: Fleet, tmp_path: Path
) -> None:
    await fleet.api.data(
        UPDATE_ENVIRONMENT,
        {"input": {"id": fleet.environment_id, "unattendedCapacity": 4}},
        token=fleet.admin_token,
    )
    maker = await fleet.person("ENVIRONMENT_MAKER")
    group_id = await group(fleet, maker, "Simulated")
    log_path = tmp_path / "simulator.jsonl"
    config = SimulatorConfig(
        url="http://deskfleet.test/graphql",
        token=maker.token,
        environment_id=fleet.environment_id,
        machines=2,
        bots=1,
        group_id=group_id,
        min_run_seconds=0.01,
        max_run_seconds=0.05,
        failure_rate=0.3,
        heartbeat_seconds=0.05,
        poll_seconds=0.02,
        log_path=log_path,
        seed=7,
    )
    simulator = Simulator(config, http=fleet.api.http)
    machines = await simulator.register()
    conn = await connection(fleet, maker, group_id=group_id, username="robot")
    flow_id = await flow(fleet, maker)
    run_ids = []
    for _ in range(12):
        data = await fleet.api.data(
            TRIGGER,
            {"input": {"flowId": flow_id, "connectionId": conn["id"], "mode": "UNATTENDED"}},
            token=maker.token,
        )
        assert data["triggerRun"]["__typename"] == "FlowRunPayload", data
        run_ids.append(data["triggerRun"]["run"]["id"])

    working = asyncio.create_task(simulator.run())
    try:
        async with asyncio.timeout(60):
            while True:
                data = await fleet.api.data(
                    RUNS, {"filter": {"flowId": flow_id}}, token=maker.token
                )
                runs = {r["id"]: r for r in data["flowRuns"]["nodes"]}
                done = all(r["status"] in TERMINAL for r in runs.values())
                if done and simulator.stats.finished == len(run_ids):  # reports acknowledged
                    break
                await asyncio.sleep(0.05)
    finally:
        simulator.stop()
        await working
        await simulator.close()

    events = read_log(log_path)
    check = check_log(events)
    assert sorted(runs) == sorted(run_ids)
    assert {r["status"] for r in runs.values()} <= {"SUCCEEDED", "FAILED"}
    assert check.double_holds == [] and check.double_finishes == []
    assert sorted(check.finished) == sorted(run_ids)
    assert all(check.finished[i] == runs[i]["status"] for i in run_ids)
    assert {r["reportedRuntimeVersion"] for r in runs.values()} == {config.runtime_version}
    assert {r["machine"]["id"] for r in runs.values()} == {m.id for m in machines}  # spread
    for machine in machines:  # one bot each: never two runs at once on a machine (R24)
        busy = 0
        for e in events:
            if e.get("machine_id") != machine.id:
                continue
            if e["event"] == "started":
                busy += 1
            elif e["event"] in ("finished", "cancelled", "superseded"):
                busy -= 1
            assert busy <= 1
