"""A persisted query: send the document's SHA-256, and the document only when the server asks.

    DESKFLEET_URL=http://127.0.0.1:8000/graphql DESKFLEET_TOKEN=dfu_... \
        python examples/persisted_query.py

The first request names the hash alone; a server that does not know it answers
``PERSISTED_QUERY_NOT_FOUND``, and the request goes again with the document, which the server
keeps. From then on the hash is enough, over POST or as a short GET URL (Apollo's automatic
persisted queries; Apollo Client's persisted-query link does the same).
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import httpx

DOCUMENT = "query FleetSize { machines(first: 1) { totalCount } }"
PERSISTED = {
    "persistedQuery": {"version": 1, "sha256Hash": hashlib.sha256(DOCUMENT.encode()).hexdigest()}
}


def ask(http: httpx.Client, url: str, *, with_document: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"extensions": PERSISTED}
    if with_document:
        body["query"] = DOCUMENT
    return dict(http.post(url, json=body).json())


def not_found(answer: dict[str, Any]) -> bool:
    codes = [e.get("extensions", {}).get("code") for e in answer.get("errors") or []]
    return "PERSISTED_QUERY_NOT_FOUND" in codes


def main() -> None:
    url = os.environ.get("DESKFLEET_URL", "http://127.0.0.1:8000/graphql")
    token = os.environ["DESKFLEET_TOKEN"]
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
        answer = ask(http, url, with_document=False)
        if not_found(answer):
            print("the server did not know the hash: sending the document once")
            answer = ask(http, url, with_document=True)
        print(f"machines: {answer['data']['machines']['totalCount']}")
        # Accept JSON: a browser-like GET without a query gets GraphiQL in development mode.
        again = http.get(
            url,
            params={"extensions": json.dumps(PERSISTED)},
            headers={"Accept": "application/json"},
        ).json()
        print(f"by hash over GET: {again['data']['machines']['totalCount']} machines")


if __name__ == "__main__":
    main()
