// Overview: is the desk healthy? Each engine, positions and PnL charted live (the
// engines are polled every poll_interval_s), open alerts, the newest verified backup's
// age, the last drill's RTO and RPO, and the latest reconciliation's breaks.

import { call } from "./api.js";
import { lineChart, record } from "./chart.js";
import { ageOf, badge, duration, fill, h, num, table, when } from "./dom.js";
import { showError } from "./notice.js";

const SLOW_EVERY = 5; // the desk-level panels refresh every 5th engine poll
const pnl = []; // chart series survive page switches within the tab
const positions = [];

function plural(count, word) {
  return `${count} ${word}${count === 1 ? "" : "s"}`;
}

function engineCard(row) {
  const s = row.status || {};
  if (!row.reached) {
    return h("article", { class: "engine unreachable", "data-testid": `engine-${row.color}` },
      h("h3", {}, `engine ${row.color}`), badge("not running", "plain"),
      h("p", { class: "empty" }, row.error || "not reachable"));
  }
  const release = s.release || {};
  const orders = s.orders || {};
  const facts = [
    ["instance", s.instance], ["release", release.version], ["role", badge(s.role)],
    ["epoch", s.epoch], ["trading state", h("span", { "data-testid": "trading-state" }, badge(s.trading_state))],
    ["model version", s.model_version], ["market-data lag", duration(s.market_data_lag_s)],
    ["journal lag", duration(s.journal_lag_s)], ["PnL", num(s.pnl)],
    ["open orders", orders.open ?? "—"], ["fills recorded", orders.fills_recorded ?? "—"],
  ];
  const held = Object.keys(s.conditions || {});
  return h("article", { class: `engine ${s.trading_state || ""}`.toLowerCase(), "data-testid": `engine-${row.color}` },
    h("h3", {}, `engine ${row.color}`),
    h("dl", {}, facts.map(([k, v]) => [h("dt", {}, k), h("dd", { "data-fact": k }, v ?? "—")])),
    held.length ? h("p", { class: "held" }, `held by: ${held.join(", ")}`) : null,
    table([{ label: "symbol", cell: (p) => p[0] }, { label: "position (lots)", class: "num", cell: (p) => p[1] }],
      Object.entries(s.positions || {}), { empty: "no positions" }));
}

function drawEngines(parts, rows) {
  const now = Date.now();
  for (const row of rows) {
    if (!row.reached || !row.status) continue;
    record(pnl, `${row.color} PnL`, now, row.status.pnl);
    if (row.status.role === "leader") {
      for (const [symbol, lots] of Object.entries(row.status.positions || {})) record(positions, symbol, now, lots);
    }
  }
  fill(parts.engines, rows.map(engineCard));
  fill(parts.charts,
    lineChart("PnL (quote currency, since the engine started)", pnl, { testid: "pnl-chart" }),
    lineChart("Positions of the leader (lots)", positions, { testid: "positions-chart" }));
  parts.updated.textContent = `updated ${new Date(now).toLocaleTimeString()}`;
}

function drawKillSwitch(node, flag) {
  if (flag.engaged) {
    fill(node, h("div", { class: "banner danger", "data-testid": "kill-switch-engaged" },
      h("strong", {}, "Kill switch ENGAGED"), ` by ${flag.changed_by || "?"} at ${when(flag.changed_at)}: ${flag.reason || ""}`));
  } else {
    fill(node, h("p", { class: "quiet", "data-testid": "kill-switch-clear" }, "Kill switch not engaged."));
  }
}

function drawAlerts(node, document) {
  const rows = document.alerts || [];
  fill(node, h("h2", {}, `Open alerts (${rows.length})`),
    document.available ? null : h("p", { class: "note", "data-testid": "alerts-note" }, document.note),
    table([
      { label: "state", cell: (a) => badge(a.state) },
      { label: "severity", cell: (a) => badge(a.severity || "—") },
      { label: "alert", cell: (a) => a.name },
      { label: "summary", cell: (a) => a.summary },
      { label: "since", cell: (a) => when(a.active_at) },
      { label: "runbook", cell: (a) => a.runbook_url ? h("code", {}, a.runbook_url) : "—" },
    ], rows, { empty: document.available ? "no alert pending or firing" : "no alert source", testid: "alerts" }));
}

