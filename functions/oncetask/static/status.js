// The status page: asks the API how to sign in (GET status/config), signs the user in (auth.js), then shows the
// view the address names (route.js): the job list with its filters and page, or one job's detail (detail.js), and
// for an operator the figures above the list (figures.js). One poller (poller.js) refreshes the current view while
// the tab is visible; every call goes through `api` with the user's ID token, so the page shows what its user may.
"use strict";

import {ApiError, createApi} from "./api.js";
import {startSession} from "./auth.js";
import {createDetail} from "./detail.js";
import {renderStats, renderTimeline} from "./figures.js";
import {ago, createJobsTable, el, renderCounts, renderHead} from "./jobs.js";
import {createPoller} from "./poller.js";
import {listHash, parseRoute} from "./route.js";

const POLL_MS = 3000;        // the current view (one GET jobs, or GET jobs/{id} [+ children])
const FIGURES_MS = 15000;    // the figures (GET stats + GET stats/timeline): the API caches them 5 s anyway
const TIMELINE = {minutes: 60, buckets: 12};
const $ = (id) => document.getElementById(id);

const page = {
  config: null,    // the API's status/config: {require_auth, anonymous_submissions, sign_in}
  session: null,   // auth.js's session
  api: null,
  me: null,        // GET me: {owner, kind, email, operator}, once signed in (or with no token needed)
  route: parseRoute(""),      // what the address names (read once the sign-in took its token from it)
  listRoute: parseRoute(""),  // the list's filters and page, for the detail view's way back
  lastOk: null,
  unreachable: false,  // the last poll failed: its banner goes when a poll succeeds again
  figures: {at: 0, forbidden: false},
  nextCursor: null,
  children: {key: null, view: null},  // the detail's last GET jobs/{id}/children, for the job as it was then
  table: null,
  detail: null,
  poller: null,
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
  if (gated) {
    $("gate-text").textContent = page.session.provider === "none"
      ? "This API requires a signed-in user, and no sign-in is configured for this page (ONCETASK_FIREBASE_PROJECT_ID and ONCETASK_FIREBASE_API_KEY)."
      : "Sign in to see your jobs.";
    $("gate-sign-in").hidden = page.session.provider === "none";
  }
  renderView();
}

// Which sections show: the gate alone when nobody may list; else the list (with the figures) or a job's detail.
function renderView() {
  const gated = !canList();
  const list = page.route.view === "list";
  $("jobs-view").hidden = gated || !list;
  $("figures").hidden = gated || !list;
  $("counts").hidden = gated || !list;  // the counts of the jobs listed: not of a job's detail
  $("detail-view").hidden = gated || list;
  $("state-filter").disabled = !list;
  $("type-filter").disabled = !list;
  if (list) {
    $("state-filter").value = page.route.state;
    ensureOption($("type-filter"), page.route.jobType);
    $("type-filter").value = page.route.jobType;
  }
  $("back").href = listHash(page.listRoute);
}

function ensureOption(select, value) {
  if (value && ![...select.options].some((option) => option.value === value)) {
    select.append(el("option", {value, textContent: value}));
  }
}

async function startSignIn() {
  try {
    await page.session.signIn();
  } catch (error) {
    banner("error", "Could not sign in: " + error.message);
  }
}

async function request(job, action) {
  return action === "retry" ? page.api.retryJob(job.job_id) : page.api.cancelJob(job.job_id);
}

// An action from the list: its answer (or refusal) in the banner.
async function actFromList(job, action, button) {
  button.disabled = true;
  try {
    await request(job, action);
    banner("info", (action === "retry" ? "Retry requested for " : "Cancel requested for ") + job.job_id);
  } catch (error) {
    banner("error", "Could not " + action + " " + job.job_id + ": " + error.message);
  }
  page.table.forget(job.job_id);  // rebuild its row (and its button) from what the API says now
  page.poller.now();
}

