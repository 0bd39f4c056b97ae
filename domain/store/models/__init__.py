"""All tables, imported in one place so Alembic and the metadata see every one."""

from domain.store.models.audit import AuditAction, AuditEntry, AuditTargetKind
from domain.store.models.connections import Connection, Connectivity, DesktopFlow, Gateway
from domain.store.models.documents import TrustedDocument
from domain.store.models.environments import Environment, EnvironmentKind
from domain.store.models.idempotency import IdempotencyKey
from domain.store.models.identity import (
    ApiToken,
    RoleAssignment,
    SignInGroupRole,
    SignInIdentity,
    SignInMatch,
    User,
)
from domain.store.models.machines import Machine, MachineGroup, MachineStatus, Share
from domain.store.models.recommendations import (
    ItemOutcome,
    RecommendationStatus,
    SessionRecommendation,
    SessionRecommendationItem,
)
from domain.store.models.runs import (
    PRIORITY_RANK,
    TERMINAL_STATUSES,
    FlowRun,
    MachineCommand,
    RunMode,
    RunPriority,
    RunStatus,
    RunWait,
    SessionState,
    UserSession,
)
from domain.store.models.statistics import (
    FleetRollup,
    FoldSamples,
    MachineHour,
    StatisticsFold,
)
from domain.store.models.webhooks import (
    DeliveryStatus,
    WebhookAlert,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)

__all__ = [
    "PRIORITY_RANK",
    "TERMINAL_STATUSES",
    "ApiToken",
    "AuditAction",
    "AuditEntry",
    "AuditTargetKind",
    "Connection",
    "Connectivity",
    "DeliveryStatus",
    "DesktopFlow",
    "Environment",
    "EnvironmentKind",
    "FleetRollup",
    "FlowRun",
    "FoldSamples",
    "Gateway",
    "IdempotencyKey",
    "ItemOutcome",
    "Machine",
    "MachineCommand",
    "MachineGroup",
    "MachineHour",
    "MachineStatus",
    "RecommendationStatus",
    "RoleAssignment",
    "RunMode",
    "RunPriority",
    "RunStatus",
    "RunWait",
    "SessionRecommendation",
    "SessionRecommendationItem",
    "SessionState",
    "Share",
    "SignInGroupRole",
    "SignInIdentity",
    "SignInMatch",
    "StatisticsFold",
    "TrustedDocument",
    "User",
    "UserSession",
    "WebhookAlert",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookEvent",
]
