"""R44: sign-in through the organisation's OpenID Connect provider, against a real one (the npm
oidc-provider on 127.0.0.1): its access tokens where user tokens go, the people they name, the
tokens refused (RFC 8725), key rotation, group -> role mappings and deactivated users."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from api.app import create_app
from domain.context import DomainContext
from domain.identity.secrets import digest
from domain.kernel.clock import ManualClock
from domain.kernel.openid import SignInUnavailable
from domain.kernel.settings import Settings
from tests.e2e.server import free_port
from tests.graphql import Fleet, GraphQLClient
from tests.oidc.provider import AUDIENCE, CLIENT_ID, OpenIDProvider, SigningKey

pytestmark = pytest.mark.rule("R44")

ME = "{ me { user { id email displayName active } roles { role environmentId } } }"
PEOPLE = "{ signedInPeople { issuer subject matchedBy user { id email } } }"
MAP = """mutation($input: SignInGroupRoleInput!) { mapSignInGroup(input: $input) {
  __typename ... on SignInGroupRolePayload { mapping { group role environmentId } }
  ... on UserError { code message } } }"""
UNMAP = MAP.replace("mapSignInGroup", "unmapSignInGroup")
GROUP_ROLES = "query($id: ID!) { signInGroupRoles(environmentId: $id) { group role } }"
AUDIT = """query($id: ID!) { auditTrail(environmentId: $id, first: 50) {
  nodes { action targetKind targetName detail actorId } } }"""
DEACTIVATE = """mutation($id: ID!) { deactivateUser(id: $id) { __typename } }"""


def oidc_settings(provider: OpenIDProvider, **changes: Any) -> dict[str, Any]:
    return {
        "oidc_issuer": provider.issuer,
        "oidc_client_id": CLIENT_ID,
        "oidc_audience": AUDIENCE,
        "oidc_auto_provision": True,
        "oidc_clock_skew_seconds": 5,
        "oidc_unknown_key_refetch_seconds": 0,
        **changes,
    }


@pytest.fixture
def clock() -> ManualClock:
    # The provider's tokens carry real times: the app's clock starts now, and moves when told.
    return ManualClock(datetime.now(UTC))


@pytest.fixture
def settings(settings: Settings, openid_provider: OpenIDProvider) -> Settings:
    return settings.model_copy(update=oidc_settings(openid_provider, oidc_link_by_email=True))


async def refusal(api: GraphQLClient, token: str) -> tuple[str, str]:
    body = await api.execute(ME, token=token)
    assert body["data"] is None, body
    error = body["errors"][0]
    return error["extensions"]["code"], error["message"]


async def test_a_provider_access_token_is_accepted_where_a_user_token_is_and_provisions_its_person(
    api: GraphQLClient, openid_provider: OpenIDProvider, admin_token: str
) -> None:
    openid_provider.account("ada", email="Ada@Example.test", name="Ada Lovelace")
    token = openid_provider.access_token("ada")

    me = (await api.data(ME, token=token))["me"]
    again = (await api.data(ME, token=openid_provider.access_token("ada")))["me"]
    people = (await api.data(PEOPLE, token=admin_token))["signedInPeople"]

    assert me["user"]["email"] == "ada@example.test"
    assert me["user"]["displayName"] == "Ada Lovelace"
    assert again["user"]["id"] == me["user"]["id"]  # found again by issuer and subject
    assert people == [
        {
            "issuer": openid_provider.issuer,
            "subject": "ada",
            "matchedBy": "PROVISIONED",
            "user": {"id": me["user"]["id"], "email": "ada@example.test"},
        }
    ]


async def test_a_first_sign_in_links_once_to_the_user_with_the_verified_email(
    api: GraphQLClient, fleet: Fleet, openid_provider: OpenIDProvider, admin_token: str
) -> None:
    grace = await fleet.person("MACHINE_USER", name="grace")
    openid_provider.account("g-1", email="grace@example.test")

    me = (await api.data(ME, token=openid_provider.access_token("g-1")))["me"]
    # The link is by subject from now on: a changed e-mail at the provider does not move it.
    openid_provider.account("g-1", email="someone-else@example.test")
    later = (await api.data(ME, token=openid_provider.access_token("g-1")))["me"]
    people = (await api.data(PEOPLE, token=admin_token))["signedInPeople"]

    assert me["user"]["id"] == grace.id == later["user"]["id"]
    assert me["roles"] == [{"role": "MACHINE_USER", "environmentId": fleet.environment_id}]
    assert [(p["subject"], p["matchedBy"]) for p in people] == [("g-1", "EMAIL")]
    assert (await api.data(ME, token=grace.token))["me"]["user"]["id"] == grace.id  # API token


async def test_an_unverified_email_links_nobody(
    api: GraphQLClient, fleet: Fleet, openid_provider: OpenIDProvider
) -> None:
    await fleet.person(name="hedy")
    openid_provider.account("h-1", email="hedy@example.test", email_verified=False)

    code, message = await refusal(api, openid_provider.access_token("h-1"))

    assert code == "SIGN_IN_NOT_LINKED"
    assert "not linked to a DeskFleet user" in message


async def test_a_deactivated_user_is_refused_whatever_the_provider_says(
    api: GraphQLClient, openid_provider: OpenIDProvider, admin_token: str
) -> None:
    openid_provider.account("ida")
    token = openid_provider.access_token("ida")
    user_id = (await api.data(ME, token=token))["me"]["user"]["id"]

    await api.data(DEACTIVATE, {"id": user_id}, token=admin_token)

    assert (await refusal(api, token))[0] == "USER_DEACTIVATED"  # the token already in use
    fresh = openid_provider.access_token("ida")
    assert await refusal(api, fresh) == ("USER_DEACTIVATED", "this user is deactivated")


async def test_group_claims_grant_mapped_roles_at_each_sign_in_and_hand_granted_roles_stay(
    api: GraphQLClient, fleet: Fleet, openid_provider: OpenIDProvider, admin_token: str
) -> None:
    env = fleet.environment_id
    for group, role in (("rpa-operators", "MACHINE_USER"), ("rpa-makers", "ENVIRONMENT_MAKER")):
        mapped = await api.data(
            MAP, {"input": {"environmentId": env, "group": group, "role": role}}, token=admin_token
        )
        assert mapped["mapSignInGroup"]["__typename"] == "SignInGroupRolePayload"
    openid_provider.account("joan", groups=["rpa-operators", "rpa-makers", "unmapped"])

    first = (await api.data(ME, token=openid_provider.access_token("joan")))["me"]
    await fleet.grant(first["user"]["id"], "MACHINE_OWNER")  # by hand
    openid_provider.account("joan", groups=["rpa-operators"])  # left the makers
    second = (await api.data(ME, token=openid_provider.access_token("joan")))["me"]
    openid_provider.account("joan", groups=[])
    third = (await api.data(ME, token=openid_provider.access_token("joan")))["me"]

    def roles(me: dict[str, Any]) -> set[str]:
        return {r["role"] for r in me["roles"] if r["environmentId"] == env}

    assert roles(first) == {"MACHINE_USER", "ENVIRONMENT_MAKER"}
    assert roles(second) == {"MACHINE_USER", "MACHINE_OWNER"}
    assert roles(third) == {"MACHINE_OWNER"}


async def test_environment_admins_manage_the_group_mappings_of_their_environment_only(
    api: GraphQLClient, fleet: Fleet, admin_token: str
) -> None:
    env = fleet.environment_id
    env_admin = await fleet.person("ENVIRONMENT_ADMIN")
    maker = await fleet.person("ENVIRONMENT_MAKER")
    mapping = {"environmentId": env, "group": "ops", "role": "MACHINE_USER"}

    made = await api.data(MAP, {"input": mapping}, token=env_admin.token)
    twice = await api.data(MAP, {"input": mapping}, token=env_admin.token)
    refused = await api.data(MAP, {"input": {**mapping, "group": "x"}}, token=maker.token)
    blank = await api.data(MAP, {"input": {**mapping, "group": " "}}, token=env_admin.token)
    listed = await api.data(GROUP_ROLES, {"id": env}, token=env_admin.token)
    people = await api.execute(PEOPLE, token=env_admin.token)
    removed = await api.data(UNMAP, {"input": mapping}, token=env_admin.token)
    gone = await api.data(UNMAP, {"input": mapping}, token=env_admin.token)
    trail = await api.data(AUDIT, {"id": env}, token=admin_token)

    assert made["mapSignInGroup"]["mapping"] == {
        "group": "ops",
        "role": "MACHINE_USER",
        "environmentId": env,
    }
    assert twice["mapSignInGroup"]["code"] == "ALREADY_IN_STATE"
    assert refused["mapSignInGroup"]["code"] == "NOT_ADMIN"
    assert blank["mapSignInGroup"]["code"] == "INVALID_NAME"
    assert listed["signInGroupRoles"] == [{"group": "ops", "role": "MACHINE_USER"}]
    assert people["errors"][0]["extensions"]["code"] == "NOT_ADMIN"  # administrators only
    assert removed["unmapSignInGroup"]["__typename"] == "SignInGroupRolePayload"
    assert gone["unmapSignInGroup"]["code"] == "NOT_FOUND"
    entries = [
        (e["action"], e["targetName"], e["detail"], e["actorId"])
        for e in trail["auditTrail"]["nodes"]
        if e["targetKind"] == "SIGN_IN_GROUP"
    ]
    assert entries == [
        ("SIGN_IN_GROUP_UNMAPPED", "ops", "MACHINE_USER", env_admin.id),
        ("SIGN_IN_GROUP_MAPPED", "ops", "MACHINE_USER", env_admin.id),
    ]


def _forged_hs256(provider: OpenIDProvider, claims: dict[str, Any]) -> str:
    """HS256 keyed with the provider's public key: the classic algorithm confusion."""
    public = provider.keys[0].private.public_key()
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)
    segments = [
        base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=")
        for part in ({"alg": "HS256", "typ": "JWT", "kid": provider.keys[0].kid}, claims)
    ]
    signed = b".".join(segments)
    signature = base64.urlsafe_b64encode(hmac.new(pem, signed, hashlib.sha256).digest())
    return (signed + b"." + signature.rstrip(b"=")).decode()