function drawChores(node, backups, drills, breaks) {
  const verified = backups.find((b) => b.status === "verified");
  const drill = drills[0];
  const run = breaks.run;
  fill(node,
    h("div", { class: "stat", "data-testid": "backup-age" }, h("h3", {}, "Newest verified backup"),
      verified ? [h("strong", {}, `${duration(ageOf(verified.created_at))} old`), h("p", {}, verified.backup_id)]
        : h("strong", { class: "bad" }, "none verified")),
    h("div", { class: "stat", "data-testid": "last-drill" }, h("h3", {}, "Last DR drill"),
      drill ? [h("strong", {}, `RTO ${duration(drill.rto_s)} · RPO ${drill.rpo_events ?? "—"} events`),
        h("p", {}, badge(drill.passed ? "passed" : "failed"), ` ${drill.mode}, ${when(drill.started_at)}`)]
        : h("strong", {}, "no drill stored")),
    h("div", { class: "stat", "data-testid": "reconciliation" }, h("h3", {}, "Reconciliation breaks"),
      run ? [h("strong", { class: run.breaks ? "bad" : "good" }, `${plural(run.breaks, "break")} (${run.escalated} escalated)`),
        h("p", {}, `${run.venue}, ${when(run.started_at)}, ${run.fills_checked} fills checked`)]
        : h("strong", {}, "no reconciliation yet")),
    breaks.breaks && breaks.breaks.length ? table([
      { label: "kind", cell: (b) => b.kind }, { label: "symbol / asset", cell: (b) => b.symbol || b.asset || "—" },
      { label: "expected", cell: (b) => b.expected ?? "—" }, { label: "actual", cell: (b) => b.actual ?? "—" },
      { label: "runs", class: "num", cell: (b) => b.consecutive_runs },
      { label: "escalated", cell: (b) => b.escalated ? badge("escalated", "bad") : "no" },
    ], breaks.breaks, { testid: "breaks" }) : null);
}

async function settle(promise, parts, what) {
  try {
    return await promise;
  } catch (error) {
    fill(parts, h("p", { class: "error-inline" }, `${what}: ${error.message}`));
    return null;
  }
}

export function mount(container, ctx) {
  const parts = {
    kill: h("div", { class: "kill-state" }),
    engines: h("div", { class: "engines", "data-testid": "engines" }, h("p", { class: "empty" }, "loading engines…")),
    charts: h("div", { class: "charts" }),
    updated: h("span", { class: "quiet", "data-testid": "updated" }),
    alerts: h("div", { class: "panel" }),
    chores: h("div", { class: "panel stats" }),
  };
  fill(container, h("h1", {}, "Overview ", parts.updated), parts.kill,
    h("h2", {}, "Engines"), parts.engines, parts.charts, parts.alerts, h("h2", {}, "Chores"), parts.chores);
  let ticks = 0;
  let stopped = false;

  async function tick() {
    try {
      drawEngines(parts, await call("/v1/engines"));
    } catch (error) {
      showError(error, "Engines");
    }
    if (ticks % SLOW_EVERY === 0) {
      const [flag, alerts, backups, drills, breaks] = await Promise.all([
        settle(call("/v1/killswitch"), parts.kill, "kill switch"),
        settle(call("/v1/alerts"), parts.alerts, "alerts"),
        settle(call("/v1/backups?limit=20"), parts.chores, "backups"),
        settle(call("/v1/drills?limit=1"), parts.chores, "drills"),
        settle(call("/v1/reconciliation/breaks"), parts.chores, "reconciliation"),
      ]);
      if (stopped) return;
      if (flag) drawKillSwitch(parts.kill, flag);
      if (alerts) drawAlerts(parts.alerts, alerts);
      if (backups && drills && breaks) drawChores(parts.chores, backups, drills, breaks);
    }
    ticks += 1;
  }

  let timer = null;
  const loop = async () => {
    await tick();
    if (!stopped) timer = setTimeout(loop, ctx.config.poll_interval_s * 1000);
  };
  loop();
  return () => { stopped = true; clearTimeout(timer); };
}
