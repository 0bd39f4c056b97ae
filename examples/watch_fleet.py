"""Watch the fleet live: a snapshot of every machine you can see, then each change (R35, R36).

    DESKFLEET_URL=http://127.0.0.1:8000/graphql DESKFLEET_TOKEN=dfu_... \
        python examples/watch_fleet.py [--environment ID] [--count N]

Uses `gql` over websockets (graphql-transport-ws); the token goes in the connection_init payload.
A message with `snapshot: true` replaces the whole view (the first one, and again whenever the
server had to skip updates, e.g. after its Redis came back); the others carry what changed.
``--count N`` stops after N messages (handy in scripts and tests).
"""

from __future__ import annotations

import argparse
import asyncio
import os

from gql import Client, GraphQLRequest
from gql.transport.websockets import WebsocketsTransport

WATCH = """
subscription Watch($filter: MachineStatusFilterInput) {
  machineStatus(filter: $filter) {
    snapshot
    removedIds
    machines {
      machineId name status maintenance drained runningCount queuedCount version
    }
  }
}
"""


def line(m: dict) -> str:
    flags = " maintenance" + (" (drained)" if m["drained"] else "") if m["maintenance"] else ""
    return (
        f"{m['name']:<24} {m['status']:<12} running {m['runningCount']:>2}  "
        f"queued {m['queuedCount']:>3}  v{m['version']}{flags}"
    )


async def watch(url: str, token: str, environment_id: str | None, count: int | None) -> None:
    transport = WebsocketsTransport(
        url=url.replace("http://", "ws://", 1).replace("https://", "wss://", 1),
        init_payload={"Authorization": f"Bearer {token}"},
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
    )
    variables = {"filter": {"environmentId": environment_id}} if environment_id else {}
    fleet: dict[str, dict] = {}
    seen = 0
    async with Client(transport=transport) as session:
        async for message in session.subscribe(GraphQLRequest(WATCH, variable_values=variables)):
            update = message["machineStatus"]
            if update["snapshot"]:
                fleet = {m["machineId"]: m for m in update["machines"]}
                print(f"-- snapshot: {len(fleet)} machine(s)")
                for m in sorted(fleet.values(), key=lambda m: m["name"]):
                    print("   " + line(m))
            else:
                for m in update["machines"]:
                    fleet[m["machineId"]] = m
                    print("~  " + line(m))
                for gone in update["removedIds"]:
                    left = fleet.pop(gone, None)
                    print(f"-  {left['name'] if left else gone} left the view")
            seen += 1
            if count is not None and seen >= count:
                return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--environment", help="only this environment's machines")
    parser.add_argument("--count", type=int, help="stop after this many messages")
    args = parser.parse_args()
    url = os.environ.get("DESKFLEET_URL", "http://127.0.0.1:8000/graphql")
    token = os.environ["DESKFLEET_TOKEN"]
    try:
        asyncio.run(watch(url, token, args.environment, args.count))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
