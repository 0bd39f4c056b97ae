"""Machine groups."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.types import Info

from api.context import Context
from domain.models import MachineGroup

if TYPE_CHECKING:
    from api.identity import UserType


@strawberry.type(name="MachineGroup")
class MachineGroupType:
    id: strawberry.ID
    name: str
    description: str
    maintenance: bool
    created_at: datetime
    owner_id: strawberry.Private[str]
    environment_id: strawberry.Private[str]

    @classmethod
    def from_model(cls, group: MachineGroup) -> MachineGroupType:
        return cls(
            id=strawberry.ID(group.id),
            name=group.name,
            description=group.description,
            maintenance=group.maintenance,
            created_at=group.created_at,
            owner_id=group.owner_id,
            environment_id=group.environment_id,
        )

    @strawberry.field
    async def owner(
        self, info: Info[Context, None]
    ) -> Annotated[UserType, strawberry.lazy("api.identity")] | None:
        from api.identity import UserType

        user = await info.context.loaders.users.load(self.owner_id)
        return UserType.from_model(user) if user else None
