"""Retry runs automatically, and by hand (R40), with the `gql` client.

    DESKFLEET_URL=http://127.0.0.1:8000/graphql DESKFLEET_TOKEN=dfu_... \
        python examples/retry_policy.py --flow-id F --max-attempts 3 --on MACHINE_LOST \
            --error-code APP_NOT_RESPONDING --delay 60 --backoff 2

sets flow F's own retry policy (``--environment-default`` sets its environment's default
instead; ``--follow-environment`` takes the flow's own away) and prints the policy its runs now
follow.

Without --flow-id it plays a demo (an environment admin's token, e.g. the first-run one): a
machine with one unattended bot, a flow whose runs are retried when they fail with
APP_NOT_RESPONDING, and the machine's runtime played with its machine key. The first run fails,
its retry waits out its two-second delay and succeeds, and then a person retries that finished run
by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from typing import Any

from gql import Client, gql
from gql.transport.httpx import HTTPXAsyncTransport

RUNTIME = {"runtimeVersion": "2.8.73.21119", "osEdition": "Windows 11 Pro"}
ERRORS = "... on ValidationError { field } ... on UserError { code message }"
POLICY = "maxAttempts retryOn errorCodes delaySeconds backoffFactor"
CHAIN = "id status errorCode retryAttempt waitReason notBefore retryOf { id } retriedBy { id }"

SET_FLOW_POLICY = gql(
    f"""mutation($id: ID!, $policy: RetryPolicyInput) {{
      setDesktopFlowRetryPolicy(id: $id, policy: $policy) {{
        __typename ... on DesktopFlowPayload {{ flow {{ name effectiveRetryPolicy {{ {POLICY} }} }} }}
        {ERRORS} }} }}"""
)
FLOW = gql("query($id: ID!) { desktopFlow(id: $id) { environment { id } } }")
UPDATE_ENVIRONMENT = gql(
    f"""mutation($input: UpdateEnvironmentInput!) {{ updateEnvironment(input: $input) {{
      __typename ... on EnvironmentPayload {{ environment {{ name retryPolicy {{ {POLICY} }} }} }}
      {ERRORS} }} }}"""
)
RETRY_RUN = gql(
    f"""mutation($id: ID!) {{ retryRun(id: $id) {{
      __typename ... on FlowRunPayload {{ run {{ {CHAIN} }} }} {ERRORS} }} }}"""
)
RUN = gql(f"query($id: ID!) {{ run(id: $id) {{ {CHAIN} }} }}")
CANCEL = gql(f"mutation($id: ID!) {{ cancelRun(id: $id) {{ __typename {ERRORS} }} }}")

# The demo's set-up, as an environment admin.
ENVIRONMENTS = gql("{ environments { id name unattendedCapacity } }")
REGISTER = gql(
    f"""mutation($input: RegisterMachineInput!) {{ registerMachine(input: $input) {{
      __typename ... on RegisteredMachinePayload {{ machineKey machine {{ id }} }} {ERRORS} }} }}"""
)
BOTS = gql(
    f"""mutation($id: ID!) {{
      allocateUnattendedBots(machineId: $id, count: 1) {{ __typename {ERRORS} }} }}"""
)
CREATE_FLOW = gql(
    f"""mutation($input: CreateDesktopFlowInput!) {{ createDesktopFlow(input: $input) {{
      __typename ... on DesktopFlowPayload {{ flow {{ id }} }} {ERRORS} }} }}"""
)
CONNECTION = gql(
    f"""mutation($input: CreateConnectionInput!) {{ createConnection(input: $input) {{
      __typename ... on ConnectionPayload {{ connection {{ id }} }} {ERRORS} }} }}"""
)
TRIGGER = gql(
    f"""mutation($input: TriggerRunInput!) {{ triggerRun(input: $input) {{
      __typename ... on FlowRunPayload {{ run {{ id }} }} {ERRORS} }} }}"""
)
# The machine runtime's side (its machine key).
HEARTBEAT = gql(
    f"mutation($input: HeartbeatInput!) {{ machineHeartbeat(input: $input) {{ __typename {ERRORS} }} }}"
)
ASSIGNMENTS = gql("{ machineAssignments { runId attempt } }")
CONFIRM = gql(
    f"""mutation($runId: ID!, $attempt: Int!) {{
      confirmRunStarted(runId: $runId, attempt: $attempt) {{ __typename {ERRORS} }} }}"""
)
FINISH = gql(
    f"""mutation($input: ReportRunFinishedInput!) {{
      reportRunFinished(input: $input) {{ __typename {ERRORS} }} }}"""
)


def http(url: str, token: str) -> Client:
    return Client(
        transport=HTTPXAsyncTransport(url=url, headers={"Authorization": f"Bearer {token}"})
    )


async def call(client: Client, request: Any, *, refused_ok: bool = False, **variables: Any):
    async with client as session:
        data = await session.execute(request, variable_values=variables or None)
    result = next(iter(data.values()))
    if isinstance(result, dict) and "code" in result and not refused_ok:
        raise SystemExit(f"refused: {result['code']}: {result['message']}")
    return result


def policy_text(policy: dict[str, Any]) -> str:
    endings = [*policy["retryOn"], *(f"FAILED {c}" for c in policy["errorCodes"])]
    return (
        f"up to {policy['maxAttempts']} run(s) a chain, retrying {', '.join(endings) or 'nothing'}, "
        f"after {policy['delaySeconds']} s (x{policy['backoffFactor']:g} each time)"
    )


async def set_policy(url: str, token: str, args: argparse.Namespace) -> int:
    me = http(url, token)
    policy = None
    if not args.follow_environment:
        policy = {
            "maxAttempts": args.max_attempts,
            "retryOn": args.on,
            "errorCodes": args.error_code,
            "delaySeconds": args.delay,
            "backoffFactor": args.backoff,
        }
    if args.environment_default:
        flow = await call(me, FLOW, id=args.flow_id)
        if flow is None:
            raise SystemExit(f"desktop flow {args.flow_id} does not exist or is not visible to you")
        result = await call(
            me,
            UPDATE_ENVIRONMENT,
            input={"id": flow["environment"]["id"], "retryPolicy": policy or {"maxAttempts": 1}},
        )
        environment = result["environment"]
        print(f"environment {environment['name']!r}: {policy_text(environment['retryPolicy'])}")
        return 0
    result = await call(me, SET_FLOW_POLICY, id=args.flow_id, policy=policy)
    flow = result["flow"]
    print(f"flow {flow['name']!r} now follows: {policy_text(flow['effectiveRetryPolicy'])}")
    return 0


class DemoRuntime:
    """Plays the demo machine's runtime: takes its assignment, starts it and reports an end."""

    def __init__(self, url: str, key: str) -> None:
        self.client = http(url, key)

    async def heartbeat(self) -> None:
        await call(self.client, HEARTBEAT, input=RUNTIME)

    async def run(self, run_id: str, outcome: str, error_code: str | None = None) -> None:
        deadline = time.monotonic() + 30
        while True:
            await self.heartbeat()
            taken = [a for a in await call(self.client, ASSIGNMENTS) if a["runId"] == run_id]
            if taken:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"run {run_id} was never dispatched")
            await asyncio.sleep(0.2)
        attempt = taken[0]["attempt"]
        await call(self.client, CONFIRM, runId=run_id, attempt=attempt)
        print(f"   runtime: ran {run_id[:8]}, reporting {outcome} {error_code or ''}".rstrip())
        await call(
            self.client,
            FINISH,
            input={
                "runId": run_id,
                "attempt": attempt,
                "outcome": outcome,
                "errorCode": error_code,
            },
        )


