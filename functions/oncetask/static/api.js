// The API as the page calls it: relative to where the page is served (the function may sit under a path), with
// the signed-in user's ID token on every call, so the page sees exactly what its user may see.
"use strict";

export const BASE = location.pathname.endsWith("/") ? location.pathname : location.pathname + "/";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// `token` is a function giving the current ID token (or null: the call goes without one).
export function createApi(token) {
  async function call(method, path) {
    const headers = {"Accept": "application/json"};
    const idToken = await token();
    if (idToken) headers["Authorization"] = "Bearer " + idToken;
    // no-store: the answers depend on who asks (GET stats says `private, max-age=5`, with no Vary), and the browser's
    // cache keys by URL only: a cached answer for the user signed in before must not be shown to the next one.
    const response = await fetch(BASE + path, {method, headers, credentials: "omit", cache: "no-store"});
    let body = null;
    try { body = await response.json(); } catch (_) { /* not JSON: reported below */ }
    if (!response.ok) {
      const error = body && body.error ? body.error : {};
      throw new ApiError(response.status, error.code || "HTTP_" + response.status,
                         error.message || "HTTP " + response.status);
    }
    return body;
  }

  const job = (jobId) => "jobs/" + encodeURIComponent(jobId);
  return {
    config: () => call("GET", "status/config"),
    openapi: () => call("GET", "openapi.json"),
    me: () => call("GET", "me"),
    // The filters and the page token (`cursor`: the API's next_cursor) go as query parameters; empty ones are left
    // out (the API takes `state=` as a mistake, not as "any state").
    listJobs: ({state, jobType, limit, cursor}) => call("GET", "jobs?" + query({
      limit, state, job_type: jobType, cursor})),
    getJob: (jobId) => call("GET", job(jobId)),
    children: (jobId) => call("GET", job(jobId) + "/children"),
    retryJob: (jobId) => call("POST", job(jobId) + "/retry"),
    cancelJob: (jobId) => call("POST", job(jobId) + "/cancel"),
    stats: () => call("GET", "stats"),
    timeline: ({minutes, buckets}) => call("GET", "stats/timeline?" + query({minutes, buckets})),
  };
}

function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(name, String(value));
  }
  return search.toString();
}
