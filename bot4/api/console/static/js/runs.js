// Runbook runs while they happen: one followed run step by step (polled every second
// until it ends), and the list of running runs with their approve and abort controls.
// Approve and abort are offered to roles allowed to send them; the workflow itself
// refuses the requester's own approval, and that refusal is shown in its own words.

import { call, query } from "./api.js";
import { badge, details, fill, h, jsonBlock, outLink, table, when } from "./dom.js";
import { showError, showNotice } from "./notice.js";

const FOLLOW_MS = 1000;
const ACTIVE_MS = 2000;

function runPath(workflowId, action = "") {
  return `/v1/runbooks/runs/${encodeURIComponent(workflowId)}${action ? `/${action}` : ""}`;
}

/** Approve the step a run waits for; true when the workflow took it. */
export async function approve(workflowId, step) {
  try {
    await call(runPath(workflowId, "approve"), { method: "POST", body: step ? { step } : {} });
    showNotice(`Approved ${step || "the waiting step"} of ${workflowId}.`);
    return true;
  } catch (error) {
    showError(error, `Approval of ${workflowId} refused`);
    return false;
  }
}

/** Return abort controls: a first click asks for a note and a confirmation. */
export function abortControl(workflowId) {
  const box = h("span", { class: "abort" });
  const ask = () => {
    const note = h("input", { type: "text", placeholder: "why (kept in the audit log)", "data-testid": "abort-note" });
    const confirm = h("button", { type: "button", class: "danger", "data-testid": "abort-confirm", on: { click: async () => {
      const body = note.value.trim() ? { note: note.value.trim() } : {};
      try {
        await call(runPath(workflowId, "abort"), { method: "POST", body });
        showNotice(`Abort sent to ${workflowId}.`);
      } catch (error) {
        showError(error, `Abort of ${workflowId} refused`);
      }
      reset();
    } } }, "Confirm abort");
    fill(box, note, confirm, h("button", { type: "button", on: { click: reset } }, "Cancel"));
  };
  const reset = () => fill(box, h("button", { type: "button", "data-testid": "abort", on: { click: ask } }, "Abort…"));
  reset();
  return box;
}

function stepList(book, document) {
  const steps = book ? book.steps : [];
  const progress = document.progress || {};
  const at = steps.indexOf(progress.step);
  const done = document.status === "COMPLETED";
  return h("ol", { class: "steps", "data-testid": "steps" }, steps.map((step, i) => {
    let state = "pending";
    if (document.status === "RUNNING" && at >= 0) state = i < at ? "done" : i === at ? "current" : "pending";
    if (done && at < 0) state = "ran-or-skipped";
    const guarded = book.guarded_steps.includes(step);
    const waiting = progress.waiting_for_approval === step;
    return h("li", { class: `step ${state}${waiting ? " waiting" : ""}`, "data-step": step },
      step, guarded ? badge("guarded", "warn") : null, waiting ? badge("awaiting approval", "warn") : null);
  }));
}

/**
 * Follow one run in `node`: status, steps, every change of step as it happens, approve
 * and abort while it runs, the result or failure once it ends. Returns a stop function.
 */
