"""R12 x R13, exhaustively, generated from the tables the domain reads (domain/kernel/permissions.py).

For every action on a machine and on a group, every security role (and none), and every access
level the caller can hold on the resource (owner, co-owner, user, none), plus a DeskFleet
administrator and a deactivated user, the operation is sent through the GraphQL API. Allowed ones
must succeed and change the database; refused ones must be refused and change nothing in it.

The expectation is computed here from ``RESOURCE_ACCESS``, ``ROLE_PRIVILEGES`` and
``ROLE_RESOURCE_ACCESS`` (not from ``allows()``), so a change to a table changes the test, and a
check that drifts from the tables fails it. Until runs exist, RUN is checked on what it gates
today: reading the resource (and the ``allowedActions`` every caller sees).
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from domain.context import DomainContext
from domain.kernel.permissions import (
    RESOURCE_ACCESS,
    ROLE_PRIVILEGES,
    ROLE_RESOURCE_ACCESS,
    AccessLevel,
    Action,
    Role,
)
from tests.api.group_steps import (
    ADD,
    DEACTIVATE,
    DELETE_GROUP,
    DELETE_MACHINE,
    GROUP_MAINTENANCE,
    MACHINE_MAINTENANCE,
    REVOKE_ROLE,
    SHARE_GROUP,
    SHARE_MACHINE,
    UPDATE_GROUP,
    UPDATE_MACHINE,
    Steps,
    snapshot,
)
from tests.graphql import UPDATE_ENVIRONMENT, Fleet, Person

ROLES: list[Role | None] = [None, *Role]
HELD: list[AccessLevel | None] = [AccessLevel.OWNER, AccessLevel.CO_OWNER, AccessLevel.USER, None]
MACHINE_ACTIONS = [a for a in Action if a is not Action.REGISTER]
# Placing a machine in a group is an action on the machine; filling a group is EDIT on the group.
GROUP_ACTIONS = [a for a in Action if a not in (Action.REGISTER, Action.ADD_TO_GROUP)]


def expected(role: Role | None, held: AccessLevel | None, action: Action) -> bool:
    """R13: the privilege and R12 access to the resource, except for environment admins."""
    if role is Role.ENVIRONMENT_ADMIN:
        return True
    if role is None or held is None or action not in ROLE_PRIVILEGES[role]:
        return False
    extra = ROLE_RESOURCE_ACCESS.get(role, {}).get(held, frozenset())
    return action in RESOURCE_ACCESS[held] | extra


# --- one operation per (kind, action), through GraphQL ------------------------------------------


@dataclass
class Case:
    label: str
    caller: Person | str
    resource_id: str
    role: Role | None = None
    held: AccessLevel | None = None
    helper_id: str | None = None  # a group (or machine) the caller co-owns, for compound ops
    admin: bool = False
    deactivated: bool = False


Send = Callable[[Steps, Case, str], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Operation:
    kind: str  # "machine" | "group"
    action: Action
    name: str
    send: Send
    success: str  # __typename on success ("" for reads)
    # The other half of a compound permission: (kind of helper, action needed on it).
    helper: tuple[str, Action] | None = None

    @property
    def id(self) -> str:
        return f"{self.kind}-{self.action.value}-{self.name}"


async def _mutation(steps: Steps, query: str, variables: dict[str, Any], case: Case) -> Any:
    token = case.caller if isinstance(case.caller, str) else case.caller.token
    return await steps.api.execute(query, variables, token=token)


def _read(kind: str) -> Send:
    field = "machine" if kind == "machine" else "machineGroup"

    async def send(steps: Steps, case: Case, bystander: str) -> Any:
        return await _mutation(
            steps,
            f"query($id: ID!) {{ {field}(id: $id) {{ id }} }}",
            {"id": case.resource_id},
            case,
        )

    return send


def _simple(query: str, variables: Callable[[Case, str], dict[str, Any]]) -> Send:
    async def send(steps: Steps, case: Case, bystander: str) -> Any:
        return await _mutation(steps, query, variables(case, bystander), case)

    return send


OPERATIONS = [
    Operation("machine", Action.RUN, "read", _read("machine"), ""),
    Operation(
        "machine",
        Action.SHARE,
        "shareMachine",
        _simple(
            SHARE_MACHINE,
            lambda c, b: {"input": {"machineId": c.resource_id, "userId": b, "access": "USER"}},
        ),
        "MachinePayload",
    ),
    Operation(
        "machine",
        Action.ADD_TO_GROUP,
        "addMachineToGroup",
        _simple(ADD, lambda c, b: {"groupId": c.helper_id, "machineId": c.resource_id}),
        "MachineGroupMembershipPayload",
        helper=("group", Action.EDIT),
    ),
    Operation(
        "machine",
        Action.EDIT,
        "updateMachine",
        _simple(UPDATE_MACHINE, lambda c, b: {"input": {"id": c.resource_id, "description": "x"}}),
        "MachinePayload",
    ),
    Operation(
        "machine",
        Action.EDIT,
        "setMachineMaintenance",
        _simple(MACHINE_MAINTENANCE, lambda c, b: {"id": c.resource_id, "enabled": True}),
        "MachinePayload",
    ),
    Operation(
        "machine",
        Action.DELETE,
        "deleteMachine",
        _simple(DELETE_MACHINE, lambda c, b: {"id": c.resource_id}),
        "DeletedMachinePayload",
    ),
    Operation("group", Action.RUN, "read", _read("group"), ""),
    Operation(
        "group",
        Action.SHARE,
        "shareMachineGroup",
        _simple(
            SHARE_GROUP,
            lambda c, b: {"input": {"groupId": c.resource_id, "userId": b, "access": "USER"}},
        ),
        "MachineGroupPayload",
    ),
    Operation(
        "group",
        Action.EDIT,
        "updateMachineGroup",
        _simple(UPDATE_GROUP, lambda c, b: {"input": {"id": c.resource_id, "description": "x"}}),
        "MachineGroupPayload",
    ),
    Operation(
        "group",
        Action.EDIT,
        "setMachineGroupMaintenance",
        _simple(GROUP_MAINTENANCE, lambda c, b: {"id": c.resource_id, "enabled": True}),
        "MachineGroupPayload",
    ),
    Operation(
        "group",
        Action.EDIT,
        "addMachineToGroup",
        _simple(ADD, lambda c, b: {"groupId": c.resource_id, "machineId": c.helper_id}),
        "MachineGroupMembershipPayload",
        helper=("machine", Action.ADD_TO_GROUP),
    ),
    Operation(
        "group",
        Action.DELETE,
        "deleteMachineGroup",
        _simple(DELETE_GROUP, lambda c, b: {"id": c.resource_id}),
        "DeletedMachineGroupPayload",
    ),
]


def test_every_action_of_the_tables_has_an_operation() -> None:
    covered = {(op.kind, op.action) for op in OPERATIONS}
    assert covered == {("machine", a) for a in MACHINE_ACTIONS} | {
        ("group", a) for a in GROUP_ACTIONS
    }
    assert set(RESOURCE_ACCESS) == {*HELD[:3], AccessLevel.ADMIN}
    assert set(ROLE_PRIVILEGES) == set(Role)


# --- the fleet each operation is tried on -------------------------------------------------------


class Matrix:
    """Builds, through the API, one fresh resource per case: the caller holds ``held`` on it."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.steps = Steps(fleet)
        self.count = 0

    def _name(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}-{self.count:03d}"

    async def resource(self, kind: str, owner: Person) -> str:
        if kind == "machine":
            return (await self.fleet.machine(owner, self._name("m"))).id
        return await self.steps.group(owner, self._name("g"))

    async def share(
        self, kind: str, owner: Person, resource_id: str, user: str, level: str
    ) -> None:
        if kind == "machine":
            result = await self.steps.share_machine(owner, resource_id, user, level)
        else:
            result = await self.steps.share_group(owner, resource_id, user, level)
        assert result["__typename"].endswith("Payload"), result

    async def build(self, op: Operation) -> tuple[list[Case], str]:
        landlord = await self.fleet.person("MACHINE_OWNER", name="landlord")
        bystander = await self.fleet.person("MACHINE_USER", name="bystander")
        cases: list[Case] = []
        for role in ROLES:
            # Owning something needs the privilege to create it: every caller starts as a
            # Machine Owner, makes what it owns, then holds only the role under test.
            caller = await self.fleet.person("MACHINE_OWNER")
            for held in HELD:
                owner = caller if held is AccessLevel.OWNER else landlord
                resource_id = await self.resource(op.kind, owner)
                if held in (AccessLevel.CO_OWNER, AccessLevel.USER):
                    await self.share(op.kind, landlord, resource_id, caller.id, held.value)
                helper_id = None
                if op.helper is not None:
                    helper_id = await self.resource(op.helper[0], landlord)
                    await self.share(op.helper[0], landlord, helper_id, caller.id, "CO_OWNER")
                label = f"{role.value if role else 'no-role'}/{held.value if held else 'no-access'}"
                cases.append(Case(label, caller, resource_id, role, held, helper_id))
            if role is not Role.MACHINE_OWNER:
                revoked = await self.steps.call(
                    REVOKE_ROLE,
                    {
                        "input": {
                            "environmentId": self.fleet.environment_id,
                            "userId": caller.id,
                            "role": "MACHINE_OWNER",
                        }
                    },
                    self.fleet.admin_token,
                )
                assert revoked["__typename"] == "RoleGrantPayload"
                if role is not None:
                    await self.fleet.grant(caller.id, role.value)
        # A DeskFleet administrator, on a resource nobody shared with them.
        resource_id = await self.resource(op.kind, landlord)
        helper_id = await self.resource(op.helper[0], landlord) if op.helper else None
        cases.append(
            Case("installation-admin", self.fleet.admin_token, resource_id, None, None, helper_id)
        )
        cases[-1].admin = True
        # A deactivated user, on what they own (with every right before deactivation).
        leaver = await self.fleet.person("MACHINE_OWNER")
        resource_id = await self.resource(op.kind, leaver)
        helper_id = await self.resource(op.helper[0], leaver) if op.helper else None
        deactivated = await self.steps.call(DEACTIVATE, {"id": leaver.id}, self.fleet.admin_token)
        assert deactivated["__typename"] == "UserPayload"
        cases.append(
            Case(
                "deactivated",
                leaver,
                resource_id,
                Role.MACHINE_OWNER,
                AccessLevel.OWNER,
                helper_id,
                deactivated=True,
            )
        )
        return cases, bystander.id


