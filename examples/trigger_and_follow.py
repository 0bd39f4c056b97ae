"""Trigger a desktop-flow run and follow it live (R23, R28, R29, R35), with the `gql` client and
examples/operations/runs.graphql.

    DESKFLEET_URL=http://127.0.0.1:8000/graphql DESKFLEET_TOKEN=dfu_... \
        python examples/trigger_and_follow.py --flow-id F --connection-id C \
            [--mode UNATTENDED|ATTENDED] [--priority NORMAL|HIGH] [--machine NAME] \
            [--idempotency-key KEY]

triggers a run of flow F through connection C and prints each change of it, from the
``runUpdates`` subscription, until it ends: QUEUED (with its queue position and why it waits),
DISPATCHED, RUNNING, then SUCCEEDED, FAILED, CANCELLED or TIMED_OUT. Your machine's runtime does
the work.

The trigger carries an idempotency key (R46; a new UUID unless ``--idempotency-key`` gives one)
and is sent again with the same key when the network fails or the server answers 5xx: however
many times it is sent, one run is queued. Run it again with the same key (within 24 hours) and it
follows the same run instead of queuing another.

Without --flow-id and --connection-id it sets a demo up first (an environment admin's token, e.g.
the first-run one): a machine (``--machine``, default ``follow-demo``) with one unattended bot, a flow and a connection,
and then plays that machine's runtime with its machine key, so the run goes all the way.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import uuid
from typing import Any

from documents import operation
from gql import Client, gql
from gql.transport.exceptions import TransportConnectionFailed, TransportServerError
from gql.transport.httpx import HTTPXAsyncTransport
from gql.transport.websockets import WebsocketsTransport

RUNTIME = {"runtimeVersion": "2.8.73.21119", "osEdition": "Windows 11 Pro"}
ERRORS = "... on UserError { code message }"
SETUP = {
    "environments": gql("{ environments { id name unattendedCapacity } }"),
    "capacity": gql(
        f"""mutation($input: UpdateEnvironmentInput!) {{
          updateEnvironment(input: $input) {{ __typename {ERRORS} }} }}"""
    ),
    "register": gql(
        f"""mutation($input: RegisterMachineInput!) {{ registerMachine(input: $input) {{
          __typename ... on RegisteredMachinePayload {{ machineKey machine {{ id }} }} {ERRORS} }} }}"""
    ),
    "bots": gql(
        f"""mutation($id: ID!) {{
          allocateUnattendedBots(machineId: $id, count: 1) {{ __typename {ERRORS} }} }}"""
    ),
    "flow": gql(
        f"""mutation($input: CreateDesktopFlowInput!) {{ createDesktopFlow(input: $input) {{
          __typename ... on DesktopFlowPayload {{ flow {{ id }} }} {ERRORS} }} }}"""
    ),
    "connection": gql(
        f"""mutation($input: CreateConnectionInput!) {{ createConnection(input: $input) {{
          __typename ... on ConnectionPayload {{ connection {{ id }} }} {ERRORS} }} }}"""
    ),
}
# The machine runtime's side (its machine key).
HEARTBEAT = gql(
    f"""mutation($input: HeartbeatInput!) {{ machineHeartbeat(input: $input) {{ __typename {ERRORS} }} }}"""
)
ASSIGNMENTS = gql("{ machineAssignments { runId attempt flowName } }")
CONFIRM = gql(
    f"""mutation($runId: ID!, $attempt: Int!) {{
      confirmRunStarted(runId: $runId, attempt: $attempt) {{ __typename {ERRORS} }} }}"""
)
FINISH = gql(
    f"""mutation($input: ReportRunFinishedInput!) {{
      reportRunFinished(input: $input) {{ __typename {ERRORS} }} }}"""
)
ENDED = {"SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT"}
ATTEMPTS = 5  # tries of the trigger, 1 s, 2 s, 3 s ... apart


def http(url: str, token: str) -> Client:
    return Client(
        transport=HTTPXAsyncTransport(url=url, headers={"Authorization": f"Bearer {token}"})
    )


async def call(client: Client, request: Any, **variables: Any) -> dict[str, Any]:
    async with client as session:
        if variables:
            data = await session.execute(request, variable_values=variables)
        else:
            data = await session.execute(request)
    result = next(iter(data.values()))
    if isinstance(result, dict) and "code" in result:
        raise SystemExit(f"refused: {result['code']}: {result['message']}")
    return result


class DemoRuntime:
    """Plays the machine runtime of the demo machine: confirm, then report success."""

    def __init__(self, url: str, key: str) -> None:
        self.client = http(url, key)

    async def heartbeat(self) -> None:
        await call(self.client, HEARTBEAT, input=RUNTIME)

    async def start(self, run_id: str) -> None:
        for assignment in await call(self.client, ASSIGNMENTS):
            if assignment["runId"] == run_id:
                print(f"   runtime: starting {assignment['flowName']!r}")
                await call(self.client, CONFIRM, runId=run_id, attempt=assignment["attempt"])
                self.attempt = assignment["attempt"]

    async def finish(self, run_id: str) -> None:
        print("   runtime: done, reporting SUCCEEDED")
        await call(
            self.client,
            FINISH,
            input={
                "runId": run_id,
                "attempt": self.attempt,
                "outcome": "SUCCEEDED",
                "runtimeVersion": RUNTIME["runtimeVersion"],
            },
        )


async def set_up_demo(url: str, token: str, name: str) -> tuple[str, str, DemoRuntime]:
    me = http(url, token)
    environments = await call(me, SETUP["environments"])
    env = next((e for e in environments if e["name"] == "Default"), environments[0])
    # One more bot in the environment's pool (R24) for the demo machine.
    capacity = env["unattendedCapacity"] + 1
    await call(me, SETUP["capacity"], input={"id": env["id"], "unattendedCapacity": capacity})
    env = env["id"]
    registered = await call(
        me, SETUP["register"], input={"environmentId": env, "name": name, **RUNTIME}
    )
    machine = registered["machine"]["id"]
    await call(me, SETUP["bots"], id=machine)
    runtime = DemoRuntime(url, registered["machineKey"])
    await runtime.heartbeat()
    flow = await call(me, SETUP["flow"], input={"environmentId": env, "name": "Follow me"})
    connection = await call(
        me,
        SETUP["connection"],
        input={
            "name": name,
            "machineId": machine,
            "windowsUsername": "CONTOSO\\svc-follow",
            "password": "example-Passw0rd!",
        },
    )
    print(f"demo: machine {name} (1 unattended bot), flow 'Follow me', a connection")
    return flow["flow"]["id"], connection["connection"]["id"], runtime


async def trigger(url: str, token: str, given: dict[str, Any], key: str) -> dict[str, Any]:
    """Queue the run once, however many times the request goes out (R46): every try carries the
    same idempotency key, so a try whose answer was lost (the run queued, the connection cut, the
    server killed before it answered) and the next one answer the same run."""
    request = operation("runs.graphql", "TriggerRun", input={**given, "idempotencyKey": key})
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return await call(http(url, token), request)
        except (TransportConnectionFailed, TransportServerError) as exc:
            if attempt == ATTEMPTS:
                raise SystemExit(f"no answer after {ATTEMPTS} tries: {exc}") from None
            print(f"   no answer ({type(exc).__name__}); trying again with the same key")
            await asyncio.sleep(attempt)
    raise AssertionError("unreachable")


def describe(run: dict[str, Any]) -> str:
    text = f"run {run['id'][:8]}: {run['status']}"
    if run["status"] == "QUEUED":
        text += f" (position {run['queuePosition']}, waiting: {run['waitReason'] or 'starting'}"
        estimate = run.get("estimatedStartAt")
        unknown = run.get("estimatedStartUnknown")
        text += f", starts about {estimate})" if estimate else f", start unknown: {unknown})"
    if run["machine"]:
        text += f" on {run['machine']['name']}"
    if run["errorCode"]:
        text += f" [{run['errorCode']}: {run['errorMessage']}]"
    return text


async def main(url: str, token: str, args: argparse.Namespace) -> int:
    runtime = None
    flow, connection = args.flow_id, args.connection_id
    if not (flow and connection):
        flow, connection, runtime = await set_up_demo(url, token, args.machine)

    key = args.idempotency_key or str(uuid.uuid4())
    given = {
        "flowId": flow,
        "connectionId": connection,
        "mode": args.mode,
        "priority": args.priority,
    }
    triggered = await trigger(url, token, given, key)
    run_id = triggered["run"]["id"]
    print(f"triggered run {run_id} (idempotency key {key})")

    live = WebsocketsTransport(
        url=url.replace("http://", "ws://", 1).replace("https://", "wss://", 1),
        init_payload={"Authorization": f"Bearer {token}"},
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
    )
    last = None
    async with Client(transport=live) as session:
        follow = operation("runs.graphql", "FollowRun", runId=run_id)
        async for message in session.subscribe(follow):
            for run in message["runUpdates"]["runs"]:
                if run["id"] != run_id or run["status"] == last:
                    continue
                last = run["status"]
                print(describe(run))
                if runtime and run["status"] == "DISPATCHED":
                    await runtime.start(run_id)
                elif runtime and run["status"] == "RUNNING":
                    await runtime.finish(run_id)
            if last in ENDED:
                break
    return 0 if last == "SUCCEEDED" else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flow-id")
    parser.add_argument("--connection-id")
    parser.add_argument("--mode", choices=["UNATTENDED", "ATTENDED"], default="UNATTENDED")
    parser.add_argument("--priority", choices=["NORMAL", "HIGH"], default="NORMAL")
    parser.add_argument("--machine", default="follow-demo", help="the demo machine's name")
    parser.add_argument(
        "--idempotency-key", help="R46: the same key again follows the same run (default: new)"
    )
    arguments = parser.parse_args()
    token = os.environ.get("DESKFLEET_TOKEN")
    if not token:
        sys.exit("set DESKFLEET_TOKEN to a user token (the first run prints one)")
    url = os.environ.get("DESKFLEET_URL", "http://127.0.0.1:8000/graphql")
    try:
        sys.exit(asyncio.run(main(url, token, arguments)))
    except KeyboardInterrupt:
        pass
