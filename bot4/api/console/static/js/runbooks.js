// Runbooks: the catalog with each runbook's text, a form for its parameters, dry run and
// run (for roles allowed to run it), the runs in progress with approve and abort, and the
// run just started followed step by step with its link into the Temporal UI.

import { call } from "./api.js";
import { badge, fill, h } from "./dom.js";
import { inline, renderMarkdown } from "./markdown.js";
import { showError } from "./notice.js";
import { activeRuns, followRun } from "./runs.js";

function inputFor(parameter) {
  const type = parameter.type;
  const id = `param-${parameter.name}`;
  if (type === "bool") {
    return h("input", { type: "checkbox", id, name: parameter.name, checked: parameter.default === true, "data-type": "bool" });
  }
  if (type === "int" || type === "float") {
    return h("input", { type: "number", id, name: parameter.name, step: type === "int" ? "1" : "any",
      placeholder: parameter.default ?? "", "data-type": type });
  }
  const list = type.startsWith("tuple") || type.startsWith("list");
  return h("input", { type: "text", id, name: parameter.name, "data-type": list ? "list" : "str",
    placeholder: list ? "comma-separated" : parameter.default ?? "", autocomplete: "off" });
}

/** Return the parameters the operator set: empty fields keep the runbook's default. */
function collect(form, parameters) {
  const params = {};
  for (const parameter of parameters) {
    const input = form.querySelector(`[name="${parameter.name}"]`);
    const kind = input.dataset.type;
    if (kind === "bool") {
      if (input.checked !== (parameter.default === true)) params[parameter.name] = input.checked;
    } else if (input.value.trim() !== "") {
      const value = input.value.trim();
      if (kind === "int" || kind === "float") params[parameter.name] = Number(value);
      else if (kind === "list") params[parameter.name] = value.split(",").map((v) => v.trim()).filter(Boolean);
      else params[parameter.name] = value;
    }
  }
  return params;
}

function runControls(book, ctx, start) {
  if (!ctx.can("run_runbooks") || !ctx.atLeast(book.run_role)) {
    return h("p", { class: "note", "data-testid": "cannot-run" },
      `Role ${ctx.config.key.role} can read this runbook and follow its runs; running it needs ${book.run_role} or higher.`);
  }
  const form = h("form", { class: "params", "data-testid": "run-form" },
    book.parameters.map((p) => h("label", { for: `param-${p.name}` },
      h("span", { class: "name" }, p.name, p.required ? h("span", { class: "required" }, " *") : null),
      inputFor(p),
      h("span", { class: "type" }, p.type, p.required ? ", required" : `, default ${JSON.stringify(p.default)}`))));
  form.addEventListener("submit", (event) => event.preventDefault());
  const buttons = h("p", { class: "actions" });
  const reset = () => fill(buttons,
    h("button", { type: "button", "data-testid": "dry-run", on: { click: () => start(collect(form, book.parameters), true) } }, "Dry run (plan only)"),
    h("button", { type: "button", class: "primary", "data-testid": "run", on: { click: confirm } }, "Run…"));
  const confirm = () => fill(buttons,
    h("span", { class: "confirm" }, `Start ${book.name} for real? Every step is audited under your key.`),
    h("button", { type: "button", class: "primary", "data-testid": "run-confirm", on: { click: () => { reset(); start(collect(form, book.parameters), false); } } }, "Confirm run"),
    h("button", { type: "button", on: { click: reset } }, "Cancel"));
  reset();
  return [h("h3", {}, "Run"), form, buttons];
}

function detail(node, book, ctx, start) {
  fill(node,
    h("h2", { "data-testid": "runbook-title" }, book.name),
    h("p", { class: "summary" }, inline(book.summary)),
    h("p", {}, "least role to run: ", badge(book.run_role, "plain"), " · workflow ", h("code", {}, book.workflow)),
    h("ol", { class: "steps" }, book.steps.map((step) => h("li", {}, step,
      book.guarded_steps.includes(step) ? badge("guarded: a second operator approves", "warn") : null))),
    runControls(book, ctx, start),
    h("h3", {}, "Runbook"),
    h("article", { class: "markdown", "data-testid": "runbook-text" }, h("p", { class: "empty" }, "loading…")));
  call(`/v1/runbooks/${encodeURIComponent(book.name)}`)
    .then((shown) => fill(node.querySelector(".markdown"), renderMarkdown(shown.markdown)))
    .catch((error) => showError(error, `Runbook ${book.name}`));
}

export function mount(container, ctx, [first, second]) {
  const catalog = h("nav", { class: "catalog", "data-testid": "catalog" }, h("p", { class: "empty" }, "loading…"));
  const shown = h("div", { class: "runbook" }, h("p", { class: "empty" }, "Pick a runbook."));
  const active = h("div", { class: "active-runs" });
  const followed = h("div", { class: "followed", "data-testid": "followed-run" },
    h("p", { class: "empty" }, "Start a run above, or pick one in progress to follow it here."));
  fill(container, h("h1", {}, "Runbooks"),
    h("div", { class: "split" }, catalog, shown),
    h("h2", {}, "Runs in progress"), active,
    h("h2", {}, "Followed run"), followed);
  const books = new Map();
  const stops = [];
  let stopFollow = null;

  const follow = (workflowId) => {
    if (stopFollow) stopFollow();
    const find = (workflowType) => [...books.values()].find((b) => b.workflow === workflowType) || null;
    stopFollow = followRun(followed, ctx, workflowId, find);
    followed.scrollIntoView({ block: "nearest" });
  };

  const select = (name) => {
    const book = books.get(name);
    for (const item of catalog.querySelectorAll("button")) item.classList.toggle("current", item.dataset.runbook === name);
    detail(shown, book, ctx, async (params, dryRun) => {
      try {
        const started = await call(`/v1/runbooks/${encodeURIComponent(name)}/runs`, { method: "POST", body: { params, dry_run: dryRun } });
        follow(started.workflow_id);
      } catch (error) {
        showError(error, `${dryRun ? "Dry run" : "Run"} of ${name} refused`);
      }
    });
  };

  call("/v1/runbooks").then((list) => {
    for (const book of list) books.set(book.name, book);
    fill(catalog, list.map((book) => h("button", { type: "button", "data-runbook": book.name, on: { click: () => select(book.name) } },
      h("strong", {}, book.name), " ", badge(book.run_role, "plain"),
      book.guarded_steps.length ? badge("guarded", "warn") : null, h("small", {}, inline(book.summary)))));
    select(books.has(first) ? first : list[0].name);
    if (first === "run" && second) follow(second);
  }).catch((error) => showError(error, "Runbooks"));
  stops.push(activeRuns(active, ctx, follow));
  return () => { for (const stop of stops) stop(); if (stopFollow) stopFollow(); };
}
