"""/metrics times dispatching: each run's wait from queued to dispatched, observed by the
lifespan's dispatcher through a callback, so domain/ stays free of Prometheus."""

import asyncio
from datetime import timedelta

import httpx
import pytest

from api.app import create_app
from domain.kernel.clock import ManualClock
from domain.kernel.settings import Settings
from tests.graphql import Fleet, GraphQLClient
from tests.runs_given import Runs

pytestmark = pytest.mark.asyncio


@pytest.mark.rule("R9")
async def test_the_dispatch_latency_histogram_counts_each_claim_from_queued(
    settings: Settings, clock: ManualClock, admin_token: str, default_environment_id: str
) -> None:
    live = create_app(settings.model_copy(update={"dispatcher_enabled": True}), clock=clock)
    async with live.router.lifespan_context(live):
        transport = httpx.ASGITransport(app=live)
        async with httpx.AsyncClient(transport=transport, base_url="http://live.test") as http:
            runs = Runs(Fleet(GraphQLClient(http), admin_token, default_environment_id))
            owner = await runs.fleet.person("ENVIRONMENT_MAKER", attended_licence=True)
            await runs.capacity(10)
            machine = await runs.machine(owner, bots=1, connected=False)  # the run waits for it
            run_id = await runs.trigger(await runs.target(owner, machine=machine))
            clock.advance(timedelta(seconds=7))
            before = (await http.get("/metrics")).text

            await runs.heartbeat(machine)  # it connects: the lifespan's dispatcher wakes
            for _ in range(500):
                if (await runs.run(run_id))["status"] == "DISPATCHED":
                    break
                await asyncio.sleep(0.01)
            after = (await http.get("/metrics")).text

    assert "deskfleet_dispatch_latency_seconds_count 0.0" in before
    assert "deskfleet_runs_dispatched_total 0.0" in before
    assert 'deskfleet_dispatch_latency_seconds_bucket{le="5.0"} 0.0' in after
    assert 'deskfleet_dispatch_latency_seconds_bucket{le="10.0"} 1.0' in after
    assert "deskfleet_dispatch_latency_seconds_sum 7.0" in after
    assert "deskfleet_runs_dispatched_total 1.0" in after
