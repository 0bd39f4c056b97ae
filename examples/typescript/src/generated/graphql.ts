import type { TypedDocumentNode as DocumentNode } from '@graphql-typed-document-node/core';
export type Maybe<T> = T | null;
export type InputMaybe<T> = Maybe<T>;
export type Exact<T extends { [key: string]: unknown }> = { [K in keyof T]: T[K] };
export type MakeOptional<T, K extends keyof T> = Omit<T, K> & { [SubKey in K]?: Maybe<T[SubKey]> };
export type MakeMaybe<T, K extends keyof T> = Omit<T, K> & { [SubKey in K]: Maybe<T[SubKey]> };
export type MakeEmpty<T extends { [key: string]: unknown }, K extends keyof T> = { [_ in K]?: never };
export type Incremental<T> = T | { [P in keyof T]?: P extends ' $fragmentName' | '__typename' ? T[P] : never };
/** All built-in and custom scalars, mapped to their actual values */
export type Scalars = {
  ID: { input: string; output: string; }
  String: { input: string; output: string; }
  Boolean: { input: boolean; output: boolean; }
  Int: { input: number; output: number; }
  Float: { input: number; output: number; }
  /** Date with time (isoformat) */
  DateTime: { input: string; output: string; }
};

/** What the caller holds on a machine or group. */
export type AccessType =
  | 'ADMIN'
  | 'CO_OWNER'
  | 'OWNER'
  | 'USER';

/** BLOCKED: still listed. The others say how the run left the list (R33). */
export type AffectedRunOutcome =
  | 'BLOCKED'
  | 'ENDED'
  | 'FAILED_SESSION_EXISTS'
  | 'STARTED'
  | 'UNBLOCKED'
  | 'WITHDRAWN';

export type AuditAction =
  | 'CONNECTION_CREATED'
  | 'CONNECTION_DELETED'
  | 'CONNECTION_SWITCHED_TO_DIRECT'
  | 'CONNECTION_UPDATED'
  | 'GROUP_CREATED'
  | 'GROUP_DELETED'
  | 'GROUP_MACHINE_ADDED'
  | 'GROUP_MACHINE_REMOVED'
  | 'GROUP_MAINTENANCE'
  | 'GROUP_SHARED'
  | 'GROUP_UNSHARED'
  | 'GROUP_UPDATED'
  | 'MACHINE_DELETED'
  | 'MACHINE_KEY_ROTATED'
  | 'MACHINE_MAINTENANCE'
  | 'MACHINE_MOVED'
  | 'MACHINE_REGISTERED'
  | 'MACHINE_SHARED'
  | 'MACHINE_UNSHARED'
  | 'MACHINE_UPDATED'
  | 'ROLE_ASSIGNED'
  | 'ROLE_REVOKED'
  | 'SIGN_IN_GROUP_MAPPED'
  | 'SIGN_IN_GROUP_UNMAPPED'
  | 'USER_DEACTIVATED'
  | 'USER_REACTIVATED'
  | 'WEBHOOK_ENDPOINT_CREATED'
  | 'WEBHOOK_ENDPOINT_DELETED'
  | 'WEBHOOK_ENDPOINT_PAUSED'
  | 'WEBHOOK_ENDPOINT_RESUMED'
  | 'WEBHOOK_ENDPOINT_SECRET_ROTATED'
  | 'WEBHOOK_ENDPOINT_UPDATED';

export type AuditFilterInput = {
  actions?: InputMaybe<Array<AuditAction>>;
  actorId?: InputMaybe<Scalars['ID']['input']>;
  targetId?: InputMaybe<Scalars['ID']['input']>;
};

export type AuditTargetKind =
  | 'CONNECTION'
  | 'GROUP'
  | 'MACHINE'
  | 'SIGN_IN_GROUP'
  | 'USER'
  | 'WEBHOOK_ENDPOINT';

export type ConnectionFilterInput = {
  connectivity?: InputMaybe<Connectivity>;
  environmentId?: InputMaybe<Scalars['ID']['input']>;
  gatewayId?: InputMaybe<Scalars['ID']['input']>;
  groupId?: InputMaybe<Scalars['ID']['input']>;
  machineId?: InputMaybe<Scalars['ID']['input']>;
};

/** GATEWAY is legacy (R22). */
export type Connectivity =
  | 'DIRECT'
  | 'GATEWAY';

export type CreateConnectionInput = {
  /** GATEWAY is refused (R22). */
  connectivity?: Connectivity;
  /** Refused (R22): gateways are no longer supported. */
  gatewayId?: InputMaybe<Scalars['ID']['input']>;
  groupId?: InputMaybe<Scalars['ID']['input']>;
  /** R46: the same key from you within 24 hours answers what the first request created, as it is now, and creates nothing new; with another input it is refused (IDEMPOTENCY_KEY_REUSED). 1 to 255 visible ASCII characters: a new UUID per operation, sent again with each retry of it. */
  idempotencyKey?: InputMaybe<Scalars['String']['input']>;
  /** Target a machine, or give groupId. */
  machineId?: InputMaybe<Scalars['ID']['input']>;
  name: Scalars['String']['input'];
  /** Write-only: encrypted at rest (R20). */
  password: Scalars['String']['input'];
  windowsUsername: Scalars['String']['input'];
};

export type CreateDesktopFlowInput = {
  environmentId: Scalars['ID']['input'];
  name: Scalars['String']['input'];
};

export type CreateEnvironmentInput = {
  flowExtensionsVersion: Scalars['String']['input'];
  kind: EnvironmentKind;
  name: Scalars['String']['input'];
};

export type CreateMachineGroupInput = {
  description?: Scalars['String']['input'];
  environmentId: Scalars['ID']['input'];
  /** R46: the same key from you within 24 hours answers what the first request created, as it is now, and creates nothing new; with another input it is refused (IDEMPOTENCY_KEY_REUSED). 1 to 255 visible ASCII characters: a new UUID per operation, sent again with each retry of it. */
  idempotencyKey?: InputMaybe<Scalars['String']['input']>;
  name: Scalars['String']['input'];
};

export type CreateUserInput = {
  attendedLicence?: Scalars['Boolean']['input'];
  displayName: Scalars['String']['input'];
  email: Scalars['String']['input'];
  isAdmin?: Scalars['Boolean']['input'];
};

export type CreateWebhookEndpointInput = {
  description?: Scalars['String']['input'];
  environmentId: Scalars['ID']['input'];
  eventTypes: Array<WebhookEventType>;
  /** R46: the same key from you within 24 hours answers what the first request created, as it is now, and creates nothing new; with another input it is refused (IDEMPOTENCY_KEY_REUSED). 1 to 255 visible ASCII characters: a new UUID per operation, sent again with each retry of it. */
  idempotencyKey?: InputMaybe<Scalars['String']['input']>;
  offlineMinutes?: Scalars['Int']['input'];
  queueDepth?: Scalars['Int']['input'];
  /** http(s); private, loopback and link-local targets are refused unless the operator allows their network. */
  url: Scalars['String']['input'];
  waitingMinutes?: Scalars['Int']['input'];
};

export type DesktopFlowFilterInput = {
  environmentId?: InputMaybe<Scalars['ID']['input']>;
  /** Matches the name. */
  text?: InputMaybe<Scalars['String']['input']>;
};

export type EnvironmentKind =
  | 'DEFAULT'
  | 'DEVELOPER'
  | 'PRODUCTION'
  | 'SANDBOX'
  | 'TEAMS';

export type ErrorCode =
  | 'ALREADY_IN_STATE'
  | 'CAPACITY_EXCEEDED'
  | 'CROSS_ENVIRONMENT'
  | 'EMAIL_TAKEN'
  | 'ENDPOINT_DISABLED'
  | 'FLOW_EXTENSIONS_TOO_OLD'
  | 'FLOW_IN_USE'
  | 'GATEWAY_NOT_SUPPORTED'
  | 'GROUP_FULL'
  | 'GROUP_IN_MAINTENANCE'
  | 'HOME_EDITION'
  | 'IDEMPOTENCY_KEY_REUSED'
  | 'INVALID_CURSOR'
  | 'INVALID_EMAIL'
  | 'INVALID_EVENT_TYPE'
  | 'INVALID_ID'
  | 'INVALID_IDEMPOTENCY_KEY'
  | 'INVALID_NAME'
  | 'INVALID_PASSWORD'
  | 'INVALID_TEXT'
  | 'INVALID_URL'
  | 'INVALID_VALUE'
  | 'INVALID_VERSION'
  | 'KEY_ACTION_REQUIRED'
  | 'KEY_EXPIRED'
  | 'NAME_TAKEN'
  | 'NOT_ADMIN'
  | 'NOT_FOUND'
  | 'NO_ATTENDED_LICENCE'
  | 'NO_KEY_ACTION_PENDING'
  | 'NO_UNATTENDED_BOTS'
  | 'PAGE_TOO_LARGE'
  | 'PERMISSION_DENIED'
  | 'RECOMMENDATION_RESOLVED'
  | 'RUNTIME_TOO_OLD'
  | 'RUN_ALREADY_RETRIED'
  | 'RUN_FINISHED'
  | 'RUN_NOT_BLOCKED'
  | 'RUN_NOT_FINISHED'
  | 'RUN_NOT_QUEUED'
  | 'RUN_NOT_RETRIABLE'
  | 'SAME_ENVIRONMENT'
  | 'SHARE_ESCALATION'
  | 'SIGN_IN_NOT_LINKED'
  | 'STALE_ATTEMPT'
  | 'TEAMS_ENVIRONMENT'
  | 'UNAUTHENTICATED'
  | 'USER_DEACTIVATED'
  | 'WRONG_CREDENTIAL_KIND';

