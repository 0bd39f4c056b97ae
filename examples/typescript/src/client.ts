// A small typed DeskFleet client: queries and mutations over HTTP (fetch), subscriptions over
// one graphql-transport-ws websocket (graphql-ws). Every document is a TypedDocumentNode from
// src/generated/graphql.ts, so its variables and its result are checked by the compiler.
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import { getOperationAST, print } from "graphql";
import { createClient } from "graphql-ws";
import WebSocket from "ws";

export interface Connection {
  /** The GraphQL endpoint, e.g. http://127.0.0.1:8000/graphql (ws:// is derived from it). */
  url: string;
  /** A user token (dfu_...) or a machine key (dfm_...). */
  token: string;
}

/** An operation's variables, as the generated `...Variables` types give them. */
export type Variables = Record<string, unknown>;

interface GraphQLErrorShape {
  message: string;
  extensions?: { code?: unknown } | undefined;
}

interface GraphQLResponse<TResult> {
  data?: TResult | null | undefined;
  errors?: readonly GraphQLErrorShape[] | undefined;
}

/** A refused operation: the first GraphQL error's message and `extensions.code`. */
export class DeskFleetError extends Error {
  override readonly name = "DeskFleetError";

  constructor(
    message: string,
    readonly code: string | undefined,
    readonly errors: readonly GraphQLErrorShape[] = [],
    /** The HTTP status of an answer that was no GraphQL answer (e.g. 502 from a proxy). */
    readonly status: number | undefined = undefined,
  ) {
    super(code === undefined ? message : `${code}: ${message}`);
  }

  static from(errors: readonly GraphQLErrorShape[]): DeskFleetError {
    const first = errors[0];
    const code = first?.extensions?.code;
    return new DeskFleetError(
      first?.message ?? "the operation failed",
      typeof code === "string" ? code : undefined,
      errors,
    );
  }
}

function payload<TResult, TVariables extends Variables>(
  document: TypedDocumentNode<TResult, TVariables>,
  variables: TVariables,
): { query: string; variables: TVariables; operationName?: string } {
  const name = getOperationAST(document)?.name?.value;
  const operationName = name === undefined ? {} : { operationName: name };
  return { query: print(document), variables, ...operationName };
}

function dataOf<TResult>(response: GraphQLResponse<TResult>): TResult {
  if (response.errors !== undefined && response.errors.length > 0) {
    throw DeskFleetError.from(response.errors);
  }
  if (response.data === undefined || response.data === null) {
    throw new DeskFleetError("the answer holds no data", undefined);
  }
  return response.data;
}

/** One query or mutation over HTTP: POST JSON with `Authorization: Bearer <token>`. */
export async function request<TResult, TVariables extends Variables>(
  document: TypedDocumentNode<TResult, TVariables>,
  variables: TVariables,
  { url, token }: Connection,
): Promise<TResult> {
  const response = await fetch(url, {
    method: "POST",
    headers: {
      "Content-Type": "application/json",
      Accept: "application/graphql-response+json, application/json",
      Authorization: `Bearer ${token}`,
    },
    body: JSON.stringify(payload(document, variables)),
  });
  const type = response.headers.get("content-type") ?? "";
  if (!type.includes("json")) {
    // e.g. 413 or 429 from a limit in front of GraphQL: no GraphQL answer to read.
    const text = (await response.text()).trim();
    throw new DeskFleetError(
      `HTTP ${response.status}: ${text || response.statusText}`,
      undefined,
      [],
      response.status,
    );
  }
  // The answer to a typed document has the document's shape: this is where the types meet it.
  return dataOf((await response.json()) as GraphQLResponse<TResult>);
}

/** Codes of answers after which the operation may or may not have been carried out. */
const UNANSWERED = new Set(["STORAGE_UNAVAILABLE", "TIMEOUT"]);

/**
 * Whether the request may have gone unanswered: fetch failed (no connection, the connection cut,
 * the server gone), a 5xx came from something in front of GraphQL, or the server could not
 * finish (`STORAGE_UNAVAILABLE`, `TIMEOUT`). Refusals (typed `UserError`s, `UNAUTHENTICATED`,
 * ...) are answers: sending them again changes nothing.
 */
