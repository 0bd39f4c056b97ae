"""A small GraphQL-over-HTTP client for tests, and the given-steps that build a fleet through it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx


class GraphQLClient:
    def __init__(self, http: httpx.AsyncClient, path: str = "/graphql") -> None:
        self.http = http
        self.path = path

    async def execute(
        self, query: str, variables: dict[str, Any] | None = None, *, token: str | None = None
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await self.http.post(
            self.path, json={"query": query, "variables": variables or {}}, headers=headers
        )
        assert response.status_code == 200, response.text
        return response.json()

    async def data(
        self, query: str, variables: dict[str, Any] | None = None, *, token: str | None = None
    ) -> dict[str, Any]:
        result = await self.execute(query, variables, token=token)
        assert not result.get("errors"), result["errors"]
        return result["data"]


CREATE_USER = """
mutation($input: CreateUserInput!) {
  createUser(input: $input) { __typename ... on UserPayload { user { id } } ... on UserError { code message } }
}"""
ISSUE_TOKEN = """
mutation($name: String!, $userId: ID) {
  issueApiToken(name: $name, userId: $userId) {
    __typename ... on IssuedApiToken { secret token { id } } ... on UserError { code message }
  }
}"""
ASSIGN_ROLE = """
mutation($input: RoleInput!) {
  assignRole(input: $input) { __typename ... on UserError { code message } }
}"""
CREATE_ENVIRONMENT = """
mutation($input: CreateEnvironmentInput!) {
  createEnvironment(input: $input) {
    __typename ... on EnvironmentPayload { environment { id } } ... on UserError { code message }
  }
}"""
UPDATE_ENVIRONMENT = """
mutation($input: UpdateEnvironmentInput!) {
  updateEnvironment(input: $input) { __typename ... on UserError { code message } }
}"""
REGISTER_MACHINE = """
mutation($input: RegisterMachineInput!) {
  registerMachine(input: $input) {
    __typename
    ... on RegisteredMachinePayload { machineKey machine { id name } }
    ... on UserError { code message }
    ... on RuleViolationError { rule }
  }
}"""
HEARTBEAT = """
mutation($input: HeartbeatInput!) {
  machineHeartbeat(input: $input) {
    __typename ... on HeartbeatPayload { keyActionRequired machine { id status } }
    ... on UserError { code message }
  }
}"""

GOOD_RUNTIME = "2.8.73.21119"
GOOD_EDITION = "Windows 11 Pro"


@dataclass(frozen=True)
class Person:
    id: str
    token: str


@dataclass(frozen=True)
class RegisteredMachine:
    id: str
    key: str
    owner: Person


class Fleet:
    """Given-steps: make people, environments and machines through the public API."""

    def __init__(self, api: GraphQLClient, admin_token: str, environment_id: str) -> None:
        self.api = api
        self.admin_token = admin_token
        self.environment_id = environment_id
        self._people = 0

    async def person(
        self,
        *roles: str,
        environment_id: str | None = None,
        attended_licence: bool = False,
        name: str | None = None,
    ) -> Person:
        self._people += 1
        name = name or f"person{self._people}"
        created = await self.api.data(
            CREATE_USER,
            {
                "input": {
                    "displayName": name,
                    "email": f"{name}@example.test",
                    "attendedLicence": attended_licence,
                }
            },
            token=self.admin_token,
        )
        user_id = created["createUser"]["user"]["id"]
        for role in roles:
            await self.grant(user_id, role, environment_id=environment_id)
        issued = await self.api.data(
            ISSUE_TOKEN, {"name": "tests", "userId": user_id}, token=self.admin_token
        )
        return Person(id=user_id, token=issued["issueApiToken"]["secret"])

    async def grant(self, user_id: str, role: str, *, environment_id: str | None = None) -> None:
        result = await self.api.data(
            ASSIGN_ROLE,
            {
                "input": {
                    "environmentId": environment_id or self.environment_id,
                    "userId": user_id,
                    "role": role,
                }
            },
            token=self.admin_token,
        )
        assert result["assignRole"]["__typename"] == "RoleGrantPayload", result

    async def environment(
        self, name: str, kind: str = "PRODUCTION", version: str = "1.2.4.1"
    ) -> str:
        result = await self.api.data(
            CREATE_ENVIRONMENT,
            {"input": {"name": name, "kind": kind, "flowExtensionsVersion": version}},
            token=self.admin_token,
        )
        return result["createEnvironment"]["environment"]["id"]

    async def register(
        self,
        owner: Person,
        name: str,
        *,
        environment_id: str | None = None,
        runtime_version: str = GOOD_RUNTIME,
        os_edition: str = GOOD_EDITION,
    ) -> dict[str, Any]:
        """The raw registerMachine result, for tests of its refusals."""
        result = await self.api.data(
            REGISTER_MACHINE,
            {
                "input": {
                    "environmentId": environment_id or self.environment_id,
                    "name": name,
                    "runtimeVersion": runtime_version,
                    "osEdition": os_edition,
                }
            },
            token=owner.token,
        )
        return result["registerMachine"]

    async def machine(self, owner: Person, name: str, **kwargs: Any) -> RegisteredMachine:
        result = await self.register(owner, name, **kwargs)
        assert result["__typename"] == "RegisteredMachinePayload", result
        return RegisteredMachine(id=result["machine"]["id"], key=result["machineKey"], owner=owner)

    async def heartbeat(self, machine: RegisteredMachine) -> dict[str, Any]:
        result = await self.api.data(
            HEARTBEAT,
            {"input": {"runtimeVersion": GOOD_RUNTIME, "osEdition": GOOD_EDITION}},
            token=machine.key,
        )
        return result["machineHeartbeat"]


def without_bucket_state(answer: dict[str, Any]) -> dict[str, Any]:
    """An answer without its cost bucket's state (R39), which moves with every request: two
    answers that must be identical are compared on the rest, the requested cost included."""
    cost = answer.get("extensions", {}).get("cost")
    if not isinstance(cost, dict) or "throttleStatus" not in cost:
        return answer
    rest = {k: v for k, v in cost.items() if k != "throttleStatus"}
    return {**answer, "extensions": {**answer["extensions"], "cost": rest}}


def written_masked(answer: dict[str, Any], ident: str) -> str:
    """An answer as text with ``ident`` masked and without its bucket state: what a hidden id's
    answer must equal, written for a random id's."""
    return json.dumps(without_bucket_state(answer), sort_keys=True, default=str).replace(
        ident, "<id>"
    )
