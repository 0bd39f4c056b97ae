// The fleet over time: `fleetStatistics` (the server's rollups) drawn as charts, kept current.
import { request, subscribe } from "./api.js";
import { barChart, heatMap, lineChart } from "./charts.js";
import { debounce, fill, h } from "./dom.js";
import * as ops from "./operations.js";
import { session, showError } from "./ui.js";

const RANGES = {
  "6h": { label: "Last 6 hours", hours: 6, bucket: "MINUTE", every: 5 },
  "24h": { label: "Last 24 hours", hours: 24, bucket: "HOUR" },
  "7d": { label: "Last 7 days", hours: 24 * 7, bucket: "HOUR" },
  "30d": { label: "Last 30 days", hours: 24 * 30, bucket: "DAY" },
};
const chosen = { environmentId: "", range: "24h" };
const COLOURS = { queued: "#b3261e", running: "#0b5cad", ok: "#17672f", failed: "#b3261e", timedOut: "#8a5a00", cancelled: "#5b6470" };

function label(iso, bucket) {
  const at = new Date(iso);
  if (bucket === "DAY") return at.toLocaleDateString(undefined, { month: "short", day: "numeric" });
  return at.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
}

function peakOf(part, key) {
  const known = part.map((b) => b[key]).filter((v) => v !== null);
  return known.length ? Math.max(...known) : null;
}

/** MINUTE buckets over 6 hours are many: the charts take every `every` of them together. */
function coarsen(buckets, every) {
  if (!every || every === 1) return buckets;
  const merged = [];
  for (let i = 0; i < buckets.length; i += every) {
    const part = buckets.slice(i, i + every);
    const read = part.filter((b) => b.queueDepthMean !== null);
    const mean = (key) => (read.length ? read.reduce((s, b) => s + b[key], 0) / read.length : null);
    const peak = (key) => (read.length ? Math.max(...read.map((b) => b[key])) : null);
    const sum = (key) => part.reduce((s, b) => s + b[key], 0);
    merged.push({
      start: part[0].start,
      queueDepthMean: mean("queueDepthMean"),
      queueDepthPeak: peak("queueDepthPeak"),
      runningMean: mean("runningMean"),
      runningPeak: peak("runningPeak"),
      machinesConnectedMean: mean("machinesConnectedMean"),
      runsStarted: sum("runsStarted"),
      runsSucceeded: sum("runsSucceeded"),
      runsFailed: sum("runsFailed"),
      runsTimedOut: sum("runsTimedOut"),
      runsCancelled: sum("runsCancelled"),
      // Percentiles do not add up: a merged bucket shows the highest of its parts.
      waitSecondsP50: peakOf(part, "waitSecondsP50"),
      waitSecondsP90: peakOf(part, "waitSecondsP90"),
    });
  }
  return merged;
}

