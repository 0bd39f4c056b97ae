// Run history (what ran where, how long, why it failed) and one run's timeline, both live.
import { mutate, request, subscribe } from "./api.js";
import { debounce, duration, fill, h } from "./dom.js";
import * as ops from "./operations.js";
import {
  environmentName,
  estimateText,
  runStatusText,
  session,
  severalEnvironments,
  announce,
  showError,
  waitReasonText,
} from "./ui.js";

// The filters survive going to a run and back.
const filters = { environmentId: "", status: "", flowId: "", machineId: "", groupId: "", mine: "", from: "", to: "" };

function filterInput() {
  const at = (local) => (local ? new Date(local).toISOString() : null);
  return {
    environmentId: filters.environmentId || null,
    status: filters.status || null,
    flowId: filters.flowId || null,
    machineId: filters.machineId || null,
    groupId: filters.groupId || null,
    triggeredById: filters.mine ? session.me.user.id : null,
    queuedAfter: at(filters.from),
    queuedBefore: at(filters.to),
  };
}

function filtered() {
  return Object.values(filters).some(Boolean);
}

export function runStatus(status) {
  return h("span", { class: `run-status run-${status.toLowerCase()}` }, runStatusText(status));
}

function field(id, label, control) {
  return h("div", { class: "field" }, h("label", { for: id }, label), control);
}

function choice(id, label, options, key, onchange) {
  return field(
    id,
    label,
    h(
      "select",
      {
        id,
        onchange: (event) => {
          filters[key] = event.target.value;
          onchange();
        },
      },
      options.map(([value, text]) => h("option", { value, selected: value === filters[key] }, text)),
    ),
  );
}

function where(run) {
  const machine = run.machine ?? run.targetMachine;
  if (machine) return h("a", { href: `#/machines/${encodeURIComponent(machine.id)}` }, machine.name);
  if (run.targetGroup) {
    return h("a", { href: `#/groups/${encodeURIComponent(run.targetGroup.id)}` }, run.targetGroup.name);
  }
  return h("span", { class: "muted" }, "—");
}

function outcome(run) {
  if (run.status === "QUEUED") {
    return h("span", {}, waitReasonText(run.waitReason), h("br"), h("span", { class: "muted" }, `Starts ${estimateText(run)}`));
  }
  return run.errorCode ? h("code", {}, run.errorCode) : h("span", { class: "muted" }, "—");
}

