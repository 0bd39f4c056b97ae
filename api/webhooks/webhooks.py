"""Webhook endpoints, their deliveries and attempts (R43), for environment admins."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated

import strawberry
from strawberry.types import Info

from api.context import Context
from api.errors import UserErrors, idempotency_key_field, lookup, read, typed_errors
from api.pagination import PageInfo
from domain.store.models import DeliveryStatus, WebhookAttempt, WebhookEndpoint
from domain.webhooks import endpoints, outbox
from domain.webhooks.endpoints import DeliveryView, EndpointChanges
from domain.webhooks.sender import body


@strawberry.enum(
    description="What an endpoint can subscribe to (R43; docs/api.md#webhooks lists each one's "
    "data). MACHINE_OFFLINE, RUN_WAITING and QUEUE_DEPTH_EXCEEDED use the endpoint's thresholds."
)
class WebhookEventType(Enum):
    MACHINE_STATUS_CHANGED = outbox.MACHINE_STATUS_CHANGED
    MACHINE_OFFLINE = outbox.MACHINE_OFFLINE
    MACHINE_MAINTENANCE_CHANGED = outbox.MACHINE_MAINTENANCE_CHANGED
    RUN_FINISHED = outbox.RUN_FINISHED
    RUN_WAITING = outbox.RUN_WAITING
    QUEUE_DEPTH_EXCEEDED = outbox.QUEUE_DEPTH_EXCEEDED
    RECOMMENDATION_RAISED = outbox.RECOMMENDATION_RAISED
    RECOMMENDATION_RESOLVED = outbox.RECOMMENDATION_RESOLVED


WebhookDeliveryStatusEnum = strawberry.enum(DeliveryStatus, name="WebhookDeliveryStatus")


@strawberry.type(name="WebhookAttempt", description="One try at sending a delivery.")
class WebhookAttemptType:
    at: datetime
    succeeded: bool
    response_status: int | None = strawberry.field(description="Null: no HTTP answer came.")
    duration_ms: int
    error: str | None

    @classmethod
    def from_model(cls, a: WebhookAttempt) -> WebhookAttemptType:
        return cls(
            at=a.at,
            succeeded=a.succeeded,
            response_status=a.response_status,
            duration_ms=a.duration_ms,
            error=a.error,
        )


@strawberry.type(
    name="WebhookDelivery",
    description="One event sent to one endpoint; its id is the webhook-id header.",
)
class WebhookDeliveryType:
    id: strawberry.ID
    event_id: strawberry.ID
    event_type: str = strawberry.field(description="As in the payload: run.finished, webhook.ping…")
    payload: str = strawberry.field(description="The JSON body sent, as sent.")
    status: WebhookDeliveryStatusEnum  # type: ignore[valid-type]
    attempt_count: int
    created_at: datetime
    next_attempt_at: datetime | None
    ended_at: datetime | None
    attempts: list[WebhookAttemptType] = strawberry.field(description="Oldest first.")

    @classmethod
    def from_view(cls, view: DeliveryView, attempts: list[WebhookAttempt]) -> WebhookDeliveryType:
        d, e = view.delivery, view.event
        return cls(
            id=strawberry.ID(d.id),
            event_id=strawberry.ID(e.id),
            event_type=e.type,
            payload=body(e.type, e.occurred_at, e.data).decode(),
            status=d.status,
            attempt_count=d.attempts,
            created_at=d.created_at,
            next_attempt_at=d.next_attempt_at,
            ended_at=d.ended_at,
            attempts=[WebhookAttemptType.from_model(a) for a in attempts],
        )


@strawberry.type
class WebhookDeliveryEdge:
    cursor: str
    node: WebhookDeliveryType


@strawberry.type
class WebhookDeliveryConnection:
    edges: list[WebhookDeliveryEdge]
    page_info: PageInfo
    total_count: int

    @strawberry.field
    def nodes(self) -> list[WebhookDeliveryType]:
        return [edge.node for edge in self.edges]


@strawberry.type(name="WebhookEndpoint")
class WebhookEndpointType:
    id: strawberry.ID
    environment_id: strawberry.ID
    url: str
    description: str
    event_types: list[WebhookEventType]
    paused: bool
    disabled_reason: str | None = strawberry.field(
        description="Why DeskFleet disabled it (it kept failing); resume it to enable it again."
    )
    disabled_at: datetime | None
    offline_minutes: int = strawberry.field(description="machine.offline's threshold.")
    waiting_minutes: int = strawberry.field(description="run.waiting's threshold.")
    queue_depth: int = strawberry.field(description="queue.depth.exceeded's threshold.")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_model(cls, e: WebhookEndpoint) -> WebhookEndpointType:
        return cls(
            id=strawberry.ID(e.id),
            environment_id=strawberry.ID(e.environment_id),
            url=e.url,
            description=e.description,
            event_types=[WebhookEventType(t) for t in outbox.subscribed(e.event_types)],
            paused=e.paused,
            disabled_reason=e.disabled_reason,
            disabled_at=e.disabled_at,
            offline_minutes=e.offline_minutes,
            waiting_minutes=e.waiting_minutes,
            queue_depth=e.queue_depth,
            created_at=e.created_at,
            updated_at=e.updated_at,
        )

    @strawberry.field(description="Its deliveries, newest first, each with its attempts.")
    async def deliveries(
        self,
        info: Info[Context, None],
        first: int = 20,
        after: str | None = None,
        status: WebhookDeliveryStatusEnum | None = None,  # type: ignore[valid-type]
    ) -> WebhookDeliveryConnection:
        ctx = info.context
        page = await read(
            lambda: endpoints.list_deliveries(
                ctx.domain, ctx.principal, self.id, status=status, first=first, after=after
            )
        )
        attempts = await endpoints.attempts_of(ctx.domain, [v.delivery.id for v in page.items])
        return WebhookDeliveryConnection(
            edges=[
                WebhookDeliveryEdge(
                    cursor=cursor,
                    node=WebhookDeliveryType.from_view(view, attempts[view.delivery.id]),
                )
                for view, cursor in zip(page.items, page.cursors, strict=True)
            ],
            page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
            total_count=page.total_count,
        )


@strawberry.type
class WebhookEndpointEdge:
    cursor: str
    node: WebhookEndpointType


@strawberry.type
class WebhookEndpointConnection:
    edges: list[WebhookEndpointEdge]
    page_info: PageInfo
    total_count: int

    @strawberry.field
    def nodes(self) -> list[WebhookEndpointType]:
        return [edge.node for edge in self.edges]


@strawberry.input
class CreateWebhookEndpointInput:
    environment_id: strawberry.ID
    url: str = strawberry.field(
        description="http(s); private, loopback and link-local targets are refused unless the "
        "operator allows their network."
    )
    event_types: list[WebhookEventType]
    description: str = ""
    offline_minutes: int = 30
    waiting_minutes: int = 30
    queue_depth: int = 100
    idempotency_key: str | None = idempotency_key_field()


@strawberry.input(description="What to change; a field left out keeps its value.")
class UpdateWebhookEndpointInput:
    id: strawberry.ID
    url: str | None = None
    event_types: list[WebhookEventType] | None = None
    description: str | None = None
    offline_minutes: int | None = None
    waiting_minutes: int | None = None
    queue_depth: int | None = None


@strawberry.type
class WebhookEndpointPayload:
    endpoint: WebhookEndpointType


@strawberry.type(description="The endpoint with its signing secret, shown this once.")
class WebhookEndpointSecretPayload:
    endpoint: WebhookEndpointType
    secret: str = strawberry.field(description="whsec_…: verifies the webhook-signature header.")


@strawberry.type
class DeletedWebhookEndpointPayload:
    id: strawberry.ID


@strawberry.type
class WebhookDeliveryPayload:
    delivery_id: strawberry.ID = strawberry.field(description="The webhook-id it is sent under.")


CreateWebhookEndpointResult = Annotated[
    WebhookEndpointSecretPayload | UserErrors, strawberry.union("CreateWebhookEndpointResult")
]
RotateWebhookSecretResult = Annotated[
    WebhookEndpointSecretPayload | UserErrors, strawberry.union("RotateWebhookSecretResult")
]
WebhookEndpointResult = Annotated[
    WebhookEndpointPayload | UserErrors, strawberry.union("WebhookEndpointResult")
]
DeleteWebhookEndpointResult = Annotated[
    DeletedWebhookEndpointPayload | UserErrors, strawberry.union("DeleteWebhookEndpointResult")
]
WebhookDeliveryResult = Annotated[
    WebhookDeliveryPayload | UserErrors, strawberry.union("WebhookDeliveryResult")
]


def _types(values: list[WebhookEventType]) -> list[str]:
    return [str(v.value) for v in values]


@strawberry.type
class WebhookQuery:
    @strawberry.field(description="An environment's webhook endpoints, oldest first (its admins).")
    async def webhook_endpoints(
        self,
        info: Info[Context, None],
        environment_id: strawberry.ID,
        first: int = 50,
        after: str | None = None,
    ) -> WebhookEndpointConnection:
        ctx = info.context
        page = await read(
            lambda: endpoints.list_endpoints(
                ctx.domain, ctx.principal, environment_id, first=first, after=after
            )
        )
        return WebhookEndpointConnection(
            edges=[
                WebhookEndpointEdge(cursor=cursor, node=WebhookEndpointType.from_model(e))
                for e, cursor in zip(page.items, page.cursors, strict=True)
            ],
            page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
            total_count=page.total_count,
        )

    @strawberry.field(description="One webhook endpoint (its environment's admins).")
    async def webhook_endpoint(
        self, info: Info[Context, None], id: strawberry.ID
    ) -> WebhookEndpointType | None:
        ctx = info.context
        endpoint = await lookup(lambda: endpoints.get_endpoint(ctx.domain, ctx.principal, id))
        return WebhookEndpointType.from_model(endpoint) if endpoint else None


@strawberry.type
class WebhookMutation:
    @strawberry.mutation(
        description="Subscribe a URL to event types (R43). The payload shows the signing "
        "secret this once."
    )
    @typed_errors
    async def create_webhook_endpoint(
        self, info: Info[Context, None], input: CreateWebhookEndpointInput
    ) -> CreateWebhookEndpointResult:
        ctx = info.context
        created = await endpoints.create_endpoint(
            ctx.domain,
            ctx.principal,
            input.environment_id,
            input.url,
            _types(input.event_types),
            description=input.description,
            offline_minutes=input.offline_minutes,
            waiting_minutes=input.waiting_minutes,
            queue_depth=input.queue_depth,
            idempotency_key=input.idempotency_key,
        )
        return WebhookEndpointSecretPayload(
            endpoint=WebhookEndpointType.from_model(created.endpoint), secret=created.secret
        )

    @strawberry.mutation(description="Change an endpoint's URL, event types or thresholds.")
    @typed_errors
    async def update_webhook_endpoint(
        self, info: Info[Context, None], input: UpdateWebhookEndpointInput
    ) -> WebhookEndpointResult:
        ctx = info.context
        changes = EndpointChanges(
            url=input.url,
            description=input.description,
            event_types=_types(input.event_types) if input.event_types is not None else None,
            offline_minutes=input.offline_minutes,
            waiting_minutes=input.waiting_minutes,
            queue_depth=input.queue_depth,
        )
        endpoint = await endpoints.update_endpoint(ctx.domain, ctx.principal, input.id, changes)
        return WebhookEndpointPayload(endpoint=WebhookEndpointType.from_model(endpoint))

    @strawberry.mutation(
        description="Stop sending to an endpoint: nothing is sent or recorded for it until resumed."
    )
    @typed_errors
    async def pause_webhook_endpoint(
        self, info: Info[Context, None], id: strawberry.ID
    ) -> WebhookEndpointResult:
        ctx = info.context
        endpoint = await endpoints.set_paused(ctx.domain, ctx.principal, id, True)
        return WebhookEndpointPayload(endpoint=WebhookEndpointType.from_model(endpoint))

    @strawberry.mutation(
        description="Send to a paused endpoint again, or to one disabled for failing."
    )
    @typed_errors
    async def resume_webhook_endpoint(
        self, info: Info[Context, None], id: strawberry.ID
    ) -> WebhookEndpointResult:
        ctx = info.context
        endpoint = await endpoints.set_paused(ctx.domain, ctx.principal, id, False)
        return WebhookEndpointPayload(endpoint=WebhookEndpointType.from_model(endpoint))

    @strawberry.mutation(description="Delete an endpoint with its deliveries.")
    @typed_errors
    async def delete_webhook_endpoint(
        self, info: Info[Context, None], id: strawberry.ID
    ) -> DeleteWebhookEndpointResult:
        ctx = info.context
        deleted = await endpoints.delete_endpoint(ctx.domain, ctx.principal, id)
        return DeletedWebhookEndpointPayload(id=strawberry.ID(deleted))

    @strawberry.mutation(description="A new signing secret, shown this once; the old one stops.")
    @typed_errors
    async def rotate_webhook_endpoint_secret(
        self, info: Info[Context, None], id: strawberry.ID
    ) -> RotateWebhookSecretResult:
        ctx = info.context
        rotated = await endpoints.rotate_secret(ctx.domain, ctx.principal, id)
        return WebhookEndpointSecretPayload(
            endpoint=WebhookEndpointType.from_model(rotated.endpoint), secret=rotated.secret
        )

    @strawberry.mutation(description="Send a webhook.ping event to the endpoint (even paused).")
    @typed_errors
    async def ping_webhook_endpoint(
        self, info: Info[Context, None], id: strawberry.ID
    ) -> WebhookDeliveryResult:
        ctx = info.context
        delivery = await endpoints.ping(ctx.domain, ctx.principal, id)
        return WebhookDeliveryPayload(delivery_id=strawberry.ID(delivery.id))

    @strawberry.mutation(
        description="Send a delivery again, under the same webhook-id, with a new day of retries."
    )
    @typed_errors
    async def redeliver_webhook_delivery(
        self, info: Info[Context, None], id: strawberry.ID
    ) -> WebhookDeliveryResult:
        ctx = info.context
        delivery = await endpoints.redeliver(ctx.domain, ctx.principal, id)
        return WebhookDeliveryPayload(delivery_id=strawberry.ID(delivery.id))
