// The banner that tells the operator what went wrong, in the API's own words, with the
// HTTP status and the correlation id that finds the request in the audit log and logs.

import { fill, h } from "./dom.js";

function banner() {
  return document.getElementById("notice");
}

/** Show an error (an ApiError or any Error); `context` says what was being done. */
export function showError(error, context = "") {
  const node = banner();
  const meta = [];
  if (error && error.status) meta.push(`HTTP ${error.status}`);
  if (error && error.correlationId) meta.push(`correlation id ${error.correlationId}`);
  const message = (error && error.message) || String(error);
  fill(node,
    h("strong", {}, context ? `${context}: ` : "Error: "),
    h("span", { "data-testid": "error-message" }, message),
    meta.length ? h("span", { class: "meta" }, ` (${meta.join(", ")})`) : null,
    h("button", { class: "close", type: "button", "aria-label": "dismiss", on: { click: clearNotice } }, "×"));
  node.className = "notice error";
  node.hidden = false;
}

/** Show a neutral message (what just happened). */
export function showNotice(text) {
  const node = banner();
  fill(node, h("span", {}, text),
    h("button", { class: "close", type: "button", "aria-label": "dismiss", on: { click: clearNotice } }, "×"));
  node.className = "notice info";
  node.hidden = false;
}

export function clearNotice() {
  const node = banner();
  node.hidden = true;
  node.replaceChildren();
}
