// The status page: asks the API how to sign in (GET status/config), signs the user in (auth.js), then polls the
// user's jobs (every job, for an operator) and renders them (jobs.js). Views of their own (statistics, a job's
// detail) fit in as modules beside jobs.js, rendered from `refresh()` with the same `api`.
"use strict";

import {ApiError, createApi} from "./api.js";
import {startSession} from "./auth.js";
import {ago, createJobsTable, el, renderCounts, renderHead} from "./jobs.js";

const POLL_MS = 1500;
const LIMIT = 50;
const $ = (id) => document.getElementById(id);

const page = {
  config: null,    // the API's status/config: {require_auth, anonymous_submissions, sign_in}
  session: null,   // auth.js's session
  api: null,
  me: null,        // GET me: {owner, kind, email, operator}, once signed in (or with no token needed)
  lastOk: null,
  unreachable: false,  // the last poll failed: its banner goes when a poll succeeds again
  timer: null,
  table: null,
};

function banner(kind, text) {
  const node = $("banner");
  node.className = text ? kind : "";
  node.textContent = text || "";
}

// May the page list jobs now? Signed in, or an API that takes the local development caller without a token.
function canList() {
  return Boolean(page.session.user) || !page.config.require_auth;
}

function renderSession() {
  const box = $("session");
  const user = page.session.user;
  const parts = [];
  if (user) {
    parts.push(el("span", {className: "who", textContent: user.email || user.name || user.uid}));
    if (page.me && page.me.operator) parts.push(el("span", {className: "role", textContent: "operator: all jobs"}));
    const out = el("button", {type: "button", className: "signout", id: "sign-out", textContent: "Sign out"});
    out.addEventListener("click", () => page.session.signOut());
    parts.push(out);
  } else if (page.session.provider !== "none") {
    const signIn = el("button", {type: "button", className: "signin", id: "sign-in", textContent: "Sign in"});
    signIn.addEventListener("click", () => startSignIn());
    parts.push(signIn);
  } else if (!page.config.require_auth) {
    parts.push(el("span", {textContent: "local: no sign-in"}));
  }
  box.replaceChildren(...parts);

  const gated = !canList();
  $("gate").hidden = !gated;
  $("jobs-view").hidden = gated;
  if (gated) {
    $("gate-text").textContent = page.session.provider === "none"
      ? "This API requires a signed-in user, and no sign-in is configured for this page (ONCETASK_FIREBASE_PROJECT_ID and ONCETASK_FIREBASE_API_KEY)."
      : "Sign in to see your jobs.";
    $("gate-sign-in").hidden = page.session.provider === "none";
  }
}

async function startSignIn() {
  try {
    await page.session.signIn();
  } catch (error) {
    banner("error", "Could not sign in: " + error.message);
  }
}

async function act(job, action, button) {
  button.disabled = true;
  try {
    await (action === "retry" ? page.api.retryJob(job.job_id) : page.api.cancelJob(job.job_id));
    banner("info", (action === "retry" ? "Retry requested for " : "Cancel requested for ") + job.job_id);
  } catch (error) {
    banner("error", "Could not " + action + " " + job.job_id + ": " + error.message);
  }
  page.table.forget(job.job_id);  // rebuild its row (and its button) from what the API says now
  refresh();
}

async function whoAmI() {
  page.me = null;
  if (!canList()) return;
  try {
    page.me = await page.api.me();
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) throw error;
  }
}

async function refresh() {
  clearTimeout(page.timer);
  if (!canList()) {
    renderSession();
    return;
  }
  const state = $("state-filter").value;
  try {
    const listing = await page.api.listJobs({state, limit: LIMIT});
    const operator = Boolean(page.me && page.me.operator);
    renderHead($("jobs-head"), operator);
    page.table.render(listing.jobs, operator, operator ? "No jobs yet." : "You have no jobs yet.");
    renderCounts($("counts"), listing.jobs);
    page.lastOk = Date.now();
    tick();
    if (page.unreachable) { page.unreachable = false; banner("", ""); }
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      banner("error", "The API did not accept your sign-in (" + error.message + "): sign in again.");
      if (page.session.user) await page.session.signOut();
      renderSession();
      return;
    }
    page.unreachable = true;
    banner("error", "Cannot reach the API: " + error.message);
  }
  schedule();
}

function schedule() {
  if ($("live").checked) page.timer = setTimeout(refresh, POLL_MS);
}

// Between polls, keep "in state" and "updated" ticking without asking the API.
function tick() {
  page.table.tick();
  $("updated").textContent = page.lastOk ? "updated " + ago(new Date(page.lastOk).toISOString()) + " ago"
                                         : "not loaded yet";
}

async function onSessionChange() {
  await whoAmI();
  renderSession();
  refresh();
}

async function main() {
  const bootstrap = createApi(async () => null);
  try {
    page.config = await bootstrap.config();
    page.session = await startSession(page.config.sign_in);
  } catch (error) {
    banner("error", "Cannot start the page: " + error.message);
    return;
  }
  page.api = createApi(() => page.session.token());
  page.table = createJobsTable($("jobs"), act);
  page.session.onChange(onSessionChange);
  $("gate-sign-in").addEventListener("click", () => startSignIn());
  $("state-filter").addEventListener("change", refresh);
  $("live").addEventListener("change", refresh);
  setInterval(tick, 1000);
  await onSessionChange();
}

main();
