// List the fleet with a typed query, then watch it with a typed subscription; optionally trigger
// a run first, with an idempotency key, retrying until it is answered.
//
//   DESKFLEET_URL=http://127.0.0.1:8000/graphql DESKFLEET_TOKEN=dfu_... \
//     node dist/main.js [--count N] \
//       [--trigger-flow FLOW_ID --trigger-connection CONNECTION_ID [--idempotency-key KEY]]
//
// With --trigger-flow and --trigger-connection it first prints "triggered run ID (idempotency
// key KEY)" (the key: a new UUID unless given; the same key again answers the same run, R46).
// Then one line per machine ("machine: NAME STATUS group=... running=N queued=N"), the total,
// then one line per fleet message ("fleet: snapshot, N machine(s)" or
// "fleet: change, N machine(s), M gone"); `--count N` stops after N messages.
import { randomUUID } from "node:crypto";
import { parseArgs } from "node:util";

import { request, requestWithRetries, subscriptions, type Connection } from "./client.js";
import {
  MachinesDocument,
  TriggerRunDocument,
  WatchFleetDocument,
  type MachinesQuery,
} from "./generated/graphql.js";

type MachineNode = MachinesQuery["machines"]["nodes"][number];

function line(machine: MachineNode): string {
  const flags = !machine.maintenance
    ? ""
    : machine.drained
      ? " [maintenance, drained]"
      : " [maintenance]";
  return (
    `machine: ${machine.name} ${machine.status} group=${machine.group?.name ?? "-"} ` +
    `running=${machine.runningCount} queued=${machine.queuedCount}${flags}`
  );
}

async function listMachines(connection: Connection): Promise<void> {
  let after: string | null = null;
  for (;;) {
    const { machines }: MachinesQuery = await request(
      MachinesDocument,
      { first: 100, after },
      connection,
    );
    for (const machine of machines.nodes) console.log(line(machine));
    if (!machines.pageInfo.hasNextPage) {
      console.log(`${machines.totalCount} machine(s)`);
      return;
    }
    after = machines.pageInfo.endCursor;
  }
}

interface Trigger {
  flowId: string;
  connectionId: string;
  idempotencyKey: string;
}

async function triggerRun(connection: Connection, trigger: Trigger): Promise<void> {
  const { triggerRun: result } = await requestWithRetries(
    TriggerRunDocument,
    { input: { ...trigger, mode: "UNATTENDED" } },
    connection,
    {
      onRetry: (error, attempt) =>
        console.error(`no answer to try ${attempt} (${String(error)}); same key again`),
    },
  );
  if (result.__typename !== "FlowRunPayload") {
    throw new Error(`${result.code}: ${result.message}`);
  }
  console.log(`triggered run ${result.run.id} (idempotency key ${trigger.idempotencyKey})`);
}

async function watchFleet(connection: Connection, count: number | undefined): Promise<void> {
  const socket = subscriptions(connection); // one socket: more subscriptions would share it
  try {
    let seen = 0;
    for await (const { machineStatus } of socket.subscribe(WatchFleetDocument, {})) {
      const size = machineStatus.machines.length;
      console.log(
        machineStatus.snapshot
          ? `fleet: snapshot, ${size} machine(s)`
          : `fleet: change, ${size} machine(s), ${machineStatus.removedIds.length} gone`,
      );
      seen += 1;
      if (count !== undefined && seen >= count) break;
    }
  } finally {
    await socket.close();
  }
}

function options(): { count: number | undefined; trigger: Trigger | undefined } {
  const { values } = parseArgs({
    options: {
      count: { type: "string" },
      "trigger-flow": { type: "string" },
      "trigger-connection": { type: "string" },
      "idempotency-key": { type: "string" },
    },
  });
  const flowId = values["trigger-flow"];
  const connectionId = values["trigger-connection"];
  if ((flowId === undefined) !== (connectionId === undefined)) {
    throw new Error("--trigger-flow and --trigger-connection go together");
  }
  const trigger =
    flowId === undefined || connectionId === undefined
      ? undefined
      : { flowId, connectionId, idempotencyKey: values["idempotency-key"] ?? randomUUID() };
  if (values.count === undefined) return { count: undefined, trigger };
  const count = Number(values.count);
  if (!Number.isInteger(count) || count < 1) throw new Error("--count takes a whole number >= 1");
  return { count, trigger };
}

async function main(): Promise<number> {
  const url = process.env["DESKFLEET_URL"] ?? "http://127.0.0.1:8000/graphql";
  const token = process.env["DESKFLEET_TOKEN"];
  if (!token) {
    console.error("set DESKFLEET_TOKEN to a user token (the first run prints one)");
    return 2;
  }
  const { count, trigger } = options();
  const connection: Connection = { url, token };
  if (trigger !== undefined) await triggerRun(connection, trigger);
  await listMachines(connection);
  await watchFleet(connection, count);
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    // A refusal reads "error: CODE: message" (DeskFleetError carries the code).
    console.error(`error: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  },
);