export function runsView(main) {
  let stopped = false;
  let generation = 0;
  const cursors = [null]; // the `after` of each page seen, to go back
  let pageIndex = 0;
  const tbody = h("tbody");
  const count = h("p", { class: "count", id: "run-count", "aria-live": "polite" });
  const pager = h("nav", { class: "pager", "aria-label": "Pages of runs" });
  const several = severalEnvironments();

  async function load() {
    const mine = ++generation;
    try {
      const { flowRuns } = await request(ops.RUNS, { after: cursors[pageIndex], filter: filterInput() }); // 25 a page
      if (stopped || mine !== generation) return;
      render(flowRuns);
    } catch (error) {
      if (!stopped) showError(error);
    }
  }
  const refetch = debounce(load, 300);
  const restart = () => {
    cursors.length = 1;
    pageIndex = 0;
    refetch();
  };

  function render(connection) {
    const runs = connection.edges.map((e) => e.node);
    fill(
      tbody,
      runs.map((run) =>
        h(
          "tr",
          { "data-run": run.id, "data-status": run.status },
          h("th", { scope: "row" }, h("a", { href: `#/runs/${encodeURIComponent(run.id)}` }, run.flow?.name ?? "(deleted flow)")),
          h("td", {}, runStatus(run.status)),
          several ? h("td", {}, run.environment?.name ?? "—") : null,
          h("td", {}, where(run)),
          h("td", {}, run.triggeredBy?.displayName ?? h("span", { class: "muted" }, "—")),
          h("td", {}, h("time", { datetime: run.queuedAt }, new Date(run.queuedAt).toLocaleString())),
          h("td", { class: "num" }, duration(run.waitSeconds)),
          h("td", { class: "num" }, duration(run.runSeconds)),
          h("td", {}, outcome(run)),
        ),
      ),
    );
    if (!runs.length) {
      const why = filtered()
        ? "No run matches these filters. Clear a filter to see more."
        : session.environments.length
          ? "No run yet: runs appear here once a flow is triggered on a machine or group you can see."
          : "You hold no role in any environment, so there are no runs to show.";
      tbody.append(h("tr", {}, h("td", { colspan: several ? 9 : 8, class: "empty", id: "runs-empty" }, why)));
    }
    count.textContent = `${connection.totalCount} run${connection.totalCount === 1 ? "" : "s"}`;
    if (connection.pageInfo.hasNextPage) cursors[pageIndex + 1] = connection.pageInfo.endCursor;
    fill(
      pager,
      h(
        "button",
        { type: "button", class: "secondary", disabled: pageIndex === 0, onclick: () => { pageIndex -= 1; load(); } },
        "Previous page",
      ),
      h("span", { class: "muted" }, ` Page ${pageIndex + 1} `),
      h(
        "button",
        {
          type: "button",
          class: "secondary",
          disabled: !connection.pageInfo.hasNextPage,
          onclick: () => { pageIndex += 1; load(); },
        },
        "Next page",
      ),
    );
  }

  const statusOptions = [["", "Any status"], ...Object.keys({ QUEUED: 1, DISPATCHED: 1, RUNNING: 1, SUCCEEDED: 1, FAILED: 1, CANCELLED: 1, TIMED_OUT: 1 }).map((s) => [s, runStatusText(s)])];
  const flowField = choice("runs-flow", "Flow", [["", "Any flow"]], "flowId", restart);
  const machineField = choice("runs-machine", "Machine", [["", "Any machine"]], "machineId", restart);
  const groupField = choice("runs-group", "Group", [["", "Any group"]], "groupId", restart);
  const time = (id, label, key) =>
    field(id, label, h("input", { id, type: "datetime-local", value: filters[key], onchange: (e) => { filters[key] = e.target.value; restart(); } }));

  fill(
    main,
    h("div", { class: "title-row" }, h("h1", {}, "Runs"), count),
    h(
      "form",
      { class: "filters", role: "search", "aria-label": "Filter runs", onsubmit: (e) => e.preventDefault() },
      several
        ? choice("runs-environment", "Environment", [["", "All environments"], ...session.environments.map((e) => [e.id, e.name])], "environmentId", restart)
        : null,
      choice("runs-status", "Status", statusOptions, "status", restart),
      flowField,
      machineField,
      groupField,
      choice("runs-who", "Triggered by", [["", "Anyone"], ["me", "Me"]], "mine", restart),
      time("runs-from", "Queued from", "from"),
      time("runs-to", "Queued before", "to"),
    ),
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "grid", id: "runs" },
        h("caption", { class: "visually-hidden" }, "Runs you can see, newest first, updated live"),
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            h("th", { scope: "col" }, "Flow"),
            h("th", { scope: "col" }, "Status"),
            several ? h("th", { scope: "col" }, "Environment") : null,
            h("th", { scope: "col" }, "Machine or group"),
            h("th", { scope: "col" }, "Triggered by"),
            h("th", { scope: "col" }, "Queued"),
            h("th", { scope: "col", class: "num" }, "Waited"),
            h("th", { scope: "col", class: "num" }, "Ran"),
            h("th", { scope: "col" }, "Why it waits or failed"),
          ),
        ),
        tbody,
      ),
    ),
    pager,
  );

  request(ops.RUN_FILTER_CHOICES)
    .then((data) => {
      if (stopped) return;
      const label = (item) => (several && item.environment ? `${item.name} (${item.environment.name})` : item.name);
      const add = (container, items) => {
        const select = container.querySelector("select");
        for (const item of items) select.append(h("option", { value: item.id, selected: item.id === select.value }, label(item)));
      };
      add(flowField, data.desktopFlows.nodes);
      add(machineField, data.machines.nodes);
      add(groupField, data.machineGroups.nodes);
      for (const [container, key] of [[flowField, "flowId"], [machineField, "machineId"], [groupField, "groupId"]]) {
        container.querySelector("select").value = filters[key];
      }
    })
    .catch((error) => stopped || showError(error));

  load();
  // Any change to a run the caller may see: the page again (at most every 300 ms).
  const unsubscribe = subscribe(ops.WATCH_RUNS, {}, () => refetch(), (error) => stopped || showError(error));
  return () => {
    stopped = true;
    refetch.cancel();
    unsubscribe();
  };
}

