"""List and filter machines (R8) with the `gql` client and examples/operations/machines.graphql.

    DESKFLEET_URL=http://127.0.0.1:8000/graphql DESKFLEET_TOKEN=dfu_... \
        python examples/list_machines.py [--text TEXT] [--group NAME] \
            [--status CONNECTED|DISCONNECTED] [--maintenance on|off] [--must-update]

Filters combine with AND and run on the server; every page is fetched (100 a page). Each line
has the R8 columns: name, description, version, group, status, flows running and queued, the
caller's access, owner, and ``[maintenance]`` (``drained`` once nothing runs) where it applies.
``--must-update`` lists the machines whose runtime is below their environment's minimum (R41),
marked ``[must update]``: they get no new run until they report a newer one.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

from documents import operation
from gql import Client
from gql.client import AsyncClientSession
from gql.transport.httpx import HTTPXAsyncTransport


async def group_id(session: AsyncClientSession, name: str) -> str | None:
    after = None
    while True:
        page = (await session.execute(operation("machines.graphql", "MachineGroups", after=after)))[
            "machineGroups"
        ]
        for group in page["nodes"]:
            if group["name"].casefold() == name.casefold():
                return group["id"]
        if not page["pageInfo"]["hasNextPage"]:
            return None
        after = page["pageInfo"]["endCursor"]


def line(m: dict[str, Any]) -> str:
    group = m["group"]["name"] if m["group"] else "-"
    flags = ""
    if m["maintenance"]:
        flags = "  [maintenance" + (", drained]" if m["drained"] else "]")
    if m["runtimeOutdated"]:
        flags += "  [must update]"
    return (
        f"{m['name']:<20} {m['description'][:24]:<24} v{m['version']:<14} {group:<12} "
        f"{m['status']:<12} running {m['runningCount']:>2} queued {m['queuedCount']:>3}  "
        f"{m['accessType'] or '-':<8} {m['owner']['displayName'] if m['owner'] else '-'}{flags}"
    )


async def main(url: str, token: str, args: argparse.Namespace) -> int:
    transport = HTTPXAsyncTransport(url=url, headers={"Authorization": f"Bearer {token}"})
    async with Client(transport=transport) as session:
        filter: dict[str, Any] = {}
        if args.text:
            filter["text"] = args.text
        if args.status:
            filter["status"] = args.status
        if args.maintenance:
            filter["maintenance"] = args.maintenance == "on"
        if args.must_update:
            filter["runtimeOutdated"] = True
        if args.group:
            found = await group_id(session, args.group)
            if found is None:
                print(f"no group named {args.group!r}", file=sys.stderr)
                return 1
            filter["groupId"] = found
        after = None
        total = 0
        while True:
            page = (
                await session.execute(
                    operation("machines.graphql", "Machines", first=100, after=after, filter=filter)
                )
            )["machines"]
            for machine in page["nodes"]:
                print(line(machine))
            total = page["totalCount"]
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        print(f"{total} machine(s) match {filter or 'no filter'}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text", help="in the name or description, any case")
    parser.add_argument("--group", help="a group's name")
    parser.add_argument("--status", choices=["CONNECTED", "DISCONNECTED"])
    parser.add_argument("--maintenance", choices=["on", "off"])
    parser.add_argument(
        "--must-update", action="store_true", help="below the environment's minimum runtime"
    )
    arguments = parser.parse_args()
    token = os.environ.get("DESKFLEET_TOKEN")
    if not token:
        sys.exit("set DESKFLEET_TOKEN to a user token (the first run prints one)")
    url = os.environ.get("DESKFLEET_URL", "http://127.0.0.1:8000/graphql")
    sys.exit(asyncio.run(main(url, token, arguments)))
