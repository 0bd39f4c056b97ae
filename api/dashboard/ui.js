// What every view shares: who is signed in, and how to tell the user something.
import { RequestFailed } from "./api.js";

export const session = { me: null, environments: [], onUnauthenticated: () => {} };

let announceTimer = null;

/** Say something politely (a live region): "Run moved to the top", ... */
export function announce(text) {
  const region = document.getElementById("announce");
  region.textContent = text;
  clearTimeout(announceTimer);
  announceTimer = setTimeout(() => (region.textContent = ""), 8000);
}

let alertTimer = null;

/** Show a failure (an alert region); a rejected token signs out. */
export function showError(error) {
  const region = document.getElementById("alert");
  region.textContent = error?.message ?? String(error);
  clearTimeout(alertTimer);
  alertTimer = setTimeout(() => (region.textContent = ""), 12000);
  if (error instanceof RequestFailed && error.code === "UNAUTHENTICATED") {
    session.onUnauthenticated();
  }
}

const ACCESS = { OWNER: "Owner", CO_OWNER: "Co-owner", USER: "User", ADMIN: "Administrator" };

export function accessText(access) {
  return ACCESS[access] ?? "—";
}

const WAIT_REASONS = {
  NO_MACHINE: "No machine in the group can take it",
  MACHINE_OFFLINE: "Machine offline",
  MAINTENANCE: "In maintenance",
  RUNTIME_OUTDATED: "The machine's runtime is below the environment's minimum",
  NO_FREE_BOT: "No free unattended bot",
  USER_SESSION_EXISTS: "The user has a session on the machine",
  NO_ACTIVE_SESSION: "No active session of the user",
  SESSION_BUSY: "The user's session runs another attended flow",
  BEHIND_IN_QUEUE: "Behind other runs in the queue",
  RETRY_DELAY: "Waiting out its retry delay",
};

export function waitReasonText(reason) {
  return reason ? (WAIT_REASONS[reason] ?? reason) : "Starting now";
}

export function statusText(status) {
  return status === "CONNECTED" ? "Connected" : status === "DISCONNECTED" ? "Disconnected" : status;
}

const ESTIMATE_UNKNOWN = {
  NO_USABLE_MACHINE: "unknown: no machine can take it now",
  NO_RUN_HISTORY: "unknown: the flow has not run to an end yet",
};

/** R42: when a queued run should start, or why that cannot be known. */
export function estimateText(run) {
  if (run.estimatedStartAt) {
    const at = new Date(run.estimatedStartAt);
    const seconds = (at.getTime() - Date.now()) / 1000;
    return seconds <= 1 ? "any moment" : `in about ${formatSeconds(seconds)} (${at.toLocaleTimeString()})`;
  }
  return ESTIMATE_UNKNOWN[run.estimatedStartUnknown] ?? "—";
}

function formatSeconds(seconds) {
  const s = Math.round(seconds);
  if (s < 90) return `${s} s`;
  const m = Math.round(s / 60);
  return m < 90 ? `${m} min` : `${Math.round(m / 6) / 10} h`;
}

const RUN_STATUS = {
  QUEUED: "Queued",
  DISPATCHED: "Dispatched",
  RUNNING: "Running",
  SUCCEEDED: "Succeeded",
  FAILED: "Failed",
  CANCELLED: "Cancelled",
  TIMED_OUT: "Timed out",
};

export function runStatusText(status) {
  return RUN_STATUS[status] ?? status;
}

/** Whether the signed-in user sees more than one environment (then lists name theirs). */
export function severalEnvironments() {
  return session.environments.length > 1;
}

export function environmentName(id) {
  return session.environments.find((e) => e.id === id)?.name ?? "—";
}
