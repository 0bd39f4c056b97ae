// Small DOM helpers. Text always goes in as text (never parsed as HTML).

const SVG = "http://www.w3.org/2000/svg";

/**
 * h("button", { class: "x", onclick: fn, "aria-label": "..." }, "text", child...)
 * Attributes: `on*` functions become listeners, `true` a bare attribute, false/null nothing.
 */
export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2), value);
    } else if (name === "value" && "value" in element) {
      element.value = value;
    } else {
      element.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace an element's content. */
export function fill(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

/**
 * The red maintenance pictogram (a wrench), with its meaning for assistive technology.
 */
export function maintenanceIcon(drained) {
  const label = drained ? "In maintenance, drained" : "In maintenance, runs still finishing";
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("class", "maintenance-icon");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("width", "18");
  svg.setAttribute("height", "18");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  svg.setAttribute("focusable", "false");
  const title = document.createElementNS(SVG, "title");
  title.textContent = label;
  const path = document.createElementNS(SVG, "path");
  path.setAttribute(
    "d",
    "M22.7 19.3 13.6 10.2c.9-2.3.4-5-1.5-6.9-2-2-5-2.4-7.4-1.3l4.3 4.3-3 3-4.4-4.3C.4 7.4.9 10.4 2.9 12.4c1.9 1.9 4.6 2.4 6.9 1.5l9.1 9.1c.4.4 1 .4 1.4 0l2.3-2.3c.5-.4.5-1.1.1-1.4z",
  );
  svg.append(title, path);
  return svg;
}

/** "3 minutes ago" style text for a timestamp, with the full time as a tooltip. */
export function timeAgo(iso) {
  if (!iso) return "—";
  const then = new Date(iso);
  const seconds = Math.max(0, (Date.now() - then.getTime()) / 1000);
  return h("time", { datetime: iso, title: then.toLocaleString() }, `${duration(seconds)} ago`);
}

/** 75 -> "1 min 15 s". */
export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  const hours = Math.floor(m / 60);
  if (hours < 48) return `${hours} h ${m % 60} min`;
  return `${Math.floor(hours / 24)} days`;
}

/** Call `fn` once, `ms` after the last of a burst of calls. */
export function debounce(fn, ms) {
  let timer = null;
  const debounced = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
  debounced.cancel = () => clearTimeout(timer);
  return debounced;
}
