// Talking to DeskFleet: GraphQL over HTTP (fetch) and subscriptions over graphql-transport-ws.
import { createClient } from "./vendor/graphql-ws/client.js";

const TOKEN_KEY = "deskfleet.token";
const ENDPOINT = new URL("/graphql", window.location.href);

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (value) => sessionStorage.setItem(TOKEN_KEY, value),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

/** A GraphQL error (the request failed): `code` from its extensions, e.g. UNAUTHENTICATED. */
export class RequestFailed extends Error {
  constructor(message, code = null) {
    super(message);
    this.code = code;
  }
}

/** An expected failure a mutation returned as a `UserError` (docs/api.md): nothing changed. */
export class Refused extends Error {
  constructor(result) {
    super(result.message);
    this.code = result.code;
    this.typename = result.__typename;
  }
}

/** Run a query or mutation over HTTP; returns `data`, throws RequestFailed on `errors`. */
export async function request(query, variables = {}, bearer = token.get()) {
  let response;
  try {
    response = await fetch(ENDPOINT, {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/json",
        ...(bearer ? { Authorization: `Bearer ${bearer}` } : {}),
      },
      body: JSON.stringify({ query, variables }),
    });
  } catch {
    throw new RequestFailed("DeskFleet cannot be reached. Check the connection and try again.");
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    throw new RequestFailed(`DeskFleet answered HTTP ${response.status}.`);
  }
  if (body.errors?.length) {
    const [first] = body.errors;
    throw new RequestFailed(first.message, first.extensions?.code ?? null);
  }
  return body.data;
}

/** Run a mutation whose result is a `payload | UserError` union: the payload, or Refused. */
export async function mutate(query, variables = {}) {
  const data = await request(query, variables);
  const result = Object.values(data)[0];
  if (result && typeof result === "object" && "code" in result && "message" in result) {
    throw new Refused(result);
  }
  return result;
}

/** Every node of a paginated list field (at most `maxPages` pages). */
export async function allPages(query, variables, field, maxPages = 20) {
  const nodes = [];
  let after = null;
  let totalCount = 0;
  for (let page = 0; page < maxPages; page += 1) {
    const data = await request(query, { ...variables, after });
    const connection = data[field];
    nodes.push(...connection.nodes);
    totalCount = connection.totalCount ?? nodes.length;
    if (!connection.pageInfo.hasNextPage) break;
    after = connection.pageInfo.endCursor;
  }
  return { nodes, totalCount };
}

// --- subscriptions -------------------------------------------------------------------------

const FORBIDDEN = 4403; // graphql-transport-ws: connection_init refused

let client = null;
let activeSocket = null;
const liveListeners = new Set();
let liveState = "idle";

function setLive(state) {
  liveState = state;
  for (const listener of liveListeners) listener(state);
}

/** Follow the websocket's state: "connecting", "live", "reconnecting" or "idle". */
export function onLiveState(listener) {
  liveListeners.add(listener);
  listener(liveState);
  return () => liveListeners.delete(listener);
}

function liveClient() {
  if (client) return client;
  const url = new URL(ENDPOINT);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  client = createClient({
    url: url.href,
    // R37: the token goes in the connection_init payload, never in the URL.
    connectionParams: () => ({ Authorization: `Bearer ${token.get()}` }),
    lazy: true,
    keepAlive: 20_000,
    retryAttempts: Infinity,
    // Reconnect after any drop (each resubscription starts with a snapshot, R36), except when
    // the server refused the token (4403): then signing in again is the way back.
    shouldRetry: (event) => event?.code !== FORBIDDEN,
    on: {
      connecting: () => setLive(liveState === "idle" ? "connecting" : "reconnecting"),
      connected: (socket) => {
        activeSocket = socket;
        setLive("live");
      },
      closed: () => setLive(liveState === "idle" ? "idle" : "reconnecting"),
    },
  });
  return client;
}

/**
 * Subscribe; `onData(data)` gets each result (R36: the current state first, then changes).
 * Returns the function that unsubscribes. After a reconnect the server sends a snapshot again.
 */
export function subscribe(query, variables, onData, onError = () => {}) {
  return liveClient().subscribe(
    { query, variables },
    {
      next: (result) => {
        if (result.errors?.length) onError(new RequestFailed(result.errors[0].message));
        else onData(result.data);
      },
      error: (error) => {
        if (error instanceof Error) onError(error);
        else if (error?.code === FORBIDDEN) {
          onError(new RequestFailed("The token is no longer accepted.", "UNAUTHENTICATED"));
        } else onError(new RequestFailed("The live connection closed."));
      },
      complete: () => {},
    },
  );
}

const RENEWED = 4205; // closed by the page itself: reconnect, with the renewed token

/** The bearer was renewed: reconnect the websocket with it (its subscriptions resume, R36). */
export function renewLive() {
  if (activeSocket?.readyState === WebSocket.OPEN) activeSocket.close(RENEWED, "Token renewed");
}

/** Close the websocket (signing out). */
export function closeLive() {
  if (!client) return;
  const closing = client;
  client = null;
  setLive("idle");
  closing.dispose();
}