def allowed(op: Operation, case: Case) -> bool:
    if case.deactivated:
        return False
    if case.admin:
        return True
    ok = expected(case.role, case.held, op.action)
    if op.helper is not None:
        ok = ok and expected(case.role, AccessLevel.CO_OWNER, op.helper[1])
    return ok


def outcome(response: dict[str, Any]) -> str:
    """What the API answered: ``error:<code>``, ``null``, or the result's __typename."""
    if response.get("errors"):
        return f"error:{response['errors'][0]['extensions']['code']}"
    (value,) = response["data"].values()
    if value is None:
        return "null"
    return value.get("__typename", "")


def refusal(op: Operation, case: Case) -> set[str]:
    """The answers that count as the right refusal for this case."""
    if case.deactivated:
        return {"error:USER_DEACTIVATED"}
    visible = case.held is not None or case.role is Role.ENVIRONMENT_ADMIN
    if op.action is Action.RUN:  # a read: invisible is null, visible-but-denied is an error
        return {"error:PERMISSION_DENIED"} if visible else {"null"}
    if op.helper is not None:  # two resources: whichever refuses first answers
        return {"NotFoundError", "PermissionDeniedError"}
    return {"PermissionDeniedError"} if visible else {"NotFoundError"}


@pytest.mark.rule("R12")
@pytest.mark.rule("R13")
@pytest.mark.rule("R15")
@pytest.mark.parametrize("op", OPERATIONS, ids=lambda op: op.id)
async def test_r12_r13_every_role_and_access_level(
    op: Operation, fleet: Fleet, domain: DomainContext
) -> None:
    matrix = Matrix(fleet)
    cases, bystander = await matrix.build(op)
    assert len(cases) == len(ROLES) * len(HELD) + 2
    wrong: list[str] = []
    for case in cases:
        before = await snapshot(domain)
        answer = outcome(await op.send(matrix.steps, case, bystander))
        after = await snapshot(domain)
        if allowed(op, case):
            ok = answer == (op.success or "") and (op.success == "" or after != before)
            if op.action is Action.RUN:
                ok = answer == "" and after == before
        else:
            ok = answer in refusal(op, case) and after == before
        if not ok:
            wrong.append(
                f"{case.label}: expected {'allowed' if allowed(op, case) else 'refused'}, "
                f"got {answer} ({'changed' if after != before else 'unchanged'})"
            )
    assert not wrong, "\n".join(wrong)


