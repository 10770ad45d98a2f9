// One job's detail (#/jobs/<id>): its state and progress, each stage's run, the worker and attempt, outputs and
// artifacts, errors with their type and traceback, the callback, its children (each a link to its own detail), and
// Retry / Cancel when its state allows. Render functions only: the API is called by status.js, and actions are
// handed in (`onAction(job, "retry" | "cancel")`). All text from the API goes in through textContent.
"use strict";

import {ACTIVE, ago, el} from "./jobs.js";
import {jobHash} from "./route.js";

function field(name, value) {
  return [el("dt", {textContent: name}), el("dd", {textContent: value === null || value === undefined ? "–"
                                                                                                    : String(value)})];
}

function when(iso) {
  return iso ? iso + " (" + ago(iso) + " ago)" : null;
}

function json(value) {
  return el("pre", {className: "json", textContent: JSON.stringify(value, null, 2)});
}

function section(title, ...children) {
  return el("section", {className: "detail-part"}, el("h3", {textContent: title}), ...children);
}

function summary(job) {
  const state = el("span", {className: "badge s-" + job.state, id: "detail-state", textContent: job.state});
  state.dataset.state = job.state;
  const parent = job.parent_job_id
    ? el("a", {href: jobHash(job.parent_job_id), className: "id", textContent: job.parent_job_id}) : "–";
  return el("dl", {className: "fields"},
    el("dt", {textContent: "State"}), el("dd", {}, state, job.cancel_requested ? " (cancel requested)" : ""),
    ...field("Type", job.job_type), ...field("Owner", job.owner), ...field("Lane", job.lane),
    ...field("Attempts", job.attempts), ...field("Current stage", job.current_stage),
    ...field("Worker", job.worker), ...field("Created", when(job.created_at)),
    ...field("Started", when(job.started_at)), ...field("In this state since", when(job.state_changed_at)),
    ...field("Completed", when(job.completed_at)), ...field("Runs at", job.run_at),
    el("dt", {textContent: "Parent"}), el("dd", {}, parent),
    ...field("Idempotency key", job.idempotency_key), ...field("Trace", job.trace_id));
}

function progress(job) {
  if (!job.progress) return null;
  const p = job.progress;
  const bar = el("progress", {max: 1, value: p.fraction, id: "detail-progress"});
  const what = (p.stage ? p.stage + ": " : "") + (p.message || "");
  const age = p.at ? " · " + ago(p.at) + " ago" : "";
  return section("Progress", el("p", {}, bar, " " + Math.round(p.fraction * 100) + "% ",
                                el("span", {textContent: what}), el("span", {className: "muted", textContent: age})));
}

function stages(job) {
  const names = job.stages && job.stages.length ? job.stages : Object.keys(job.stage_runs || {});
  const rows = names.map((name) => {
    const run = (job.stage_runs || {})[name];
    const status = run ? "done" : name === job.current_stage ? job.state : "pending";
    const artifacts = run && run.artifacts.length
      ? el("ul", {className: "artifacts"}, ...run.artifacts.map((uri) => el("li", {textContent: uri}))) : "–";
    const output = (job.stage_outputs || {})[name];
    const row = el("tr", {},
      el("td", {textContent: name}), el("td", {textContent: status}),
      el("td", {textContent: run && run.at ? run.at : "–"}),
      el("td", {className: "num", textContent: run && run.attempt !== null ? String(run.attempt) : "–"}),
      el("td", {className: "num", textContent: run && run.children !== null ? String(run.children) : "–"}),
      el("td", {}, artifacts),
      el("td", {}, output && Object.keys(output).length ? json(output) : "–"));
    row.dataset.stage = name;
    return row;
  });
  return section("Stages", el("table", {className: "stages-table"},
    el("thead", {}, el("tr", {}, ...["Stage", "Status", "Checkpoint at", "Attempt", "Children", "Artifacts",
                                     "Output"].map((name) => el("th", {textContent: name})))),
    el("tbody", {}, ...rows)));
}