/** R42: why a queued run has no estimated start. */
export type EstimateUnknown =
  | 'NO_RUN_HISTORY'
  | 'NO_USABLE_MACHINE';

export type FlowRunFilterInput = {
  connectionId?: InputMaybe<Scalars['ID']['input']>;
  environmentId?: InputMaybe<Scalars['ID']['input']>;
  flowId?: InputMaybe<Scalars['ID']['input']>;
  groupId?: InputMaybe<Scalars['ID']['input']>;
  /** Runs queued for the machine or dispatched to it. */
  machineId?: InputMaybe<Scalars['ID']['input']>;
  /** Runs queued at or after this instant. */
  queuedAfter?: InputMaybe<Scalars['DateTime']['input']>;
  /** Runs queued before this instant. */
  queuedBefore?: InputMaybe<Scalars['DateTime']['input']>;
  status?: InputMaybe<RunStatus>;
  /** Runs this user triggered. */
  triggeredById?: InputMaybe<Scalars['ID']['input']>;
};

export type HeartbeatInput = {
  osEdition: Scalars['String']['input'];
  runtimeVersion: Scalars['String']['input'];
  /** The Windows user sessions on the machine now (R26); they replace the ones reported before. Omit to leave them as they are. */
  sessions?: InputMaybe<Array<UserSessionInput>>;
};

export type MachineFilterInput = {
  environmentId?: InputMaybe<Scalars['ID']['input']>;
  groupId?: InputMaybe<Scalars['ID']['input']>;
  maintenance?: InputMaybe<Scalars['Boolean']['input']>;
  /** R41: true, the machines whose runtime is below their environment's minimum (those that must update); false, the others. */
  runtimeOutdated?: InputMaybe<Scalars['Boolean']['input']>;
  status?: InputMaybe<MachineStatus>;
  /** Matches name or description, case-insensitively. */
  text?: InputMaybe<Scalars['String']['input']>;
};

export type MachineGroupFilterInput = {
  environmentId?: InputMaybe<Scalars['ID']['input']>;
  maintenance?: InputMaybe<Scalars['Boolean']['input']>;
  /** Matches name or description, case-insensitively. */
  text?: InputMaybe<Scalars['String']['input']>;
};

export type MachineStatus =
  | 'CONNECTED'
  | 'DISCONNECTED';

/** At most one of these; none: every machine the caller can see. */
export type MachineStatusFilterInput = {
  environmentId?: InputMaybe<Scalars['ID']['input']>;
  groupId?: InputMaybe<Scalars['ID']['input']>;
  machineId?: InputMaybe<Scalars['ID']['input']>;
};

/** Why the maintenance toggle is refused right now (R10, R18). */
export type MaintenanceLock =
  | 'GROUP_IN_MAINTENANCE'
  | 'KEY_ACTION_REQUIRED';

/** OPEN while a run is blocked; RESOLVED once the list is empty (R33). */
export type RecommendationStatus =
  | 'OPEN'
  | 'RESOLVED';

export type RegisterMachineInput = {
  description?: Scalars['String']['input'];
  environmentId: Scalars['ID']['input'];
  /** R46: the same key from you within 24 hours answers what the first request created, as it is now, and creates nothing new; with another input it is refused (IDEMPOTENCY_KEY_REUSED). 1 to 255 visible ASCII characters: a new UUID per operation, sent again with each retry of it. A replay answers the machine key again (kept sealed for those 24 hours). */
  idempotencyKey?: InputMaybe<Scalars['String']['input']>;
  name: Scalars['String']['input'];
  osEdition: Scalars['String']['input'];
  runtimeVersion: Scalars['String']['input'];
};

export type ReportRunFinishedInput = {
  attempt: Scalars['Int']['input'];
  errorCode?: InputMaybe<Scalars['String']['input']>;
  errorMessage?: InputMaybe<Scalars['String']['input']>;
  /** SUCCEEDED or FAILED. */
  outcome: RunStatus;
  runId: Scalars['ID']['input'];
  /** The runtime's version now: the machine takes it (R7). */
  runtimeVersion?: InputMaybe<Scalars['String']['input']>;
};

/** An action of R12 on a machine or group. */
export type ResourceAction =
  | 'ADD_TO_GROUP'
  | 'DELETE'
  | 'EDIT'
  | 'REGISTER'
  | 'RUN'
  | 'SHARE';

/** R40: endings a retry policy may retry, besides chosen error codes. */
export type RetryEnding =
  | 'MACHINE_LOST'
  | 'QUEUE_TIMEOUT';

/** R40: a retry policy; each field is checked, nothing is kept if one is wrong. */
export type RetryPolicyInput = {
  /** 1 (the same delay each time) to 10. */
  backoffFactor?: Scalars['Float']['input'];
  /** 0 to 86400 (a day). */
  delaySeconds?: Scalars['Int']['input'];
  /** At most 20 codes; FAILED with one of them retries. */
  errorCodes?: Array<Scalars['String']['input']>;
  /** 1 (no retry) to 10: runs a chain may hold before it is no longer retried automatically. */
  maxAttempts: Scalars['Int']['input'];
  retryOn?: Array<RetryEnding>;
};

export type RoleInput = {
  environmentId: Scalars['ID']['input'];
  role: SecurityRole;
  userId: Scalars['ID']['input'];
};

export type RunMode =
  | 'ATTENDED'
  | 'UNATTENDED';

export type RunPriority =
  | 'HIGH'
  | 'NORMAL';

/** R28. */
export type RunStatus =
  | 'CANCELLED'
  | 'DISPATCHED'
  | 'FAILED'
  | 'QUEUED'
  | 'RUNNING'
  | 'SUCCEEDED'
  | 'TIMED_OUT';

export type SecurityRole =
  | 'ENVIRONMENT_ADMIN'
  | 'ENVIRONMENT_MAKER'
  | 'MACHINE_OWNER'
  | 'MACHINE_USER'
  | 'MACHINE_USER_CAN_SHARE';

export type SessionState =
  | 'ACTIVE'
  | 'DISCONNECTED'
  | 'LOCKED';

export type ShareMachineGroupInput = {
  /** CO_OWNER or USER, at most what the caller holds (R14). */
  access: AccessType;
  groupId: Scalars['ID']['input'];
  userId: Scalars['ID']['input'];
};

export type ShareMachineInput = {
  /** CO_OWNER or USER, at most what the caller holds (R14). */
  access: AccessType;
  machineId: Scalars['ID']['input'];
  userId: Scalars['ID']['input'];
};

export type SignInGroupRoleInput = {
  environmentId: Scalars['ID']['input'];
  /** The group as the provider's groups claim names it. */
  group: Scalars['String']['input'];
  role: SecurityRole;
};

/** How a provider's person was first tied to a DeskFleet user: EMAIL, linked to the user with their verified e-mail; PROVISIONED, created at that first sign-in. */
export type SignInMatch =
  | 'EMAIL'
  | 'PROVISIONED';

/** How long each statistics bucket is. */
export type StatisticsBucket =
  | 'DAY'
  | 'HOUR'
  | 'MINUTE';

export type SwitchConnectionToDirectInput = {
  connectionId: Scalars['ID']['input'];
  groupId?: InputMaybe<Scalars['ID']['input']>;
  machineId?: InputMaybe<Scalars['ID']['input']>;
  /** Write-only (R20). */
  password: Scalars['String']['input'];
  windowsUsername: Scalars['String']['input'];
};

export type TriggerRunInput = {
  connectionId: Scalars['ID']['input'];
  flowId: Scalars['ID']['input'];
  /** R46: the same key from you within 24 hours answers what the first request created, as it is now, and creates nothing new; with another input it is refused (IDEMPOTENCY_KEY_REUSED). 1 to 255 visible ASCII characters: a new UUID per operation, sent again with each retry of it. */
  idempotencyKey?: InputMaybe<Scalars['String']['input']>;
  mode: RunMode;
  priority?: RunPriority;
};

