"""All tables, imported in one place so Alembic and the metadata see every one."""

from domain.models.environments import Environment, EnvironmentKind
from domain.models.identity import ApiToken, RoleAssignment, User
from domain.models.machines import Machine, MachineGroup, MachineStatus, Share

__all__ = [
    "ApiToken",
    "Environment",
    "EnvironmentKind",
    "Machine",
    "MachineGroup",
    "MachineStatus",
    "RoleAssignment",
    "Share",
    "User",
]
