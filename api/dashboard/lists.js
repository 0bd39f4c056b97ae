// The Machines list (R8) and the Machine groups list, both kept current by `machineStatus`.
import { allPages, subscribe } from "./api.js";
import { debounce, fill, h, maintenanceIcon } from "./dom.js";
import { createGroupSection, registerSection } from "./manage.js";
import * as ops from "./operations.js";
import { accessText, session, severalEnvironments, showError, statusText } from "./ui.js";

// The filters survive going to a machine and back.
const filters = { text: "", environmentId: "", groupId: "", status: "", maintenance: "", outdated: "" };

function filterInput() {
  return {
    text: filters.text.trim() || null,
    environmentId: filters.environmentId || null,
    groupId: filters.groupId || null,
    status: filters.status || null,
    maintenance: filters.maintenance === "" ? null : filters.maintenance === "on",
    runtimeOutdated: filters.outdated === "" ? null : filters.outdated === "yes",
  };
}

/** Whether a machine's live fields still match the filters (the text filter is the server's). */
function matchesLive(live) {
  if (filters.environmentId && live.environmentId !== filters.environmentId) return false;
  if (filters.groupId && live.groupId !== filters.groupId) return false;
  if (filters.status && live.status !== filters.status) return false;
  if (filters.maintenance && live.maintenance !== (filters.maintenance === "on")) return false;
  return true;
}

const LIVE_FIELDS = ["name", "status", "maintenance", "drained", "runningCount", "queuedCount", "version"];

function overlay(machine, live) {
  if (!live) return machine;
  for (const field of LIVE_FIELDS) machine[field] = live[field];
  return machine;
}

export function statusBadge(status) {
  return h("span", { class: `status status-${status.toLowerCase()}` }, statusText(status));
}

/** The name cell: a link, the maintenance pictogram (R19), a deactivated-shares mark (R15), and
 * a machine whose runtime is below its environment's minimum (R41). */
export function nameCell(href, item) {
  return h(
    "th",
    { scope: "row" },
    h("a", { href }, item.name),
    item.maintenance ? maintenanceIcon(item.drained) : null,
    item.runtimeOutdated
      ? h("span", { class: "tag outdated", title: "Below the environment's minimum runtime version: it gets no new run until it updates (R41)" }, "Must update")
      : null,
    item.hasDeactivatedShares
      ? h("span", { class: "tag warn", title: "Shared with a deactivated user (R15)" }, "Deactivated share")
      : null,
  );
}

function select(id, label, options, value, onchange) {
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    h(
      "select",
      { id, onchange: (event) => onchange(event.target.value) },
      options.map(([optionValue, text]) =>
        h("option", { value: optionValue, selected: optionValue === value }, text),
      ),
    ),
  );
}

