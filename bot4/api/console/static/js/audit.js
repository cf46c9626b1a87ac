// The audit log, filterable (operator and above): who called what, when, with which
// outcome. Every action this console takes is one of these rows, under the signed-in key.

import { call, query } from "./api.js";
import { badge, details, fill, h, table, when } from "./dom.js";
import { showError } from "./notice.js";

const FILTERS = [
  ["key_id", "key id", "text"],
  ["route", "route template, e.g. /v1/halt", "text"],
  ["status", "HTTP status", "number"],
  ["correlation_id", "correlation id", "text"],
];

export function auditSection(ctx) {
  const box = h("section", { class: "audit", "data-testid": "audit" }, h("h2", {}, "Audit log"));
  if (!ctx.can("audit")) {
    box.append(h("p", { class: "note", "data-testid": "audit-hidden" },
      `The audit log needs role ${ctx.config.least_roles.audit} or higher; this key is ${ctx.config.key.role}.`));
    return box;
  }
  const inputs = Object.fromEntries(FILTERS.map(([name, label, type]) =>
    [name, h("input", { type, name, placeholder: label, "aria-label": label, "data-testid": `audit-${name}` })]));
  const limit = h("select", { name: "limit", "aria-label": "rows" }, [50, 100, 500].map((n) => h("option", { value: n }, `${n} rows`)));
  const rows = h("div", { class: "audit-rows" });
  const more = h("button", { type: "button", hidden: true }, "Older rows");
  let shown = [];

  async function load(append) {
    const params = { limit: limit.value };
    for (const [name] of FILTERS) params[name] = inputs[name].value.trim();
    if (append && shown.length) params.before_seq = shown[shown.length - 1].seq;
    try {
      const found = await call(`/v1/audit${query(params)}`);
      shown = append ? shown.concat(found) : found;
      more.hidden = found.length < Number(limit.value);
      fill(rows, table([
        { label: "seq", class: "num", cell: (r) => r.seq },
        { label: "at", cell: (r) => when(r.at) },
        { label: "key", cell: (r) => r.key_id ? `${r.key_name || "?"} (${r.key_id})` : "—" },
        { label: "role", cell: (r) => r.role || "—" },
        { label: "request", cell: (r) => h("code", {}, `${r.method} ${r.route}`) },
        { label: "status", cell: (r) => badge(String(r.status), r.status < 400 ? "good" : r.status < 500 ? "warn" : "bad") },
        { label: "reason", cell: (r) => r.reason || "" },
        { label: "correlation id", cell: (r) => h("code", {}, r.correlation_id) },
        { label: "parameters", cell: (r) => r.params && Object.keys(r.params).length ? details("show", r.params) : "—" },
      ], shown, { empty: "no row matches", testid: "audit-rows" }));
    } catch (error) {
      showError(error, "Audit log");
    }
  }

  const form = h("form", { class: "filters", "data-testid": "audit-filters" },
    Object.values(inputs), limit,
    h("button", { type: "submit", "data-testid": "audit-apply" }, "Filter"),
    h("button", { type: "button", on: { click: () => { inputs.key_id.value = ctx.config.key.id; load(false); } } }, "My calls"),
    h("button", { type: "button", on: { click: () => { for (const input of Object.values(inputs)) input.value = ""; load(false); } } }, "Clear"));
  form.addEventListener("submit", (event) => { event.preventDefault(); load(false); });
  more.addEventListener("click", () => load(true));
  box.append(form, rows, more);
  load(false);
  return box;
}
