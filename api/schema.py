"""The schema, composed from each area's queries and mutations."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import strawberry
from graphql import GraphQLError
from opentelemetry.trace import Tracer
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import StreamResult
from strawberry.schema.schema_converter import CustomGraphQLEnumType
from strawberry.tools import merge_types
from strawberry.types import ExecutionResult
from strawberry.types.execution import PreExecutionError

from api.audit.audit import AuditQuery
from api.connections.connections import ConnectionMutation, ConnectionQuery
from api.errors import ERROR_TYPES, hide_suggestions, mask_unexpected, redact_input_values
from api.fleet.environments import EnvironmentMutation, EnvironmentQuery
from api.fleet.groups import GroupMutation, GroupQuery
from api.fleet.machines import MachineMutation, MachineQuery
from api.fleet.maintenance import MaintenanceMutation
from api.fleet.sharing import SharingMutation
from api.identity.identity import IdentityMutation, IdentityQuery
from api.identity.sign_in import SignInMutation, SignInQuery
from api.realtime.subscriptions import Subscription
from api.recommendations.recommendations import (
    RecommendationMutation,
    RecommendationQuery,
    RecommendationSubscription,
)
from api.runs.agent import AgentMutation, AgentQuery
from api.runs.flows import FlowMutation, FlowQuery
from api.runs.runs import RunMutation, RunQuery
from api.statistics.statistics import StatisticsQuery
from api.traces import OperationSpans
from api.transport.limits import extensions
from api.transport.shared_execution import SharedEventExecution
from api.transport.strawberry_adapter import graphql_schema
from api.transport.throttle import Buckets
from api.transport.trusted_documents import TrustedDocuments, untrusted
from api.webhooks.webhooks import WebhookMutation, WebhookQuery
from domain.kernel.settings import Settings

Query = merge_types(
    "Query",
    (
        IdentityQuery,
        SignInQuery,
        EnvironmentQuery,
        MachineQuery,
        AgentQuery,
        GroupQuery,
        ConnectionQuery,
        FlowQuery,
        RunQuery,
        StatisticsQuery,
        RecommendationQuery,
        AuditQuery,
        WebhookQuery,
    ),
)
Mutation = merge_types(
    "Mutation",
    (
        IdentityMutation,
        SignInMutation,
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
        WebhookMutation,
    ),
)
Subscriptions = merge_types("Subscription", (Subscription, RecommendationSubscription))


class DeskFleetSchema(strawberry.Schema):
    production = False  # set by build_schema from the settings

    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        """Strawberry hands every result's errors here, whatever the transport (HTTP, streamed,
        each subscription event) before answering: unexpected ones are masked in place, and
        logged with their traceback and request id. Expected failures (ours, or a malformed
        document) are answers, not incidents: no log line per refused request (anyone could
        flood it). No answer quotes the input it refuses (R20: a password sent is never sent
        back)."""
        mask_unexpected(errors)
        redact_input_values(errors, getattr(execution_context, "variables", None))
        if self.production:
            hide_suggestions(errors)


class TrustedOnlySchema(DeskFleetSchema):
    """The schema when only registered documents are accepted (``trusted_documents_only``): every
    operation of every transport (HTTP, both websocket protocols) comes through execute or
    stream. A class of its own, so the default schema's operations pay nothing for it."""

    trusted: TrustedDocuments | None = None  # set by the app

    async def execute(self, query: str | None, *args: Any, **kwargs: Any) -> ExecutionResult:
        if self.trusted is None or not self.trusted.trusts(query):
            return ExecutionResult(data=None, errors=[untrusted()])
        return await super().execute(query, *args, **kwargs)

    async def stream(self, query: str | None, *args: Any, **kwargs: Any) -> StreamResult:
        if self.trusted is None or not self.trusted.trusts(query):
            return _refused(untrusted())
        return await super().stream(query, *args, **kwargs)


async def _refused(error: GraphQLError) -> StreamResult:
    # What a stream yields for a document refused before it ran (the websocket handlers send it
    # as the operation's error).
    yield PreExecutionError(data=None, errors=[error])


def build_schema(
    settings: Settings | None = None,
    buckets: Buckets | None = None,
    tracer: Tracer | None = None,
) -> strawberry.Schema:
    """``buckets``: the callers' cost buckets (R39); by default this process's, on its clock.
    ``tracer``: a span for each operation (api/traces.py); none when not traced."""
    settings = settings or Settings()
    operation_spans = [lambda: OperationSpans(tracer)] if tracer is not None else []
    kind = TrustedOnlySchema if settings.trusted_documents_only else DeskFleetSchema
    built = kind(
        query=Query,
        mutation=Mutation,
        subscription=Subscriptions,
        types=ERROR_TYPES,
        extensions=[*extensions(settings, buckets), *operation_spans],
        execution_context_class=SharedEventExecution,
        # Production mode: no "Did you mean ...?" hints that map the schema for a stranger.
        config=StrawberryConfig(disable_field_suggestions=settings.production),
    )
    built.production = settings.production
    _enum_names_by_member(built)
    return built


def _enum_names_by_member(built: strawberry.Schema) -> None:
    """Each enum type of the schema answers a member's name from a dict.

    Strawberry's enum type finds it by scanning the enum's values and comparing ``.value`` on
    both sides, an enum descriptor call each on Python 3.11: a page of 100 machines (status and
    access type on each) spent ~3% of its time there. Anything not a member (a raw value) still
    goes to Strawberry's own code.
    """
    for graphql_type in graphql_schema(built).type_map.values():
        if not isinstance(graphql_type, CustomGraphQLEnumType):
            continue
        names: dict[Any, str] = {
            graphql_type.wrapped_cls(value.value): name
            for name, value in graphql_type.values.items()
        }

        def coerce_output_value(
            output_value: Any,
            names: dict[Any, str] = names,
            slow: Callable[[Any], str] = graphql_type.coerce_output_value,
        ) -> str:
            try:
                return names[output_value]
            except (KeyError, TypeError):  # TypeError: an unhashable value
                return slow(output_value)

        # What graphql-core's executor calls (Strawberry's serialize() calls it too).
        graphql_type.coerce_output_value = coerce_output_value  # type: ignore[method-assign]


schema = build_schema()
