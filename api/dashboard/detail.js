// One machine or one group: details, maintenance (R16-R19), its queue (R25, R29), access (R15).
import { mutate, request, subscribe } from "./api.js";
import { debounce, duration, fill, h, maintenanceIcon, timeAgo } from "./dom.js";
import { nameCell, statusBadge } from "./lists.js";
import { groupManagement, machineManagement, removeFromGroupButton } from "./manage.js";
import * as ops from "./operations.js";
import { accessText, announce, estimateText, showError, waitReasonText } from "./ui.js";

const LOCKS = {
  KEY_ACTION_REQUIRED: "Unavailable while the machine needs a key action (R10).",
  GROUP_IN_MAINTENANCE: "Unavailable: its group is in maintenance, so it is too (R18).",
};

function facts(pairs) {
  return h(
    "dl",
    { class: "facts" },
    pairs.filter(Boolean).map(([term, value]) => h("div", {}, h("dt", {}, term), h("dd", {}, value))),
  );
}

function section(id, title, ...content) {
  return h(
    "section",
    { class: "card", "aria-labelledby": `${id}-heading`, id },
    h("h2", { id: `${id}-heading` }, title),
    ...content,
  );
}

/** R16-R19: the switch, what maintenance means now, and why the switch is refused if it is. */
function maintenanceSection(item, { lock, canEdit, onToggle, running }) {
  const state = !item.maintenance
    ? "Off: new runs are dispatched here."
    : item.drained
      ? "On and drained: nothing is running. No new runs start."
      : `On and draining: ${running} flow${running === 1 ? "" : "s"} still running will finish; no new runs start.`;
  const reason = lock ? LOCKS[lock] : canEdit ? null : "You may not change it: it needs edit rights (R12).";
  const toggle = h(
    "button",
    {
      type: "button",
      role: "switch",
      id: "maintenance-toggle",
      class: "switch",
      "aria-checked": String(item.maintenance),
      "aria-describedby": "maintenance-state",
      disabled: Boolean(reason),
      onclick: async (event) => {
        event.currentTarget.disabled = true;
        await onToggle(!item.maintenance);
      },
    },
    h("span", { class: "switch-track", "aria-hidden": "true" }, h("span", { class: "switch-thumb" })),
    "Maintenance mode",
  );
  return section(
    "maintenance",
    "Maintenance",
    h(
      "div",
      { class: "maintenance-row" },
      toggle,
      item.maintenance ? maintenanceIcon(item.drained) : null,
    ),
    h(
      "p",
      { id: "maintenance-state", "data-drained": String(item.drained) },
      state,
      reason ? [" ", h("span", { class: "muted" }, reason)] : null,
    ),
  );
}

