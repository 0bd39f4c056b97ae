"""Build a group of machines, share it, and put it in maintenance, with the `gql` client.

    DESKFLEET_URL=http://127.0.0.1:8000/graphql DESKFLEET_TOKEN=dfu_... \
        python examples/group_share_maintenance.py [--machines 3] [--share-with USER_ID]

Without --share-with, an administrator's token creates a demo user to share the group with.
Rules shown: R11 (groups), R12/R14 (sharing, never above your own access), R15 (access list),
R18 (group maintenance cascades to its machines and locks their own toggle), R19 (drained).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
from typing import Any

from gql import Client, gql
from gql.client import AsyncClientSession
from gql.transport.httpx import HTTPXAsyncTransport

ERRORS = "... on UserError { code message }"

ME = gql("{ me { user { id isAdmin } } environments { id name } }")
REGISTER = gql(
    f"""
    mutation Register($input: RegisterMachineInput!) {{
      registerMachine(input: $input) {{
        __typename ... on RegisteredMachinePayload {{ machine {{ id name }} }} {ERRORS}
      }}
    }}"""
)
CREATE_GROUP = gql(
    f"""
    mutation CreateGroup($input: CreateMachineGroupInput!) {{
      createMachineGroup(input: $input) {{
        __typename ... on MachineGroupPayload {{ group {{ id name }} }} {ERRORS}
      }}
    }}"""
)
ADD = gql(
    f"""
    mutation Add($groupId: ID!, $machineId: ID!) {{
      addMachineToGroup(groupId: $groupId, machineId: $machineId) {{
        __typename ... on MachineGroupMembershipPayload {{ group {{ machineCount }} }} {ERRORS}
      }}
    }}"""
)
CREATE_USER = gql(
    f"""
    mutation CreateUser($input: CreateUserInput!) {{
      createUser(input: $input) {{ __typename ... on UserPayload {{ user {{ id }} }} {ERRORS} }}
    }}"""
)
SHARE = gql(
    f"""
    mutation Share($input: ShareMachineGroupInput!) {{
      shareMachineGroup(input: $input) {{ __typename {ERRORS} }}
    }}"""
)
GROUP_MAINTENANCE = gql(
    f"""
    mutation GroupMaintenance($id: ID!, $enabled: Boolean!) {{
      setMachineGroupMaintenance(id: $id, enabled: $enabled) {{ __typename {ERRORS} }}
    }}"""
)
MACHINE_MAINTENANCE = gql(
    f"""
    mutation MachineMaintenance($id: ID!, $enabled: Boolean!) {{
      setMachineMaintenance(id: $id, enabled: $enabled) {{ __typename {ERRORS} }}
    }}"""
)
GROUP = gql(
    """
    query Group($id: ID!) {
      machineGroup(id: $id) {
        name maintenance drained machineCount connectedCount accessType hasDeactivatedShares
        machines { name maintenance maintenanceInherited maintenanceLock drained status }
        accessList { user { displayName } access deactivated }
      }
    }"""
)


class Refused(Exception):
    pass


async def call(session: AsyncClientSession, document: Any, **variables: Any) -> dict[str, Any]:
    """Run a mutation; an expected failure (a UserError) stops the script with its message."""
    (result,) = (await session.execute(document, variable_values=variables)).values()
    if "code" in result:
        raise Refused(f"{result['__typename']} {result['code']}: {result['message']}")
    return result


async def main(url: str, token: str, machines: int, share_with: str | None) -> int:
    transport = HTTPXAsyncTransport(url=url, headers={"Authorization": f"Bearer {token}"})
    async with Client(transport=transport, fetch_schema_from_transport=False) as session:
        me = await session.execute(ME)
        environment = me["environments"][0]
        suffix = secrets.token_hex(3)
        print(f"environment {environment['name']!r}")

        group = (
            await call(
                session,
                CREATE_GROUP,
                input={"environmentId": environment["id"], "name": f"demo-group-{suffix}"},
            )
        )["group"]
        print(f"created group {group['name']!r}")
        machine_ids = []
        for i in range(1, machines + 1):
            registered = await call(
                session,
                REGISTER,
                input={
                    "environmentId": environment["id"],
                    "name": f"demo-bot-{suffix}-{i}",
                    "runtimeVersion": "2.8.73.21119",
                    "osEdition": "Windows 11 Pro",
                },
            )
            machine_ids.append(registered["machine"]["id"])
            added = await call(session, ADD, groupId=group["id"], machineId=machine_ids[-1])
            print(
                f"registered {registered['machine']['name']!r} and added it "
                f"({added['group']['machineCount']} in the group)"
            )

        if share_with is None:
            if not me["me"]["user"]["isAdmin"]:
                sys.exit("pass --share-with USER_ID (only administrators create users)")
            created = await call(
                session,
                CREATE_USER,
                input={
                    "displayName": "Demo Operator",
                    "email": f"demo-operator-{suffix}@example.test",
                },
            )
            share_with = created["user"]["id"]
        await call(
            session, SHARE, input={"groupId": group["id"], "userId": share_with, "access": "USER"}
        )
        print(f"shared the group with user {share_with} as USER")

        await call(session, GROUP_MAINTENANCE, id=group["id"], enabled=True)
        print("group maintenance on: its machines get no new runs; running ones continue")
        try:
            await call(session, MACHINE_MAINTENANCE, id=machine_ids[0], enabled=False)
        except Refused as refusal:
            print(f"a machine's own toggle is locked meanwhile: {refusal}")

        view = (await session.execute(GROUP, variable_values={"id": group["id"]}))["machineGroup"]
        print(
            f"\n{view['name']}: maintenance={view['maintenance']} drained={view['drained']} "
            f"machines={view['machineCount']} connected={view['connectedCount']} "
            f"your access={view['accessType']}"
        )
        for m in view["machines"]:
            print(
                f"  {m['name']:<24} {m['status']:<13} maintenance={m['maintenance']} "
                f"(from group: {m['maintenanceInherited']}, toggle lock: {m['maintenanceLock']}) "
                f"drained={m['drained']}"
            )
        print("  access list:")
        for entry in view["accessList"]:
            flag = " [deactivated]" if entry["deactivated"] else ""
            print(f"    {entry['user']['displayName']:<20} {entry['access']}{flag}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--url", default=os.environ.get("DESKFLEET_URL", "http://127.0.0.1:8000/graphql")
    )
    parser.add_argument("--token", default=os.environ.get("DESKFLEET_TOKEN"))
    parser.add_argument("--machines", type=int, default=3)
    parser.add_argument("--share-with", help="id of the user to share the group with")
    args = parser.parse_args()
    if not args.token:
        sys.exit("set DESKFLEET_TOKEN (or --token) to a user token (the first run prints one)")
    try:
        sys.exit(asyncio.run(main(args.url, args.token, args.machines, args.share_with)))
    except Refused as refusal:
        sys.exit(f"refused: {refusal}")
