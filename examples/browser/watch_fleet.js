// Watch the DeskFleet fleet live from a browser, with the graphql-ws client (`npm i graphql-ws`).
// Copy this module into your frontend; with a bundler, `import { createClient } from "graphql-ws"`
// resolves from node_modules. Without one, an import map points the name at a copy of the
// client's ES module (watch_fleet.html uses the one DeskFleet serves at /vendor/graphql-ws/).
import { createClient } from "graphql-ws";

const WATCH_FLEET = `
subscription WatchFleet($filter: MachineStatusFilterInput) {
  machineStatus(filter: $filter) {
    snapshot
    removedIds
    machines { machineId name groupId status maintenance drained runningCount queuedCount version }
  }
}`;

/** The websocket URL of a DeskFleet server's /graphql, from its http(s) base URL. */
export function websocketUrl(base) {
  const url = new URL("/graphql", base);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.href;
}

/**
 * Keep a Map of machine id -> live status current (R35, R36).
 *
 *   const stop = watchFleet({ url: websocketUrl(location.href), token, onChange });
 *
 * `onChange(fleet, update)` runs after every message: the first is a snapshot of everything you
 * can see, then come the machines that changed and the ids that left the view. A snapshot may
 * come again (after a reconnect, or when the server had to skip updates): it replaces the map.
 * The token goes in the connection_init payload, never in the URL (R37). Returns `stop()`.
 */
export function watchFleet({ url, token, filter = null, onChange, onError = console.error }) {
  const fleet = new Map();
  const client = createClient({
    url,
    connectionParams: { Authorization: `Bearer ${token}` },
    retryAttempts: Infinity, // keep reconnecting; each reconnect starts with a snapshot
    shouldRetry: () => true,
  });
  const unsubscribe = client.subscribe(
    { query: WATCH_FLEET, variables: { filter } },
    {
      next: ({ data, errors }) => {
        if (errors) {
          onError(errors);
          return;
        }
        const update = data.machineStatus;
        if (update.snapshot) fleet.clear();
        for (const id of update.removedIds) fleet.delete(id);
        for (const machine of update.machines) fleet.set(machine.machineId, machine);
        onChange(fleet, update);
      },
      error: onError,
      complete: () => {},
    },
  );
  return () => {
    unsubscribe();
    client.dispose();
  };
}

/** A query or mutation over HTTP: `data`, or an Error with the first GraphQL error's message. */
export async function graphql(base, token, query, variables = {}) {
  const response = await fetch(new URL("/graphql", base), {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  if (body.errors?.length) throw new Error(body.errors[0].message);
  return body.data;
}