export function machinesView(main) {
  const several = severalEnvironments();
  const rows = new Map(); // machine id -> the query's machine, live fields overlaid
  const latest = new Map(); // machine id -> its last MachineLiveStatus
  let generation = 0;
  let loaded = false;
  let stopped = false;

  const tbody = h("tbody");
  const count = h("p", { class: "count", id: "machine-count", "aria-live": "polite" });
  const groupField = select("filter-group", "Group", [["", "All groups"]], filters.groupId, (v) => {
    filters.groupId = v;
    refetch();
  });

  async function fetchRows() {
    const mine = ++generation;
    try {
      const { nodes } = await allPages(
        ops.MACHINES,
        { first: 100, filter: filterInput() },
        "machines",
      );
      if (mine !== generation || stopped) return;
      rows.clear();
      for (const node of nodes) rows.set(node.id, overlay(node, latest.get(node.id)));
      loaded = true;
      render();
    } catch (error) {
      if (!stopped) showError(error);
    }
  }
  const refetch = debounce(fetchRows, 250);

  function render() {
    const sorted = [...rows.values()].sort((a, b) =>
      a.name.localeCompare(b.name, undefined, { sensitivity: "base" }),
    );
    fill(
      tbody,
      sorted.map((m) =>
        h(
          "tr",
          { "data-machine": m.name, "data-maintenance": String(m.maintenance) },
          nameCell(`#/machines/${encodeURIComponent(m.id)}`, m),
          several ? h("td", {}, m.environment?.name ?? "—") : null,
          h("td", {}, m.description || h("span", { class: "muted" }, "—")),
          h("td", {}, m.version),
          h(
            "td",
            {},
            m.group
              ? h("a", { href: `#/groups/${encodeURIComponent(m.group.id)}` }, m.group.name)
              : h("span", { class: "muted" }, "—"),
          ),
          h("td", {}, statusBadge(m.status)),
          h("td", { class: "num" }, m.runningCount),
          h("td", { class: "num" }, m.queuedCount),
          h("td", {}, accessText(m.accessType)),
          h("td", {}, m.owner?.displayName ?? "—"),
        ),
      ),
    );
    if (!sorted.length) {
      const filtered = Object.values(filters).some(Boolean);
      const why = filtered
        ? "No machine matches these filters. Clear a filter to see more."
        : session.environments.length
          ? "No machine you can see yet: machines appear here once registered, shared with you, or in an environment you administer."
          : "You hold no role in any environment, so there are no machines to show.";
      tbody.append(h("tr", {}, h("td", { colspan: several ? 10 : 9, class: "empty", id: "machines-empty" }, why)));
    }
    const inMaintenance = sorted.filter((m) => m.maintenance).length;
    count.textContent =
      `${sorted.length} machine${sorted.length === 1 ? "" : "s"}` +
      (inMaintenance ? `, ${inMaintenance} in maintenance` : "");
  }

  function onLive({ machineStatus: update }) {
    let needFetch = false;
    for (const live of update.machines) {
      latest.set(live.machineId, live);
      const row = rows.get(live.machineId);
      if (row) {
        if ((row.group?.id ?? null) !== live.groupId) needFetch = true; // its group's name
        if (matchesLive(live)) overlay(row, live);
        else rows.delete(live.machineId);
      } else if (matchesLive(live)) {
        needFetch = true; // new to this view: the query has its owner, access, description
      }
    }
    for (const id of update.removedIds) {
      latest.delete(id);
      rows.delete(id);
    }
    if (update.snapshot) {
      const seen = new Set(update.machines.map((m) => m.machineId));
      if ([...rows.keys()].some((id) => !seen.has(id))) needFetch = true;
    }
    render();
    if (needFetch && loaded) refetch();
  }

  const search = h("input", {
    id: "filter-text",
    type: "search",
    value: filters.text,
    placeholder: "Name or description",
    oninput: (event) => {
      filters.text = event.target.value;
      refetch();
    },
  });

  fill(
    main,
    h("div", { class: "title-row" }, h("h1", {}, "Machines"), count),
    registerSection(() => fetchRows()),
    h(
      "form",
      { class: "filters", role: "search", "aria-label": "Filter machines", onsubmit: (e) => e.preventDefault() },
      h("div", { class: "field grow" }, h("label", { for: "filter-text" }, "Search"), search),
      several
        ? select(
            "filter-environment",
            "Environment",
            [["", "All environments"], ...session.environments.map((e) => [e.id, e.name])],
            filters.environmentId,
            (v) => {
              filters.environmentId = v;
              refetch();
            },
          )
        : null,
      groupField,
      select(
        "filter-status",
        "Status",
        [
          ["", "Any status"],
          ["CONNECTED", "Connected"],
          ["DISCONNECTED", "Disconnected"],
        ],
        filters.status,
        (v) => {
          filters.status = v;
          refetch();
        },
      ),
      select(
        "filter-maintenance",
        "Maintenance",
        [
          ["", "Any"],
          ["on", "In maintenance"],
          ["off", "Not in maintenance"],
        ],
        filters.maintenance,
        (v) => {
          filters.maintenance = v;
          refetch();
        },
      ),
      select(
        "filter-runtime",
        "Runtime",
        [
          ["", "Any runtime"],
          ["yes", "Must update (below minimum)"],
          ["no", "Up to date"],
        ],
        filters.outdated,
        (v) => {
          filters.outdated = v;
          refetch();
        },
      ),
    ),
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "grid", id: "machines" },
        h("caption", { class: "visually-hidden" }, "Machines you can see, updated live"),
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            h("th", { scope: "col" }, "Name"),
            several ? h("th", { scope: "col" }, "Environment") : null,
            ["Description", "Version", "Group", "Status"].map((t) => h("th", { scope: "col" }, t)),
            h("th", { scope: "col", class: "num" }, "Flows running"),
            h("th", { scope: "col", class: "num" }, "Flows queued"),
            h("th", { scope: "col" }, "Access"),
            h("th", { scope: "col" }, "Owner"),
          ),
        ),
        tbody,
      ),
    ),
  );

  allPages(ops.GROUP_NAMES, {}, "machineGroups")
    .then(({ nodes }) => {
      const groupSelect = groupField.querySelector("select");
      for (const group of nodes) {
        groupSelect.append(h("option", { value: group.id, selected: group.id === filters.groupId }, group.name));
      }
    })
    .catch((error) => stopped || showError(error));

  fetchRows();
  const unsubscribe = subscribe(ops.WATCH_MACHINES, {}, onLive, (error) => stopped || showError(error));
  return () => {
    stopped = true;
    refetch.cancel();
    unsubscribe();
  };
}