function charts(stats, range) {
  const buckets = coarsen(stats.buckets, range.every);
  const labels = buckets.map((b) => label(b.start, stats.bucket));
  const read = buckets.some((b) => b.queueDepthMean !== null);
  const ended = buckets.reduce((s, b) => s + b.runsSucceeded + b.runsFailed + b.runsTimedOut + b.runsCancelled, 0);
  const peakQueue = Math.max(0, ...buckets.map((b) => b.queueDepthPeak ?? 0));
  const cellLabels = stats.utilisationStarts.map((iso) => label(iso, stats.utilisationBucket));
  return [
    lineChart({
      id: "chart-queue",
      title: "Queue depth and running runs",
      summary: read
        ? `Mean runs queued and running per ${range.every ? `${range.every} minutes` : stats.bucket.toLowerCase()}; the queue peaked at ${peakQueue}.`
        : "No reading in this range: the server was not running, or it has only just started keeping statistics.",
      labels,
      series: [
        { name: "Queued (mean)", colour: COLOURS.queued, values: buckets.map((b) => b.queueDepthMean) },
        { name: "Running (mean)", colour: COLOURS.running, values: buckets.map((b) => b.runningMean) },
      ],
      format: (v) => (v >= 10 ? String(Math.round(v)) : v.toFixed(1)),
    }),
    lineChart({
      id: "chart-waits",
      title: "Wait from queued to started",
      summary: buckets.some((b) => b.waitSecondsP50 !== null)
        ? `Half the runs that started waited less than the first line, nine in ten less than the second (seconds${range.every ? "; the highest of each 5 minutes" : ""}).`
        : "No run started in this range.",
      labels,
      series: [
        { name: "p50 (s)", colour: COLOURS.running, values: buckets.map((b) => b.waitSecondsP50) },
        { name: "p90 (s)", colour: COLOURS.timedOut, values: buckets.map((b) => b.waitSecondsP90) },
      ],
      format: (v) => (v >= 10 ? String(Math.round(v)) : v.toFixed(1)),
    }),
    barChart({
      id: "chart-outcomes",
      title: "How runs ended",
      summary: ended ? `${ended} run${ended === 1 ? "" : "s"} ended in this range.` : "No run ended in this range.",
      labels,
      series: [
        { name: "Succeeded", colour: COLOURS.ok, values: buckets.map((b) => b.runsSucceeded) },
        { name: "Failed", colour: COLOURS.failed, values: buckets.map((b) => b.runsFailed) },
        { name: "Timed out", colour: COLOURS.timedOut, values: buckets.map((b) => b.runsTimedOut) },
        { name: "Cancelled", colour: COLOURS.cancelled, values: buckets.map((b) => b.runsCancelled) },
      ],
    }),
    heatMap({
      id: "chart-utilisation",
      title: `Machine utilisation by ${stats.utilisationBucket === "DAY" ? "day" : "hour"}`,
      summary: stats.machines.length
        ? `The share of each machine's bots busy running flows, busiest first (${stats.machines.length} shown).`
        : "No machine you can see in this environment.",
      labels: cellLabels,
      rows: stats.machines.map((m) => ({ name: m.name, shares: m.busyShare })),
    }),
    stats.groups.length
      ? heatMap({
          id: "chart-group-utilisation",
          title: `Group utilisation by ${stats.utilisationBucket === "DAY" ? "day" : "hour"}`,
          summary: "The share of the bots of each group's current machines busy running flows.",
          labels: cellLabels,
          rows: stats.groups.map((g) => ({ name: g.name, shares: g.busyShare })),
          rowHeading: "Group",
        })
      : null,
  ];
}

export function trendsView(main) {
  let stopped = false;
  let generation = 0;
  const environments = session.environments;
  if (!chosen.environmentId || !environments.some((e) => e.id === chosen.environmentId)) {
    chosen.environmentId = environments[0]?.id ?? "";
  }
  const body = h("div", { id: "trends-body", "aria-live": "off" });
  const updated = h("p", { class: "count", id: "trends-updated" });

  async function load() {
    const mine = ++generation;
    if (!chosen.environmentId) {
      fill(body, h("p", { class: "card empty-state", id: "trends-empty" }, "You hold no role in any environment, so there are no statistics to show."));
      return;
    }
    const range = RANGES[chosen.range];
    const to = new Date();
    const from = new Date(to.getTime() - range.hours * 3600 * 1000);
    try {
      const { fleetStatistics: stats } = await request(ops.FLEET_STATISTICS, {
        environmentId: chosen.environmentId,
        from: from.toISOString(),
        to: to.toISOString(),
        bucket: range.bucket,
      });
      if (stopped || mine !== generation) return;
      if (stats.__typename !== "FleetStatistics") {
        fill(body, h("p", { class: "card empty-state" }, stats.message));
        return;
      }
      fill(body, charts(stats, range));
      updated.textContent = `Updated ${to.toLocaleTimeString()}`;
    } catch (error) {
      if (!stopped) showError(error);
    }
  }
  const refetch = debounce(load, 2000);

  const picker = (id, text, options, key) =>
    h(
      "div",
      { class: "field" },
      h("label", { for: id }, text),
      h(
        "select",
        { id, onchange: (e) => { chosen[key] = e.target.value; load(); } },
        options.map(([value, name]) => h("option", { value, selected: value === chosen[key] }, name)),
      ),
    );

  fill(
    main,
    h("div", { class: "title-row" }, h("h1", {}, "Trends"), updated),
    h(
      "form",
      { class: "filters", "aria-label": "Choose what to chart", onsubmit: (e) => e.preventDefault() },
      environments.length > 1 ? picker("trends-environment", "Environment", environments.map((e) => [e.id, e.name]), "environmentId") : null,
      picker("trends-range", "Range", Object.entries(RANGES).map(([k, r]) => [k, r.label]), "range"),
    ),
    body,
  );
  load();
  // Live: any run change redraws (at most every 2 s), and the gauges every 30 s.
  const unsubscribe = subscribe(ops.WATCH_RUNS, {}, () => refetch(), (error) => stopped || showError(error));
  const timer = setInterval(load, 30_000);
  return () => {
    stopped = true;
    clearInterval(timer);
    refetch.cancel();
    unsubscribe();
  };
}