export type UpdateConnectionInput = {
  groupId?: InputMaybe<Scalars['ID']['input']>;
  id: Scalars['ID']['input'];
  /** A new target (run access needed, R21); or give groupId. */
  machineId?: InputMaybe<Scalars['ID']['input']>;
  name?: InputMaybe<Scalars['String']['input']>;
  /** Write-only (R20). */
  password?: InputMaybe<Scalars['String']['input']>;
  windowsUsername?: InputMaybe<Scalars['String']['input']>;
};

export type UpdateEnvironmentInput = {
  flowExtensionsVersion?: InputMaybe<Scalars['String']['input']>;
  id: Scalars['ID']['input'];
  maxQueueSeconds?: InputMaybe<Scalars['Int']['input']>;
  /** R41: a dotted version, or "" to take the minimum away. */
  minRuntimeVersion?: InputMaybe<Scalars['String']['input']>;
  name?: InputMaybe<Scalars['String']['input']>;
  recommendationWindowSeconds?: InputMaybe<Scalars['Int']['input']>;
  restrictRegistration?: InputMaybe<Scalars['Boolean']['input']>;
  /** R40: the default for its flows; maxAttempts 1 retries nothing. */
  retryPolicy?: InputMaybe<RetryPolicyInput>;
  sessionRecommendations?: InputMaybe<Scalars['Boolean']['input']>;
  unattendedCapacity?: InputMaybe<Scalars['Int']['input']>;
};

export type UpdateMachineGroupInput = {
  description?: InputMaybe<Scalars['String']['input']>;
  id: Scalars['ID']['input'];
  name?: InputMaybe<Scalars['String']['input']>;
};

export type UpdateMachineInput = {
  description?: InputMaybe<Scalars['String']['input']>;
  id: Scalars['ID']['input'];
  name?: InputMaybe<Scalars['String']['input']>;
};

export type UpdateUserInput = {
  attendedLicence?: InputMaybe<Scalars['Boolean']['input']>;
  displayName?: InputMaybe<Scalars['String']['input']>;
  id: Scalars['ID']['input'];
};

/** What to change; a field left out keeps its value. */
export type UpdateWebhookEndpointInput = {
  description?: InputMaybe<Scalars['String']['input']>;
  eventTypes?: InputMaybe<Array<WebhookEventType>>;
  id: Scalars['ID']['input'];
  offlineMinutes?: InputMaybe<Scalars['Int']['input']>;
  queueDepth?: InputMaybe<Scalars['Int']['input']>;
  url?: InputMaybe<Scalars['String']['input']>;
  waitingMinutes?: InputMaybe<Scalars['Int']['input']>;
};

export type UserSessionInput = {
  state: SessionState;
  username: Scalars['String']['input'];
};

/** R29: why a queued run is not running yet. */
export type WaitReason =
  | 'BEHIND_IN_QUEUE'
  | 'MACHINE_OFFLINE'
  | 'MAINTENANCE'
  | 'NO_ACTIVE_SESSION'
  | 'NO_FREE_BOT'
  | 'NO_MACHINE'
  | 'RETRY_DELAY'
  | 'RUNTIME_OUTDATED'
  | 'SESSION_BUSY'
  | 'USER_SESSION_EXISTS';

export type WebhookDeliveryStatus =
  | 'FAILED'
  | 'PENDING'
  | 'SUCCEEDED';

/** What an endpoint can subscribe to (R43; docs/api.md#webhooks lists each one's data). MACHINE_OFFLINE, RUN_WAITING and QUEUE_DEPTH_EXCEEDED use the endpoint's thresholds. */
export type WebhookEventType =
  | 'MACHINE_MAINTENANCE_CHANGED'
  | 'MACHINE_OFFLINE'
  | 'MACHINE_STATUS_CHANGED'
  | 'QUEUE_DEPTH_EXCEEDED'
  | 'RECOMMENDATION_RAISED'
  | 'RECOMMENDATION_RESOLVED'
  | 'RUN_FINISHED'
  | 'RUN_WAITING';

export type MachinesQueryVariables = Exact<{
  first?: Scalars['Int']['input'];
  after?: InputMaybe<Scalars['String']['input']>;
  filter?: InputMaybe<MachineFilterInput>;
}>;


export type MachinesQuery = { __typename?: 'Query', machines: { __typename?: 'MachineConnection', totalCount: number, pageInfo: { __typename?: 'PageInfo', hasNextPage: boolean, endCursor: string | null }, nodes: Array<{ __typename?: 'Machine', id: string, name: string, description: string, version: string, status: MachineStatus, runningCount: number, queuedCount: number, accessType: AccessType | null, maintenance: boolean, drained: boolean, runtimeOutdated: boolean, group: { __typename?: 'MachineGroup', id: string, name: string } | null, owner: { __typename?: 'User', displayName: string } | null }> } };

export type MachineGroupsQueryVariables = Exact<{
  first?: Scalars['Int']['input'];
  after?: InputMaybe<Scalars['String']['input']>;
}>;


export type MachineGroupsQuery = { __typename?: 'Query', machineGroups: { __typename?: 'MachineGroupConnection', pageInfo: { __typename?: 'PageInfo', hasNextPage: boolean, endCursor: string | null }, nodes: Array<{ __typename?: 'MachineGroup', id: string, name: string, machineCount: number, connectedCount: number, maintenance: boolean, drained: boolean }> } };

export type MachineQueryVariables = Exact<{
  id: Scalars['ID']['input'];
}>;


export type MachineQuery = { __typename?: 'Query', machine: { __typename?: 'Machine', id: string, name: string, description: string, version: string, osEdition: string, status: MachineStatus, lastHeartbeatAt: string | null, unattendedBots: number, maintenance: boolean, maintenanceInherited: boolean, maintenanceLock: MaintenanceLock | null, drained: boolean, allowedActions: Array<ResourceAction>, hasDeactivatedShares: boolean, accessList: Array<{ __typename?: 'AccessEntry', access: AccessType, deactivated: boolean, user: { __typename?: 'User', displayName: string, email: string }, grantedBy: { __typename?: 'User', displayName: string } | null }> | null } | null };

export type SetMachineMaintenanceMutationVariables = Exact<{
  id: Scalars['ID']['input'];
  enabled: Scalars['Boolean']['input'];
}>;


export type SetMachineMaintenanceMutation = { __typename?: 'Mutation', setMachineMaintenance:
    | { __typename: 'AuthenticationError', code: ErrorCode, message: string }
    | { __typename: 'ConflictError', code: ErrorCode, message: string }
    | { __typename: 'MachinePayload', machine: { __typename?: 'Machine', id: string, maintenance: boolean, drained: boolean } }
    | { __typename: 'NotFoundError', code: ErrorCode, message: string }
    | { __typename: 'PermissionDeniedError', code: ErrorCode, message: string }
    | { __typename: 'RuleViolationError', code: ErrorCode, message: string, rule: string | null }
    | { __typename: 'ValidationError', code: ErrorCode, message: string }
   };

export type TriggerRunMutationVariables = Exact<{
  input: TriggerRunInput;
}>;


export type TriggerRunMutation = { __typename?: 'Mutation', triggerRun:
    | { __typename: 'AuthenticationError', code: ErrorCode, message: string }
    | { __typename: 'ConflictError', code: ErrorCode, message: string }
    | { __typename: 'FlowRunPayload', run: { __typename?: 'FlowRun', id: string, status: RunStatus, priority: RunPriority, queuePosition: number | null, waitReason: WaitReason | null } }
    | { __typename: 'NotFoundError', code: ErrorCode, message: string }
    | { __typename: 'PermissionDeniedError', code: ErrorCode, message: string }
    | { __typename: 'RuleViolationError', code: ErrorCode, message: string, rule: string | null }
    | { __typename: 'ValidationError', code: ErrorCode, message: string }
   };

export type FollowRunSubscriptionVariables = Exact<{
  runId: Scalars['ID']['input'];
}>;


export type FollowRunSubscription = { __typename?: 'Subscription', runUpdates: { __typename?: 'RunUpdate', snapshot: boolean, runs: Array<{ __typename?: 'FlowRun', id: string, status: RunStatus, queuePosition: number | null, waitReason: WaitReason | null, estimatedStartAt: string | null, estimatedStartUnknown: EstimateUnknown | null, attempt: number, queuedAt: string, startedAt: string | null, endedAt: string | null, errorCode: string | null, errorMessage: string | null, machine: { __typename?: 'Machine', name: string } | null }> } };

export type RunQueryVariables = Exact<{
  id: Scalars['ID']['input'];
}>;


export type RunQuery = { __typename?: 'Query', run: { __typename?: 'FlowRun', id: string, status: RunStatus, mode: RunMode, priority: RunPriority, runAs: string, queuePosition: number | null, waitReason: WaitReason | null, estimatedStartAt: string | null, waitSeconds: number | null, runSeconds: number | null, errorCode: string | null, errorMessage: string | null, flow: { __typename?: 'DesktopFlow', name: string } | null, machine: { __typename?: 'Machine', name: string } | null, targetMachine: { __typename?: 'Machine', name: string } | null, targetGroup: { __typename?: 'MachineGroup', name: string } | null } | null };

