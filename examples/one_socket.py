"""Several subscriptions on one websocket: the fleet, your active runs and your session-lock
recommendations, each on its own operation id of one graphql-transport-ws connection (R35).

    DESKFLEET_URL=http://127.0.0.1:8000/graphql DESKFLEET_TOKEN=dfu_... \
        python examples/one_socket.py [--count N]

A websocket carries any number of subscriptions (up to ``DESKFLEET_WS_MAX_SUBSCRIPTIONS``, 20 by
default), and each user may hold ``DESKFLEET_WS_MAX_CONNECTIONS_PER_USER`` sockets (10): open one
socket per program, not one per subscription. With ``gql`` that is one ``Client`` session whose
``subscribe`` is called once per subscription, concurrently. ``--count N`` stops once N messages
came in all (handy in scripts and tests).
"""

from __future__ import annotations

import argparse
import asyncio
import os

from gql import Client, GraphQLRequest
from gql.client import AsyncClientSession
from gql.transport.websockets import WebsocketsTransport

SUBSCRIPTIONS = {
    "fleet": "subscription { machineStatus { snapshot machines { name status } removedIds } }",
    "runs": "subscription { runUpdates { snapshot runs { id status } removedIds } }",
    "recommendations": """subscription {
      sessionRecommendations { snapshot recommendations { id title } removedIds } }""",
}


async def follow(
    session: AsyncClientSession, name: str, document: str, heard: asyncio.Queue[str]
) -> None:
    async for message in session.subscribe(GraphQLRequest(document)):
        (update,) = message.values()
        items = next(value for key, value in update.items() if isinstance(value, list))
        kind = "snapshot" if update["snapshot"] else "change"
        await heard.put(f"{name}: {kind}, {len(items)} item(s), {len(update['removedIds'])} gone")


async def watch(url: str, token: str, count: int | None) -> None:
    transport = WebsocketsTransport(
        url=url.replace("http://", "ws://", 1).replace("https://", "wss://", 1),
        init_payload={"Authorization": f"Bearer {token}"},
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
    )
    heard: asyncio.Queue[str] = asyncio.Queue()
    async with Client(transport=transport) as session, asyncio.TaskGroup() as tasks:
        # One socket: every subscription is one more operation id on the session's connection.
        following = [
            tasks.create_task(follow(session, name, document, heard))
            for name, document in SUBSCRIPTIONS.items()
        ]
        seen = 0
        while count is None or seen < count:
            print(await heard.get(), flush=True)
            seen += 1
        for task in following:
            task.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, help="stop after this many messages in all")
    args = parser.parse_args()
    url = os.environ.get("DESKFLEET_URL", "http://127.0.0.1:8000/graphql")
    token = os.environ["DESKFLEET_TOKEN"]
    try:
        asyncio.run(watch(url, token, args.count))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
