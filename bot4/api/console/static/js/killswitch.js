// Kill switch: the halt-everything control, on a page of its own and only for roles
// allowed to halt. Two steps: state why and tick that you mean it, then confirm. The
// halt engages the PostgreSQL flag and halts the engines (cancel all, verified); the
// answer shows what each engine did. Resuming (raising risk) is an operator's, also
// confirmed.

import { call } from "./api.js";
import { badge, fill, h, table, when } from "./dom.js";
import { showError, showNotice } from "./notice.js";

function engineRows(rows) {
  return table([
    { label: "engine", cell: (r) => r.color },
    { label: "reached", cell: (r) => badge(String(Boolean(r.reached))) },
    { label: "ok", cell: (r) => badge(String(Boolean(r.ok))) },
    { label: "detail", cell: (r) => r.error || (r.answer ? JSON.stringify(r.answer) : "—") },
  ], rows || [], { empty: "no engine answered", testid: "halt-engines" });
}

/** Return a two-step control: a form, then "Confirm" and "Cancel". */
function guarded({ title, warning, verb, testid, fields, send, danger }) {
  const reason = h("input", { type: "text", name: "reason", required: true, placeholder: "why (kept with the action and in the audit log)", "data-testid": `${testid}-reason` });
  const understood = h("input", { type: "checkbox", "data-testid": `${testid}-understood` });
  const outcome = h("div", { class: "outcome", "data-testid": `${testid}-outcome` });
  const step = h("p", { class: "actions" });
  const first = () => fill(step, h("button", { type: "button", class: danger ? "danger big" : "primary", "data-testid": testid, on: { click: ask } }, `${verb}…`));
  const ask = () => {
    if (!reason.value.trim()) { showError(new Error("state the reason first"), verb); return; }
    if (!understood.checked) { showError(new Error("tick the box to confirm you mean it"), verb); return; }
    fill(step, h("strong", {}, `${verb} now? `),
      h("button", { type: "button", class: danger ? "danger big" : "primary", "data-testid": `${testid}-confirm`, on: { click: go } }, `Confirm ${verb.toLowerCase()}`),
      h("button", { type: "button", "data-testid": `${testid}-cancel`, on: { click: first } }, "Cancel"));
  };
  const go = async () => {
    fill(step, h("span", {}, "sending…"));
    try {
      const answer = await send(reason.value.trim());
      fill(outcome, h("p", {}, badge("done", "good"), ` ${verb} accepted`), engineRows(answer.engines));
      showNotice(`${verb}: done.`);
    } catch (error) {
      showError(error, `${verb} not fully done`);
      if (error.document && error.document.engines) fill(outcome, engineRows(error.document.engines));
    }
    understood.checked = false;
    first();
  };
  first();
  return h("section", { class: danger ? "kill danger-zone" : "kill", "data-testid": `${testid}-section` },
    h("h2", {}, title), h("p", {}, warning),
    h("label", {}, "Reason ", reason), fields,
    h("label", { class: "check" }, understood, ` I understand: ${verb.toLowerCase()} applies at once`),
    step, outcome);
}

export function mount(container, ctx) {
  if (!ctx.can("halt")) {
    fill(container, h("h1", {}, "Kill switch"), h("p", { class: "note", "data-testid": "cannot-halt" },
      `Halting needs role ${ctx.config.least_roles.halt} or higher; this key is ${ctx.config.key.role}.`));
    return null;
  }
  const state = h("div", { "data-testid": "kill-state" }, h("p", { class: "empty" }, "loading…"));
  const refresh = async () => {
    try {
      const [flag, engines] = await Promise.all([call("/v1/killswitch"), call("/v1/engines")]);
      fill(state,
        h("p", {}, "Kill switch: ", h("span", { "data-testid": "kill-flag" }, badge(flag.engaged ? "engaged" : "clear", flag.engaged ? "bad" : "good")),
          flag.changed_at ? ` since ${when(flag.changed_at)} by ${flag.changed_by}: ${flag.reason || ""}` : ""),
        table([
          { label: "engine", cell: (r) => r.color },
          { label: "trading state", cell: (r) => r.reached ? h("span", { "data-testid": `state-${r.color}` }, badge(r.status.trading_state)) : badge("not running", "plain") },
          { label: "role", cell: (r) => r.reached ? r.status.role : "—" },
        ], engines));
    } catch (error) {
      showError(error, "Kill switch state");
    }
  };
  const color = h("select", { name: "color", "data-testid": "halt-color" }, ["all", "blue", "green"].map((c) => h("option", { value: c }, c === "all" ? "every engine" : `engine ${c}`)));
  const halt = guarded({
    title: "Halt everything", testid: "halt", verb: "Halt", danger: true,
    warning: "Engages the desk's kill switch (every engine polls it) and halts the engines: every open order is cancelled and nothing but cancels is sent until an operator resumes.",
    fields: h("label", {}, "Engines ", color),
    send: async (reason) => { const a = await call("/v1/halt", { method: "POST", body: { reason, color: color.value } }); refresh(); return a; },
  });
  const parts = [h("h1", { class: "danger-title" }, "Kill switch"), state, halt];
  if (ctx.can("resume")) {
    const engines = h("input", { type: "checkbox", name: "engines", "data-testid": "resume-engines" });
    parts.push(guarded({
      title: "Resume", testid: "resume", verb: "Resume",
      warning: "Disengages the kill switch; ticked, also raises the engines back to ACTIVE. Raises risk: an operator's decision.",
      fields: h("label", { class: "check" }, engines, " resume the engines too"),
      send: async (reason) => { const a = await call("/v1/resume", { method: "POST", body: { reason, engines: engines.checked } }); refresh(); return a; },
    }));
  }
  fill(container, ...parts);
  refresh();
  const timer = setInterval(refresh, ctx.config.poll_interval_s * 1000);
  return () => clearInterval(timer);
}