export function unanswered(error: unknown): boolean {
  if (error instanceof DeskFleetError) {
    return (
      (error.status !== undefined && error.status >= 500) ||
      (error.code !== undefined && UNANSWERED.has(error.code))
    );
  }
  return error instanceof TypeError; // what fetch throws when no response came
}

export interface Retries {
  /** Tries in all (default 5). */
  attempts?: number;
  /** Wait before the second try, doubled before each next one (default 500 ms). */
  delayMs?: number;
  /** Told of each try that went unanswered, before the wait. */
  onRetry?: (error: unknown, attempt: number) => void;
}

/**
 * A creating mutation (`triggerRun`, `registerMachine`, `createConnection`,
 * `createMachineGroup`) sent until it is answered. `variables` must carry an `idempotencyKey`
 * made once for this operation (e.g. `crypto.randomUUID()`): every try sends the same key, so a
 * try whose answer was lost and the next one answer the same run, machine or connection, and
 * one is created however many times the request went out (R46).
 */
export async function requestWithRetries<TResult, TVariables extends Variables>(
  document: TypedDocumentNode<TResult, TVariables>,
  variables: TVariables,
  connection: Connection,
  { attempts = 5, delayMs = 500, onRetry }: Retries = {},
): Promise<TResult> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await request(document, variables, connection);
    } catch (error) {
      if (attempt >= attempts || !unanswered(error)) throw error;
      onRetry?.(error, attempt);
      await new Promise((resolve) => setTimeout(resolve, delayMs * 2 ** (attempt - 1)));
    }
  }
}

export interface Subscriptions {
  /** Each change, typed; ends when the server completes the subscription or the caller breaks. */
  subscribe<TResult, TVariables extends Variables>(
    document: TypedDocumentNode<TResult, TVariables>,
    variables: TVariables,
  ): AsyncGenerator<TResult, void, undefined>;
  /** Closes the socket, ending every subscription on it. */
  close(): Promise<void>;
}

function isErrorList(reason: unknown): reason is GraphQLErrorShape[] {
  return (
    Array.isArray(reason) &&
    reason.every((e: unknown) => typeof e === "object" && e !== null && "message" in e)
  );
}

/** What graphql-ws throws: an `error` message's GraphQL errors, a close event, or an Error. */
function closeReason(reason: unknown): Error {
  if (reason instanceof Error) return reason;
  if (isErrorList(reason)) return DeskFleetError.from(reason);
  if (typeof reason === "object" && reason !== null && "code" in reason) {
    const why = "reason" in reason && typeof reason.reason === "string" ? reason.reason : "";
    return new DeskFleetError(`websocket closed: ${String(reason.code)} ${why}`.trim(), undefined);
  }
  return new DeskFleetError(`websocket failed: ${String(reason)}`, undefined);
}

/**
 * One websocket for every subscription of this program: each `subscribe` is one more operation
 * id on it (a user may hold only a few sockets, and each carries up to 20 subscriptions).
 * The token travels in the connection_init payload.
 */
export function subscriptions({ url, token }: Connection): Subscriptions {
  const client = createClient({
    url: url.replace(/^http(s?):\/\//, "ws$1://"),
    webSocketImpl: WebSocket, // Node 20 has no global WebSocket
    connectionParams: { Authorization: `Bearer ${token}` },
    lazy: true, // connect at the first subscription
    retryAttempts: 0, // a test or a script wants the failure, not a silent retry
  });
  return {
    async *subscribe<TResult, TVariables extends Variables>(
      document: TypedDocumentNode<TResult, TVariables>,
      variables: TVariables,
    ): AsyncGenerator<TResult, void, undefined> {
      const request = payload(document, variables);
      const messages = client.iterate<TResult>({
        query: request.query,
        variables: request.variables,
        ...(request.operationName === undefined ? {} : { operationName: request.operationName }),
      });
      try {
        for await (const message of messages) {
          yield dataOf(message);
        }
      } catch (error) {
        throw closeReason(error);
      } finally {
        await messages.return?.();
      }
    },
    async close(): Promise<void> {
      await client.dispose();
    },
  };
}
