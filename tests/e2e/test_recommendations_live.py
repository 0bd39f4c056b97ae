"""The `sessionRecommendations` subscription end to end (R32-R36): a real `deskfleet serve` with
its own dispatcher and clock, a real graphql-transport-ws client; a recipient sees its
recommendation appear, change and resolve, another user sees nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.conftest import LiveServer
from tests.e2e.test_realtime import Given, subscribed
from tests.graphql import GOOD_EDITION, GOOD_RUNTIME, HEARTBEAT
from tests.runs_given import (
    ALLOCATE,
    CREATE_CONNECTION,
    CREATE_FLOW,
    TRIGGER_RUN,
    UPDATE_ENVIRONMENT,
)

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]

USER = r"CONTOSO\robot"

WATCH = """
subscription {
  sessionRecommendations {
    snapshot removedIds
    recommendations {
      id status recipientId
      runs { runId outcome sessionState disconnectRequestedAt }
    }
  }
}"""
DISCONNECT = """
mutation($id: ID!, $runs: [ID!]!) {
  disconnectSessionUsers(recommendationId: $id, runIds: $runs) {
    __typename ... on UserError { code message }
  }
}"""


def recs(message: dict[str, Any]) -> list[dict[str, Any]]:
    return message["sessionRecommendations"]["recommendations"]


@pytest.mark.rule("R36")
@pytest.mark.rule("R32")
@pytest.mark.rule("R34")
async def test_a_recipient_watches_its_recommendation_and_another_user_sees_nothing(
    deskfleet_server: Callable[..., LiveServer],
) -> None:
    server = deskfleet_server()
    given = Given(server)
    env = given.default_environment()
    server.graphql(
        UPDATE_ENVIRONMENT,
        variables={"input": {"id": env, "sessionRecommendations": True, "unattendedCapacity": 2}},
    )
    alice_id, alice, _ = given.person(env, "ENVIRONMENT_MAKER")
    _, carol, _ = given.person(env, "ENVIRONMENT_MAKER")
    machine_id, key = given.machine(alice, env, "locked-bot")
    assert server.graphql(ALLOCATE, variables={"machineId": machine_id, "count": 1})

    def heartbeat(sessions: dict[str, str]) -> None:
        reported = [{"username": u, "state": s} for u, s in sessions.items()]
        server.graphql(
            HEARTBEAT,
            token=key,
            variables={
                "input": {
                    "runtimeVersion": GOOD_RUNTIME,
                    "osEdition": GOOD_EDITION,
                    "sessions": reported,
                }
            },
        )

    heartbeat({USER: "LOCKED"})
    connection = server.graphql(
        CREATE_CONNECTION,
        token=alice,
        variables={
            "input": {
                "name": "robot",
                "machineId": machine_id,
                "windowsUsername": USER,
                "password": "correct horse battery staple",
            }
        },
    )["createConnection"]["connection"]["id"]
    flow = server.graphql(
        CREATE_FLOW, token=alice, variables={"input": {"environmentId": env, "name": "Invoices"}}
    )["createDesktopFlow"]["flow"]["id"]

    async with (
        subscribed(server, WATCH, token=alice) as mine,
        subscribed(server, WATCH, token=carol) as theirs,
    ):
        assert recs(await mine.next()) == []  # the snapshot first (R36)
        assert recs(await theirs.next()) == []
        run_id = server.graphql(
            TRIGGER_RUN,
            token=alice,
            variables={"input": {"flowId": flow, "connectionId": connection, "mode": "UNATTENDED"}},
        )["triggerRun"]["run"]["id"]

        raised = await mine.until(lambda m: bool(recs(m)))
        (rec,) = recs(raised)
        assert rec["status"] == "OPEN" and rec["recipientId"] == alice_id
        assert [(r["runId"], r["outcome"], r["sessionState"]) for r in rec["runs"]] == [
            (run_id, "BLOCKED", "LOCKED")
        ]

        done = server.graphql(
            DISCONNECT, token=alice, variables={"id": rec["id"], "runs": [run_id]}
        )
        assert done["disconnectSessionUsers"]["__typename"] == "SessionRecommendationPayload"
        asked = await mine.until(lambda m: recs(m)[0]["runs"][0]["disconnectRequestedAt"])
        assert recs(asked)[0]["status"] == "OPEN"

        heartbeat({})  # the runtime signed the user out: the dispatcher starts the run
        resolved = await mine.until(lambda m: recs(m)[0]["status"] == "RESOLVED")
        assert [r["outcome"] for r in recs(resolved)[0]["runs"]] == ["STARTED"]

        await theirs.nothing_for(1.0)  # never a word to someone who is not a recipient
