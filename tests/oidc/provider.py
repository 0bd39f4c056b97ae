"""The npm ``oidc-provider`` (tests/oidc/provider.mjs) as a process on 127.0.0.1, and the signing
keys the tests give it: a test can sign tokens with the provider's own key (to check the claims
DeskFleet refuses, with a signature that holds) or with a key of its own (a forgery)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from tests.e2e.server import free_port
from tests.npm_packages import installed

HERE = Path(__file__).resolve().parent
AUDIENCE = "https://deskfleet.test/api"
CLIENT_ID = "deskfleet-dashboard"


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private: RSAPrivateKey

    @classmethod
    def new(cls) -> SigningKey:
        return cls(
            uuid.uuid4().hex[:12], rsa.generate_private_key(public_exponent=65537, key_size=2048)
        )

    def jwk(self) -> dict[str, Any]:
        """The private JWK the provider signs with (it publishes the public half)."""
        jwk: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private))
        jwk.pop("key_ops", None)  # PyJWT says ["sign"]: the provider also verifies with it
        return {**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}

    def sign(self, claims: dict[str, Any], **header: Any) -> str:
        return jwt.encode(
            claims, self.private, algorithm="RS256", headers={"kid": self.kid, **header}
        )


@dataclass
class OpenIDProvider:
    workdir: Path
    # The dashboard's pages it may send people back to (a client needs one even if unused).
    redirect_uris: list[str] = field(default_factory=lambda: ["http://127.0.0.1/"])
    port: int = field(default_factory=free_port)
    keys: list[SigningKey] = field(default_factory=lambda: [SigningKey.new()])
    access_token_ttl: int = 300
    refresh_tokens: bool = True  # to the dashboard, with each access token
    process: subprocess.Popen[bytes] | None = None

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.workdir / f"oidc-provider-{self.port}.log"

    def start(self) -> None:
        node = shutil.which("node")
        assert node, "Node.js 20 or newer with npm is needed for the OpenID Provider of these tests"
        installed(HERE)
        keys_file = self.workdir / f"oidc-keys-{self.port}.json"
        keys_file.write_text(json.dumps({"keys": [k.jwk() for k in self.keys]}))
        with self.log.open("a") as output:
            self.process = subprocess.Popen(
                [node, str(HERE / "provider.mjs")],
                stdout=output,
                stderr=subprocess.STDOUT,
                env={
                    **os.environ,
                    "OIDC_PORT": str(self.port),
                    "OIDC_AUDIENCE": AUDIENCE,
                    "OIDC_CLIENT_ID": CLIENT_ID,
                    "OIDC_REDIRECT_URIS": json.dumps(self.redirect_uris),
                    "OIDC_KEYS_FILE": str(keys_file),
                    "OIDC_ACCESS_TOKEN_TTL": str(self.access_token_ttl),
                    "OIDC_REFRESH_TOKENS": "1" if self.refresh_tokens else "0",
                },
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"the provider exited:\n{self.log.read_text()}"
            try:
                discovery = f"{self.issuer}/.well-known/openid-configuration"
                if httpx.get(discovery, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"the provider did not start:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def account(
        self,
        sub: str,
        *,
        email: str | None = None,
        name: str | None = None,
        groups: list[str] | None = None,
        email_verified: bool = True,
    ) -> None:
        """The claims the provider gives ``sub`` from now on."""
        response = httpx.put(
            f"{self.issuer}/test/accounts/{sub}",
            json={
                "email": email or f"{sub}@example.test",
                "email_verified": email_verified,
                "name": name or sub.title(),
                "groups": groups or [],
            },
        )
        response.raise_for_status()

    def access_token(self, sub: str, ttl: int | None = None) -> str:
        """An access token the provider issues for ``sub`` (a JWT for DeskFleet's audience)."""
        response = httpx.post(f"{self.issuer}/test/token", json={"sub": sub, "ttl": ttl})
        response.raise_for_status()
        return response.json()["access_token"]

    def rotate(self, keys: list[SigningKey]) -> None:
        """The provider signs with ``keys[0]`` from now on and publishes ``keys``."""
        self.keys = keys
        response = httpx.post(f"{self.issuer}/test/keys", json={"keys": [k.jwk() for k in keys]})
        response.raise_for_status()

    def claims(self, sub: str, **changes: Any) -> dict[str, Any]:
        """The claims of a valid access token for ``sub``, with ``changes``."""
        now = int(time.time())
        return {
            "iss": self.issuer,
            "aud": AUDIENCE,
            "sub": sub,
            "iat": now,
            "exp": now + 300,
            "email": f"{sub}@example.test",
            "email_verified": True,
            "name": sub.title(),
            "groups": [],
            "jti": uuid.uuid4().hex,
            **changes,
        }
