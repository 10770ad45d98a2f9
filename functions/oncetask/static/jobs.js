// The jobs table and the counts by state: small render functions over the API's job views. Nothing here calls the
// API: actions are handed in (`onAction(job, "retry" | "cancel", button)`).
"use strict";

import {jobHash} from "./route.js";

export const STATES = ["scheduled", "queued", "running", "waiting", "retrying", "completed", "failed", "cancelled"];
export const ACTIVE = new Set(["scheduled", "queued", "running", "waiting", "retrying"]);

// Text only: no HTML from the API is ever parsed.
export function el(tag, props, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, props || {});
  for (const child of children) node.append(child);
  return node;
}

export function ago(iso) {
  if (!iso) return "";
  const seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (seconds < 60) return Math.floor(seconds) + " s";
  if (seconds < 3600) return Math.floor(seconds / 60) + " min " + Math.floor(seconds % 60) + " s";
  if (seconds < 86400) return Math.floor(seconds / 3600) + " h " + Math.floor((seconds % 3600) / 60) + " min";
  return Math.floor(seconds / 86400) + " d";
}

export function lastError(job) {
  const errors = job.errors || [];
  if (!errors.length) return "";
  const e = errors[errors.length - 1];
  return e.code + (e.stage ? " in " + e.stage : "") + ": " + e.message;
}

// The table's columns; the owner's only for an operator, who sees everyone's jobs.
function columns(showOwner) {
  return ["Job", ...(showOwner ? ["Owner"] : []), "Type", "State", "Stage", "Attempts", "Last error", "In state", ""];
}

export function renderHead(head, showOwner) {
  head.replaceChildren(el("tr", {}, ...columns(showOwner).map((name) => el("th", {textContent: name}))));
}

function actionButton(job, onAction) {
  if (job.state === "failed") {
    const b = el("button", {className: "action retry", textContent: "Retry", title: "Run again from the failed stage"});
    b.addEventListener("click", () => onAction(job, "retry", b));
    return b;
  }
  if (ACTIVE.has(job.state)) {
    const b = el("button", {className: "action cancel", textContent: "Cancel"});
    if (job.cancel_requested) { b.disabled = true; b.textContent = "Cancelling…"; }
    b.addEventListener("click", () => onAction(job, "cancel", b));
    return b;
  }
  return "";
}

function buildRow(job, showOwner, onAction) {
  const since = job.state_changed_at || job.updated_at;
  const done = job.completed_stages || [];
  const doneText = !done.length ? "" : job.state === "completed" ? "all " + done.length + " stages done"
                                                                 : "done: " + done.join(", ");
  // An error the job got past (it was retried and went on) is history, not an alarm.
  const errorClass = ["failed", "retrying"].includes(job.state) ? "error" : "error past";
  const row = el("tr", {},
    el("td", {className: "id"}, el("a", {href: jobHash(job.job_id), title: job.job_id,
                                          textContent: job.job_id.slice(0, 12)})),
    ...(showOwner ? [el("td", {className: "owner", textContent: job.owner || ""})] : []),
    el("td", {textContent: job.job_type}),
    el("td", {}, el("span", {className: "badge s-" + job.state, textContent: job.state})),
    el("td", {}, job.current_stage || "–", el("div", {className: "stages", textContent: doneText})),
    el("td", {className: "num", textContent: String(job.attempts)}),
    el("td", {className: errorClass, textContent: lastError(job)}),
    el("td", {className: "num since", textContent: ago(since)}),
    el("td", {}, actionButton(job, onAction)));
  row.dataset.jobId = job.job_id;
  row.dataset.state = job.state;
  row.dataset.since = since || "";
  return row;
}

// Rows are rebuilt only when their job changed, so a button under the pointer stays put between polls.
export function createJobsTable(body, onAction) {
  const cache = new Map();

  function rowFor(job, showOwner) {
    const key = JSON.stringify([job, showOwner]);
    const cached = cache.get(job.job_id);
    if (cached && cached.key === key) return cached.row;
    const row = buildRow(job, showOwner, onAction);
    cache.set(job.job_id, {key, row});
    return row;
  }

  return {
    render(jobs, showOwner, emptyText) {
      const shown = new Set(jobs.map((job) => job.job_id));
      for (const id of cache.keys()) if (!shown.has(id)) cache.delete(id);
      const rows = jobs.map((job) => rowFor(job, showOwner));
      if (!rows.length) {
        rows.push(el("tr", {}, el("td", {colSpan: columns(showOwner).length, className: "empty",
                                         textContent: emptyText})));
      }
      body.replaceChildren(...rows);
    },
    forget(jobId) { cache.delete(jobId); },  // rebuild this job's row (and its button) at the next render
    tick() {
      for (const row of body.querySelectorAll("tr[data-since]")) {
        row.querySelector(".since").textContent = ago(row.dataset.since);
      }
    },
  };
}

export function renderCounts(container, jobs) {
  container.replaceChildren(...STATES.map((state) => {
    const n = jobs.filter((job) => job.state === state).length;
    return el("span", {className: "badge s-" + state, textContent: state + " " + n});
  }));
}
