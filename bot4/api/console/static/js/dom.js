// DOM builders and formatters. Every text the API sends is set with textContent (or
// createTextNode): nothing from the API is ever parsed as HTML, so a hostile string in a
// runbook, an alert or an audit row is shown, never run.

const SVG_NS = "http://www.w3.org/2000/svg";

/** Set attributes and listeners; `text` becomes textContent, `on` maps events. */
function apply(node, attrs) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "text") node.textContent = String(value);
    else if (name === "class") node.setAttribute("class", value);
    else if (name === "on") for (const [event, fn] of Object.entries(value)) node.addEventListener(event, fn);
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name === "style" || name.startsWith("on")) throw new Error(`refused attribute ${name}`);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  return node;
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Return a new HTML element: h("td", {class: "num"}, "42"). */
export function h(tag, attrs = {}, ...children) {
  return append(apply(document.createElement(tag), attrs), children);
}

/** Return a new SVG element. */
export function svg(tag, attrs = {}, ...children) {
  return append(apply(document.createElementNS(SVG_NS, tag), attrs), children);
}

/** Replace a node's children. */
export function fill(node, ...children) {
  node.replaceChildren();
  return append(node, children);
}

/** Return a table: columns are {label, cell: row => node|text, class?}. */
export function table(columns, rows, { empty = "nothing yet", testid } = {}) {
  if (!rows.length) return h("p", { class: "empty", "data-testid": testid }, empty);
  return h("table", { "data-testid": testid },
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { class: c.class }, c.label)))),
    h("tbody", {}, rows.map((row) =>
      h("tr", {}, columns.map((c) => h("td", { class: c.class }, c.cell(row)))))));
}

/** Return a <pre> with the JSON of a value, for results and details. */
export function jsonBlock(value, attrs = {}) {
  return h("pre", { class: "json", ...attrs }, JSON.stringify(value, null, 2));
}

/** Return a toggle that shows a JSON block under it when clicked. */
export function details(label, value) {
  const box = h("details", {}, h("summary", {}, label));
  box.addEventListener("toggle", () => {
    if (box.open && box.children.length === 1) box.append(jsonBlock(value));
  });
  return box;
}

/** Return a coloured badge for a state word (ACTIVE, HALTED, COMPLETED, firing...). */
export function badge(text, kind) {
  const word = String(text ?? "unknown");
  return h("span", { class: `badge ${kind || badgeKind(word)}` }, word);
}

export function badgeKind(word) {
  const w = word.toLowerCase();
  if (["active", "completed", "leader", "verified", "ok", "passed", "running", "true"].includes(w)) return "good";
  if (["halted", "failed", "firing", "terminated", "timed_out", "false", "page", "engaged"].includes(w)) return "bad";
  if (["reducing", "pending", "canceled", "standby", "ticket", "uploaded"].includes(w)) return "warn";
  return "plain";
}

/** Return "3 m 12 s"-style text for a duration in seconds. */
export function duration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(Number(seconds))) return "—";
  let s = Math.max(0, Number(seconds));
  if (s < 10) return `${s.toFixed(2)} s`;
  if (s < 120) return `${Math.round(s)} s`;
  const units = [["d", 86400], ["h", 3600], ["m", 60]];
  const parts = [];
  for (const [unit, size] of units) {
    if (s >= size) { parts.push(`${Math.floor(s / size)} ${unit}`); s %= size; }
    if (parts.length === 2) break;
  }
  return parts.join(" ");
}

/** Return seconds since an ISO time (null when none). */
export function ageOf(iso) {
  if (!iso) return null;
  return (Date.now() - Date.parse(iso)) / 1000;
}

/** Return a short local time of an ISO time. */
export function when(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : date.toLocaleString();
}

/** Return a number with a fixed number of decimals (— for none). */
export function num(value, digits = 2) {
  if (value === null || value === undefined || value === "") return "—";
  const n = Number(value);
  return Number.isFinite(n) ? n.toFixed(digits) : String(value);
}

/** Return a link that opens outside the console (never followed by the page itself). */
export function outLink(href, text) {
  return h("a", { href, target: "_blank", rel: "noopener noreferrer" }, text);
}