ALLOWED = """
query {
  machines(first: 100) { nodes { id accessType allowedActions } }
  machineGroups(first: 100) { nodes { id accessType allowedActions } }
}"""


@pytest.mark.rule("R12")
@pytest.mark.rule("R13")
async def test_r12_r13_allowed_actions_shown_match_the_tables(fleet: Fleet) -> None:
    """What each caller is shown they may do (RUN included) is the tables' answer too."""
    matrix = Matrix(fleet)
    landlord = await fleet.person("MACHINE_OWNER", name="landlord")
    for role in ROLES:
        caller = await fleet.person("MACHINE_OWNER")
        made: dict[tuple[str, AccessLevel], str] = {}
        for kind, held in itertools.product(("machine", "group"), HELD[:3]):
            owner = caller if held is AccessLevel.OWNER else landlord
            made[(kind, held)] = await matrix.resource(kind, owner)
            if held is not AccessLevel.OWNER:
                await matrix.share(kind, landlord, made[(kind, held)], caller.id, held.value)
        await matrix.steps.call(
            REVOKE_ROLE,
            {
                "input": {
                    "environmentId": fleet.environment_id,
                    "userId": caller.id,
                    "role": "MACHINE_OWNER",
                }
            },
            fleet.admin_token,
        )
        if role is not None:
            await fleet.grant(caller.id, role.value)
        seen = await fleet.api.data(ALLOWED, token=caller.token)
        shown = {
            n["id"]: (n["accessType"], set(n["allowedActions"]))
            for n in seen["machines"]["nodes"] + seen["machineGroups"]["nodes"]
        }
        for (kind, held), resource_id in made.items():
            actions = MACHINE_ACTIONS if kind == "machine" else GROUP_ACTIONS
            want_level = "ADMIN" if role is Role.ENVIRONMENT_ADMIN else held.value
            want = {a.value for a in actions if expected(role, held, a)}
            assert shown[resource_id] == (want_level, want), (role, kind, held)


@pytest.mark.rule("R4")
@pytest.mark.rule("R13")
@pytest.mark.parametrize("restricted", [False, True], ids=["open", "restricted"])
async def test_r4_r13_registration_for_every_role(
    restricted: bool, fleet: Fleet, domain: DomainContext
) -> None:
    if restricted:
        await fleet.api.data(
            UPDATE_ENVIRONMENT,
            {"input": {"id": fleet.environment_id, "restrictRegistration": True}},
            token=fleet.admin_token,
        )
    for role in ROLES:
        person = await fleet.person(*([role.value] if role else []))
        want = role is not None and (
            role is Role.ENVIRONMENT_ADMIN
            or (
                Action.REGISTER in ROLE_PRIVILEGES[role]
                and not (restricted and role is Role.ENVIRONMENT_MAKER)
            )
        )
        before = await snapshot(domain)
        answer = (await fleet.register(person, f"bot-{role.value if role else 'none'}"))[
            "__typename"
        ]
        if want:
            assert answer == "RegisteredMachinePayload", role
        else:
            assert answer == ("NotFoundError" if role is None else "PermissionDeniedError"), role
            assert await snapshot(domain) == before
