"""What a query costs, and what is left of your bucket (R39), with plain httpx.

    DESKFLEET_URL=http://127.0.0.1:8000/graphql DESKFLEET_TOKEN=dfu_... \\
        python examples/query_cost.py ['{ machines(first: 20) { nodes { id name } } }']

Every answer carries ``extensions.cost``: the operation's requested cost and the caller's bucket
after it. Throttled (HTTP 429), it waits as long as ``Retry-After`` says and tries once more.
"""

from __future__ import annotations

import os
import sys
import time

import httpx

QUERY = "{ machines(first: 20) { totalCount nodes { id name group { name } } } }"


def send(client: httpx.Client, url: str, query: str) -> httpx.Response:
    return client.post(url, json={"query": query})


def main() -> int:
    url = os.environ.get("DESKFLEET_URL", "http://127.0.0.1:8000/graphql")
    token = os.environ["DESKFLEET_TOKEN"]
    query = sys.argv[1] if len(sys.argv) > 1 else QUERY
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}) as client:
        response = send(client, url, query)
        if response.status_code == 429:
            wait = int(response.headers.get("retry-after", "1"))
            print(f"throttled: retrying in {wait}s")
            time.sleep(wait)
            response = send(client, url, query)
        body = response.json()
    cost = body.get("extensions", {}).get("cost", {})
    print(f"requested cost: {cost.get('requestedQueryCost')}")
    bucket = cost.get("throttleStatus")
    if bucket:
        print(
            f"bucket: {bucket['currentlyAvailable']} of {bucket['maximumAvailable']} points "
            f"left, restoring {bucket['restoreRate']} a second"
        )
    for error in body.get("errors", []):
        print(f"error {error.get('extensions', {}).get('code')}: {error['message']}")
    return 1 if body.get("errors") else 0


if __name__ == "__main__":
    sys.exit(main())