// --- one run -------------------------------------------------------------------------------

function at(iso) {
  return iso ? h("time", { datetime: iso }, new Date(iso).toLocaleString()) : null;
}

/** The timeline, from what the run records: queued, waiting (now: why), dispatched, started, ended. */
function timeline(run) {
  const steps = [["Queued", at(run.queuedAt), run.triggeredBy ? `by ${run.triggeredBy.displayName}` : null]];
  for (const stretch of run.waitHistory ?? []) {
    if (!stretch.until) continue; // the current one: "Waiting" below says it
    const seconds = (new Date(stretch.until) - new Date(stretch.since)) / 1000;
    steps.push(["Waited", `for ${duration(seconds)}`, `${waitReasonText(stretch.reason)} (from ${new Date(stretch.since).toLocaleTimeString()})`]);
  }
  if (run.status === "QUEUED") {
    steps.push([
      "Waiting",
      `for ${duration(run.waitSeconds)}`,
      `${waitReasonText(run.waitReason)}; position ${run.queuePosition ?? "—"}; starts ${estimateText(run)}`,
    ]);
  }
  if (run.dispatchedAt) {
    steps.push([
      "Dispatched",
      at(run.dispatchedAt),
      `to ${(run.machine ?? run.targetMachine)?.name ?? "a machine"}` +
        (run.attempt > 1 ? `, attempt ${run.attempt} (earlier ones were not confirmed in time)` : ""),
    ]);
  }
  if (run.startedAt) steps.push(["Started", at(run.startedAt), `after waiting ${duration(run.waitSeconds)}`]);
  if (run.endedAt) {
    steps.push([
      runStatusText(run.status),
      at(run.endedAt),
      run.runSeconds !== null ? `after running ${duration(run.runSeconds)}` : `after waiting ${duration(run.waitSeconds)}`,
    ]);
  } else if (run.status === "RUNNING") {
    steps.push(["Running", `for ${duration(run.runSeconds)}`, null]);
  }
  return h(
    "ol",
    { class: "timeline", id: "run-timeline" },
    steps.map(([what, when, detail]) =>
      h("li", { "data-step": what }, h("strong", {}, what), " ", when, detail ? h("span", { class: "muted" }, ` — ${detail}`) : null),
    ),
  );
}

const FINISHED = ["SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT"];

function runLink(run, text) {
  return h("a", { href: `#/runs/${encodeURIComponent(run.id)}` }, text);
}

/** R40: where the run stands in its retry chain, and a way to retry it by hand once it ended. */
function retryChain(run, retry) {
  const parts = [h("span", { id: "run-retry-attempt" }, `Attempt ${run.retryAttempt}`)];
  if (run.retryOf) {
    parts.push("; retries ", runLink(run.retryOf, `attempt ${run.retryOf.retryAttempt}`), ` (${runStatusText(run.retryOf.status)})`);
  }
  if (run.retriedBy) {
    parts.push("; retried by ", runLink(run.retriedBy, `attempt ${run.retriedBy.retryAttempt}`), ` (${runStatusText(run.retriedBy.status)})`);
  }
  if (run.notBefore && run.status === "QUEUED") {
    parts.push("; not before ", at(run.notBefore));
  }
  return h(
    "section",
    { class: "card", "aria-labelledby": "run-retry-heading" },
    h("h2", { id: "run-retry-heading" }, "Retries"),
    h("p", { id: "run-retry-chain" }, ...parts),
    FINISHED.includes(run.status) && !run.retriedBy
      ? h("button", { type: "button", id: "run-retry", onclick: retry }, "Retry this run")
      : h(
          "p",
          { class: "muted" },
          run.retriedBy ? "Retried already: a run is retried once, by its chain's next attempt." : "A run can be retried once it has ended.",
        ),
  );
}

