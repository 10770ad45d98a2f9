// The operators' figures: GET stats (jobs by state and type, queues) and GET stats/timeline (jobs ended per time
// bucket), the latter drawn as an inline SVG chart built node by node. Every value from the API goes in as text
// (textContent, or an SVG attribute that is a number): nothing is parsed as HTML.
"use strict";

import {STATES, el} from "./jobs.js";

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attributes, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, String(value));
  for (const child of children) node.append(child);
  return node;
}

function svgText(x, y, text, className, anchor = "middle") {
  const node = svg("text", {x, y, "class": className, "text-anchor": anchor});
  node.textContent = text;
  return node;
}

export function seconds(value) {
  if (value === null || value === undefined) return "–";
  if (value < 60) return value.toFixed(value < 10 ? 1 : 0) + " s";
  const parts = value < 3600 ? [[Math.floor(value / 60), "min"], [Math.floor(value % 60), "s"]]
                             : [[Math.floor(value / 3600), "h"], [Math.floor((value % 3600) / 60), "min"]];
  return parts.filter(([n], i) => i === 0 || n).map(([n, unit]) => n + " " + unit).join(" ");
}

const number = (value) => (value === null || value === undefined ? "–" : String(value));

function table(head, rows) {
  return el("table", {className: "figures-table"},
    el("thead", {}, el("tr", {}, ...head.map((name) => el("th", {textContent: name})))),
    el("tbody", {}, ...rows.map((cells) => el("tr", {}, ...cells.map((cell) => el("td", {textContent: cell}))))));
}

// The counts by state, by job type, the queues' depth and oldest task, and the failures of the last hour and day.
export function renderStats(container, stats) {
  const states = el("div", {className: "counts", id: "figures-states"}, ...STATES.map((state) => {
    const badge = el("span", {className: "badge s-" + state, textContent: state + " " + (stats.states[state] || 0)});
    badge.dataset.state = state;
    badge.dataset.count = String(stats.states[state] || 0);
    return badge;
  }));
  const notes = el("p", {className: "figures-notes", textContent:
    "failed for good: " + (stats.dead_letters.hour || 0) + " in the last hour, " + (stats.dead_letters.day || 0) +
    " in the last day · lapsed leases: " + stats.lapsed_leases + " · figures " + seconds(stats.age_seconds) +
    " old"});
  const types = Object.entries(stats.job_types).sort(([a], [b]) => a.localeCompare(b));
  const durations = stats.durations && stats.durations.by_job_type ? stats.durations.by_job_type : {};
  const typeTable = table(["Job type", "Total", "Active", "Failed", "Run p50", "Run p95"], types.map(([name, c]) => {
    const d = durations[name] || {};
    return [name, number(c.total), number(c.active), number(c.failed), seconds(d.run_p50_seconds),
            seconds(d.run_p95_seconds)];
  }));
  const queueTable = table(["Queue", "Lane", "State", "Depth", "Oldest overdue", "In flight", "Dispatched/min"],
    stats.queues.map((q) => [q.name + (q.job_type ? " (" + q.job_type + ")" : ""), q.lane || q.purpose,
                             q.error ? "error: " + q.error : q.state || "–", number(q.depth),
                             seconds(q.oldest_task_age_seconds), number(q.in_flight),
                             number(q.dispatched_last_minute)]));
  container.replaceChildren(states, notes, el("div", {className: "figures-tables"}, typeTable, queueTable));
}

const WIDTH = 640, HEIGHT = 180, LEFT = 40, RIGHT = 12, TOP = 12, BOTTOM = 28;
const SERIES = [["completed", "line-completed"], ["failed", "line-failed"]];

function clock(iso) {
  const at = new Date(iso);
  return String(at.getHours()).padStart(2, "0") + ":" + String(at.getMinutes()).padStart(2, "0");
}

// A line per series (completed, failed) over the buckets, with a point per bucket, the time axis labelled at its
// ends and middle, and the count axis at 0 and its top.
export function renderTimeline(container, timeline) {
  const buckets = timeline.buckets || [];
  const top = Math.max(1, ...buckets.flatMap((b) => [b.completed, b.failed]));
  const plotWidth = WIDTH - LEFT - RIGHT, plotHeight = HEIGHT - TOP - BOTTOM;
  const x = (i) => LEFT + (buckets.length > 1 ? (i * plotWidth) / (buckets.length - 1) : plotWidth / 2);
  const y = (n) => TOP + plotHeight - (n * plotHeight) / top;

  const chart = svg("svg", {viewBox: `0 0 ${WIDTH} ${HEIGHT}`, "class": "timeline", role: "img",
                            "aria-label": "jobs completed and failed per " + seconds(timeline.bucket_seconds)});
  chart.append(
    svg("line", {x1: LEFT, y1: TOP + plotHeight, x2: WIDTH - RIGHT, y2: TOP + plotHeight, "class": "axis"}),
    svg("line", {x1: LEFT, y1: TOP, x2: LEFT, y2: TOP + plotHeight, "class": "axis"}),
    svgText(LEFT - 6, y(0) + 4, "0", "axis-label", "end"),
    svgText(LEFT - 6, y(top) + 4, String(top), "axis-label", "end"));
  const ticks = buckets.length ? [...new Set([0, Math.floor((buckets.length - 1) / 2), buckets.length - 1])] : [];
  // The first label starts at its point and the last ends at its own, so neither leaves the chart.
  const anchor = (i) => (buckets.length < 2 ? "middle" : i === 0 ? "start" : i === buckets.length - 1 ? "end"
                                                                                                      : "middle");
  for (const i of ticks) chart.append(svgText(x(i), HEIGHT - 8, clock(buckets[i].start), "axis-label", anchor(i)));
  for (const [key, className] of SERIES) {
    const points = buckets.map((b, i) => `${x(i).toFixed(1)},${y(b[key]).toFixed(1)}`).join(" ");
    chart.append(svg("polyline", {points, "class": "series " + className}));
    buckets.forEach((b, i) => {
      const title = svg("title");
      title.textContent = `${clock(b.start)}–${clock(b.end)}: ${b[key]} ${key}`;
      chart.append(svg("circle", {cx: x(i).toFixed(1), cy: y(b[key]).toFixed(1), r: 3, "class": "point " + className,
                                  "data-series": key, "data-count": b[key]}, title));
    });
  }
  const legend = el("div", {className: "legend"},
    ...SERIES.map(([key, className]) => el("span", {className: "key " + className, textContent: key})),
    el("span", {className: "muted", textContent: " per " + seconds(timeline.bucket_seconds) + ", last " +
                                                 seconds(timeline.bucket_seconds * buckets.length)}));
  container.replaceChildren(chart, legend);
}
