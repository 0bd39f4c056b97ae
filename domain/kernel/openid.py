"""The organisation's OpenID Connect provider (R44): its discovery document and signing keys, and
the verification of the access tokens (JWTs) it issues, after RFC 8725.

- The discovery document and the JWKS are fetched at start (a provider that cannot be reached or
  names another issuer stops the start with :class:`SignInUnavailable`), kept in memory, fetched
  again every ``oidc_keys_refresh_seconds`` and when a token names a key id not seen yet (a key
  rotation), at most once every ``oidc_unknown_key_refetch_seconds``. A failed refresh keeps the
  keys already known. Every request to the provider is made with httpx in the event loop.
- A token is accepted only when its ``alg`` is in the allow-list (asymmetric only: ``none`` and
  HS* are refused before any key is looked at, so a public key can never serve as an HMAC
  secret), its signature holds against the provider's published key of that id (and of that
  algorithm, when the key says), ``iss`` is the issuer, ``aud`` holds the audience, and
  ``exp``, ``nbf`` and ``iat`` agree with the clock within ``oidc_clock_skew_seconds``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx
import jwt

from domain.kernel.clock import Clock
from domain.kernel.errors import AuthenticationFailed, ErrorCode
from domain.kernel.settings import Settings

log = logging.getLogger("deskfleet.openid")


class SignInUnavailable(RuntimeError):
    """The provider cannot be reached, or its discovery document or keys are not usable."""


@dataclass(frozen=True)
class VerifiedToken:
    """What DeskFleet reads from an access token whose signature and claims hold."""

    issuer: str
    subject: str
    email: str | None
    email_verified: bool
    name: str | None
    groups: frozenset[str]
    expires_at: float  # POSIX seconds
    token_id: str  # jti, else a digest of the token


@dataclass(frozen=True)
class Key:
    jwk: jwt.PyJWK
    algorithm: str | None  # the one algorithm the provider says the key is for, if it does


def _refused(reason: str) -> AuthenticationFailed:
    return AuthenticationFailed(ErrorCode.UNAUTHENTICATED, f"the access token is refused: {reason}")


class OpenIDProvider:
    def __init__(
        self, settings: Settings, clock: Clock, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        assert settings.oidc_issuer, "OpenIDProvider needs DESKFLEET_OIDC_ISSUER"
        self.settings = settings
        self.issuer = settings.oidc_issuer
        self.audience = settings.oidc_audience or settings.oidc_client_id
        self.clock = clock
        self.discovery: dict[str, Any] = {}
        self._keys: dict[str | None, Key] = {}
        self._fetched_at = float("-inf")  # time.monotonic() of the last fetch
        self._fetching: asyncio.Task[None] | None = None
        self._schedule: asyncio.Task[None] | None = None
        self._http = httpx.AsyncClient(
            transport=transport,
            timeout=settings.oidc_timeout_seconds,
            follow_redirects=False,
            headers={"accept": "application/json"},
        )

    # --- discovery and keys --------------------------------------------------------------

    async def start(self) -> None:
        """Fetches the discovery document and keys (SignInUnavailable when they cannot be had),
        then refreshes them on a schedule."""
        if not self.audience:
            raise SignInUnavailable(
                "DESKFLEET_OIDC_ISSUER is set but neither DESKFLEET_OIDC_AUDIENCE nor "
                "DESKFLEET_OIDC_CLIENT_ID: name the audience the provider's access tokens carry"
            )
        await self._fetch()
        self._schedule = asyncio.create_task(self._refresh_on_schedule())

    async def stop(self) -> None:
        for task in (self._schedule, self._fetching):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        await self._http.aclose()

    async def _refresh_on_schedule(self) -> None:
        while True:
            await asyncio.sleep(self.settings.oidc_keys_refresh_seconds)
            await self._refresh()

    async def _refresh(self) -> None:
        """One fetch at a time; a failure is logged and the keys already known stay."""
        if self._fetching is None or self._fetching.done():
            self._fetching = asyncio.create_task(self._fetch())
        try:
            await asyncio.shield(self._fetching)
        except SignInUnavailable as exc:
            log.warning("keeping the provider's known keys: %s", exc)

    async def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            response = await self._http.get(url)
        except httpx.HTTPError as exc:
            raise SignInUnavailable(f"cannot reach {url} ({what}): {exc!r}") from None
        if response.status_code != 200:
            raise SignInUnavailable(f"{url} ({what}) answered HTTP {response.status_code}")
        try:
            document = response.json()
        except ValueError:
            raise SignInUnavailable(f"{url} ({what}) is not JSON") from None
        if not isinstance(document, dict):
            raise SignInUnavailable(f"{url} ({what}) is not a JSON object")
        return document

    async def _fetch(self) -> None:
        url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        discovery = await self._get_json(url, "DESKFLEET_OIDC_ISSUER's discovery document")
        if discovery.get("issuer") != self.issuer:
            raise SignInUnavailable(
                f"the discovery document at {url} names the issuer {discovery.get('issuer')!r}, "
                f"not {self.issuer!r}: set DESKFLEET_OIDC_ISSUER to exactly the provider's issuer"
            )
        jwks_uri = discovery.get("jwks_uri")
        if not isinstance(jwks_uri, str):
            raise SignInUnavailable(f"the discovery document at {url} has no jwks_uri")
        jwks = await self._get_json(jwks_uri, "the provider's signing keys")
        keys: dict[str | None, Key] = {}
        for data in jwks.get("keys") or []:
            # Public keys for signatures only: a symmetric ("oct") key is never a provider's.
            if not isinstance(data, dict) or data.get("use", "sig") != "sig":
                continue
            if data.get("kty") == "oct":
                continue
            try:
                key = Key(jwt.PyJWK(data), data.get("alg"))
            except jwt.PyJWTError:
                continue  # a key type or algorithm this verifier does not use
            keys[data.get("kid")] = key
        if not keys:
            raise SignInUnavailable(f"{jwks_uri} publishes no signing key DeskFleet can use")
        self.discovery, self._keys = discovery, keys
        self._fetched_at = time.monotonic()

    async def _key(self, kid: str | None) -> Key | None:
        key = self._keys.get(kid)
        if kid is None and key is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))  # a provider with one key may omit its id
        waited = time.monotonic() - self._fetched_at
        if key is None and waited >= self.settings.oidc_unknown_key_refetch_seconds:
            await self._refresh()  # a new key id: perhaps the provider rotated its keys
            key = self._keys.get(kid)
        return key

    # --- access tokens -------------------------------------------------------------------

    async def verify(self, token: str) -> VerifiedToken:
        settings = self.settings
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise _refused("it is not a JWT") from None
        algorithm = header.get("alg")
        if algorithm not in settings.oidc_algorithms:
            raise _refused(f"it is signed with {algorithm!r}, which is not accepted")
        kid = header.get("kid")
        key = await self._key(kid if isinstance(kid, str) else None)
        if key is None:
            raise _refused("it is signed with a key the provider does not publish")
        if key.algorithm not in (None, algorithm):
            raise _refused(f"its key is for {key.algorithm}, not {algorithm}")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.jwk.key,
                algorithms=[algorithm],
                audience=self.audience,
                issuer=self.issuer,
                # Time is checked below, on the app's clock.
                options={
                    "require": ["iss", "aud", "exp"],
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidAudienceError:
            raise _refused(
                f"it is not for this API (the audience is not {self.audience!r})"
            ) from None
        except jwt.InvalidIssuerError:
            raise _refused(f"it was not issued by {self.issuer}") from None
        except jwt.InvalidSignatureError:
            raise _refused("its signature does not hold") from None
        except jwt.PyJWTError as exc:
            raise _refused(str(exc)) from None
        return self._checked(token, claims)

    def _checked(self, token: str, claims: dict[str, Any]) -> VerifiedToken:
        settings = self.settings
        now, skew = self.clock.timestamp(), settings.oidc_clock_skew_seconds
        expires_at = _number(claims, "exp")
        if expires_at is None or expires_at <= now - skew:
            raise _refused("it has expired: sign in again")
        not_before = _number(claims, "nbf")
        if not_before is not None and not_before > now + skew:
            raise _refused("it is not valid yet (nbf)")
        issued_at = _number(claims, "iat")
        if issued_at is not None and issued_at > now + skew:
            raise _refused("it was issued in the future (iat)")
        subject = claims.get(settings.oidc_subject_claim)
        if not isinstance(subject, str) or not subject:
            raise _refused(f"it has no {settings.oidc_subject_claim!r} claim")
        groups = claims.get(settings.oidc_groups_claim) or []
        if isinstance(groups, str):
            groups = [groups]
        email = claims.get(settings.oidc_email_claim)
        name = claims.get(settings.oidc_name_claim)
        verified_claim = settings.oidc_email_verified_claim
        jti = claims.get("jti")
        return VerifiedToken(
            issuer=self.issuer,
            subject=subject,
            email=email if isinstance(email, str) and email else None,
            email_verified=not verified_claim or claims.get(verified_claim) is True,
            name=name if isinstance(name, str) and name else None,
            groups=frozenset(g for g in groups if isinstance(g, str)),
            expires_at=expires_at,
            token_id=jti if isinstance(jti, str) and jti else token[-32:],
        )

    def dashboard_configuration(self) -> dict[str, Any]:
        """What the dashboard needs to sign people in (a public client: nothing secret)."""
        return {
            "issuer": self.issuer,
            "clientId": self.settings.oidc_client_id,
            "scopes": self.settings.oidc_scopes,
            "providerName": self.settings.oidc_provider_name,
            "authorizationEndpoint": self.discovery.get("authorization_endpoint"),
            "tokenEndpoint": self.discovery.get("token_endpoint"),
            "endSessionEndpoint": self.discovery.get("end_session_endpoint"),
        }


def _number(claims: dict[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _refused(f"its {name!r} claim is not a number")
    return float(value)
