// The console's shell: sign-in with an API key, the navigation, and which page shows.
// What the page offers follows the key's role as the API reports it
// (GET /v1/console/config); the API checks every call again, so hiding a button is a
// convenience for the operator, never the protection.

import { call, forgetKey, onUnauthorized, storedKey, storeKey } from "./api.js";
import { fill, h } from "./dom.js";
import * as history from "./history.js";
import * as killswitch from "./killswitch.js";
import { clearNotice, showError } from "./notice.js";
import * as overview from "./overview.js";
import * as runbooks from "./runbooks.js";

const PAGES = { overview, runbooks, history, killswitch };
const session = { config: null, stop: null };

function context(config) {
  const ranks = config.roles;
  return {
    config,
    /** True when the signed-in key may take a console action (halt, approve, ...). */
    can: (action) => Boolean(config.permissions[action]),
    /** True when the key's role is `role` or higher. */
    atLeast: (role) => ranks.indexOf(config.key.role) >= ranks.indexOf(role),
    workflowUrl: (workflowId) => config.temporal_workflow_url
      ? config.temporal_workflow_url.replace("{workflow_id}", encodeURIComponent(workflowId))
      : null,
  };
}

function showPage() {
  if (!session.config) return;
  const [name, ...rest] = (location.hash.replace(/^#/, "") || "overview").split("/");
  const page = PAGES[name] ? name : "overview";
  if (session.stop) session.stop();
  session.stop = null;
  for (const link of document.querySelectorAll("#nav a")) {
    link.classList.toggle("current", link.dataset.page === page);
  }
  for (const section of document.querySelectorAll("section.page")) {
    section.hidden = section.id !== `page-${page}`;
  }
  const container = document.getElementById(`page-${page}`);
  container.replaceChildren();
  session.stop = PAGES[page].mount(container, context(session.config), rest.map(decodeURIComponent)) || null;
}

function signedIn(config) {
  session.config = config;
  document.body.dataset.role = config.key.role;
  document.getElementById("sign-in").hidden = true;
  document.getElementById("nav").hidden = false;
  document.getElementById("sign-out").hidden = false;
  document.querySelector('#nav a[data-page="killswitch"]').hidden = !config.permissions.halt;
  fill(document.getElementById("who"),
    h("span", { "data-testid": "who" }, `${config.key.name} (${config.key.id})`), " · role ",
    h("strong", { "data-testid": "role" }, config.key.role));
  showPage();
}

function signOut(reason) {
  if (session.stop) session.stop();
  session.stop = null;
  session.config = null;
  forgetKey();
  delete document.body.dataset.role;
  for (const section of document.querySelectorAll("section.page")) section.hidden = true;
  document.getElementById("sign-in").hidden = false;
  document.getElementById("nav").hidden = true;
  document.getElementById("sign-out").hidden = true;
  document.getElementById("who").replaceChildren();
  if (reason) showError(reason, "Signed out");
}

async function signIn(event) {
  event.preventDefault();
  const input = document.getElementById("api-key");
  const key = input.value.trim();
  if (!key) return;
  try {
    const config = await call("/v1/console/config", { key });
    storeKey(key);
    input.value = "";
    clearNotice();
    signedIn(config);
  } catch (error) {
    showError(error, "Sign-in refused");
  }
}

async function start() {
  document.getElementById("sign-in-form").addEventListener("submit", signIn);
  document.getElementById("sign-out").addEventListener("click", () => signOut(null));
  window.addEventListener("hashchange", showPage);
  onUnauthorized((error) => signOut(error));
  if (!storedKey()) return;
  try {
    signedIn(await call("/v1/console/config"));
  } catch (error) {
    if (error.status !== 401) showError(error, "Could not load the console");
  }
}

start();