/** The runs waiting, in order, each with why it waits; move to top, priority, cancel. */
function queueSection(entries, refresh) {
  async function act(label, document, variables) {
    try {
      await mutate(document, variables);
      announce(label);
    } catch (error) {
      showError(error);
    }
    await refresh();
  }
  const rows = entries.map(({ position, waitReason, run }) => {
    const flow = run.flow?.name ?? "(deleted flow)";
    const priorityId = `priority-${run.id}`;
    return h(
      "tr",
      { "data-run": run.id, "data-position": position },
      h("td", { class: "num" }, position),
      h("th", { scope: "row" }, h("a", { href: `#/runs/${encodeURIComponent(run.id)}` }, flow)),
      h("td", {}, run.runAs),
      h("td", {}, run.mode === "ATTENDED" ? "Attended" : "Unattended"),
      h(
        "td",
        {},
        h("label", { for: priorityId, class: "visually-hidden" }, `Priority of ${flow} run ${position}`),
        h(
          "select",
          {
            id: priorityId,
            class: "compact",
            onchange: (event) =>
              act(`Priority of ${flow} set to ${event.target.value.toLowerCase()}`, ops.CHANGE_PRIORITY, {
                id: run.id,
                priority: event.target.value,
              }),
          },
          h("option", { value: "HIGH", selected: run.priority === "HIGH" }, "High"),
          h("option", { value: "NORMAL", selected: run.priority === "NORMAL" }, "Normal"),
        ),
      ),
      h("td", {}, duration(run.waitSeconds)),
      h("td", { class: "reason", "data-reason": waitReason ?? "" }, waitReasonText(waitReason)),
      h("td", { class: "estimate", "data-unknown": run.estimatedStartUnknown ?? "" }, estimateText(run)),
      h(
        "td",
        { class: "actions" },
        h(
          "button",
          {
            type: "button",
            class: "secondary",
            disabled: position === 1,
            "aria-label": `Move ${flow} run ${position} to top`,
            onclick: () => act(`${flow} moved to the top of the queue`, ops.MOVE_TO_TOP, { id: run.id }),
          },
          "Move to top",
        ),
        h(
          "button",
          {
            type: "button",
            class: "danger",
            "aria-label": `Cancel ${flow} run ${position}`,
            onclick: () => act(`${flow} run cancelled`, ops.CANCEL_RUN, { id: run.id }),
          },
          "Cancel",
        ),
      ),
    );
  });
  return section(
    "queue",
    `Queue (${entries.length})`,
    entries.length
      ? h(
          "div",
          { class: "table-wrap" },
          h(
            "table",
            { class: "grid", id: "queue-table" },
            h("caption", { class: "visually-hidden" }, "Queued runs in order, with why each waits"),
            h(
              "thead",
              {},
              h(
                "tr",
                {},
                h("th", { scope: "col", class: "num" }, "Position"),
                ["Flow", "Runs as", "Mode", "Priority", "Waiting", "Why it waits", "Starts", "Actions"].map((t) =>
                  h("th", { scope: "col" }, t),
                ),
              ),
            ),
            h("tbody", {}, rows),
          ),
        )
      : h("p", { class: "muted" }, "Nothing is queued."),
  );
}

/** R15: owner and shares, deactivated users marked; only for those who may see the list. */
function accessSection(item, canShare, unshare) {
  if (!item.accessList) return null;
  return section(
    "access",
    "Access",
    item.hasDeactivatedShares
      ? h(
          "p",
          { class: "notice warn", id: "deactivated-notice" },
          "Shared with a deactivated user. Their share stays listed until someone with share rights removes it (R15).",
        )
      : null,
    h(
      "table",
      { class: "grid", id: "access-table" },
      h("caption", { class: "visually-hidden" }, "Who has access"),
      h(
        "thead",
        {},
        h("tr", {}, ["User", "Access", "Shared by", "Since", ""].map((t) => h("th", { scope: "col" }, t))),
      ),
      h(
        "tbody",
        {},
        item.accessList.map((entry) =>
          h(
            "tr",
            { "data-user": entry.user.displayName, "data-deactivated": String(entry.deactivated) },
            h(
              "th",
              { scope: "row" },
              entry.user.displayName,
              " ",
              h("span", { class: "muted" }, entry.user.email),
              entry.deactivated ? [" ", h("span", { class: "tag warn" }, "Deactivated")] : null,
            ),
            h("td", {}, accessText(entry.access)),
            h("td", {}, entry.grantedBy?.displayName ?? "—"),
            h("td", {}, timeAgo(entry.grantedAt)),
            h(
              "td",
              {},
              canShare && entry.access !== "OWNER"
                ? h(
                    "button",
                    {
                      type: "button",
                      class: "secondary",
                      "aria-label": `Remove ${entry.user.displayName}'s access`,
                      onclick: () => unshare(entry.user),
                    },
                    "Remove",
                  )
                : null,
            ),
          ),
        ),
      ),
    ),
  );
}

/**
 * The shared shape of both detail views: load, render, and reload on any live change of the
 * machine(s) (machineStatus) or of their runs (runUpdates).
 */
function detailView(main, { load, render, liveFilter, runFilter }) {
  let stopped = false;
  let running = null;
  let again = false;

  // One load at a time; a call during a load loads once more after it (never a stale answer).
  async function reload() {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        try {
          const data = await load();
          if (!stopped) render(data, reload);
        } catch (error) {
          if (!stopped) showError(error);
        }
      } while (again && !stopped);
    })();
    try {
      await running;
    } finally {
      running = null;
    }
  }
  const soon = debounce(reload, 200);
  const onError = (error) => stopped || showError(error);
  const stops = [
    subscribe(ops.WATCH_MACHINES, { filter: liveFilter }, () => soon(), onError),
    subscribe(ops.WATCH_RUNS, { filter: runFilter }, () => soon(), onError),
  ];
  fill(main, h("h1", {}, "Loading…"));
  reload();
  return () => {
    stopped = true;
    soon.cancel();
    for (const stop of stops) stop();
  };
}