async def test_tokens_the_provider_did_not_sign_as_they_are_are_refused(
    api: GraphQLClient, openid_provider: OpenIDProvider
) -> None:
    """RFC 8725: each is signed with the provider's own key (so only its claim is wrong) or is
    a forgery; every one is refused, and says why."""
    openid_provider.account("mal")
    genuine = openid_provider.keys[0]
    now = int(datetime.now(UTC).timestamp())
    claims = openid_provider.claims
    stranger = SigningKey.new()
    cases = {
        "expired": genuine.sign(claims("mal", exp=now - 60, iat=now - 400)),
        "not valid yet": genuine.sign(claims("mal", nbf=now + 120)),
        "not for this API": genuine.sign(claims("mal", aud="https://another.example/api")),
        "not issued by": genuine.sign(claims("mal", iss="http://127.0.0.1:1")),
        "'none'": jwt.encode(claims("mal"), None, algorithm="none"),
        "'HS256'": _forged_hs256(openid_provider, claims("mal")),
        "does not publish": stranger.sign(claims("mal")),
        "signature does not hold": jwt.encode(
            claims("mal"), stranger.private, algorithm="RS256", headers={"kid": genuine.kid}
        ),
        "no 'sub'": genuine.sign({k: v for k, v in claims("mal").items() if k != "sub"}),
        "not a JWT": "not.a.jwt",
    }

    refused = {case: await refusal(api, token) for case, token in cases.items()}

    for case, (code, message) in refused.items():
        assert code == "UNAUTHENTICATED", case
        assert message.startswith("the access token is refused"), (case, message)
        assert case in message, (case, message)
    assert (await api.data(ME, token=genuine.sign(claims("mal"))))["me"]  # the control


