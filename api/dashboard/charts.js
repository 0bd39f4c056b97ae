// Charts in plain SVG (no library, no build step), each with the same figures as a table.
import { h } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 720;
const HEIGHT = 220;
const PAD = { left: 44, right: 12, top: 12, bottom: 28 };

function svg(tag, attrs = {}, ...children) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== null && value !== undefined) element.setAttribute(name, String(value));
  }
  for (const child of children.flat()) if (child) element.append(child);
  return element;
}

function text(x, y, content, attrs = {}) {
  const element = svg("text", { x, y, ...attrs });
  element.textContent = content;
  return element;
}

function niceMax(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  return [1, 2, 5, 10].map((m) => m * power).find((m) => m >= value);
}

/** The axes and grid: y from 0 to `max`, `labels` under evenly spaced x positions. */
function frame(max, labels, format) {
  const inner = HEIGHT - PAD.top - PAD.bottom;
  const parts = [];
  for (const share of [0, 0.5, 1]) {
    const y = PAD.top + inner * (1 - share);
    parts.push(svg("line", { x1: PAD.left, x2: WIDTH - PAD.right, y1: y, y2: y, class: "grid-line" }));
    parts.push(text(PAD.left - 6, y + 4, format(max * share), { "text-anchor": "end", class: "axis" }));
  }
  const every = Math.max(1, Math.ceil(labels.length / 8));
  const step = (WIDTH - PAD.left - PAD.right) / Math.max(1, labels.length);
  labels.forEach((label, i) => {
    if (i % every) return;
    parts.push(text(PAD.left + step * (i + 0.5), HEIGHT - 8, label, { "text-anchor": "middle", class: "axis" }));
  });
  return parts;
}

function figure(id, title, summary, graphic, table) {
  return h(
    "figure",
    { class: "chart card", id, "aria-labelledby": `${id}-title` },
    h("figcaption", { id: `${id}-title` }, h("h2", {}, title)),
    h("p", { class: "muted chart-summary", id: `${id}-summary` }, summary),
    graphic,
    h("details", {}, h("summary", {}, `${title}: the figures as a table`), table),
  );
}

function dataTable(caption, head, rows) {
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "grid" },
      h("caption", { class: "visually-hidden" }, caption),
      h("thead", {}, h("tr", {}, head.map((t, i) => h("th", { scope: "col", class: i ? "num" : null }, t)))),
      h(
        "tbody",
        {},
        rows.map(([label, ...cells]) => h("tr", {}, h("th", { scope: "row" }, label), cells.map((c) => h("td", { class: "num" }, c)))),
      ),
    ),
  );
}

function legend(series) {
  return h(
    "ul",
    { class: "legend" },
    series.map((s) => h("li", {}, h("span", { class: "swatch", style: `background:${s.colour}` }), s.name)),
  );
}

/** Lines over time; `series` [{name, colour, values}] (null: no reading, a gap). */
export function lineChart({ id, title, summary, labels, series, format = (v) => String(Math.round(v)) }) {
  const max = niceMax(Math.max(0, ...series.flatMap((s) => s.values.filter((v) => v !== null))));
  const inner = HEIGHT - PAD.top - PAD.bottom;
  const step = (WIDTH - PAD.left - PAD.right) / Math.max(1, labels.length);
  const lines = series.map((s) => {
    let d = "";
    let pen = "M";
    s.values.forEach((v, i) => {
      if (v === null) {
        pen = "M";
        return;
      }
      d += `${pen}${(PAD.left + step * (i + 0.5)).toFixed(1)},${(PAD.top + inner * (1 - v / max)).toFixed(1)} `;
      pen = "L";
    });
    // A dot at each reading too: a lone reading between gaps has no line to show it.
    const dots = s.values.map((v, i) =>
      v === null
        ? null
        : svg("circle", {
            cx: (PAD.left + step * (i + 0.5)).toFixed(1),
            cy: (PAD.top + inner * (1 - v / max)).toFixed(1),
            r: 2.5,
            fill: s.colour,
          }),
    );
    return [svg("path", { d: d.trim() || "M0,0", fill: "none", stroke: s.colour, "stroke-width": 2 }), dots];
  });
  const graphic = h(
    "div",
    { class: "chart-area" },
    svg("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", "aria-labelledby": `${id}-title ${id}-summary` }, frame(max, labels, format), lines),
    legend(series),
  );
  const rows = labels.map((label, i) => [label, ...series.map((s) => (s.values[i] === null ? "no reading" : format(s.values[i])))]);
  return figure(id, title, summary, graphic, dataTable(title, ["Time", ...series.map((s) => s.name)], rows));
}