function keepFocus(main, paint) {
  // Re-rendering replaces the nodes: put focus back on the same control if it was in there.
  const focused = document.activeElement;
  const id = focused && main.contains(focused) ? focused.id : null;
  const label = focused?.getAttribute?.("aria-label");
  paint();
  const again =
    (id && document.getElementById(id)) ||
    (label && main.querySelector(`[aria-label="${CSS.escape(label)}"]`));
  if (again && !again.disabled) again.focus({ preventScroll: true });
}

export function machineView(main, id) {
  return detailView(main, {
    liveFilter: { machineId: id },
    runFilter: { machineId: id },
    load: async () => {
      const [{ machine }, queue] = await Promise.all([
        request(ops.MACHINE, { id }),
        request(ops.MACHINE_QUEUE, { machineId: id })
          .then((d) => d.machineQueue)
          .catch((error) => ({ error })),
      ]);
      return { machine, queue };
    },
    render: ({ machine, queue }, reload) =>
      keepFocus(main, () => {
        if (!machine) {
          fill(main, h("h1", {}, "Machine not found"), h("p", {}, h("a", { href: "#/machines" }, "Back to machines")));
          return;
        }
        const canEdit = machine.allowedActions.includes("EDIT");
        const canShare = machine.allowedActions.includes("SHARE");
        const heading = main.querySelector("h1");
        const hadFocus = heading && document.activeElement === heading;
        fill(
          main,
          h("nav", { "aria-label": "Breadcrumb", class: "crumbs" }, h("a", { href: "#/machines" }, "Machines"), " / ", machine.name),
          h("h1", { tabindex: "-1" }, machine.name, machine.maintenance ? maintenanceIcon(machine.drained) : null),
          section(
            "details",
            "Details",
            facts([
              ["Description", machine.description || "—"],
              ["Status", statusBadge(machine.status)],
              ["Version", machine.version],
              ["OS edition", machine.osEdition],
              [
                "Group",
                machine.group
                  ? h("a", { href: `#/groups/${encodeURIComponent(machine.group.id)}` }, machine.group.name)
                  : "None",
              ],
              ["Environment", machine.environment?.name ?? "—"],
              ["Owner", machine.owner?.displayName ?? "—"],
              ["Your access", accessText(machine.accessType)],
              ["Flows running", String(machine.runningCount)],
              ["Flows queued", String(machine.queuedCount)],
              ["Unattended bots", String(machine.unattendedBots)],
              ["Last heartbeat", timeAgo(machine.lastHeartbeatAt)],
              machine.keyActionRequired ? ["Machine key", "A key action is required (R10)"] : null,
            ]),
          ),
          maintenanceSection(machine, {
            lock: machine.maintenanceLock,
            canEdit,
            running: machine.runningCount,
            onToggle: async (enabled) => {
              try {
                await mutate(ops.MACHINE_MAINTENANCE, { id, enabled });
                announce(`${machine.name}: maintenance ${enabled ? "on" : "off"}`);
              } catch (error) {
                showError(error);
              }
              await reload();
            },
          }),
          queue.error
            ? section("queue", "Queue", h("p", { class: "muted" }, queue.error.message))
            : queueSection(queue, reload),
          machineManagement(machine, reload),
          accessSection(machine, canShare, async (user) => {
            try {
              await mutate(ops.UNSHARE_MACHINE, { id, userId: user.id });
              announce(`${user.displayName} no longer has access to ${machine.name}`);
            } catch (error) {
              showError(error);
            }
            await reload();
          }),
        );
        document.title = `${machine.name} · DeskFleet`;
        if (hadFocus) main.querySelector("h1").focus({ preventScroll: true });
      }),
  });
}

