"""Fix a session lock: watch "Desktop flows not running" appear, disconnect the user, see it go.

    DESKFLEET_URL=http://127.0.0.1:8000/graphql DESKFLEET_TOKEN=dfu_... \
        python examples/fix_session_lock.py [machine-name]

With an environment admin's token (the first-run admin token will do) it:

1. turns on "receive user session related recommendations" (R31) in the Default environment and
   gives it one unattended bot;
2. registers a machine and, playing its runtime with the machine key, reports that the Windows
   user ``CONTOSO\\robot`` has a LOCKED session on it;
3. creates a desktop flow and a connection as that user, and triggers an unattended run: it
   cannot start, only because of the locked session (R26, R32);
4. watches the ``sessionRecommendations`` subscription (R35, R36) until the recommendation
   lists the run, then calls ``disconnectSessionUsers`` (R34);
5. as the runtime again: carries out the END_SESSION command and reports its sessions without
   the user; the dispatcher starts the run and the subscription shows the recommendation
   RESOLVED.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from typing import Any

from gql import Client, GraphQLRequest, gql
from gql.transport.httpx import HTTPXAsyncTransport
from gql.transport.websockets import WebsocketsTransport

USER = "CONTOSO\\robot"
RUNTIME = {"runtimeVersion": "2.8.73.21119", "osEdition": "Windows 11 Pro"}

ENVIRONMENTS = gql("{ environments { id name } }")
SETTING = gql(
    """
    mutation Setting($input: UpdateEnvironmentInput!) {
      updateEnvironment(input: $input) {
        __typename
        ... on EnvironmentPayload {
          environment { sessionRecommendations recommendationWindowSeconds }
        }
        ... on UserError { code message }
      }
    }
    """
)
REGISTER = gql(
    """
    mutation Register($input: RegisterMachineInput!) {
      registerMachine(input: $input) {
        __typename
        ... on RegisteredMachinePayload { machineKey machine { id name } }
        ... on UserError { code message }
      }
    }
    """
)
ALLOCATE = gql(
    """
    mutation Bots($id: ID!) {
      allocateUnattendedBots(machineId: $id, count: 1) { __typename ... on UserError { message } }
    }
    """
)
HEARTBEAT = gql(
    """
    mutation Heartbeat($input: HeartbeatInput!) {
      machineHeartbeat(input: $input) { __typename ... on UserError { code message } }
    }
    """
)
FLOW = gql(
    """
    mutation Flow($input: CreateDesktopFlowInput!) {
      createDesktopFlow(input: $input) {
        __typename ... on DesktopFlowPayload { flow { id } } ... on UserError { code message }
      }
    }
    """
)
CONNECTION = gql(
    """
    mutation Connection($input: CreateConnectionInput!) {
      createConnection(input: $input) {
        __typename ... on ConnectionPayload { connection { id } } ... on UserError { code message }
      }
    }
    """
)
TRIGGER = gql(
    """
    mutation Trigger($input: TriggerRunInput!) {
      triggerRun(input: $input) {
        __typename ... on FlowRunPayload { run { id status } } ... on UserError { code message }
      }
    }
    """
)
WATCH = """
subscription Watch($env: ID) {
  sessionRecommendations(environmentId: $env) {
    snapshot
    recommendations {
      id title status windowEndsAt
      affectedRuns { runId }
      runs {
        runId username sessionState outcome disconnectRequestedAt
        machine { name } flow { name } run { status }
      }
    }
  }
}
"""
DISCONNECT = gql(
    """
    mutation Disconnect($id: ID!, $runs: [ID!]!) {
      disconnectSessionUsers(recommendationId: $id, runIds: $runs) {
        __typename ... on UserError { code message }
      }
    }
    """
)
COMMANDS = gql("{ machineCommands { id kind username } }")
COMPLETE = gql("mutation Done($id: ID!) { completeMachineCommand(id: $id) { __typename } }")
RUN = gql("query Run($id: ID!) { run(id: $id) { id status waitReason machine { name } } }")


def http_client(url: str, token: str) -> Client:
    return Client(
        transport=HTTPXAsyncTransport(url=url, headers={"Authorization": f"Bearer {token}"})
    )


async def call(client: Client, document: Any, **variables: Any) -> dict[str, Any]:
    async with client as session:
        data = await session.execute(document, variable_values=variables)
    result = next(iter(data.values()))
    if isinstance(result, dict) and "code" in result:
        raise SystemExit(f"refused: {result['code']}: {result['message']}")
    return result


def describe(rec: dict[str, Any]) -> str:
    lines = [f'"{rec["title"]}" {rec["status"]} (window ends {rec["windowEndsAt"]})']
    for r in rec["runs"]:
        lines.append(
            f"   run {r['runId'][:8]} of {r['flow']['name']!r} on {r['machine']['name']}: "
            f"{r['username']} is {r['sessionState']} -> {r['outcome']}"
            + (" (disconnect requested)" if r["disconnectRequestedAt"] else "")
        )
    return "\n".join(lines)


async def updates(url: str, token: str, env: str) -> AsyncIterator[list[dict[str, Any]]]:
    transport = WebsocketsTransport(
        url=url.replace("http://", "ws://", 1).replace("https://", "wss://", 1),
        init_payload={"Authorization": f"Bearer {token}"},
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
    )
    async with Client(transport=transport) as session:
        request = GraphQLRequest(WATCH, variable_values={"env": env})
        async for message in session.subscribe(request):
            yield message["sessionRecommendations"]["recommendations"]


async def main(url: str, token: str, machine_name: str) -> None:
    me = http_client(url, token)
    async with me as session:
        environments = (await session.execute(ENVIRONMENTS))["environments"]
    env = next(e["id"] for e in environments if e["name"] == "Default")
    await call(
        me,
        SETTING,
        input={
            "id": env,
            "sessionRecommendations": True,
            "unattendedCapacity": 1,
            # R33: a recommendation's window; 600 s unless set. A slow IT desk may want longer.
            "recommendationWindowSeconds": 900,
        },
    )
    print("R31: session recommendations are on in the Default environment (R33: 15-minute window)")

    registered = await call(
        me, REGISTER, input={"environmentId": env, "name": machine_name, **RUNTIME}
    )
    machine_id = registered["machine"]["id"]
    runtime = http_client(url, registered["machineKey"])
    await call(me, ALLOCATE, id=machine_id)
    await call(
        runtime,
        HEARTBEAT,
        input={**RUNTIME, "sessions": [{"username": USER, "state": "LOCKED"}]},
    )
    print(f"machine {machine_name}: 1 unattended bot, {USER} has a LOCKED session")

    flow = (await call(me, FLOW, input={"environmentId": env, "name": "Month-end close"}))["flow"][
        "id"
    ]
    connection = (
        await call(
            me,
            CONNECTION,
            input={
                "name": f"{machine_name} as robot",
                "machineId": machine_id,
                "windowsUsername": USER,
                "password": "example-Passw0rd!",
            },
        )
    )["connection"]["id"]

    stream = updates(url, token, env)
    await anext(stream)  # the snapshot: subscribed before the run exists, nothing is missed
    run = (
        await call(
            me, TRIGGER, input={"flowId": flow, "connectionId": connection, "mode": "UNATTENDED"}
        )
    )["run"]
    print(f"triggered run {run['id'][:8]}: {run['status']}")

    async def until(predicate: Any) -> dict[str, Any]:
        async for recs in stream:
            found = [r for r in recs if predicate(r)]
            if found:
                return found[0]
        raise SystemExit("the subscription ended")

    rec = await asyncio.wait_for(
        until(lambda r: any(a["runId"] == run["id"] for a in r["affectedRuns"])), 30
    )
    print("recommendation raised:\n  " + describe(rec))

    await call(me, DISCONNECT, id=rec["id"], runs=[run["id"]])
    print("R34: disconnect users requested")

    # Playing the machine runtime: sign the user out, then report the sessions without it.
    for command in (await call(runtime, COMMANDS)) or []:
        if command["kind"] == "END_SESSION":
            print(f"runtime: END_SESSION for {command['username']}: signing the user out")
            await call(runtime, COMPLETE, id=command["id"])
    await call(runtime, HEARTBEAT, input={**RUNTIME, "sessions": []})

    resolved = await asyncio.wait_for(
        until(lambda r: r["id"] == rec["id"] and r["status"] == "RESOLVED"), 30
    )
    print("recommendation resolved:\n  " + describe(resolved))
    await stream.aclose()
    final = await call(me, RUN, id=run["id"])
    print(f"run {final['id'][:8]} is {final['status']} on {final['machine']['name']}")


if __name__ == "__main__":
    token = os.environ.get("DESKFLEET_TOKEN")
    if not token:
        sys.exit("set DESKFLEET_TOKEN (an environment admin's token)")
    asyncio.run(
        main(
            os.environ.get("DESKFLEET_URL", "http://127.0.0.1:8000/graphql"),
            token,
            sys.argv[1] if len(sys.argv) > 1 else "lock-example",
        )
    )
