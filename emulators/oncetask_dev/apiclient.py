"""A small client of the public API (what the CLI and the demo use): JSON in, JSON out, the API's errors kept as
the API phrased them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import requests


class ApiError(Exception):
    """The API answered an error (its code and message), or could not be reached (code UNREACHABLE)."""

    def __init__(self, status: int | None, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field

    def __str__(self) -> str:
        where = f" (field {self.field})" if self.field else ""
        status = f"HTTP {self.status} " if self.status else ""
        return f"{status}{self.code}: {self.message}{where}"


class ApiClient:
    def __init__(self, base_url: str, timeout: float = 10.0, token: str | None = None) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"the API URL must start with http:// or https://, got {base_url!r}")
        self.base_url = base_url.rstrip("/") + "/"
        self.timeout = timeout
        self.session = requests.Session()  # one per client: a thread that needs its own makes its own client
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        url = self.base_url + path
        try:
            response = self.session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise ApiError(None, "UNREACHABLE", f"cannot reach the API at {self.base_url}: {exc}") from exc
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code >= 400:
            error = (body or {}).get("error") if isinstance(body, dict) else None
            if isinstance(error, dict):
                raise ApiError(response.status_code, str(error.get("code")), str(error.get("message")),
                               error.get("field"))
            raise ApiError(response.status_code, "HTTP_ERROR", response.text[:300] or response.reason)
        return body

    def health(self) -> dict[str, Any]:
        return self._call("GET", "healthz")

    def submit(self, job_type: str, payload: dict[str, Any] | None = None,
               idempotency_key: str | None = None) -> dict[str, Any]:
        body = {"job_type": job_type, "payload": payload or {}, "idempotency_key": idempotency_key}
        return self._call("POST", "jobs", json=body)

    def get(self, job_id: str) -> dict[str, Any]:
        return self._call("GET", f"jobs/{quote(job_id, safe='')}")

    def list(self, state: str | None = None, limit: int = 20, cursor: str | None = None,
             job_type: str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit}
        if state:
            params["state"] = state
        if job_type:
            params["job_type"] = job_type
        if cursor:
            params["cursor"] = cursor
        return self._call("GET", "jobs", params=params)

    def iter_jobs(self, state: str | None = None, page_size: int = 100) -> Iterator[dict[str, Any]]:
        cursor = None
        while True:
            page = self.list(state, page_size, cursor)
            yield from page["jobs"]
            cursor = page.get("next_cursor")
            if not cursor:
                return

    def children(self, job_id: str, limit: int = 100) -> dict[str, Any]:
        return self._call("GET", f"jobs/{quote(job_id, safe='')}/children", params={"limit": limit})

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "stats")

    def timeline(self, minutes: int = 60, buckets: int = 12) -> dict[str, Any]:
        return self._call("GET", "stats/timeline", params={"minutes": minutes, "buckets": buckets})

    def retry(self, job_id: str) -> dict[str, Any]:
        return self._call("POST", f"jobs/{quote(job_id, safe='')}/retry")

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self._call("POST", f"jobs/{quote(job_id, safe='')}/cancel")
