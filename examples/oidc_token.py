"""Sign in to DeskFleet from a terminal through the organisation's OpenID Connect provider (R44),
with the device authorization grant (RFC 8628), and call the API with the provider's token.

    DESKFLEET_URL=http://127.0.0.1:8000/graphql \\
    DESKFLEET_OIDC_ISSUER=https://keycloak.example/realms/acme \\
    DESKFLEET_OIDC_CLIENT_ID=deskfleet-cli \\
        python examples/oidc_token.py [--print-token]

It reads the provider's discovery document, asks for a device code, tells you where to sign in
(on any device with a browser) and waits; then it shows who DeskFleet says you are. With
``--print-token`` the access token goes to stdout (everything else to stderr), for the other
examples: ``export DESKFLEET_TOKEN=$(python examples/oidc_token.py --print-token)``.

The client is a public client with the device grant allowed (Keycloak: "OAuth 2.0 Device
Authorization Grant" on; Entra ID: "Allow public client flows"). DESKFLEET_OIDC_SCOPES is what
to ask for (default ``openid profile email``; Entra ID also needs ``api://<app>/access_as_user``),
DESKFLEET_OIDC_RESOURCE a resource indicator (RFC 8707) for providers that take one. Scripts that
run unattended are better served by an API token (``issueApiToken``): it needs no person.
"""

from __future__ import annotations

import os
import sys
import time

import httpx

ME = "{ me { user { displayName email } roles { environmentId role } } }"


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def device_sign_in(http: httpx.Client, issuer: str, client_id: str) -> str:
    discovery = http.get(issuer.rstrip("/") + "/.well-known/openid-configuration").json()
    if "device_authorization_endpoint" not in discovery:
        raise SystemExit(f"{issuer} offers no device authorization grant")
    form = {
        "client_id": client_id,
        "scope": os.environ.get("DESKFLEET_OIDC_SCOPES", "openid profile email"),
    }
    if resource := os.environ.get("DESKFLEET_OIDC_RESOURCE"):
        form["resource"] = resource
    device = http.post(discovery["device_authorization_endpoint"], data=form)
    device.raise_for_status()
    grant = device.json()
    say(f"Sign in at {grant['verification_uri']} with the code {grant['user_code']}")
    if "verification_uri_complete" in grant:
        say(f"  (or open {grant['verification_uri_complete']})")
    interval = grant.get("interval", 5)
    deadline = time.monotonic() + grant.get("expires_in", 600)
    while time.monotonic() < deadline:
        time.sleep(interval)
        answer = http.post(
            discovery["token_endpoint"],
            data={
                "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
                "device_code": grant["device_code"],
                "client_id": client_id,
            },
        )
        body = answer.json()
        if answer.status_code == 200:
            return str(body["access_token"])
        error = body.get("error")
        if error == "slow_down":
            interval += 5
        elif error != "authorization_pending":
            raise SystemExit(f"the provider refused: {error}: {body.get('error_description', '')}")
    raise SystemExit("the code expired before anyone signed in with it")


def main() -> int:
    url = os.environ.get("DESKFLEET_URL", "http://127.0.0.1:8000/graphql")
    issuer = os.environ["DESKFLEET_OIDC_ISSUER"]
    client_id = os.environ["DESKFLEET_OIDC_CLIENT_ID"]
    with httpx.Client(timeout=30) as http:
        token = device_sign_in(http, issuer, client_id)
        answer = http.post(url, json={"query": ME}, headers={"Authorization": f"Bearer {token}"})
    body = answer.json()
    if body.get("errors"):
        error = body["errors"][0]
        say(f"DeskFleet refused the token: {error['extensions'].get('code')}: {error['message']}")
        return 1
    me = body["data"]["me"]
    say(f"signed in to DeskFleet as {me['user']['displayName']} <{me['user']['email']}>")
    for grant in me["roles"]:
        say(f"  {grant['role']} in environment {grant['environmentId']}")
    if "--print-token" in sys.argv[1:]:
        print(token)
    return 0


if __name__ == "__main__":
    sys.exit(main())
