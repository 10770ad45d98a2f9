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
    const response = await fetch(BASE + path, {method, headers, credentials: "omit"});
    let body = null;
    try { body = await response.json(); } catch (_) { /* not JSON: reported below */ }
    if (!response.ok) {
      const error = body && body.error ? body.error : {};
      throw new ApiError(response.status, error.code || "HTTP_" + response.status,
                         error.message || "HTTP " + response.status);
    }
    return body;
  }

  return {
    config: () => call("GET", "status/config"),
    me: () => call("GET", "me"),
    listJobs: ({state, limit}) => call("GET", "jobs?limit=" + limit + (state ? "&state=" + encodeURIComponent(state) : "")),
    getJob: (jobId) => call("GET", "jobs/" + encodeURIComponent(jobId)),
    retryJob: (jobId) => call("POST", "jobs/" + encodeURIComponent(jobId) + "/retry"),
    cancelJob: (jobId) => call("POST", "jobs/" + encodeURIComponent(jobId) + "/cancel"),
  };
}
