"""Given/when steps for groups, sharing and maintenance tests (R10-R19), all through GraphQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from domain.context import DomainContext
from tests.graphql import Fleet, Person, RegisteredMachine

ERRORS = "... on UserError { code message } ... on RuleViolationError { rule }"

CREATE_GROUP = f"""
mutation($input: CreateMachineGroupInput!) {{
  createMachineGroup(input: $input) {{
    __typename ... on MachineGroupPayload {{ group {{ id name }} }} {ERRORS}
  }}
}}"""
UPDATE_GROUP = f"""
mutation($input: UpdateMachineGroupInput!) {{
  updateMachineGroup(input: $input) {{ __typename {ERRORS} }}
}}"""
DELETE_GROUP = f"""
mutation($id: ID!) {{ deleteMachineGroup(id: $id) {{ __typename {ERRORS} }} }}"""
ADD = f"""
mutation($groupId: ID!, $machineId: ID!) {{
  addMachineToGroup(groupId: $groupId, machineId: $machineId) {{
    __typename
    ... on MachineGroupMembershipPayload {{ machine {{ id group {{ id }} }} group {{ id machineCount }} }}
    {ERRORS}
  }}
}}"""
REMOVE = f"""
mutation($machineId: ID!) {{
  removeMachineFromGroup(machineId: $machineId) {{
    __typename ... on MachineGroupMembershipPayload {{ machine {{ id group {{ id }} }} }} {ERRORS}
  }}
}}"""
SHARE_MACHINE = f"""
mutation($input: ShareMachineInput!) {{
  shareMachine(input: $input) {{ __typename {ERRORS} }}
}}"""
UNSHARE_MACHINE = f"""
mutation($machineId: ID!, $userId: ID!) {{
  unshareMachine(machineId: $machineId, userId: $userId) {{ __typename {ERRORS} }}
}}"""
SHARE_GROUP = f"""
mutation($input: ShareMachineGroupInput!) {{
  shareMachineGroup(input: $input) {{ __typename {ERRORS} }}
}}"""
UNSHARE_GROUP = f"""
mutation($groupId: ID!, $userId: ID!) {{
  unshareMachineGroup(groupId: $groupId, userId: $userId) {{ __typename {ERRORS} }}
}}"""
MACHINE_MAINTENANCE = f"""
mutation($id: ID!, $enabled: Boolean!) {{
  setMachineMaintenance(id: $id, enabled: $enabled) {{
    __typename ... on MachinePayload {{ machine {{ maintenance }} }} {ERRORS}
  }}
}}"""
GROUP_MAINTENANCE = f"""
mutation($id: ID!, $enabled: Boolean!) {{
  setMachineGroupMaintenance(id: $id, enabled: $enabled) {{
    __typename ... on MachineGroupPayload {{ group {{ maintenance }} }} {ERRORS}
  }}
}}"""
UPDATE_MACHINE = f"""
mutation($input: UpdateMachineInput!) {{ updateMachine(input: $input) {{ __typename {ERRORS} }} }}"""
DELETE_MACHINE = f"""
mutation($id: ID!) {{ deleteMachine(id: $id) {{ __typename {ERRORS} }} }}"""
ROTATE_KEY = f"""
mutation($id: ID!) {{ rotateMachineKey(id: $id) {{ __typename {ERRORS} }} }}"""
DEACTIVATE = f"""
mutation($id: ID!) {{ deactivateUser(id: $id) {{ __typename {ERRORS} }} }}"""
REACTIVATE = f"""
mutation($id: ID!) {{ reactivateUser(id: $id) {{ __typename {ERRORS} }} }}"""
REVOKE_ROLE = """
mutation($input: RoleInput!) {
  revokeRole(input: $input) { __typename ... on UserError { code message } }
}"""

MACHINE_FIELDS = """
  id name maintenance maintenanceInherited maintenanceLock drained keyActionRequired
  accessType allowedActions hasDeactivatedShares group { id }
  accessList { user { id } access deactivated grantedBy { id } }
"""
MACHINE = f"query($id: ID!) {{ machine(id: $id) {{ {MACHINE_FIELDS} }} }}"
GROUP_FIELDS = """
  id name maintenance keyActionRequired drained machineCount connectedCount runningCount
  queuedCount accessType allowedActions hasDeactivatedShares
  machines { id maintenance maintenanceInherited maintenanceLock drained }
  accessList { user { id } access deactivated grantedBy { id } }
"""
GROUP = f"query($id: ID!) {{ machineGroup(id: $id) {{ {GROUP_FIELDS} }} }}"


class Steps:
    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.api = fleet.api

    async def call(self, query: str, variables: dict[str, Any], who: Person | str) -> Any:
        token = who if isinstance(who, str) else who.token
        data = await self.api.data(query, variables, token=token)
        (result,) = data.values()
        return result

    async def group(
        self, owner: Person | str, name: str, *, environment_id: str | None = None
    ) -> str:
        result = await self.call(
            CREATE_GROUP,
            {"input": {"environmentId": environment_id or self.fleet.environment_id, "name": name}},
            owner,
        )
        assert result["__typename"] == "MachineGroupPayload", result
        return result["group"]["id"]

    async def add(self, who: Person | str, group_id: str, machine_id: str) -> dict[str, Any]:
        return await self.call(ADD, {"groupId": group_id, "machineId": machine_id}, who)

    async def added(self, who: Person | str, group_id: str, machine: RegisteredMachine) -> None:
        result = await self.add(who, group_id, machine.id)
        assert result["__typename"] == "MachineGroupMembershipPayload", result

    async def share_machine(
        self, who: Person | str, machine_id: str, user_id: str, access: str
    ) -> dict[str, Any]:
        return await self.call(
            SHARE_MACHINE,
            {"input": {"machineId": machine_id, "userId": user_id, "access": access}},
            who,
        )

    async def share_group(
        self, who: Person | str, group_id: str, user_id: str, access: str
    ) -> dict[str, Any]:
        return await self.call(
            SHARE_GROUP, {"input": {"groupId": group_id, "userId": user_id, "access": access}}, who
        )

    async def machine(self, who: Person | str, machine_id: str) -> dict[str, Any] | None:
        return await self.call(MACHINE, {"id": machine_id}, who)

    async def group_view(self, who: Person | str, group_id: str) -> dict[str, Any] | None:
        return await self.call(GROUP, {"id": group_id}, who)

    async def machine_maintenance(
        self, who: Person | str, machine_id: str, enabled: bool
    ) -> dict[str, Any]:
        return await self.call(MACHINE_MAINTENANCE, {"id": machine_id, "enabled": enabled}, who)

    async def group_maintenance(
        self, who: Person | str, group_id: str, enabled: bool
    ) -> dict[str, Any]:
        return await self.call(GROUP_MAINTENANCE, {"id": group_id, "enabled": enabled}, who)


TABLES = ("machines", "machine_groups", "shares", "users", "role_assignments")


async def snapshot(
    domain: DomainContext, tables: tuple[str, ...] = TABLES
) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of ``tables`` (by default those group operations touch), read straight from the
    database."""
    state: dict[str, list[tuple[Any, ...]]] = {}
    async with domain.db.read() as session:
        connection = await session.connection()
        for table in tables:
            rows = await connection.execute(text(f"SELECT * FROM {table} ORDER BY id"))
            state[table] = [tuple(row) for row in rows.all()]
    return state
