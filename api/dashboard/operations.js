// Every GraphQL document the dashboard sends, in one place (schema.graphql has the types).
// examples/operations/*.graphql holds the same jobs as standalone, documented files.

const ERRORS = "... on UserError { code message }";

export const SIGN_IN = `
query SignIn {
  me { id user { id displayName email isAdmin } roles { environmentId role } }
  environments { id name sessionRecommendations }
}`;

const MACHINE_ROW = `
  id name description version status maintenance maintenanceInherited drained
  runningCount queuedCount accessType hasDeactivatedShares runtimeOutdated allowedActions
  environment { id name }
  group { id name }
  owner { id displayName }`;

export const MACHINES = `
query Machines($first: Int!, $after: String, $filter: MachineFilterInput) {
  machines(first: $first, after: $after, filter: $filter) {
    totalCount
    pageInfo { hasNextPage endCursor }
    nodes { ${MACHINE_ROW} }
  }
}`;

export const GROUP_NAMES = `
query GroupNames($after: String) {
  machineGroups(first: 100, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes { id name }
  }
}`;

export const GROUPS = `
query Groups($after: String, $filter: MachineGroupFilterInput) {
  machineGroups(first: 100, after: $after, filter: $filter) {
    totalCount
    pageInfo { hasNextPage endCursor }
    nodes {
      id name description maintenance drained machineCount connectedCount
      runningCount queuedCount accessType hasDeactivatedShares
      owner { id displayName }
      environment { id name }
    }
  }
}`;

const ACCESS_LIST = `
  accessList {
    access deactivated grantedAt
    user { id displayName email active }
    grantedBy { id displayName }
  }`;

export const MACHINE = `
query Machine($id: ID!) {
  machine(id: $id) {
    ${MACHINE_ROW}
    osEdition keyActionRequired unattendedBots lastHeartbeatAt createdAt
    maintenanceLock
    environment { id name }
    ${ACCESS_LIST}
  }
}`;

export const GROUP = `
query Group($id: ID!) {
  machineGroup(id: $id) {
    id name description createdAt maintenance keyActionRequired drained
    machineCount connectedCount runningCount queuedCount accessType allowedActions
    hasDeactivatedShares
    owner { id displayName }
    environment { id name }
    machines { ${MACHINE_ROW} }
    ${ACCESS_LIST}
  }
}`;

const QUEUE_ENTRY = `
  position waitReason
  run {
    id mode priority status runAs queuedAt waitSeconds attempt
    estimatedStartAt estimatedStartUnknown
    flow { id name }
    connectionOwner { id displayName }
  }`;

export const MACHINE_QUEUE = `
query MachineQueue($machineId: ID!) { machineQueue(machineId: $machineId) { ${QUEUE_ENTRY} } }`;

export const GROUP_QUEUE = `
query GroupQueue($groupId: ID!) { groupQueue(groupId: $groupId) { ${QUEUE_ENTRY} } }`;

const RUN_CHANGED = `__typename ... on FlowRunPayload { run { id status priority queuePosition } } ${ERRORS}`;

export const MOVE_TO_TOP = `
mutation MoveRunToTop($id: ID!) { moveRunToTop(id: $id) { ${RUN_CHANGED} } }`;

export const CHANGE_PRIORITY = `
mutation ChangeRunPriority($id: ID!, $priority: RunPriority!) {
  changeRunPriority(id: $id, priority: $priority) { ${RUN_CHANGED} }
}`;

export const RETRY_RUN = `
mutation RetryRun($id: ID!) {
  retryRun(id: $id) { __typename ... on FlowRunPayload { run { id retryAttempt } } ${ERRORS} }
}`;

export const CANCEL_RUN = `
mutation CancelRun($id: ID!) { cancelRun(id: $id) { ${RUN_CHANGED} } }`;

export const MACHINE_MAINTENANCE = `
mutation SetMachineMaintenance($id: ID!, $enabled: Boolean!) {
  setMachineMaintenance(id: $id, enabled: $enabled) {
    __typename ... on MachinePayload { machine { id maintenance drained } } ${ERRORS}
  }
}`;

export const GROUP_MAINTENANCE = `
mutation SetMachineGroupMaintenance($id: ID!, $enabled: Boolean!) {
  setMachineGroupMaintenance(id: $id, enabled: $enabled) {
    __typename ... on MachineGroupPayload { group { id maintenance drained } } ${ERRORS}
  }
}`;

export const UNSHARE_MACHINE = `
mutation UnshareMachine($id: ID!, $userId: ID!) {
  unshareMachine(machineId: $id, userId: $userId) { __typename ${ERRORS} }
}`;

export const UNSHARE_GROUP = `
mutation UnshareMachineGroup($id: ID!, $userId: ID!) {
  unshareMachineGroup(groupId: $id, userId: $userId) { __typename ${ERRORS} }
}`;