def describe(run: dict[str, Any]) -> str:
    text = f"run {run['id'][:8]} (attempt {run['retryAttempt']}): {run['status']}"
    if run["retryOf"]:
        text += f", retries {run['retryOf']['id'][:8]}"
    if run["waitReason"]:
        text += f", waiting {run['waitReason']}"
    if run["notBefore"] and run["status"] == "QUEUED":
        text += f" until {run['notBefore']}"
    if run["errorCode"]:
        text += f" [{run['errorCode']}]"
    return text


async def demo(url: str, token: str, name: str) -> int:
    me = http(url, token)
    environments = await call(me, ENVIRONMENTS)
    env = next((e for e in environments if e["name"] == "Default"), environments[0])
    await call(
        me,
        UPDATE_ENVIRONMENT,
        input={"id": env["id"], "unattendedCapacity": env["unattendedCapacity"] + 1},
    )
    registered = await call(
        me, REGISTER, input={"environmentId": env["id"], "name": name, **RUNTIME}
    )
    machine = registered["machine"]["id"]
    await call(me, BOTS, id=machine)
    runtime = DemoRuntime(url, registered["machineKey"])
    await runtime.heartbeat()
    flow = (await call(me, CREATE_FLOW, input={"environmentId": env["id"], "name": "Flaky"}))[
        "flow"
    ]["id"]
    connection = (
        await call(
            me,
            CONNECTION,
            input={
                "name": name,
                "machineId": machine,
                "windowsUsername": "CONTOSO\\svc-retry",
                "password": "example-Passw0rd!",
            },
        )
    )["connection"]["id"]
    policy = {"maxAttempts": 3, "errorCodes": ["APP_NOT_RESPONDING"], "delaySeconds": 2}
    result = await call(me, SET_FLOW_POLICY, id=flow, policy=policy)
    print(f"flow 'Flaky': {policy_text(result['flow']['effectiveRetryPolicy'])}")

    run = await call(
        me, TRIGGER, input={"flowId": flow, "connectionId": connection, "mode": "UNATTENDED"}
    )
    first = run["run"]["id"]
    await runtime.run(first, "FAILED", "APP_NOT_RESPONDING")
    ended = await call(me, RUN, id=first)
    print(describe(ended))
    retry = await call(me, RUN, id=ended["retriedBy"]["id"])
    print(describe(retry))
    await runtime.run(retry["id"], "SUCCEEDED")
    print(describe(await call(me, RUN, id=retry["id"])))

    again = await call(me, RETRY_RUN, refused_ok=True, id=first)
    print(f"retrying {first[:8]} by hand: {again['code']} (it was retried already)")
    by_hand = (await call(me, RETRY_RUN, id=retry["id"]))["run"]
    print(f"retried {retry['id'][:8]} by hand: {describe(by_hand)}")
    await call(me, CANCEL, id=by_hand["id"])
    print(f"cancelled {by_hand['id'][:8]}: the demo ends here")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flow-id", help="set this flow's policy (no demo)")
    parser.add_argument("--max-attempts", type=int, default=3)
    parser.add_argument(
        "--on", action="append", default=[], choices=["MACHINE_LOST", "QUEUE_TIMEOUT"]
    )
    parser.add_argument("--error-code", action="append", default=[])
    parser.add_argument("--delay", type=int, default=60, help="seconds before the first retry")
    parser.add_argument("--backoff", type=float, default=2.0)
    parser.add_argument("--environment-default", action="store_true")
    parser.add_argument("--follow-environment", action="store_true")
    parser.add_argument("--machine", default="retry-demo", help="the demo machine's name")
    arguments = parser.parse_args()
    token = os.environ.get("DESKFLEET_TOKEN")
    if not token:
        sys.exit("set DESKFLEET_TOKEN to a user token (the first run prints one)")
    url = os.environ.get("DESKFLEET_URL", "http://127.0.0.1:8000/graphql")
    if arguments.flow_id:
        sys.exit(asyncio.run(set_policy(url, token, arguments)))
    sys.exit(asyncio.run(demo(url, token, arguments.machine)))