export function groupsView(main) {
  const several = severalEnvironments();
  let stopped = false;
  const tbody = h("tbody");
  const count = h("p", { class: "count", "aria-live": "polite" });

  async function fetchGroups() {
    try {
      const { nodes } = await allPages(ops.GROUPS, {}, "machineGroups");
      if (stopped) return;
      fill(
        tbody,
        nodes.map((g) =>
          h(
            "tr",
            { "data-group": g.name, "data-maintenance": String(g.maintenance) },
            nameCell(`#/groups/${encodeURIComponent(g.id)}`, g),
            several ? h("td", {}, g.environment?.name ?? "—") : null,
            h("td", {}, g.description || h("span", { class: "muted" }, "—")),
            h("td", { class: "num" }, `${g.connectedCount} of ${g.machineCount}`),
            h("td", { class: "num" }, g.runningCount),
            h("td", { class: "num" }, g.queuedCount),
            h("td", {}, accessText(g.accessType)),
            h("td", {}, g.owner?.displayName ?? "—"),
          ),
        ),
      );
      if (!nodes.length) {
        const why = session.environments.length
          ? "No machine group you can see yet: groups appear here once created, shared with you, or in an environment you administer."
          : "You hold no role in any environment, so there are no groups to show.";
        tbody.append(h("tr", {}, h("td", { colspan: several ? 8 : 7, class: "empty", id: "groups-empty" }, why)));
      }
      count.textContent = `${nodes.length} group${nodes.length === 1 ? "" : "s"}`;
    } catch (error) {
      if (!stopped) showError(error);
    }
  }
  const refetch = debounce(fetchGroups, 300);

  fill(
    main,
    h("div", { class: "title-row" }, h("h1", {}, "Machine groups"), count),
    createGroupSection((group) => {
      window.location.hash = `#/groups/${encodeURIComponent(group.id)}`;
    }),
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "grid", id: "groups" },
        h("caption", { class: "visually-hidden" }, "Machine groups you can see, updated live"),
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            h("th", { scope: "col" }, "Name"),
            several ? h("th", { scope: "col" }, "Environment") : null,
            h("th", { scope: "col" }, "Description"),
            h("th", { scope: "col", class: "num" }, "Machines connected"),
            h("th", { scope: "col", class: "num" }, "Flows running"),
            h("th", { scope: "col", class: "num" }, "Flows queued"),
            h("th", { scope: "col" }, "Access"),
            h("th", { scope: "col" }, "Owner"),
          ),
        ),
        tbody,
      ),
    ),
  );
  fetchGroups();
  // Any machine's change may change a group's counts, maintenance or drained state.
  const unsubscribe = subscribe(ops.WATCH_MACHINES, {}, () => refetch(), (e) => stopped || showError(e));
  return () => {
    stopped = true;
    refetch.cancel();
    unsubscribe();
  };
}