const RECOMMENDATION = `
  id title status raisedAt windowEndsAt windowSecondsLeft resolvedAt
  environment { id name }
  recipient { id displayName }
  affectedRuns { runId }
  runs {
    runId username sessionState blockedSince blockedSeconds outcome disconnectRequestedAt
    machine { id name }
    flow { id name }
    run { id status }
  }`;

export const DISCONNECT_USERS = `
mutation DisconnectSessionUsers($id: ID!, $runIds: [ID!]!) {
  disconnectSessionUsers(recommendationId: $id, runIds: $runIds) {
    __typename ... on SessionRecommendationPayload { recommendation { ${RECOMMENDATION} } } ${ERRORS}
  }
}`;

export const REFRESH_RECOMMENDATION = `
mutation RefreshSessionRecommendation($id: ID!) {
  refreshSessionRecommendation(id: $id) {
    __typename ... on SessionRecommendationPayload { recommendation { ${RECOMMENDATION} } } ${ERRORS}
  }
}`;

// --- management: every change through the public API --------------------------------------

const MACHINE_DONE = `__typename ... on MachinePayload { machine { id name } } ${ERRORS}`;
const GROUP_DONE = `__typename ... on MachineGroupPayload { group { id name } } ${ERRORS}`;

export const REGISTER_MACHINE = `
mutation RegisterMachine($input: RegisterMachineInput!) {
  registerMachine(input: $input) {
    __typename ... on RegisteredMachinePayload { machine { id name } machineKey } ${ERRORS}
  }
}`;

export const UPDATE_MACHINE = `
mutation UpdateMachine($input: UpdateMachineInput!) { updateMachine(input: $input) { ${MACHINE_DONE} } }`;

export const DELETE_MACHINE = `
mutation DeleteMachine($id: ID!) {
  deleteMachine(id: $id) { __typename ... on DeletedMachinePayload { id } ${ERRORS} }
}`;

export const MOVE_MACHINE = `
mutation ChangeMachineEnvironment($id: ID!, $environmentId: ID!) {
  changeMachineEnvironment(id: $id, environmentId: $environmentId) { ${MACHINE_DONE} }
}`;

export const ROTATE_KEY = `
mutation RotateMachineKey($id: ID!) {
  rotateMachineKey(id: $id) {
    __typename ... on MachinePayload { machine { id name keyActionRequired } } ${ERRORS}
  }
}`;

export const ALLOCATE_BOTS = `
mutation AllocateUnattendedBots($machineId: ID!, $count: Int!) {
  allocateUnattendedBots(machineId: $machineId, count: $count) { ${MACHINE_DONE} }
}`;

export const SHARE_MACHINE = `
mutation ShareMachine($input: ShareMachineInput!) { shareMachine(input: $input) { ${MACHINE_DONE} } }`;

export const SHARE_GROUP = `
mutation ShareMachineGroup($input: ShareMachineGroupInput!) {
  shareMachineGroup(input: $input) { ${GROUP_DONE} }
}`;

export const MEMBERS = `
query EnvironmentMembers($environmentId: ID!) {
  environmentMembers(environmentId: $environmentId) { id displayName email }
}`;

export const CREATE_GROUP = `
mutation CreateMachineGroup($input: CreateMachineGroupInput!) {
  createMachineGroup(input: $input) { ${GROUP_DONE} }
}`;

export const UPDATE_GROUP = `
mutation UpdateMachineGroup($input: UpdateMachineGroupInput!) {
  updateMachineGroup(input: $input) { ${GROUP_DONE} }
}`;

export const DELETE_GROUP = `
mutation DeleteMachineGroup($id: ID!) {
  deleteMachineGroup(id: $id) { __typename ... on DeletedMachineGroupPayload { id } ${ERRORS} }
}`;

export const ADD_TO_GROUP = `
mutation AddMachineToGroup($groupId: ID!, $machineId: ID!) {
  addMachineToGroup(groupId: $groupId, machineId: $machineId) {
    __typename ... on MachineGroupMembershipPayload { machine { id } } ${ERRORS}
  }
}`;

export const REMOVE_FROM_GROUP = `
mutation RemoveMachineFromGroup($machineId: ID!) {
  removeMachineFromGroup(machineId: $machineId) {
    __typename ... on MachineGroupMembershipPayload { machine { id } } ${ERRORS}
  }
}`;

export const ENVIRONMENT_SETTINGS = `
query EnvironmentSettings {
  environments {
    id name kind restrictRegistration maxQueueSeconds sessionRecommendations
    unattendedCapacity recommendationWindowSeconds minRuntimeVersion
  }
}`;

export const UPDATE_ENVIRONMENT = `
mutation UpdateEnvironment($input: UpdateEnvironmentInput!) {
  updateEnvironment(input: $input) {
    __typename ... on EnvironmentPayload { environment { id name } } ${ERRORS}
  }
}`;