/** Stacked bars per bucket; `series` [{name, colour, values}]. */
export function barChart({ id, title, summary, labels, series }) {
  const totals = labels.map((_, i) => series.reduce((sum, s) => sum + s.values[i], 0));
  const max = niceMax(Math.max(0, ...totals));
  const inner = HEIGHT - PAD.top - PAD.bottom;
  const step = (WIDTH - PAD.left - PAD.right) / Math.max(1, labels.length);
  const bars = [];
  labels.forEach((_, i) => {
    let base = 0;
    for (const s of series) {
      const value = s.values[i];
      if (!value) continue;
      const height = (inner * value) / max;
      bars.push(
        svg("rect", {
          x: (PAD.left + step * i + step * 0.15).toFixed(1),
          y: (PAD.top + inner - base - height).toFixed(1),
          width: (step * 0.7).toFixed(1),
          height: height.toFixed(1),
          fill: s.colour,
        }),
      );
      base += height;
    }
  });
  const graphic = h(
    "div",
    { class: "chart-area" },
    svg("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", "aria-labelledby": `${id}-title ${id}-summary` }, frame(max, labels, (v) => String(Math.round(v))), bars),
    legend(series),
  );
  const rows = labels.map((label, i) => [label, ...series.map((s) => String(s.values[i]))]);
  return figure(id, title, summary, graphic, dataTable(title, ["Time", ...series.map((s) => s.name)], rows));
}

/** Rows of cells shaded by a share from 0 to 1 (a machine's busy bots per hour). */
export function heatMap({ id, title, summary, labels, rows, rowHeading = "Machine" }) {
  const cell = Math.max(6, Math.min(28, (WIDTH - 160) / Math.max(1, labels.length)));
  const height = 20 * rows.length + 30;
  const parts = [];
  rows.forEach((row, r) => {
    parts.push(text(150, 20 * r + 15, row.name, { "text-anchor": "end", class: "axis" }));
    row.shares.forEach((share, c) => {
      parts.push(
        svg("rect", {
          x: 160 + c * cell,
          y: 20 * r + 2,
          width: cell - 1,
          height: 18,
          fill: share > 0 ? `rgba(11, 92, 173, ${(0.12 + 0.88 * share).toFixed(2)})` : "#eef2f6",
        }),
      );
    });
  });
  const every = Math.max(1, Math.ceil(64 / cell)); // a label needs about 64 px
  labels.forEach((label, c) => {
    if (c % every === 0) parts.push(text(160 + c * cell, height - 6, label, { class: "axis" }));
  });
  const width = Math.max(160 + cell * labels.length + 60, 320);
  const graphic = h(
    "div",
    { class: "chart-area heat" },
    svg("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-labelledby": `${id}-title ${id}-summary` }, parts),
    h("p", { class: "muted legend-note" }, "Darker: a larger share of the machine's bots busy running flows. Grey: idle."),
  );
  const tableRows = rows.map((row) => [row.name, ...row.shares.map((s) => `${Math.round(s * 100)} %`)]);
  return figure(id, title, summary, graphic, dataTable(title, [rowHeading, ...labels], tableRows));
}