export function runView(main, id) {
  let stopped = false;
  let tick = null;

  async function load() {
    try {
      const { run } = await request(ops.RUN, { id });
      if (!stopped) render(run);
    } catch (error) {
      if (!stopped) showError(error);
    }
  }
  const soon = debounce(load, 200);

  function render(run) {
    const heading = main.querySelector("h1");
    const hadFocus = heading && document.activeElement === heading;
    if (!run) {
      fill(main, h("h1", {}, "Run not found"), h("p", {}, "This run does not exist or you may not see it. ", h("a", { href: "#/runs" }, "Back to runs")));
      return;
    }
    const flow = run.flow?.name ?? "(deleted flow)";
    const facts = [
      ["Status", runStatus(run.status)],
      ["Environment", run.environment?.name ?? environmentName(null)],
      ["Machine or group", where(run)],
      ["Runs as", run.runAs],
      ["Mode", run.mode === "ATTENDED" ? "Attended" : "Unattended"],
      ["Priority", run.priority === "HIGH" ? "High" : "Normal"],
      ["Dispatch attempts", String(run.attempt)],
      ["Connection", run.connection?.name ?? "—"],
      ["Triggered by", run.triggeredBy?.displayName ?? "—"],
      run.errorCode ? ["Error code", h("code", { id: "run-error-code" }, run.errorCode)] : null,
      run.errorMessage ? ["Error message", h("span", { id: "run-error-message" }, run.errorMessage)] : null,
      run.reportedRuntimeVersion ? ["Runtime version", run.reportedRuntimeVersion] : null,
    ].filter(Boolean);
    fill(
      main,
      h("nav", { "aria-label": "Breadcrumb", class: "crumbs" }, h("a", { href: "#/runs" }, "Runs"), " / ", flow),
      h("h1", { tabindex: "-1" }, `${flow} run`),
      h(
        "section",
        { class: "card", "aria-labelledby": "run-details-heading" },
        h("h2", { id: "run-details-heading" }, "Details"),
        h("dl", { class: "facts" }, facts.map(([t, v]) => h("div", {}, h("dt", {}, t), h("dd", {}, v)))),
      ),
      retryChain(run, async () => {
        try {
          const retried = await mutate(ops.RETRY_RUN, { id: run.id });
          announce(`Retried: attempt ${retried.run.retryAttempt} is queued`);
          location.hash = `#/runs/${encodeURIComponent(retried.run.id)}`;
        } catch (error) {
          showError(error);
        }
      }),
      h(
        "section",
        { class: "card", "aria-labelledby": "run-timeline-heading" },
        h("h2", { id: "run-timeline-heading" }, "Timeline"),
        timeline(run),
        h(
          "p",
          { class: "muted" },
          "Why it waited is read about every half minute while it is queued; the other times are the run's own.",
        ),
      ),
    );
    document.title = `${flow} run · DeskFleet`;
    if (hadFocus) main.querySelector("h1").focus({ preventScroll: true });
    clearInterval(tick);
    // While it waits or runs, its durations grow: redraw them every 5 s between changes.
    if (["QUEUED", "DISPATCHED", "RUNNING"].includes(run.status)) tick = setInterval(soon, 5000);
  }

  fill(main, h("h1", {}, "Loading…"));
  load();
  const unsubscribe = subscribe(ops.WATCH_RUN, { runId: id }, () => soon(), (error) => stopped || showError(error));
  return () => {
    stopped = true;
    clearInterval(tick);
    soon.cancel();
    unsubscribe();
  };
}