export const ENVIRONMENT_ROLES = `
query EnvironmentRoles($environmentId: ID!) {
  environmentRoles(environmentId: $environmentId) { role user { id displayName email } }
  environmentMembers(environmentId: $environmentId) { id displayName email }
}`;

export const PERSON_BY_EMAIL = `
query PersonByEmail($email: String!) { personByEmail(email: $email) { id displayName email } }`;

export const ASSIGN_ROLE = `
mutation AssignRole($input: RoleInput!) {
  assignRole(input: $input) { __typename ... on RoleGrantPayload { userId } ${ERRORS} }
}`;

export const REVOKE_ROLE = `
mutation RevokeRole($input: RoleInput!) {
  revokeRole(input: $input) { __typename ... on RoleGrantPayload { userId } ${ERRORS} }
}`;

const CONNECTION = `
  id name connectivity windowsUsername hasPassword updatedAt
  owner { id displayName }
  environment { id name }
  machine { id name }
  group { id name }
  gateway { id name }`;

export const CONNECTIONS = `
query Connections($after: String) {
  connections(first: 50, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    nodes { ${CONNECTION} }
  }
}`;

const CONNECTION_DONE = `__typename ... on ConnectionPayload { connection { id name } } ${ERRORS}`;

export const CREATE_CONNECTION = `
mutation CreateConnection($input: CreateConnectionInput!) {
  createConnection(input: $input) { ${CONNECTION_DONE} }
}`;

export const UPDATE_CONNECTION = `
mutation UpdateConnection($input: UpdateConnectionInput!) {
  updateConnection(input: $input) { ${CONNECTION_DONE} }
}`;

export const SWITCH_TO_DIRECT = `
mutation SwitchConnectionToDirect($input: SwitchConnectionToDirectInput!) {
  switchConnectionToDirect(input: $input) {
    __typename ... on SwitchedConnectionPayload { connection { id name } } ${ERRORS}
  }
}`;

// --- run history and trends ---------------------------------------------------------------

const RUN_ROW = `
  id status mode priority queuedAt dispatchedAt startedAt endedAt waitSeconds runSeconds
  attempt errorCode queuePosition waitReason estimatedStartAt estimatedStartUnknown
  flow { id name }
  machine { id name }
  targetMachine { id name }
  targetGroup { id name }
  environment { id name }
  triggeredBy { id displayName }`;

export const RUNS = `
query Runs($after: String, $filter: FlowRunFilterInput) {
  flowRuns(first: 25, after: $after, filter: $filter) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { cursor node { ${RUN_ROW} } }
  }
}`;

export const RUN = `
query Run($id: ID!) {
  run(id: $id) {
    ${RUN_ROW}
    runAs errorMessage reportedRuntimeVersion
    waitHistory { reason since until }
    retryAttempt notBefore
    retryOf { id status retryAttempt }
    retriedBy { id status retryAttempt }
    connection { id name }
    connectionOwner { id displayName }
  }
}`;

export const RUN_FILTER_CHOICES = `
query RunFilterChoices {
  desktopFlows(first: 100) { nodes { id name environment { id name } } }
  machines(first: 100) { nodes { id name environment { id name } } }
  machineGroups(first: 100) { nodes { id name } }
}`;

export const FLEET_STATISTICS = `
query FleetStatistics($environmentId: ID!, $from: DateTime!, $to: DateTime!, $bucket: StatisticsBucket!) {
  fleetStatistics(environmentId: $environmentId, from: $from, to: $to, bucket: $bucket, machines: 25) {
    __typename
    ... on FleetStatistics {
      from to bucket utilisationBucket utilisationStarts
      buckets {
        start end runsStarted runsSucceeded runsFailed runsTimedOut runsCancelled
        waitSecondsP50 waitSecondsP90 queueDepthMean queueDepthPeak runningMean runningPeak
        machinesConnectedMean
      }
      machines { id name unattendedBots busyShare }
      groups { id name busyShare }
    }
    ${ERRORS}
  }
}`;

// --- subscriptions (graphql-transport-ws) ---------------------------------------------------

export const WATCH_MACHINES = `
subscription WatchMachines($filter: MachineStatusFilterInput) {
  machineStatus(filter: $filter) {
    snapshot removedIds
    machines {
      machineId name environmentId groupId status maintenance drained keyActionRequired
      runningCount queuedCount version
    }
  }
}`;

export const WATCH_RUNS = `
subscription WatchRuns($filter: FlowRunFilterInput) {
  runUpdates(filter: $filter) { snapshot removedIds runs { id status priority queuePosition } }
}`;

export const WATCH_RUN = `
subscription WatchRun($runId: ID!) {
  runUpdates(runId: $runId) { snapshot removedIds runs { id status queuePosition waitReason } }
}`;

export const WATCH_RECOMMENDATIONS = `
subscription WatchRecommendations {
  sessionRecommendations { snapshot removedIds recommendations { ${RECOMMENDATION} } }
}`;