export type MachineQueueQueryVariables = Exact<{
  machineId: Scalars['ID']['input'];
}>;


export type MachineQueueQuery = { __typename?: 'Query', machineQueue: Array<{ __typename?: 'QueueEntry', position: number, waitReason: WaitReason | null, run: { __typename?: 'FlowRun', id: string, priority: RunPriority, runAs: string, queuedAt: string, estimatedStartAt: string | null, flow: { __typename?: 'DesktopFlow', name: string } | null } }> };

export type MoveRunToTopMutationVariables = Exact<{
  id: Scalars['ID']['input'];
}>;


export type MoveRunToTopMutation = { __typename?: 'Mutation', moveRunToTop:
    | { __typename: 'AuthenticationError', code: ErrorCode, message: string }
    | { __typename: 'ConflictError', code: ErrorCode, message: string }
    | { __typename: 'FlowRunPayload', run: { __typename?: 'FlowRun', id: string, queuePosition: number | null } }
    | { __typename: 'NotFoundError', code: ErrorCode, message: string }
    | { __typename: 'PermissionDeniedError', code: ErrorCode, message: string }
    | { __typename: 'RuleViolationError', code: ErrorCode, message: string }
    | { __typename: 'ValidationError', code: ErrorCode, message: string }
   };

export type ChangeRunPriorityMutationVariables = Exact<{
  id: Scalars['ID']['input'];
  priority: RunPriority;
}>;


export type ChangeRunPriorityMutation = { __typename?: 'Mutation', changeRunPriority:
    | { __typename: 'AuthenticationError', code: ErrorCode, message: string }
    | { __typename: 'ConflictError', code: ErrorCode, message: string }
    | { __typename: 'FlowRunPayload', run: { __typename?: 'FlowRun', id: string, priority: RunPriority, queuePosition: number | null } }
    | { __typename: 'NotFoundError', code: ErrorCode, message: string }
    | { __typename: 'PermissionDeniedError', code: ErrorCode, message: string }
    | { __typename: 'RuleViolationError', code: ErrorCode, message: string }
    | { __typename: 'ValidationError', code: ErrorCode, message: string }
   };

export type CancelRunMutationVariables = Exact<{
  id: Scalars['ID']['input'];
}>;


export type CancelRunMutation = { __typename?: 'Mutation', cancelRun:
    | { __typename: 'AuthenticationError', code: ErrorCode, message: string }
    | { __typename: 'ConflictError', code: ErrorCode, message: string }
    | { __typename: 'FlowRunPayload', run: { __typename?: 'FlowRun', id: string, status: RunStatus, errorCode: string | null } }
    | { __typename: 'NotFoundError', code: ErrorCode, message: string }
    | { __typename: 'PermissionDeniedError', code: ErrorCode, message: string }
    | { __typename: 'RuleViolationError', code: ErrorCode, message: string }
    | { __typename: 'ValidationError', code: ErrorCode, message: string }
   };

export type WatchRecommendationsSubscriptionVariables = Exact<{
  environmentId?: InputMaybe<Scalars['ID']['input']>;
}>;


export type WatchRecommendationsSubscription = { __typename?: 'Subscription', sessionRecommendations: { __typename?: 'SessionRecommendationUpdate', snapshot: boolean, removedIds: Array<string>, recommendations: Array<{ __typename?: 'SessionRecommendation', id: string, title: string, status: RecommendationStatus, windowEndsAt: string, windowSecondsLeft: number, affectedRuns: Array<{ __typename?: 'AffectedRun', runId: string }>, runs: Array<{ __typename?: 'AffectedRun', runId: string, username: string, sessionState: SessionState, outcome: AffectedRunOutcome, blockedSeconds: number, disconnectRequestedAt: string | null, machine: { __typename?: 'Machine', name: string } | null, flow: { __typename?: 'DesktopFlow', name: string } | null }> }> } };

export type RecommendationsQueryVariables = Exact<{
  includeResolved?: Scalars['Boolean']['input'];
  everyRecipient?: Scalars['Boolean']['input'];
}>;


export type RecommendationsQuery = { __typename?: 'Query', sessionRecommendations: Array<{ __typename?: 'SessionRecommendation', id: string, title: string, status: RecommendationStatus, windowSecondsLeft: number, affectedRuns: Array<{ __typename?: 'AffectedRun', runId: string, username: string, sessionState: SessionState, machine: { __typename?: 'Machine', name: string } | null }> }> };

export type DisconnectSessionUsersMutationVariables = Exact<{
  id: Scalars['ID']['input'];
  runIds: Array<Scalars['ID']['input']> | Scalars['ID']['input'];
}>;


export type DisconnectSessionUsersMutation = { __typename?: 'Mutation', disconnectSessionUsers:
    | { __typename: 'AuthenticationError', code: ErrorCode, message: string }
    | { __typename: 'ConflictError', code: ErrorCode, message: string }
    | { __typename: 'NotFoundError', code: ErrorCode, message: string }
    | { __typename: 'PermissionDeniedError', code: ErrorCode, message: string }
    | { __typename: 'RuleViolationError', code: ErrorCode, message: string }
    | { __typename: 'SessionRecommendationPayload', recommendation: { __typename?: 'SessionRecommendation', id: string, status: RecommendationStatus, runs: Array<{ __typename?: 'AffectedRun', runId: string, outcome: AffectedRunOutcome, disconnectRequestedAt: string | null }> } }
    | { __typename: 'ValidationError', code: ErrorCode, message: string }
   };

export type RefreshSessionRecommendationMutationVariables = Exact<{
  id: Scalars['ID']['input'];
}>;


export type RefreshSessionRecommendationMutation = { __typename?: 'Mutation', refreshSessionRecommendation:
    | { __typename: 'AuthenticationError', code: ErrorCode, message: string }
    | { __typename: 'ConflictError', code: ErrorCode, message: string }
    | { __typename: 'NotFoundError', code: ErrorCode, message: string }
    | { __typename: 'PermissionDeniedError', code: ErrorCode, message: string }
    | { __typename: 'RuleViolationError', code: ErrorCode, message: string }
    | { __typename: 'SessionRecommendationPayload', recommendation: { __typename?: 'SessionRecommendation', id: string, status: RecommendationStatus, affectedRuns: Array<{ __typename?: 'AffectedRun', runId: string }> } }
    | { __typename: 'ValidationError', code: ErrorCode, message: string }
   };

export type FleetStatisticsQueryVariables = Exact<{
  environmentId: Scalars['ID']['input'];
  from: Scalars['DateTime']['input'];
  to: Scalars['DateTime']['input'];
  bucket: StatisticsBucket;
  machines?: InputMaybe<Scalars['Int']['input']>;
}>;


export type FleetStatisticsQuery = { __typename?: 'Query', fleetStatistics:
    | { __typename: 'AuthenticationError', code: ErrorCode, message: string }
    | { __typename: 'ConflictError', code: ErrorCode, message: string }
    | { __typename: 'FleetStatistics', from: string, to: string, bucket: StatisticsBucket, utilisationBucket: StatisticsBucket, utilisationStarts: Array<string>, environment: { __typename?: 'Environment', name: string }, buckets: Array<{ __typename?: 'StatisticsPeriod', start: string, runsStarted: number, runsSucceeded: number, runsFailed: number, runsTimedOut: number, runsCancelled: number, waitSecondsP50: number | null, waitSecondsP90: number | null, waitSecondsP99: number | null, queueDepthMean: number | null, queueDepthPeak: number | null, runningMean: number | null, runningPeak: number | null, machinesConnectedMean: number | null }>, machines: Array<{ __typename?: 'Utilisation', id: string, name: string, unattendedBots: number, busyShare: Array<number> }>, groups: Array<{ __typename?: 'Utilisation', id: string, name: string, busyShare: Array<number> }> }
    | { __typename: 'NotFoundError', code: ErrorCode, message: string }
    | { __typename: 'PermissionDeniedError', code: ErrorCode, message: string }
    | { __typename: 'RuleViolationError', code: ErrorCode, message: string }
    | { __typename: 'ValidationError', code: ErrorCode, message: string, field: string | null }
   };

export type EnvironmentsQueryVariables = Exact<{ [key: string]: never; }>;


export type EnvironmentsQuery = { __typename?: 'Query', environments: Array<{ __typename?: 'Environment', id: string, name: string }> };

export type WatchFleetSubscriptionVariables = Exact<{
  filter?: InputMaybe<MachineStatusFilterInput>;
}>;