async def test_a_token_stops_working_when_it_expires_by_the_app_clock(
    api: GraphQLClient, openid_provider: OpenIDProvider, clock: ManualClock, domain: DomainContext
) -> None:
    openid_provider.account("kim")
    token = openid_provider.access_token("kim", ttl=60)
    assert (await api.data(ME, token=token))["me"]

    expires = jwt.decode(token, options={"verify_signature": False})["exp"]
    clock.advance(timedelta(seconds=expires + 5 - clock.timestamp()))  # its end and the skew
    domain.credentials.forget(digest(token))  # as another instance of a cluster would see it

    code, message = await refusal(api, token)
    assert (code, message) == (
        "UNAUTHENTICATED",
        "the access token is refused: it has expired: sign in again",
    )


async def test_a_rotated_key_is_fetched_when_a_token_names_it_and_a_withdrawn_one_is_refused(
    tmp_path: Any, settings: Settings, clock: ManualClock, admin_token: str
) -> None:
    provider = OpenIDProvider(tmp_path)
    provider.start()
    try:
        changes = oidc_settings(provider, oidc_keys_refresh_seconds=0.5)
        app = create_app(settings.model_copy(update=changes), clock=clock)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                api = GraphQLClient(http)
                provider.account("lee")
                old = provider.keys[0]
                assert (await api.data(ME, token=provider.access_token("lee")))["me"]

                new = SigningKey.new()
                provider.rotate([new, old])  # the provider signs with the new key
                rotated = provider.access_token("lee")
                assert jwt.get_unverified_header(rotated)["kid"] == new.kid
                assert (await api.data(ME, token=rotated))["me"]  # fetched on sight

                provider.rotate([new])  # the old key withdrawn
                await asyncio.sleep(1.5)  # the scheduled refresh
                code, message = await refusal(api, old.sign(provider.claims("lee")))
                assert code == "UNAUTHENTICATED"
                assert "a key the provider does not publish" in message
                assert (await api.data(ME, token=provider.access_token("lee")))["me"]
    finally:
        provider.stop()


