// List the fleet with a typed query, then watch it with a typed subscription.
//
//   DESKFLEET_URL=http://127.0.0.1:8000/graphql DESKFLEET_TOKEN=dfu_... \
//     node dist/main.js [--count N]
//
// Prints one line per machine ("machine: NAME STATUS group=... running=N queued=N"), the total,
// then one line per fleet message ("fleet: snapshot, N machine(s)" or
// "fleet: change, N machine(s), M gone"); `--count N` stops after N messages.
import { parseArgs } from "node:util";

import { request, subscriptions, type Connection } from "./client.js";
import {
  MachinesDocument,
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

function options(): { count: number | undefined } {
  const { values } = parseArgs({ options: { count: { type: "string" } } });
  if (values.count === undefined) return { count: undefined };
  const count = Number(values.count);
  if (!Number.isInteger(count) || count < 1) throw new Error("--count takes a whole number >= 1");
  return { count };
}

async function main(): Promise<number> {
  const url = process.env["DESKFLEET_URL"] ?? "http://127.0.0.1:8000/graphql";
  const token = process.env["DESKFLEET_TOKEN"];
  if (!token) {
    console.error("set DESKFLEET_TOKEN to a user token (the first run prints one)");
    return 2;
  }
  const { count } = options();
  const connection: Connection = { url, token };
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