export type WatchFleetSubscription = { __typename?: 'Subscription', machineStatus: { __typename?: 'MachineStatusUpdate', snapshot: boolean, removedIds: Array<string>, machines: Array<{ __typename?: 'MachineLiveStatus', machineId: string, name: string, groupId: string | null, status: MachineStatus, maintenance: boolean, drained: boolean, runningCount: number, queuedCount: number, version: string }> } };

export type WatchQueueDepthSubscriptionVariables = Exact<{
  machineId?: InputMaybe<Scalars['ID']['input']>;
  groupId?: InputMaybe<Scalars['ID']['input']>;
}>;


export type WatchQueueDepthSubscription = { __typename?: 'Subscription', queueDepth: { __typename?: 'QueueDepth', machineId: string | null, groupId: string | null, depth: number, oldestWaitSeconds: number | null, byPriority: Array<{ __typename?: 'PriorityCount', priority: RunPriority, count: number }> } };


export const MachinesDocument = {"kind":"Document","definitions":[{"kind":"OperationDefinition","operation":"query","name":{"kind":"Name","value":"Machines"},"variableDefinitions":[{"kind":"VariableDefinition","variable":{"kind":"Variable","name":{"kind":"Name","value":"first"}},"type":{"kind":"NonNullType","type":{"kind":"NamedType","name":{"kind":"Name","value":"Int"}}},"defaultValue":{"kind":"IntValue","value":"50"}},{"kind":"VariableDefinition","variable":{"kind":"Variable","name":{"kind":"Name","value":"after"}},"type":{"kind":"NamedType","name":{"kind":"Name","value":"String"}}},{"kind":"VariableDefinition","variable":{"kind":"Variable","name":{"kind":"Name","value":"filter"}},"type":{"kind":"NamedType","name":{"kind":"Name","value":"MachineFilterInput"}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"machines"},"arguments":[{"kind":"Argument","name":{"kind":"Name","value":"first"},"value":{"kind":"Variable","name":{"kind":"Name","value":"first"}}},{"kind":"Argument","name":{"kind":"Name","value":"after"},"value":{"kind":"Variable","name":{"kind":"Name","value":"after"}}},{"kind":"Argument","name":{"kind":"Name","value":"filter"},"value":{"kind":"Variable","name":{"kind":"Name","value":"filter"}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"totalCount"}},{"kind":"Field","name":{"kind":"Name","value":"pageInfo"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"hasNextPage"}},{"kind":"Field","name":{"kind":"Name","value":"endCursor"}}]}},{"kind":"Field","name":{"kind":"Name","value":"nodes"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"id"}},{"kind":"Field","name":{"kind":"Name","value":"name"}},{"kind":"Field","name":{"kind":"Name","value":"description"}},{"kind":"Field","name":{"kind":"Name","value":"version"}},{"kind":"Field","name":{"kind":"Name","value":"group"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"id"}},{"kind":"Field","name":{"kind":"Name","value":"name"}}]}},{"kind":"Field","name":{"kind":"Name","value":"status"}},{"kind":"Field","name":{"kind":"Name","value":"runningCount"}},{"kind":"Field","name":{"kind":"Name","value":"queuedCount"}},{"kind":"Field","name":{"kind":"Name","value":"accessType"}},{"kind":"Field","name":{"kind":"Name","value":"owner"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"displayName"}}]}},{"kind":"Field","name":{"kind":"Name","value":"maintenance"}},{"kind":"Field","name":{"kind":"Name","value":"drained"}},{"kind":"Field","name":{"kind":"Name","value":"runtimeOutdated"}}]}}]}}]}}]} as unknown as DocumentNode<MachinesQuery, MachinesQueryVariables>;
export const MachineGroupsDocument = {"kind":"Document","definitions":[{"kind":"OperationDefinition","operation":"query","name":{"kind":"Name","value":"MachineGroups"},"variableDefinitions":[{"kind":"VariableDefinition","variable":{"kind":"Variable","name":{"kind":"Name","value":"first"}},"type":{"kind":"NonNullType","type":{"kind":"NamedType","name":{"kind":"Name","value":"Int"}}},"defaultValue":{"kind":"IntValue","value":"100"}},{"kind":"VariableDefinition","variable":{"kind":"Variable","name":{"kind":"Name","value":"after"}},"type":{"kind":"NamedType","name":{"kind":"Name","value":"String"}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"machineGroups"},"arguments":[{"kind":"Argument","name":{"kind":"Name","value":"first"},"value":{"kind":"Variable","name":{"kind":"Name","value":"first"}}},{"kind":"Argument","name":{"kind":"Name","value":"after"},"value":{"kind":"Variable","name":{"kind":"Name","value":"after"}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"pageInfo"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"hasNextPage"}},{"kind":"Field","name":{"kind":"Name","value":"endCursor"}}]}},{"kind":"Field","name":{"kind":"Name","value":"nodes"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"id"}},{"kind":"Field","name":{"kind":"Name","value":"name"}},{"kind":"Field","name":{"kind":"Name","value":"machineCount"}},{"kind":"Field","name":{"kind":"Name","value":"connectedCount"}},{"kind":"Field","name":{"kind":"Name","value":"maintenance"}},{"kind":"Field","name":{"kind":"Name","value":"drained"}}]}}]}}]}}]} as unknown as DocumentNode<MachineGroupsQuery, MachineGroupsQueryVariables>;
export const MachineDocument = {"kind":"Document","definitions":[{"kind":"OperationDefinition","operation":"query","name":{"kind":"Name","value":"Machine"},"variableDefinitions":[{"kind":"VariableDefinition","variable":{"kind":"Variable","name":{"kind":"Name","value":"id"}},"type":{"kind":"NonNullType","type":{"kind":"NamedType","name":{"kind":"Name","value":"ID"}}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"machine"},"arguments":[{"kind":"Argument","name":{"kind":"Name","value":"id"},"value":{"kind":"Variable","name":{"kind":"Name","value":"id"}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"id"}},{"kind":"Field","name":{"kind":"Name","value":"name"}},{"kind":"Field","name":{"kind":"Name","value":"description"}},{"kind":"Field","name":{"kind":"Name","value":"version"}},{"kind":"Field","name":{"kind":"Name","value":"osEdition"}},{"kind":"Field","name":{"kind":"Name","value":"status"}},{"kind":"Field","name":{"kind":"Name","value":"lastHeartbeatAt"}},{"kind":"Field","name":{"kind":"Name","value":"unattendedBots"}},{"kind":"Field","name":{"kind":"Name","value":"maintenance"}},{"kind":"Field","name":{"kind":"Name","value":"maintenanceInherited"}},{"kind":"Field","name":{"kind":"Name","value":"maintenanceLock"}},{"kind":"Field","name":{"kind":"Name","value":"drained"}},{"kind":"Field","name":{"kind":"Name","value":"allowedActions"}},{"kind":"Field","name":{"kind":"Name","value":"hasDeactivatedShares"}},{"kind":"Field","name":{"kind":"Name","value":"accessList"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"user"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"displayName"}},{"kind":"Field","name":{"kind":"Name","value":"email"}}]}},{"kind":"Field","name":{"kind":"Name","value":"access"}},{"kind":"Field","name":{"kind":"Name","value":"deactivated"}},{"kind":"Field","name":{"kind":"Name","value":"grantedBy"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"displayName"}}]}}]}}]}}]}}]} as unknown as DocumentNode<MachineQuery, MachineQueryVariables>;
export const SetMachineMaintenanceDocument = {"kind":"Document","definitions":[{"kind":"OperationDefinition","operation":"mutation","name":{"kind":"Name","value":"SetMachineMaintenance"},"variableDefinitions":[{"kind":"VariableDefinition","variable":{"kind":"Variable","name":{"kind":"Name","value":"id"}},"type":{"kind":"NonNullType","type":{"kind":"NamedType","name":{"kind":"Name","value":"ID"}}}},{"kind":"VariableDefinition","variable":{"kind":"Variable","name":{"kind":"Name","value":"enabled"}},"type":{"kind":"NonNullType","type":{"kind":"NamedType","name":{"kind":"Name","value":"Boolean"}}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"setMachineMaintenance"},"arguments":[{"kind":"Argument","name":{"kind":"Name","value":"id"},"value":{"kind":"Variable","name":{"kind":"Name","value":"id"}}},{"kind":"Argument","name":{"kind":"Name","value":"enabled"},"value":{"kind":"Variable","name":{"kind":"Name","value":"enabled"}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"__typename"}},{"kind":"InlineFragment","typeCondition":{"kind":"NamedType","name":{"kind":"Name","value":"MachinePayload"}},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"machine"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"id"}},{"kind":"Field","name":{"kind":"Name","value":"maintenance"}},{"kind":"Field","name":{"kind":"Name","value":"drained"}}]}}]}},{"kind":"InlineFragment","typeCondition":{"kind":"NamedType","name":{"kind":"Name","value":"UserError"}},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"code"}},{"kind":"Field","name":{"kind":"Name","value":"message"}}]}},{"kind":"InlineFragment","typeCondition":{"kind":"NamedType","name":{"kind":"Name","value":"RuleViolationError"}},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"rule"}}]}}]}}]}}]} as unknown as DocumentNode<SetMachineMaintenanceMutation, SetMachineMaintenanceMutationVariables>;
export const TriggerRunDocument = {"kind":"Document","definitions":[{"kind":"OperationDefinition","operation":"mutation","name":{"kind":"Name","value":"TriggerRun"},"variableDefinitions":[{"kind":"VariableDefinition","variable":{"kind":"Variable","name":{"kind":"Name","value":"input"}},"type":{"kind":"NonNullType","type":{"kind":"NamedType","name":{"kind":"Name","value":"TriggerRunInput"}}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"triggerRun"},"arguments":[{"kind":"Argument","name":{"kind":"Name","value":"input"},"value":{"kind":"Variable","name":{"kind":"Name","value":"input"}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"__typename"}},{"kind":"InlineFragment","typeCondition":{"kind":"NamedType","name":{"kind":"Name","value":"FlowRunPayload"}},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"run"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"id"}},{"kind":"Field","name":{"kind":"Name","value":"status"}},{"kind":"Field","name":{"kind":"Name","value":"priority"}},{"kind":"Field","name":{"kind":"Name","value":"queuePosition"}},{"kind":"Field","name":{"kind":"Name","value":"waitReason"}}]}}]}},{"kind":"InlineFragment","typeCondition":{"kind":"NamedType","name":{"kind":"Name","value":"UserError"}},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"code"}},{"kind":"Field","name":{"kind":"Name","value":"message"}}]}},{"kind":"InlineFragment","typeCondition":{"kind":"NamedType","name":{"kind":"Name","value":"RuleViolationError"}},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"rule"}}]}}]}}]}}]} as unknown as DocumentNode<TriggerRunMutation, TriggerRunMutationVariables>;
export const FollowRunDocument = {"kind":"Document","definitions":[{"kind":"OperationDefinition","operation":"subscription","name":{"kind":"Name","value":"FollowRun"},"variableDefinitions":[{"kind":"VariableDefinition","variable":{"kind":"Variable","name":{"kind":"Name","value":"runId"}},"type":{"kind":"NonNullType","type":{"kind":"NamedType","name":{"kind":"Name","value":"ID"}}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"runUpdates"},"arguments":[{"kind":"Argument","name":{"kind":"Name","value":"runId"},"value":{"kind":"Variable","name":{"kind":"Name","value":"runId"}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"snapshot"}},{"kind":"Field","name":{"kind":"Name","value":"runs"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"id"}},{"kind":"Field","name":{"kind":"Name","value":"status"}},{"kind":"Field","name":{"kind":"Name","value":"queuePosition"}},{"kind":"Field","name":{"kind":"Name","value":"waitReason"}},{"kind":"Field","name":{"kind":"Name","value":"estimatedStartAt"}},{"kind":"Field","name":{"kind":"Name","value":"estimatedStartUnknown"}},{"kind":"Field","name":{"kind":"Name","value":"attempt"}},{"kind":"Field","name":{"kind":"Name","value":"queuedAt"}},{"kind":"Field","name":{"kind":"Name","value":"startedAt"}},{"kind":"Field","name":{"kind":"Name","value":"endedAt"}},{"kind":"Field","name":{"kind":"Name","value":"errorCode"}},{"kind":"Field","name":{"kind":"Name","value":"errorMessage"}},{"kind":"Field","name":{"kind":"Name","value":"machine"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"name"}}]}}]}}]}}]}}]} as unknown as DocumentNode<FollowRunSubscription, FollowRunSubscriptionVariables>;
export const RunDocument = {"kind":"Document","definitions":[{"kind":"OperationDefinition","operation":"query","name":{"kind":"Name","value":"Run"},"variableDefinitions":[{"kind":"VariableDefinition","variable":{"kind":"Variable","name":{"kind":"Name","value":"id"}},"type":{"kind":"NonNullType","type":{"kind":"NamedType","name":{"kind":"Name","value":"ID"}}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"run"},"arguments":[{"kind":"Argument","name":{"kind":"Name","value":"id"},"value":{"kind":"Variable","name":{"kind":"Name","value":"id"}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"id"}},{"kind":"Field","name":{"kind":"Name","value":"status"}},{"kind":"Field","name":{"kind":"Name","value":"mode"}},{"kind":"Field","name":{"kind":"Name","value":"priority"}},{"kind":"Field","name":{"kind":"Name","value":"runAs"}},{"kind":"Field","name":{"kind":"Name","value":"queuePosition"}},{"kind":"Field","name":{"kind":"Name","value":"waitReason"}},{"kind":"Field","name":{"kind":"Name","value":"estimatedStartAt"}},{"kind":"Field","name":{"kind":"Name","value":"waitSeconds"}},{"kind":"Field","name":{"kind":"Name","value":"runSeconds"}},{"kind":"Field","name":{"kind":"Name","value":"errorCode"}},{"kind":"Field","name":{"kind":"Name","value":"errorMessage"}},{"kind":"Field","name":{"kind":"Name","value":"flow"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"name"}}]}},{"kind":"Field","name":{"kind":"Name","value":"machine"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"name"}}]}},{"kind":"Field","name":{"kind":"Name","value":"targetMachine"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"name"}}]}},{"kind":"Field","name":{"kind":"Name","value":"targetGroup"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"name"}}]}}]}}]}}]} as unknown as DocumentNode<RunQuery, RunQueryVariables>;
export const MachineQueueDocument = {"kind":"Document","definitions":[{"kind":"OperationDefinition","operation":"query","name":{"kind":"Name","value":"MachineQueue"},"variableDefinitions":[{"kind":"VariableDefinition","variable":{"kind":"Variable","name":{"kind":"Name","value":"machineId"}},"type":{"kind":"NonNullType","type":{"kind":"NamedType","name":{"kind":"Name","value":"ID"}}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"machineQueue"},"arguments":[{"kind":"Argument","name":{"kind":"Name","value":"machineId"},"value":{"kind":"Variable","name":{"kind":"Name","value":"machineId"}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"position"}},{"kind":"Field","name":{"kind":"Name","value":"waitReason"}},{"kind":"Field","name":{"kind":"Name","value":"run"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"id"}},{"kind":"Field","name":{"kind":"Name","value":"priority"}},{"kind":"Field","name":{"kind":"Name","value":"runAs"}},{"kind":"Field","name":{"kind":"Name","value":"queuedAt"}},{"kind":"Field","name":{"kind":"Name","value":"estimatedStartAt"}},{"kind":"Field","name":{"kind":"Name","value":"flow"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"name"}}]}}]}}]}}]}}]} as unknown as DocumentNode<MachineQueueQuery, MachineQueueQueryVariables>;
export const MoveRunToTopDocument = {"kind":"Document","definitions":[{"kind":"OperationDefinition","operation":"mutation","name":{"kind":"Name","value":"MoveRunToTop"},"variableDefinitions":[{"kind":"VariableDefinition","variable":{"kind":"Variable","name":{"kind":"Name","value":"id"}},"type":{"kind":"NonNullType","type":{"kind":"NamedType","name":{"kind":"Name","value":"ID"}}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"moveRunToTop"},"arguments":[{"kind":"Argument","name":{"kind":"Name","value":"id"},"value":{"kind":"Variable","name":{"kind":"Name","value":"id"}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"__typename"}},{"kind":"InlineFragment","typeCondition":{"kind":"NamedType","name":{"kind":"Name","value":"FlowRunPayload"}},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"run"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"id"}},{"kind":"Field","name":{"kind":"Name","value":"queuePosition"}}]}}]}},{"kind":"InlineFragment","typeCondition":{"kind":"NamedType","name":{"kind":"Name","value":"UserError"}},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"code"}},{"kind":"Field","name":{"kind":"Name","value":"message"}}]}}]}}]}}]} as unknown as DocumentNode<MoveRunToTopMutation, MoveRunToTopMutationVariables>;
export const ChangeRunPriorityDocument = {"kind":"Document","definitions":[{"kind":"OperationDefinition","operation":"mutation","name":{"kind":"Name","value":"ChangeRunPriority"},"variableDefinitions":[{"kind":"VariableDefinition","variable":{"kind":"Variable","name":{"kind":"Name","value":"id"}},"type":{"kind":"NonNullType","type":{"kind":"NamedType","name":{"kind":"Name","value":"ID"}}}},{"kind":"VariableDefinition","variable":{"kind":"Variable","name":{"kind":"Name","value":"priority"}},"type":{"kind":"NonNullType","type":{"kind":"NamedType","name":{"kind":"Name","value":"RunPriority"}}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"changeRunPriority"},"arguments":[{"kind":"Argument","name":{"kind":"Name","value":"id"},"value":{"kind":"Variable","name":{"kind":"Name","value":"id"}}},{"kind":"Argument","name":{"kind":"Name","value":"priority"},"value":{"kind":"Variable","name":{"kind":"Name","value":"priority"}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"__typename"}},{"kind":"InlineFragment","typeCondition":{"kind":"NamedType","name":{"kind":"Name","value":"FlowRunPayload"}},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"run"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"id"}},{"kind":"Field","name":{"kind":"Name","value":"priority"}},{"kind":"Field","name":{"kind":"Name","value":"queuePosition"}}]}}]}},{"kind":"InlineFragment","typeCondition":{"kind":"NamedType","name":{"kind":"Name","value":"UserError"}},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"code"}},{"kind":"Field","name":{"kind":"Name","value":"message"}}]}}]}}]}}]} as unknown as DocumentNode<ChangeRunPriorityMutation, ChangeRunPriorityMutationVariables>;
export const CancelRunDocument = {"kind":"Document","definitions":[{"kind":"OperationDefinition","operation":"mutation","name":{"kind":"Name","value":"CancelRun"},"variableDefinitions":[{"kind":"VariableDefinition","variable":{"kind":"Variable","name":{"kind":"Name","value":"id"}},"type":{"kind":"NonNullType","type":{"kind":"NamedType","name":{"kind":"Name","value":"ID"}}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"cancelRun"},"arguments":[{"kind":"Argument","name":{"kind":"Name","value":"id"},"value":{"kind":"Variable","name":{"kind":"Name","value":"id"}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"__typename"}},{"kind":"InlineFragment","typeCondition":{"kind":"NamedType","name":{"kind":"Name","value":"FlowRunPayload"}},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"run"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"id"}},{"kind":"Field","name":{"kind":"Name","value":"status"}},{"kind":"Field","name":{"kind":"Name","value":"errorCode"}}]}}]}},{"kind":"InlineFragment","typeCondition":{"kind":"NamedType","name":{"kind":"Name","value":"UserError"}},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"code"}},{"kind":"Field","name":{"kind":"Name","value":"message"}}]}}]}}]}}]} as unknown as DocumentNode<CancelRunMutation, CancelRunMutationVariables>;
export const WatchRecommendationsDocument = {"kind":"Document","definitions":[{"kind":"OperationDefinition","operation":"subscription","name":{"kind":"Name","value":"WatchRecommendations"},"variableDefinitions":[{"kind":"VariableDefinition","variable":{"kind":"Variable","name":{"kind":"Name","value":"environmentId"}},"type":{"kind":"NamedType","name":{"kind":"Name","value":"ID"}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"sessionRecommendations"},"arguments":[{"kind":"Argument","name":{"kind":"Name","value":"environmentId"},"value":{"kind":"Variable","name":{"kind":"Name","value":"environmentId"}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"snapshot"}},{"kind":"Field","name":{"kind":"Name","value":"removedIds"}},{"kind":"Field","name":{"kind":"Name","value":"recommendations"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"id"}},{"kind":"Field","name":{"kind":"Name","value":"title"}},{"kind":"Field","name":{"kind":"Name","value":"status"}},{"kind":"Field","name":{"kind":"Name","value":"windowEndsAt"}},{"kind":"Field","name":{"kind":"Name","value":"windowSecondsLeft"}},{"kind":"Field","name":{"kind":"Name","value":"affectedRuns"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"runId"}}]}},{"kind":"Field","name":{"kind":"Name","value":"runs"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"runId"}},{"kind":"Field","name":{"kind":"Name","value":"username"}},{"kind":"Field","name":{"kind":"Name","value":"sessionState"}},{"kind":"Field","name":{"kind":"Name","value":"outcome"}},{"kind":"Field","name":{"kind":"Name","value":"blockedSeconds"}},{"kind":"Field","name":{"kind":"Name","value":"disconnectRequestedAt"}},{"kind":"Field","name":{"kind":"Name","value":"machine"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"name"}}]}},{"kind":"Field","name":{"kind":"Name","value":"flow"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"name"}}]}}]}}]}}]}}]}}]} as unknown as DocumentNode<WatchRecommendationsSubscription, WatchRecommendationsSubscriptionVariables>;
export const RecommendationsDocument = {"kind":"Document","definitions":[{"kind":"OperationDefinition","operation":"query","name":{"kind":"Name","value":"Recommendations"},"variableDefinitions":[{"kind":"VariableDefinition","variable":{"kind":"Variable","name":{"kind":"Name","value":"includeResolved"}},"type":{"kind":"NonNullType","type":{"kind":"NamedType","name":{"kind":"Name","value":"Boolean"}}},"defaultValue":{"kind":"BooleanValue","value":false}},{"kind":"VariableDefinition","variable":{"kind":"Variable","name":{"kind":"Name","value":"everyRecipient"}},"type":{"kind":"NonNullType","type":{"kind":"NamedType","name":{"kind":"Name","value":"Boolean"}}},"defaultValue":{"kind":"BooleanValue","value":false}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"sessionRecommendations"},"arguments":[{"kind":"Argument","name":{"kind":"Name","value":"includeResolved"},"value":{"kind":"Variable","name":{"kind":"Name","value":"includeResolved"}}},{"kind":"Argument","name":{"kind":"Name","value":"everyRecipient"},"value":{"kind":"Variable","name":{"kind":"Name","value":"everyRecipient"}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"id"}},{"kind":"Field","name":{"kind":"Name","value":"title"}},{"kind":"Field","name":{"kind":"Name","value":"status"}},{"kind":"Field","name":{"kind":"Name","value":"windowSecondsLeft"}},{"kind":"Field","name":{"kind":"Name","value":"affectedRuns"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"runId"}},{"kind":"Field","name":{"kind":"Name","value":"username"}},{"kind":"Field","name":{"kind":"Name","value":"sessionState"}},{"kind":"Field","name":{"kind":"Name","value":"machine"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"name"}}]}}]}}]}}]}}]} as unknown as DocumentNode<RecommendationsQuery, RecommendationsQueryVariables>;
export const DisconnectSessionUsersDocument = {"kind":"Document","definitions":[{"kind":"OperationDefinition","operation":"mutation","name":{"kind":"Name","value":"DisconnectSessionUsers"},"variableDefinitions":[{"kind":"VariableDefinition","variable":{"kind":"Variable","name":{"kind":"Name","value":"id"}},"type":{"kind":"NonNullType","type":{"kind":"NamedType","name":{"kind":"Name","value":"ID"}}}},{"kind":"VariableDefinition","variable":{"kind":"Variable","name":{"kind":"Name","value":"runIds"}},"type":{"kind":"NonNullType","type":{"kind":"ListType","type":{"kind":"NonNullType","type":{"kind":"NamedType","name":{"kind":"Name","value":"ID"}}}}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"disconnectSessionUsers"},"arguments":[{"kind":"Argument","name":{"kind":"Name","value":"recommendationId"},"value":{"kind":"Variable","name":{"kind":"Name","value":"id"}}},{"kind":"Argument","name":{"kind":"Name","value":"runIds"},"value":{"kind":"Variable","name":{"kind":"Name","value":"runIds"}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"__typename"}},{"kind":"InlineFragment","typeCondition":{"kind":"NamedType","name":{"kind":"Name","value":"SessionRecommendationPayload"}},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"recommendation"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"id"}},{"kind":"Field","name":{"kind":"Name","value":"status"}},{"kind":"Field","name":{"kind":"Name","value":"runs"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"runId"}},{"kind":"Field","name":{"kind":"Name","value":"outcome"}},{"kind":"Field","name":{"kind":"Name","value":"disconnectRequestedAt"}}]}}]}}]}},{"kind":"InlineFragment","typeCondition":{"kind":"NamedType","name":{"kind":"Name","value":"UserError"}},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"code"}},{"kind":"Field","name":{"kind":"Name","value":"message"}}]}}]}}]}}]} as unknown as DocumentNode<DisconnectSessionUsersMutation, DisconnectSessionUsersMutationVariables>;
export const RefreshSessionRecommendationDocument = {"kind":"Document","definitions":[{"kind":"OperationDefinition","operation":"mutation","name":{"kind":"Name","value":"RefreshSessionRecommendation"},"variableDefinitions":[{"kind":"VariableDefinition","variable":{"kind":"Variable","name":{"kind":"Name","value":"id"}},"type":{"kind":"NonNullType","type":{"kind":"NamedType","name":{"kind":"Name","value":"ID"}}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"refreshSessionRecommendation"},"arguments":[{"kind":"Argument","name":{"kind":"Name","value":"id"},"value":{"kind":"Variable","name":{"kind":"Name","value":"id"}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"__typename"}},{"kind":"InlineFragment","typeCondition":{"kind":"NamedType","name":{"kind":"Name","value":"SessionRecommendationPayload"}},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"recommendation"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"id"}},{"kind":"Field","name":{"kind":"Name","value":"status"}},{"kind":"Field","name":{"kind":"Name","value":"affectedRuns"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"runId"}}]}}]}}]}},{"kind":"InlineFragment","typeCondition":{"kind":"NamedType","name":{"kind":"Name","value":"UserError"}},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"code"}},{"kind":"Field","name":{"kind":"Name","value":"message"}}]}}]}}]}}]} as unknown as DocumentNode<RefreshSessionRecommendationMutation, RefreshSessionRecommendationMutationVariables>;
export const FleetStatisticsDocument = {"kind":"Document","definitions":[{"kind":"OperationDefinition","operation":"query","name":{"kind":"Name","value":"FleetStatistics"},"variableDefinitions":[{"kind":"VariableDefinition","variable":{"kind":"Variable","name":{"kind":"Name","value":"environmentId"}},"type":{"kind":"NonNullType","type":{"kind":"NamedType","name":{"kind":"Name","value":"ID"}}}},{"kind":"VariableDefinition","variable":{"kind":"Variable","name":{"kind":"Name","value":"from"}},"type":{"kind":"NonNullType","type":{"kind":"NamedType","name":{"kind":"Name","value":"DateTime"}}}},{"kind":"VariableDefinition","variable":{"kind":"Variable","name":{"kind":"Name","value":"to"}},"type":{"kind":"NonNullType","type":{"kind":"NamedType","name":{"kind":"Name","value":"DateTime"}}}},{"kind":"VariableDefinition","variable":{"kind":"Variable","name":{"kind":"Name","value":"bucket"}},"type":{"kind":"NonNullType","type":{"kind":"NamedType","name":{"kind":"Name","value":"StatisticsBucket"}}}},{"kind":"VariableDefinition","variable":{"kind":"Variable","name":{"kind":"Name","value":"machines"}},"type":{"kind":"NamedType","name":{"kind":"Name","value":"Int"}},"defaultValue":{"kind":"IntValue","value":"10"}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"fleetStatistics"},"arguments":[{"kind":"Argument","name":{"kind":"Name","value":"environmentId"},"value":{"kind":"Variable","name":{"kind":"Name","value":"environmentId"}}},{"kind":"Argument","name":{"kind":"Name","value":"from"},"value":{"kind":"Variable","name":{"kind":"Name","value":"from"}}},{"kind":"Argument","name":{"kind":"Name","value":"to"},"value":{"kind":"Variable","name":{"kind":"Name","value":"to"}}},{"kind":"Argument","name":{"kind":"Name","value":"bucket"},"value":{"kind":"Variable","name":{"kind":"Name","value":"bucket"}}},{"kind":"Argument","name":{"kind":"Name","value":"machines"},"value":{"kind":"Variable","name":{"kind":"Name","value":"machines"}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"__typename"}},{"kind":"InlineFragment","typeCondition":{"kind":"NamedType","name":{"kind":"Name","value":"FleetStatistics"}},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"from"}},{"kind":"Field","name":{"kind":"Name","value":"to"}},{"kind":"Field","name":{"kind":"Name","value":"bucket"}},{"kind":"Field","name":{"kind":"Name","value":"environment"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"name"}}]}},{"kind":"Field","name":{"kind":"Name","value":"buckets"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"start"}},{"kind":"Field","name":{"kind":"Name","value":"runsStarted"}},{"kind":"Field","name":{"kind":"Name","value":"runsSucceeded"}},{"kind":"Field","name":{"kind":"Name","value":"runsFailed"}},{"kind":"Field","name":{"kind":"Name","value":"runsTimedOut"}},{"kind":"Field","name":{"kind":"Name","value":"runsCancelled"}},{"kind":"Field","name":{"kind":"Name","value":"waitSecondsP50"}},{"kind":"Field","name":{"kind":"Name","value":"waitSecondsP90"}},{"kind":"Field","name":{"kind":"Name","value":"waitSecondsP99"}},{"kind":"Field","name":{"kind":"Name","value":"queueDepthMean"}},{"kind":"Field","name":{"kind":"Name","value":"queueDepthPeak"}},{"kind":"Field","name":{"kind":"Name","value":"runningMean"}},{"kind":"Field","name":{"kind":"Name","value":"runningPeak"}},{"kind":"Field","name":{"kind":"Name","value":"machinesConnectedMean"}}]}},{"kind":"Field","name":{"kind":"Name","value":"utilisationBucket"}},{"kind":"Field","name":{"kind":"Name","value":"utilisationStarts"}},{"kind":"Field","name":{"kind":"Name","value":"machines"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"id"}},{"kind":"Field","name":{"kind":"Name","value":"name"}},{"kind":"Field","name":{"kind":"Name","value":"unattendedBots"}},{"kind":"Field","name":{"kind":"Name","value":"busyShare"}}]}},{"kind":"Field","name":{"kind":"Name","value":"groups"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"id"}},{"kind":"Field","name":{"kind":"Name","value":"name"}},{"kind":"Field","name":{"kind":"Name","value":"busyShare"}}]}}]}},{"kind":"InlineFragment","typeCondition":{"kind":"NamedType","name":{"kind":"Name","value":"UserError"}},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"code"}},{"kind":"Field","name":{"kind":"Name","value":"message"}}]}},{"kind":"InlineFragment","typeCondition":{"kind":"NamedType","name":{"kind":"Name","value":"ValidationError"}},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"field"}}]}}]}}]}}]} as unknown as DocumentNode<FleetStatisticsQuery, FleetStatisticsQueryVariables>;
export const EnvironmentsDocument = {"kind":"Document","definitions":[{"kind":"OperationDefinition","operation":"query","name":{"kind":"Name","value":"Environments"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"environments"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"id"}},{"kind":"Field","name":{"kind":"Name","value":"name"}}]}}]}}]} as unknown as DocumentNode<EnvironmentsQuery, EnvironmentsQueryVariables>;
export const WatchFleetDocument = {"kind":"Document","definitions":[{"kind":"OperationDefinition","operation":"subscription","name":{"kind":"Name","value":"WatchFleet"},"variableDefinitions":[{"kind":"VariableDefinition","variable":{"kind":"Variable","name":{"kind":"Name","value":"filter"}},"type":{"kind":"NamedType","name":{"kind":"Name","value":"MachineStatusFilterInput"}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"machineStatus"},"arguments":[{"kind":"Argument","name":{"kind":"Name","value":"filter"},"value":{"kind":"Variable","name":{"kind":"Name","value":"filter"}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"snapshot"}},{"kind":"Field","name":{"kind":"Name","value":"removedIds"}},{"kind":"Field","name":{"kind":"Name","value":"machines"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"machineId"}},{"kind":"Field","name":{"kind":"Name","value":"name"}},{"kind":"Field","name":{"kind":"Name","value":"groupId"}},{"kind":"Field","name":{"kind":"Name","value":"status"}},{"kind":"Field","name":{"kind":"Name","value":"maintenance"}},{"kind":"Field","name":{"kind":"Name","value":"drained"}},{"kind":"Field","name":{"kind":"Name","value":"runningCount"}},{"kind":"Field","name":{"kind":"Name","value":"queuedCount"}},{"kind":"Field","name":{"kind":"Name","value":"version"}}]}}]}}]}}]} as unknown as DocumentNode<WatchFleetSubscription, WatchFleetSubscriptionVariables>;
export const WatchQueueDepthDocument = {"kind":"Document","definitions":[{"kind":"OperationDefinition","operation":"subscription","name":{"kind":"Name","value":"WatchQueueDepth"},"variableDefinitions":[{"kind":"VariableDefinition","variable":{"kind":"Variable","name":{"kind":"Name","value":"machineId"}},"type":{"kind":"NamedType","name":{"kind":"Name","value":"ID"}}},{"kind":"VariableDefinition","variable":{"kind":"Variable","name":{"kind":"Name","value":"groupId"}},"type":{"kind":"NamedType","name":{"kind":"Name","value":"ID"}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"queueDepth"},"arguments":[{"kind":"Argument","name":{"kind":"Name","value":"machineId"},"value":{"kind":"Variable","name":{"kind":"Name","value":"machineId"}}},{"kind":"Argument","name":{"kind":"Name","value":"groupId"},"value":{"kind":"Variable","name":{"kind":"Name","value":"groupId"}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"machineId"}},{"kind":"Field","name":{"kind":"Name","value":"groupId"}},{"kind":"Field","name":{"kind":"Name","value":"depth"}},{"kind":"Field","name":{"kind":"Name","value":"oldestWaitSeconds"}},{"kind":"Field","name":{"kind":"Name","value":"byPriority"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"priority"}},{"kind":"Field","name":{"kind":"Name","value":"count"}}]}}]}}]}}]} as unknown as DocumentNode<WatchQueueDepthSubscription, WatchQueueDepthSubscriptionVariables>;