async def test_without_auto_provisioning_an_unknown_person_is_told_to_ask_an_administrator(
    tmp_path: Any, settings: Settings, clock: ManualClock, openid_provider: OpenIDProvider
) -> None:
    changes = oidc_settings(openid_provider, oidc_auto_provision=False)
    app = create_app(settings.model_copy(update=changes), clock=clock)
    openid_provider.account("nobody")
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            code, message = await refusal(
                GraphQLClient(http), openid_provider.access_token("nobody")
            )
            configuration = (await http.get("/sign-in/configuration")).json()

    assert code == "SIGN_IN_NOT_LINKED"
    assert "ask a DeskFleet administrator to add you" in message
    assert configuration["enabled"] is True
    assert configuration["clientId"] == CLIENT_ID
    assert configuration["authorizationEndpoint"].startswith(openid_provider.issuer)
    assert configuration["endSessionEndpoint"].startswith(openid_provider.issuer)


@pytest.mark.parametrize("issuer", ["unreachable", "another name"])
async def test_an_issuer_that_cannot_be_used_stops_the_start_and_says_why(
    issuer: str, settings: Settings, clock: ManualClock, openid_provider: OpenIDProvider
) -> None:
    url = {
        "unreachable": f"http://127.0.0.1:{free_port()}",
        # The discovery document names http://127.0.0.1:<port>, not this.
        "another name": openid_provider.issuer.replace("127.0.0.1", "localhost"),
    }[issuer]
    app = create_app(settings.model_copy(update=oidc_settings(openid_provider, oidc_issuer=url)))

    with pytest.raises(SignInUnavailable) as refused:
        async with app.router.lifespan_context(app):
            pass

    expected = "cannot reach" if issuer == "unreachable" else "set DESKFLEET_OIDC_ISSUER to exactly"
    assert expected in str(refused.value)


def test_hs_and_none_cannot_be_allowed() -> None:
    for algorithms in (["RS256", "HS256"], ["none"]):
        with pytest.raises(ValueError, match="only asymmetric signatures"):
            Settings(oidc_algorithms=algorithms)
