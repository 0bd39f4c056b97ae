"""Connections (R20-R22) with the `gql` GraphQL client: create, edit, list, see gateways, delete.

    DESKFLEET_URL=http://127.0.0.1:8000/graphql DESKFLEET_TOKEN=dfu_... \
        python examples/connections.py [machine-name]

It registers a machine (or reuses one of that name), creates a desktop flow and a direct
connection to the machine, changes the connection's password, shows that a gateway connection is
refused (R22), lists connections and gateways, then deletes what it made. The password is
write-only: no query can read it back, only ``hasPassword``.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import sys
from typing import Any

from gql import Client, gql
from gql.transport.httpx import HTTPXAsyncTransport

ENVIRONMENTS = gql("{ environments { id name kind } }")

FIND_MACHINE = gql(
    """
    query Find($text: String!) { machines(first: 1, filter: { text: $text }) { nodes { id name } } }
    """
)

REGISTER = gql(
    """
    mutation Register($input: RegisterMachineInput!) {
      registerMachine(input: $input) {
        __typename
        ... on RegisteredMachinePayload { machine { id name } }
        ... on UserError { code message }
      }
    }
    """
)

CREATE_FLOW = gql(
    """
    mutation Flow($input: CreateDesktopFlowInput!) {
      createDesktopFlow(input: $input) {
        __typename ... on DesktopFlowPayload { flow { id name } } ... on UserError { code message }
      }
    }
    """
)

CONNECTION = """
  id name connectivity windowsUsername hasPassword updatedAt
  machine { name } group { name } gateway { name } owner { displayName }
