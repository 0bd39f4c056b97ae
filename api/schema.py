"""The schema, composed from each area's queries and mutations."""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types

from api.agent import AgentMutation, AgentQuery
from api.audit import AuditQuery
from api.connections import ConnectionMutation, ConnectionQuery
from api.environments import EnvironmentMutation, EnvironmentQuery
from api.errors import ERROR_TYPES, mask_unexpected
from api.flows import FlowMutation, FlowQuery
from api.groups import GroupMutation, GroupQuery
from api.identity import IdentityMutation, IdentityQuery
from api.limits import extensions
from api.machines import MachineMutation, MachineQuery
from api.maintenance import MaintenanceMutation
from api.recommendations import (
    RecommendationMutation,
    RecommendationQuery,
    RecommendationSubscription,
)
from api.runs import RunMutation, RunQuery
from api.shared_execution import SharedEventExecution
from api.sharing import SharingMutation
from api.subscriptions import Subscription
from domain.settings import Settings

Query = merge_types(
    "Query",
    (
        IdentityQuery,
        EnvironmentQuery,
        MachineQuery,
        AgentQuery,
        GroupQuery,
        ConnectionQuery,
        FlowQuery,
        RunQuery,
        RecommendationQuery,
        AuditQuery,
    ),
)
Mutation = merge_types(
    "Mutation",
    (
        IdentityMutation,
        EnvironmentMutation,
        MachineMutation,
        AgentMutation,
        GroupMutation,
        SharingMutation,
        MaintenanceMutation,
        ConnectionMutation,
        FlowMutation,
        RunMutation,
        RecommendationMutation,
    ),
)
Subscriptions = merge_types("Subscription", (Subscription, RecommendationSubscription))


class DeskFleetSchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        """Strawberry hands every result's errors here, whatever the transport (HTTP, streamed,
        each subscription event) before answering: unexpected ones are masked in place, and
        logged with their traceback and request id. Expected failures (ours, or a malformed
        document) are answers, not incidents: no log line per refused request (anyone could
        flood it)."""
        mask_unexpected(errors)


def build_schema(settings: Settings | None = None) -> strawberry.Schema:
    settings = settings or Settings()
    return DeskFleetSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscriptions,
        types=ERROR_TYPES,
        extensions=extensions(settings),
        execution_context_class=SharedEventExecution,
        # Production mode: no "Did you mean ...?" hints that map the schema for a stranger.
        config=StrawberryConfig(disable_field_suggestions=settings.production),
    )


schema = build_schema()
