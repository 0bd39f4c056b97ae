"""The domain's enums, exposed once to GraphQL under their product names."""

import strawberry

from domain.fleet.maintenance import MaintenanceLock
from domain.kernel.errors import ErrorCode
from domain.kernel.permissions import AccessLevel, Action, Role
from domain.store.models import Connectivity, EnvironmentKind, MachineStatus

ErrorCodeEnum = strawberry.enum(ErrorCode, name="ErrorCode")
EnvironmentKindEnum = strawberry.enum(EnvironmentKind, name="EnvironmentKind")
MachineStatusEnum = strawberry.enum(MachineStatus, name="MachineStatus")
AccessTypeEnum = strawberry.enum(
    AccessLevel, name="AccessType", description="What the caller holds on a machine or group."
)
RoleEnum = strawberry.enum(Role, name="SecurityRole")
ActionEnum = strawberry.enum(
    Action, name="ResourceAction", description="An action of R12 on a machine or group."
)
MaintenanceLockEnum = strawberry.enum(
    MaintenanceLock,
    name="MaintenanceLock",
    description="Why the maintenance toggle is refused right now (R10, R18).",
)
ConnectivityEnum = strawberry.enum(
    Connectivity, name="Connectivity", description="GATEWAY is legacy (R22)."
)
