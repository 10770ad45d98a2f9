// The page's address: which view, and the list's filters and page, live in the URL's fragment, so a reload (or a
// link sent to a colleague) shows the same thing. Pure functions over strings: nothing here touches the page.
//
//   #/jobs?state=failed&job_type=noop&cursor=<job id>&limit=20   the job list (every part optional)
//   #/jobs/<job id>                                              one job's detail
"use strict";

export const DEFAULT_LIMIT = 25;  // a page; each listed job is one Firestore read per poll
const MAX_LIMIT = 100;  // the API's own bound on `limit`

// {view: "list", state, jobType, cursor, limit} or {view: "job", jobId}.
export function parseRoute(hash) {
  const text = (hash || "").replace(/^#/, "");
  const [path, search = ""] = text.split("?", 2);
  const detail = /^\/jobs\/([^/?#]+)$/.exec(path);
  if (detail) {
    let jobId;
    try { jobId = decodeURIComponent(detail[1]); } catch (_) { jobId = detail[1]; }
    return {view: "job", jobId};
  }
  const params = new URLSearchParams(search);
  const limit = Number.parseInt(params.get("limit") || "", 10);
  return {
    view: "list",
    state: params.get("state") || "",
    jobType: params.get("job_type") || "",
    cursor: params.get("cursor") || "",
    limit: Number.isInteger(limit) && limit >= 1 && limit <= MAX_LIMIT ? limit : DEFAULT_LIMIT,
  };
}

export function listHash({state = "", jobType = "", cursor = "", limit = DEFAULT_LIMIT} = {}) {
  const params = new URLSearchParams();
  if (state) params.set("state", state);
  if (jobType) params.set("job_type", jobType);
  if (cursor) params.set("cursor", cursor);
  if (limit && limit !== DEFAULT_LIMIT) params.set("limit", String(limit));
  const search = params.toString();
  return "#/jobs" + (search ? "?" + search : "");
}

export function jobHash(jobId) {
  return "#/jobs/" + encodeURIComponent(jobId);
}