// An action from the detail view: its answer (or refusal) in the view's message line.
async function actFromDetail(job, action, button) {
  button.disabled = true;
  const message = $("detail-message");
  try {
    const answer = await request(job, action);
    message.className = "info";
    message.textContent = (action === "retry" ? "Retry requested: " : "Cancel: ") + answer.status;
  } catch (error) {
    message.className = "error";
    message.textContent = "Could not " + action + ": " + error.message;
  }
  page.detail.clear();  // rebuild from what the API says now
  page.poller.now();
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

// The job types the API knows, for the type filter: GET /jobs's `job_type` parameter in the OpenAPI document.
async function loadJobTypes() {
  try {
    const doc = await page.api.openapi();
    const parameter = doc.paths["/jobs"].get.parameters.find((p) => p.name === "job_type");
    const select = $("type-filter");
    for (const name of (parameter && parameter.schema.enum) || []) ensureOption(select, name);
    select.value = page.route.view === "list" ? page.route.jobType : "";
  } catch (_) { /* the filter keeps "all" and any type the address names */ }
}

// One poll of the current view; its failures go to the banner.
async function refresh() {
  if (!canList()) {
    renderSession();
    return;
  }
  const route = page.route;
  try {
    if (route.view === "list") await refreshList(route);
    else await refreshDetail(route);
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
}

async function refreshList(route) {
  const [listing] = await Promise.all([
    page.api.listJobs({state: route.state, jobType: route.jobType, cursor: route.cursor, limit: route.limit}),
    Date.now() - page.figures.at >= FIGURES_MS ? refreshFigures() : null,
  ]);
  if (page.route !== route) return;  // the address changed meanwhile: this answer is for another view
  const operator = Boolean(page.me && page.me.operator);
  renderHead($("jobs-head"), operator);
  const filtered = route.state || route.jobType;
  page.table.render(listing.jobs, operator, filtered ? "No jobs match these filters."
                                                     : operator ? "No jobs yet." : "You have no jobs yet.");
  renderCounts($("counts"), listing.jobs);
  page.nextCursor = listing.next_cursor;
  $("page-next").disabled = !listing.next_cursor;
  $("page-first").disabled = !route.cursor;
  $("page-info").textContent = (route.cursor ? "a later page" : "first page") + ": " + listing.jobs.length +
                               " job" + (listing.jobs.length === 1 ? "" : "s") +
                               (listing.next_cursor ? ", more on the next" : "");
}

// GET stats and GET stats/timeline: shown to operators (and the local development caller); a 403 hides them
// behind one line, and they are not asked for again until the user changes.
async function refreshFigures() {
  page.figures.at = Date.now();
  if (page.figures.forbidden) return;
  try {
    const [stats, timeline] = await Promise.all([page.api.stats(), page.api.timeline(TIMELINE)]);
    renderStats($("figures-body"), stats);
    renderTimeline($("timeline"), timeline);
    $("figures-note").hidden = true;
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 403)) throw error;
    page.figures.forbidden = true;
    $("figures-body").replaceChildren();
    $("timeline").replaceChildren();
    $("figures-note").hidden = false;
    $("figures-note").textContent = "The figures (jobs by state, queues, timeline) are for operators.";
  }
}

async function refreshDetail(route) {
  let job;
  try {
    job = await page.api.getJob(route.jobId);
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 404)) throw error;
    if (page.route !== route) return;
    page.detail.clear();
    $("detail").append(el("p", {className: "empty", textContent: "No job " + route.jobId + " (or not yours)."}));
    return;
  }
  // Children are one more call (and a read per ended child): only for a job that started some, and only while they
  // can change: a waiting job's children end one by one; otherwise they change only with the job itself.
  const hasChildren = job.waiting_for || Object.values(job.stage_runs || {}).some((run) => run.children);
  const key = job.job_id + " " + job.updated_at;
  let children = null;
  if (hasChildren && job.state !== "waiting" && page.children.key === key) children = page.children.view;
  else if (hasChildren) children = await page.api.children(job.job_id);
  page.children = {key, view: children};
  if (page.route !== route) return;
  page.detail.render(job, children);
}

// Between polls, keep "in state" and "updated" ticking without asking the API.
function tick() {
  page.table.tick();
  $("updated").textContent = page.lastOk ? "updated " + ago(new Date(page.lastOk).toISOString()) + " ago"
                                         : "not loaded yet";
}

function onRoute() {
  page.route = parseRoute(location.hash);
  if (page.route.view === "list") page.listRoute = page.route;
  else { page.detail.clear(); $("detail-message").textContent = ""; }
  renderView();
  page.poller.use(refresh);
}

// The filters write the address; the address drives the view (so reload and Back keep them).
function filterChanged() {
  location.hash = listHash({...page.listRoute, state: $("state-filter").value, jobType: $("type-filter").value,
                            cursor: ""});
}

async function onSessionChange() {
  page.figures = {at: 0, forbidden: false};
  await whoAmI();
  renderSession();
  page.poller.use(refresh);
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
  page.route = parseRoute(location.hash);
  if (page.route.view === "list") page.listRoute = page.route;
  page.table = createJobsTable($("jobs"), actFromList);
  page.detail = createDetail($("detail"), actFromDetail);
  page.poller = createPoller(POLL_MS, {isLive: () => $("live").checked});
  page.session.onChange(onSessionChange);
  $("gate-sign-in").addEventListener("click", () => startSignIn());
  $("state-filter").addEventListener("change", filterChanged);
  $("type-filter").addEventListener("change", filterChanged);
  $("live").addEventListener("change", () => page.poller.now());
  $("page-next").addEventListener("click", () => {
    if (page.nextCursor) location.hash = listHash({...page.listRoute, cursor: page.nextCursor});
  });
  $("page-first").addEventListener("click", () => { location.hash = listHash({...page.listRoute, cursor: ""}); });
  window.addEventListener("hashchange", onRoute);
  setInterval(tick, 1000);
  loadJobTypes();
  await onSessionChange();
}

main();
