"""Register a machine and list the machines you can see, with the `gql` GraphQL client.

    DESKFLEET_URL=http://127.0.0.1:8000/graphql DESKFLEET_TOKEN=dfu_... \
        python examples/register_and_list.py [machine-name]

The machine key printed here is what the machine runtime authenticates with; it is shown once.
"""

from __future__ import annotations

import asyncio
import os
import sys

from gql import Client, gql
from gql.transport.httpx import HTTPXAsyncTransport

ENVIRONMENTS = gql("{ environments { id name kind } }")

REGISTER = gql(
    """
    mutation Register($input: RegisterMachineInput!) {
      registerMachine(input: $input) {
        __typename
        ... on RegisteredMachinePayload { machineKey machine { id name status } }
        ... on UserError { code message }
      }
    }
    """
)

HEARTBEAT = gql(
    """
    mutation Beat($input: HeartbeatInput!) {
      machineHeartbeat(input: $input) { ... on HeartbeatPayload { machine { name status } } }
    }
    """
)

MACHINES = gql(
    """
    query Machines($first: Int!, $after: String) {
      machines(first: $first, after: $after) {
        totalCount
        pageInfo { hasNextPage endCursor }
        nodes {
          name description version status maintenance accessType runningCount queuedCount
          group { name } owner { displayName }
        }
      }
    }
    """
)


def client(url: str, token: str) -> Client:
    transport = HTTPXAsyncTransport(url=url, headers={"Authorization": f"Bearer {token}"})
    return Client(transport=transport, fetch_schema_from_transport=False)


async def main(url: str, token: str, name: str) -> int:
    async with client(url, token) as session:
        environments = (await session.execute(ENVIRONMENTS))["environments"]
        environment = environments[0]
        print(f"registering {name!r} in environment {environment['name']!r}")
        result = (
            await session.execute(
                REGISTER,
                variable_values={
                    "input": {
                        "environmentId": environment["id"],
                        "name": name,
                        "runtimeVersion": "2.8.73.21119",
                        "osEdition": "Windows 11 Pro",
                        "description": "registered by examples/register_and_list.py",
                    }
                },
            )
        )["registerMachine"]
        if result["__typename"] != "RegisteredMachinePayload":
            print(f"refused: {result['code']}: {result['message']}", file=sys.stderr)
            return 1
        machine_key = result["machineKey"]
        print(f"machine key (shown once): {machine_key}")

    # The machine runtime side: its key, not a user token.
    async with client(url, machine_key) as runtime:
        beat = await runtime.execute(
            HEARTBEAT,
            variable_values={
                "input": {"runtimeVersion": "2.8.73.21119", "osEdition": "Windows 11 Pro"}
            },
        )
        print(f"heartbeat: {beat['machineHeartbeat']['machine']}")

    async with client(url, token) as session:
        after = None
        while True:
            page = (await session.execute(MACHINES, variable_values={"first": 50, "after": after}))[
                "machines"
            ]
            for m in page["nodes"]:
                group = m["group"]["name"] if m["group"] else "-"
                print(
                    f"{m['name']:<24} {m['status']:<13} v{m['version']:<14} group={group:<10} "
                    f"running={m['runningCount']} queued={m['queuedCount']} "
                    f"access={m['accessType']} owner={m['owner']['displayName']}"
                    f"{'  [maintenance]' if m['maintenance'] else ''}"
                )
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        print(f"{page['totalCount']} machine(s)")
    return 0


if __name__ == "__main__":
    url = os.environ.get("DESKFLEET_URL", "http://127.0.0.1:8000/graphql")
    token = os.environ.get("DESKFLEET_TOKEN")
    if not token:
        sys.exit("set DESKFLEET_TOKEN to a user token (the first run prints one)")
    sys.exit(asyncio.run(main(url, token, sys.argv[1] if len(sys.argv) > 1 else "example-bot")))