"""

CREATE = gql(
    """
    mutation Create($input: CreateConnectionInput!) {
      createConnection(input: $input) {
        __typename
        ... on ConnectionPayload { connection { FIELDS } }
        ... on UserError { code message }
        ... on RuleViolationError { rule }
      }
    }
    """.replace("FIELDS", CONNECTION)
)

UPDATE = gql(
    """
    mutation Update($input: UpdateConnectionInput!) {
      updateConnection(input: $input) {
        __typename
        ... on ConnectionPayload { connection { FIELDS } }
        ... on UserError { code message }
      }
    }
    """.replace("FIELDS", CONNECTION)
)

CONNECTIONS = gql(
    """
    query Connections($first: Int!, $after: String) {
      connections(first: $first, after: $after) {
        totalCount pageInfo { hasNextPage endCursor } nodes { FIELDS }
      }
    }
    """.replace("FIELDS", CONNECTION)
)

GATEWAYS = gql(
    """
    query Gateways($environmentId: ID!) {
      gateways(environmentId: $environmentId) { name connections { name owner { displayName } } }
    }
    """
)

DELETE = gql(
    """
    mutation Delete($id: ID!) {
      deleteConnection(id: $id) {
        __typename
        ... on DeletedConnectionPayload { id cancelledRunIds }
        ... on UserError { code message }
      }
    }
    """
)

DELETE_FLOW = gql(
    """
    mutation DeleteFlow($id: ID!) {
      deleteDesktopFlow(id: $id) { __typename ... on UserError { code message } }
    }
    """
)


def client(url: str, token: str) -> Client:
    transport = HTTPXAsyncTransport(url=url, headers={"Authorization": f"Bearer {token}"})
    return Client(transport=transport, fetch_schema_from_transport=False)


def show(connection: dict[str, Any]) -> str:
    target = (
        (connection["machine"] or {}).get("name")
        or (connection["group"] or {}).get("name")
        or f"gateway {(connection['gateway'] or {}).get('name')}"
    )
    return (
        f"{connection['name']:<20} {connection['connectivity']:<8} -> {target:<20} "
        f"as {connection['windowsUsername']:<18} password stored: {connection['hasPassword']}"
    )


async def main(url: str, token: str, machine_name: str) -> int:
    async with client(url, token) as session:
        environment = (await session.execute(ENVIRONMENTS))["environments"][0]
        env_id = environment["id"]
        print(f"environment {environment['name']!r}")

        found = (await session.execute(FIND_MACHINE, variable_values={"text": machine_name}))[
            "machines"
        ]["nodes"]
        if found and found[0]["name"] == machine_name:
            machine = found[0]
        else:
            registered = (
                await session.execute(
                    REGISTER,
                    variable_values={
                        "input": {
                            "environmentId": env_id,
                            "name": machine_name,
                            "runtimeVersion": "2.8.73.21119",
                            "osEdition": "Windows 11 Pro",
                        }
                    },
                )
            )["registerMachine"]
            if registered["__typename"] != "RegisteredMachinePayload":
                print(f"cannot register: {registered['message']}", file=sys.stderr)
                return 1
            machine = registered["machine"]
        print(f"machine {machine['name']!r}")

        flow = (
            await session.execute(
                CREATE_FLOW,
                variable_values={"input": {"environmentId": env_id, "name": "Example invoice bot"}},
            )
        )["createDesktopFlow"]
        print(f"desktop flow: {flow.get('flow') or flow}")

        # In real use, read the password from a prompt or a secret store, never from the code.
        password = os.environ.get("EXAMPLE_WINDOWS_PASSWORD") or "Example-Passw0rd!"
        created = (
            await session.execute(
                CREATE,
                variable_values={
                    "input": {
                        "name": "Example connection",
                        "machineId": machine["id"],
                        "windowsUsername": rf"{getpass.getuser()}-robot",
                        "password": password,
                    }
                },
            )
        )["createConnection"]
        if created["__typename"] != "ConnectionPayload":
            print(f"refused: {created['code']}: {created['message']}", file=sys.stderr)
            return 1
        connection = created["connection"]
        print(f"created   {show(connection)}")

        updated = (
            await session.execute(
                UPDATE,
                variable_values={"input": {"id": connection["id"], "password": password + "-2"}},
            )
        )["updateConnection"]
        print(f"new password stored at {updated['connection']['updatedAt']} (never shown)")

        gateway_attempt = (
            await session.execute(
                CREATE,
                variable_values={
                    "input": {
                        "name": "Through a gateway",
                        "machineId": machine["id"],
                        "windowsUsername": "robot",
                        "password": password,
                        "connectivity": "GATEWAY",
                    }
                },
            )
        )["createConnection"]
        print(
            f"gateway connection: {gateway_attempt['__typename']} "
            f"({gateway_attempt.get('rule')}): {gateway_attempt.get('message')}"
        )

        after = None
        while True:
            page = (
                await session.execute(CONNECTIONS, variable_values={"first": 50, "after": after})
            )["connections"]
            for c in page["nodes"]:
                print(f"  {show(c)}")
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        print(f"{page['totalCount']} connection(s)")

        gateways = (await session.execute(GATEWAYS, variable_values={"environmentId": env_id}))[
            "gateways"
        ]
        for g in gateways:
            users = ", ".join(c["name"] for c in g["connections"]) or "no connections left"
            print(
                f"legacy gateway {g['name']!r}: {users} (switch each with switchConnectionToDirect)"
            )
        if not gateways:
            print("no legacy gateways in this environment")

        deleted = (await session.execute(DELETE, variable_values={"id": connection["id"]}))[
            "deleteConnection"
        ]
        print(f"deleted connection; runs cancelled: {deleted.get('cancelledRunIds')}")
        if "flow" in flow:
            await session.execute(DELETE_FLOW, variable_values={"id": flow["flow"]["id"]})
    return 0


if __name__ == "__main__":
    url = os.environ.get("DESKFLEET_URL", "http://127.0.0.1:8000/graphql")
    token = os.environ.get("DESKFLEET_TOKEN")
    if not token:
        sys.exit("set DESKFLEET_TOKEN to a user token (the first run prints one)")
    sys.exit(asyncio.run(main(url, token, sys.argv[1] if len(sys.argv) > 1 else "example-bot")))