function errors(job) {
  const list = job.errors || [];
  if (!list.length) return null;
  return section("Errors", el("ol", {className: "errors", id: "detail-errors"}, ...list.map((e) => {
    const where = [e.stage ? "stage " + e.stage : null, "attempt " + e.attempt,
                   e.retryable ? "retryable" : "permanent", e.at].filter(Boolean).join(" · ");
    const head = el("div", {},
      el("strong", {className: "error-code", textContent: e.code}),
      e.type ? el("code", {className: "error-type", textContent: " " + e.type}) : "",
      el("span", {className: "muted", textContent: " · " + where}));
    const item = el("li", {}, head, el("p", {className: "error-message", textContent: e.message}));
    if (e.traceback) {
      item.append(el("details", {className: "traceback"}, el("summary", {textContent: "Traceback"}),
                     el("pre", {textContent: e.traceback})));
    }
    return item;
  })));
}

function callback(job) {
  const c = job.callback;
  if (!c) return null;
  const target = c.url ? "URL " + c.url : "job type " + c.job_type;
  const ended = !ACTIVE.has(job.state);
  const status = c.pending ? "pending: not sent yet" : ended ? (c.on.includes(job.state) ? "sent" : "not due for a " +
                                                                job.state + " job") : "waits for the job to end";
  return section("Callback", el("p", {id: "detail-callback", textContent: target + " on " + c.on.join(", ") + " · " +
                                                                         status}));
}

function childItem(child) {
  const error = child.error ? (child.error.code || "") + ": " + (child.error.message || "") : "";
  return el("li", {},
    el("a", {href: jobHash(child.job_id), className: "id child", textContent: child.job_id}),
    " " + (child.job_type || "") + " ",
    el("span", {className: "badge s-" + (child.state || "queued"), textContent: child.state || "not ended"}),
    error ? el("span", {className: "error", textContent: " " + error}) : "");
}

function children(view) {
  if (!view || !view.stages.length) return null;
  return section("Children", ...view.stages.map((stage) => {
    const outcome = stage.policy === "fail" ? "fails the parent" : "is collected";
    const policy = stage.policy ? " · a failed child " + outcome : "";
    return el("div", {className: "children"},
      el("p", {textContent: stage.stage + ": " + stage.ended + " of " + stage.expected + " ended" + policy}),
      el("ul", {}, ...stage.children.map(childItem)));
  }));
}

function actions(job, onAction) {
  const buttons = [];
  if (job.state === "failed") {
    const retry = el("button", {type: "button", className: "action retry", id: "detail-retry", textContent: "Retry"});
    retry.addEventListener("click", () => onAction(job, "retry", retry));
    buttons.push(retry);
  }
  if (ACTIVE.has(job.state)) {
    const cancel = el("button", {type: "button", className: "action cancel", id: "detail-cancel",
                                 textContent: job.cancel_requested ? "Cancelling…" : "Cancel"});
    cancel.disabled = Boolean(job.cancel_requested);
    cancel.addEventListener("click", () => onAction(job, "cancel", cancel));
    buttons.push(cancel);
  }
  return el("div", {className: "detail-actions"}, ...buttons);
}

// Rebuilds the view only when the job (or its children) changed, so an open <details> or a button under the
// pointer stays put between polls.
export function createDetail(container, onAction) {
  let shownKey = null;
  return {
    render(job, childrenView) {
      const key = JSON.stringify([job, childrenView]);
      if (key === shownKey) return;
      const open = new Set([...container.querySelectorAll("details[open]")].map((d, i) => i));
      shownKey = key;
      container.replaceChildren(
        el("h2", {}, "Job ", el("span", {className: "id", id: "detail-id", textContent: job.job_id})),
        actions(job, onAction),
        summary(job), progress(job) || "", stages(job), errors(job) || "", callback(job) || "",
        children(childrenView) || "", section("Payload", json(job.payload)));
      container.querySelectorAll("details").forEach((d, i) => { if (open.has(i)) d.open = true; });
    },
    clear() { shownKey = null; container.replaceChildren(); },
  };
}
