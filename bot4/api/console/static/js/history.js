// History: what happened on the desk, each with its result. Runbook runs (rollouts,
// model rollouts, liquidations, drills, emergency stops) from Temporal; drills, backups,
// reconciliations, reports and model versions from PostgreSQL; and the audit log.

import { call, query } from "./api.js";
import { auditSection } from "./audit.js";
import { badge, details, duration, fill, h, num, outLink, table, when } from "./dom.js";
import { showError, showNotice } from "./notice.js";
import { outcome } from "./runs.js";

const KINDS = [
  ["", "every runbook"], ["blue_green_deploy", "rollouts"], ["model_rollout", "model rollouts"],
  ["liquidation", "liquidations"], ["dr_failover", "drills and failovers"],
  ["emergency_stop", "emergency stops"], ["stack_check", "stack checks"],
];

function section(title, testid) {
  const body = h("div", { class: "loading" }, h("p", { class: "empty" }, "loading…"));
  return { node: h("section", { "data-testid": testid }, h("h2", {}, title), body), body };
}

async function show(part, path, draw) {
  try {
    fill(part.body, draw(await call(path)));
  } catch (error) {
    fill(part.body, h("p", { class: "error-inline" }, `${path}: ${error.message}`));
  }
}

function runsSection(ctx) {
  const part = section("Runbook runs", "history-runs");
  const kind = h("select", { "aria-label": "runbook", "data-testid": "runs-kind" }, KINDS.map(([value, label]) => h("option", { value }, label)));
  const rows = h("div");
  const load = () => show({ body: rows }, `/v1/runbooks/runs${query({ runbook: kind.value, limit: 100 })}`, (runs) => table([
    { label: "started", cell: (r) => when(r.started_at) },
    { label: "runbook", cell: (r) => r.runbook },
    { label: "run", cell: (r) => {
      const link = ctx.workflowUrl(r.workflow_id);
      return link ? outLink(link, r.workflow_id) : h("code", {}, r.workflow_id);
    } },
    { label: "status", cell: (r) => badge(r.status) },
    { label: "took", cell: (r) => r.closed_at ? duration((Date.parse(r.closed_at) - Date.parse(r.started_at)) / 1000) : "running" },
    { label: "result", cell: outcome },
  ], runs, { empty: "no run on this desk's queue", testid: "runs-table" }));
  kind.addEventListener("change", load);
  fill(part.body, h("p", {}, kind), rows);
  load();
  return part.node;
}

function choresButtons(ctx) {
  if (!ctx.can("run_flows")) return null;
  const run = async (name, body) => {
    try {
      const started = await call(`/v1/flows/${name}/runs`, { method: "POST", body });
      showNotice(`${name} run ${started.flow_run_name} created; Prefect UI: ${started.ui_url}`);
    } catch (error) {
      showError(error, `${name} run refused`);
    }
  };
  return h("p", { class: "actions" }, "Run a chore now: ",
    h("button", { type: "button", on: { click: () => run("backup", {}) } }, "Back up"),
    h("button", { type: "button", on: { click: () => run("reconcile", {}) } }, "Reconcile"),
    h("button", { type: "button", on: { click: () => run("report", {}) } }, "Daily report"));
}

export function mount(container, ctx) {
  const drills = section("DR drills", "history-drills");
  const backups = section("Backups", "history-backups");
  const reconciliations = section("Reconciliations", "history-reconciliations");
  const reports = section("Reports", "history-reports");
  const models = section("Model versions", "history-models");
  fill(container, h("h1", {}, "History"), runsSection(ctx), choresButtons(ctx),
    drills.node, backups.node, reconciliations.node, reports.node, models.node, auditSection(ctx));
  show(drills, "/v1/drills?limit=50", (rows) => table([
    { label: "started", cell: (r) => when(r.started_at) }, { label: "mode", cell: (r) => r.mode },
    { label: "result", cell: (r) => badge(r.passed ? "passed" : "failed") },
    { label: "RTO", class: "num", cell: (r) => duration(r.rto_s) }, { label: "RPO (events)", class: "num", cell: (r) => r.rpo_events ?? "—" },
    { label: "why not passed", cell: (r) => (r.failures || []).join("; ") || "—" },
  ], rows, { empty: "no drill stored" }));
  show(backups, "/v1/backups?limit=50", (rows) => table([
    { label: "created", cell: (r) => when(r.created_at) }, { label: "backup", cell: (r) => r.backup_id },
    { label: "status", cell: (r) => badge(r.status) }, { label: "size", class: "num", cell: (r) => `${num(r.size_bytes / 1e6, 1)} MB` },
    { label: "restore test", cell: (r) => r.restore_s ? `${num(r.restore_s, 1)} s` : "—" },
    { label: "failure", cell: (r) => r.failure || "—" },
  ], rows, { empty: "no backup yet" }));
  show(reconciliations, "/v1/reconciliation/runs?limit=50", (rows) => table([
    { label: "started", cell: (r) => when(r.started_at) }, { label: "venue", cell: (r) => r.venue },
    { label: "fills checked", class: "num", cell: (r) => r.fills_checked },
    { label: "breaks", cell: (r) => badge(String(r.breaks), r.breaks ? "bad" : "good") },
    { label: "escalated", class: "num", cell: (r) => r.escalated }, { label: "repaired", class: "num", cell: (r) => r.repaired },
    { label: "summary", cell: (r) => details("show", r.summary) },
  ], rows, { empty: "no reconciliation yet" }));
  show(reports, "/v1/reports?limit=50", (rows) => table([
    { label: "day", cell: (r) => r.day }, { label: "kind", cell: (r) => r.kind },
    { label: "report", cell: (r) => h("code", {}, r.html_uri) }, { label: "summary", cell: (r) => details("show", r.summary) },
  ], rows, { empty: "no report yet" }));
  show(models, "/v1/models?limit=50", (rows) => table([
    { label: "registered", cell: (r) => when(r.created_at) }, { label: "version", cell: (r) => r.version },
    { label: "kind", cell: (r) => r.kind }, { label: "state", cell: (r) => badge(r.state) },
    { label: "by", cell: (r) => r.created_by || "—" }, { label: "metrics", cell: (r) => details("show", r.metrics) },
  ], rows, { empty: "no model registered" }));
  return null;
}