export function followRun(node, ctx, workflowId, findBook) {
  const transitions = [];
  let last = "";
  let stopped = false;
  let timer = null;

  function draw(document) {
    const progress = document.progress || {};
    const seen = `${document.status} ${progress.step || ""} ${progress.waiting_for_approval || ""} ${(progress.approved || []).join(",")}`;
    if (seen === last) return; // redraw on change only: buttons stay put under the pointer
    transitions.push({ at: new Date(), status: document.status, progress });
    last = seen;
    const book = findBook(document.runbook);
    const link = ctx.workflowUrl(workflowId);
    const running = document.status === "RUNNING";
    const waiting = running && progress.waiting_for_approval;
    fill(node,
      h("h3", {}, "Run ", h("code", { "data-testid": "run-id" }, workflowId), " ",
        h("span", { "data-testid": "run-status" }, badge(document.status))),
      h("p", {}, `${document.runbook} · started ${when(document.started_at)}`,
        document.closed_at ? ` · ended ${when(document.closed_at)}` : "",
        link ? [" · ", outLink(link, "open in the Temporal UI")] : null),
      book ? stepList(book, document) : null,
      h("ol", { class: "transitions", "data-testid": "transitions" }, transitions.map((t) =>
        h("li", {}, `${t.at.toLocaleTimeString()} ${t.status}`,
          t.progress.step ? ` · step ${t.progress.step}` : "",
          t.progress.waiting_for_approval ? ` · waiting for approval of ${t.progress.waiting_for_approval}` : "",
          (t.progress.approved || []).length ? ` · approved: ${t.progress.approved.join(", ")}` : "",
          t.progress.aborted_by ? ` · aborted by ${t.progress.aborted_by}` : ""))),
      running && (ctx.can("approve") || ctx.can("abort")) ? h("p", { class: "actions" },
        waiting && ctx.can("approve") ? h("button", { type: "button", "data-testid": "approve", on: {
          click: () => approve(workflowId, progress.waiting_for_approval) } }, `Approve ${progress.waiting_for_approval}`) : null,
        ctx.can("abort") ? abortControl(workflowId) : null) : null,
      "result" in document ? [h("h4", {}, "Result"), jsonBlock(document.result, { "data-testid": "run-result" })] : null,
      document.failure ? h("p", { class: "error-inline", "data-testid": "run-failure" }, document.failure) : null);
  }

  async function poll() {
    try {
      const document = await call(runPath(workflowId));
      if (stopped) return;
      if (node.querySelector("input:focus")) { timer = setTimeout(poll, FOLLOW_MS); return; } // typing a note
      draw(document);
      if (document.status === "RUNNING") timer = setTimeout(poll, FOLLOW_MS);
    } catch (error) {
      if (stopped) return;
      showError(error, `Following ${workflowId}`);
      timer = setTimeout(poll, FOLLOW_MS * 5);
    }
  }
  fill(node, h("p", { class: "empty" }, `following ${workflowId}…`));
  poll();
  return () => { stopped = true; clearTimeout(timer); };
}

/** Keep `node` showing the runs that are running now; `open(id)` follows one. */
export function activeRuns(node, ctx, open) {
  let shown = null;
  let stopped = false;
  let timer = null;
  async function poll() {
    try {
      const rows = await call(`/v1/runbooks/runs${query({ state: "running", limit: 50 })}`);
      if (stopped) return;
      const seen = JSON.stringify(rows.map((r) => [r.workflow_id, r.progress]));
      if (seen !== shown && !node.querySelector("input:focus")) {
        shown = seen;
        fill(node, table([
          { label: "runbook", cell: (r) => r.runbook },
          { label: "run", cell: (r) => h("button", { type: "button", class: "link", on: { click: () => open(r.workflow_id, r.runbook) } }, r.workflow_id) },
          { label: "started", cell: (r) => when(r.started_at) },
          { label: "step", cell: (r) => (r.progress && r.progress.step) || "—" },
          { label: "waiting for", cell: (r) => (r.progress && r.progress.waiting_for_approval) ? badge(r.progress.waiting_for_approval, "warn") : "—" },
          { label: "", cell: (r) => h("span", { class: "actions", "data-run": r.workflow_id },
            ctx.can("approve") && r.progress && r.progress.waiting_for_approval
              ? h("button", { type: "button", "data-testid": "approve", on: { click: () => approve(r.workflow_id, r.progress.waiting_for_approval) } }, "Approve")
              : null,
            ctx.can("abort") ? abortControl(r.workflow_id) : null) },
        ], rows, { empty: "no run in progress", testid: "active-runs" }));
      }
    } catch (error) {
      if (stopped) return;
      shown = null;
      fill(node, h("p", { class: "error-inline" }, `runs: ${error.message}`));
    }
    if (!stopped) timer = setTimeout(poll, ACTIVE_MS);
  }
  poll();
  return () => { stopped = true; clearTimeout(timer); };
}

/** Return a cell showing a closed run's outcome: failure text, or its result to open. */
export function outcome(run) {
  if (run.failure) return h("span", { class: "bad" }, run.failure);
  if ("result" in run) return details("result", run.result);
  if (run.progress) return `step ${run.progress.step || "?"}`;
  return run.detail || "—";
}