export function groupView(main, id) {
  return detailView(main, {
    liveFilter: { groupId: id },
    runFilter: { groupId: id },
    load: async () => {
      const [{ machineGroup }, queue, candidates] = await Promise.all([
        request(ops.GROUP, { id }),
        request(ops.GROUP_QUEUE, { groupId: id })
          .then((d) => d.groupQueue)
          .catch((error) => ({ error })),
        request(ops.MACHINES, { first: 100 }).then((d) =>
          d.machines.nodes.filter((m) => m.allowedActions.includes("ADD_TO_GROUP")),
        ),
      ]);
      return { group: machineGroup, queue, candidates };
    },
    render: ({ group, queue, candidates }, reload) =>
      keepFocus(main, () => {
        if (!group) {
          fill(main, h("h1", {}, "Group not found"), h("p", {}, h("a", { href: "#/groups" }, "Back to groups")));
          return;
        }
        const canEdit = group.allowedActions.includes("EDIT");
        const canShare = group.allowedActions.includes("SHARE");
        const heading = main.querySelector("h1");
        const hadFocus = heading && document.activeElement === heading;
        fill(
          main,
          h("nav", { "aria-label": "Breadcrumb", class: "crumbs" }, h("a", { href: "#/groups" }, "Machine groups"), " / ", group.name),
          h("h1", { tabindex: "-1" }, group.name, group.maintenance ? maintenanceIcon(group.drained) : null),
          section(
            "details",
            "Details",
            facts([
              ["Description", group.description || "—"],
              ["Machines", `${group.machineCount} (${group.connectedCount} connected)`],
              ["Environment", group.environment?.name ?? "—"],
              ["Owner", group.owner?.displayName ?? "—"],
              ["Your access", accessText(group.accessType)],
              ["Flows running", String(group.runningCount)],
              ["Flows queued", String(group.queuedCount)],
              group.keyActionRequired ? ["Machine keys", "A machine needs a key action (R10)"] : null,
            ]),
          ),
          maintenanceSection(group, {
            lock: group.keyActionRequired ? "KEY_ACTION_REQUIRED" : null,
            canEdit,
            running: group.runningCount,
            onToggle: async (enabled) => {
              try {
                await mutate(ops.GROUP_MAINTENANCE, { id, enabled });
                announce(`${group.name}: maintenance ${enabled ? "on" : "off"}, and on all its machines`);
              } catch (error) {
                showError(error);
              }
              await reload();
            },
          }),
          queue.error
            ? section("queue", "Queue", h("p", { class: "muted" }, queue.error.message))
            : queueSection(queue, reload),
          section(
            "members",
            `Machines (${group.machines.length})`,
            group.machines.length
              ? h(
                  "table",
                  { class: "grid", id: "group-machines" },
                  h("caption", { class: "visually-hidden" }, "Machines in this group"),
                  h(
                    "thead",
                    {},
                    h(
                      "tr",
                      {},
                      ["Name", "Status", "Version"].map((t) => h("th", { scope: "col" }, t)),
                      h("th", { scope: "col", class: "num" }, "Flows running"),
                      h("th", { scope: "col", class: "num" }, "Flows queued"),
                      canEdit ? h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Actions")) : null,
                    ),
                  ),
                  h(
                    "tbody",
                    {},
                    group.machines.map((m) =>
                      h(
                        "tr",
                        { "data-machine": m.name, "data-maintenance": String(m.maintenance) },
                        nameCell(`#/machines/${encodeURIComponent(m.id)}`, m),
                        h("td", {}, statusBadge(m.status)),
                        h("td", {}, m.version),
                        h("td", { class: "num" }, m.runningCount),
                        h("td", { class: "num" }, m.queuedCount),
                        canEdit ? h("td", { class: "actions" }, removeFromGroupButton(m, reload)) : null,
                      ),
                    ),
                  ),
                )
              : h("p", { class: "muted" }, "No machine in this group yet."),
          ),
          groupManagement(group, candidates, reload),
          accessSection(group, canShare, async (user) => {
            try {
              await mutate(ops.UNSHARE_GROUP, { id, userId: user.id });
              announce(`${user.displayName} no longer has access to ${group.name}`);
            } catch (error) {
              showError(error);
            }
            await reload();
          }),
        );
        document.title = `${group.name} · DeskFleet`;
        if (hadFocus) main.querySelector("h1").focus({ preventScroll: true });
      }),
  });
}
