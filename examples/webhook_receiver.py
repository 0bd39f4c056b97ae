"""Receive DeskFleet's webhooks (R43): verify each one's Standard Webhooks signature, refuse
stale or replayed ones, and print its event.

    # the server must be allowed to reach 127.0.0.1 (private targets are refused by default):
    DESKFLEET_WEBHOOK_ALLOWED_NETWORKS='["127.0.0.1/32"]' deskfleet serve

    # subscribe this receiver to events (the secret is shown once, and kept here), then serve:
    DESKFLEET_URL=http://127.0.0.1:8000/graphql DESKFLEET_TOKEN=dfu_... \
        python examples/webhook_receiver.py --subscribe RUN_FINISHED MACHINE_STATUS_CHANGED

    # or serve for an endpoint made before, with its secret:
    python examples/webhook_receiver.py --secret whsec_...

A subscribed receiver asks for a ``webhook.ping`` first. Each line printed: the event type, its
webhook-id, and its data. Deliveries are at least once: one that arrives twice (a retry after a
lost answer, a server killed mid-send) has the same webhook-id and is printed once.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import httpx

TOLERANCE_SECONDS = 5 * 60  # older or newer webhook-timestamps are refused (replays)

CREATE = """
mutation($input: CreateWebhookEndpointInput!) {
  createWebhookEndpoint(input: $input) {
    __typename
    ... on WebhookEndpointSecretPayload { secret endpoint { id url eventTypes } }
    ... on UserError { code message }
  }
}"""
PING = """
mutation($id: ID!) { pingWebhookEndpoint(id: $id) { __typename ... on UserError { message } } }"""


def verified(secret: str, headers: dict[str, str], body: bytes) -> dict | None:
    """The event, if the signature is DeskFleet's and recent; None otherwise."""
    message_id = headers.get("webhook-id", "")
    timestamp = headers.get("webhook-timestamp", "")
    if not message_id or not timestamp.isdigit():
        return None
    if abs(time.time() - int(timestamp)) > TOLERANCE_SECONDS:
        return None
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.".encode() + body
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    # Several signatures may be sent, space-separated (v1,<sig> v1,<sig>); one must match.
    given = headers.get("webhook-signature", "").split(" ")
    if not any(hmac.compare_digest(expected, signature) for signature in given):
        return None
    return json.loads(body)


class Receiver(HTTPServer):
    """One request at a time; each verified event printed once."""

    def __init__(self, port: int) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.secret = ""
        self.seen: set[str] = set()


class Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        headers = {name.lower(): value for name, value in self.headers.items()}
        event = verified(self.server.secret, headers, body)
        self.send_response(401 if event is None else 204)
        self.end_headers()
        if event is None:
            print("refused: the signature does not verify", flush=True)
            return
        message_id = headers["webhook-id"]
        if message_id in self.server.seen:
            return  # delivered again: already handled
        self.server.seen.add(message_id)
        print(f"{event['type']}  {message_id}  {json.dumps(event['data'])}", flush=True)

    def log_message(self, *_: object) -> None:
        return None


def subscribe(url: str, token: str, port: int, types: list[str], environment: str | None) -> str:
    """Create an endpoint for this receiver, ask for a ping; its secret."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(headers=headers, timeout=10) as http:
        if environment is None:
            answer = http.post(url, json={"query": "{ environments { id name } }"}).json()
            environment = answer["data"]["environments"][0]["id"]
        data = {
            "environmentId": environment,
            "url": f"http://127.0.0.1:{port}/hooks",
            "eventTypes": types,
        }
        created = http.post(url, json={"query": CREATE, "variables": {"input": data}}).json()
        result = created["data"]["createWebhookEndpoint"]
        if result["__typename"] != "WebhookEndpointSecretPayload":
            sys.exit(f"{result['__typename']} {result['code']}: {result['message']}")
        endpoint = result["endpoint"]
        print(f"endpoint {endpoint['id']} for {', '.join(endpoint['eventTypes'])}", flush=True)
        http.post(url, json={"query": PING, "variables": {"id": endpoint["id"]}})
        return str(result["secret"])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--secret", help="the endpoint's whsec_... secret")
    parser.add_argument("--subscribe", nargs="+", metavar="TYPE", help="e.g. RUN_FINISHED")
    parser.add_argument("--environment", help="the environment's id (default: the first one)")
    parser.add_argument("--count", type=int, help="stop after this many events")
    arguments = parser.parse_args()
    receiver = Receiver(arguments.port)  # listening from here: a ping cannot come too early
    print(f"listening on http://127.0.0.1:{arguments.port}/hooks", flush=True)
    if arguments.subscribe:
        token = os.environ.get("DESKFLEET_TOKEN")
        if not token:
            sys.exit("set DESKFLEET_TOKEN to an environment admin's token to --subscribe")
        url = os.environ.get("DESKFLEET_URL", "http://127.0.0.1:8000/graphql")
        receiver.secret = subscribe(
            url, token, arguments.port, arguments.subscribe, arguments.environment
        )
    elif arguments.secret:
        receiver.secret = arguments.secret
    else:
        sys.exit("give --secret whsec_... or --subscribe TYPE ...")
    with receiver:
        while arguments.count is None or len(receiver.seen) < arguments.count:
            receiver.handle_request()
