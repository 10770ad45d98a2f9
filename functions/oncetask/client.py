"""Submit and follow jobs from your own services, with one of two clients that have the same methods and errors:

- `Client(base_url)` calls the HTTP API, with a Google ID token for it (from the credentials google-auth finds);
- `DirectClient(app)` (or `app.client()`) writes straight into Firestore and Cloud Tasks through the app's own
  commands, for services in the same project, as the Firebase Admin SDK's `task_queue().enqueue` does: the same
  job IDs, task names and de-duplication as the API, without the HTTP hop.

    client = oncetask.Client("https://oncetask-api-xyz.a.run.app")
    submitted = client.submit(thumbnails, Thumbnails(image="gs://photos/cat.jpg"), key=f"thumbs-{upload_id}")
    job = client.wait(submitted.job_id, timeout=300)

Transient failures (503 and other 5xx, 429, a connection that fails) are retried a few times with jittered backoff.
A submit is retried only when it carries a key: without one, a retried submit whose first try did land would
create a second job.
"""

from __future__ import annotations

import json
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

import pydantic
import requests
from pydantic import BaseModel, ConfigDict
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from .apierrors import (ApiError, InvalidRequestError, UnauthenticatedError, UnavailableError, from_exception,
                        from_response)
from .app import App, Callback, JobDefinition
from .errors import JobNotFound
from .models import CreateJobRequest, JobList, JobView
from .naming import is_job_id
from .states import TERMINAL, JobState

if TYPE_CHECKING:
    from .commands import Submitted
    from .job import Job
    from .services import Services

T = TypeVar("T")
Token = str | Callable[[], str]


class Submission(BaseModel):
    """What submit, retry and cancel answer: the job's ID, what happened (`queued`, `already_queued`,
    `already_completed`..., `cancelled`, `cancel_requested`) and the name of its current task."""

    model_config = ConfigDict(frozen=True)

    job_id: str
    status: str
    task_name: str | None = None
    capability: str | None = None  # an anonymous submission's capability (see the API's authentication)


class WaitTimeout(TimeoutError):
    """`wait()` gave up before the job finished; `job` is the job as last seen."""

    def __init__(self, job: JobView, timeout: float) -> None:
        super().__init__(f"job {job.job_id} is still {job.state.value} after {timeout:g} s "
                         f"(stage {job.current_stage or '-'}, {job.attempts} attempt(s))")
        self.job = job
        self.timeout = timeout


class _Client(ABC):
    """What both clients share: the public methods, payload encoding, the transient retry and wait(). A subclass
    only says how each call reaches the jobs (`_submit`, `_get`, `_list`, `_retry`, `_cancel`)."""

    def __init__(self, retries: int) -> None:
        if retries < 0:
            raise ValueError("retries must not be negative")
        self.retries = retries

    def submit(self, job_type: str | JobDefinition, payload: BaseModel | dict[str, Any] | None = None, *,
               key: str | None = None, delay_seconds: float | None = None, run_at: datetime | None = None,
               callback: Callback | None = None, lane: str | None = None) -> Submission:
        """Submit a job: `job_type` by name or definition, `payload` as a dict or the job type's model. The same
        `key` (per caller and job type) gives the same job however often it is submitted, and a submit with a key
        is safe to retry; without one each submit is a new job, so a failed one is not retried automatically.
        `delay_seconds` or `run_at` schedule it (at most 30 days ahead); `callback` tells a URL, or starts a job,
        when it ends."""
        name = job_type.name if isinstance(job_type, JobDefinition) else job_type
        body: dict[str, Any] = {"job_type": name, "payload": _payload(job_type, payload), "idempotency_key": key}
        if delay_seconds is not None:
            body["delay_seconds"] = delay_seconds
        if run_at is not None:
            body["run_at"] = run_at.isoformat()
        if callback is not None:
            body["callback"] = callback.as_dict()
        if lane is not None:
            body["lane"] = lane
        data = _encode(body)
        return self._call(lambda: self._submit(body, data), retry=key is not None)

    def get(self, job_id: str) -> JobView:
        """The job: state, stages done and their outputs, errors; `NotFoundError` if this caller has no such job."""
        return self._call(lambda: self._get(job_id))

    def list(self, state: JobState | str | None = None, limit: int = 20, cursor: str | None = None) -> JobList:
        """One page of this caller's jobs, newest first; pass its `next_cursor` back as `cursor` for the next."""
        return self._call(lambda: self._list(None if state is None else str(state), limit, cursor))

    def iter_jobs(self, state: JobState | str | None = None, page_size: int = 100) -> Iterator[JobView]:
        """Every job of this caller (of one state, if given), newest first, a page at a time."""
        cursor: str | None = None
        while True:
            page = self.list(state, page_size, cursor)
            yield from page.jobs
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def wait(self, job_id: str, timeout: float, poll: float = 1.0) -> JobView:
        """The job once it is completed, failed or cancelled, reading it every `poll` seconds; `WaitTimeout` (a
        TimeoutError) with the job as last seen if it is not finished within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.get(job_id)
            remaining = deadline - time.monotonic()
            if job.state in TERMINAL:
                return job
            if remaining <= 0:
                raise WaitTimeout(job, timeout)
            time.sleep(min(poll, remaining))

    def retry(self, job_id: str) -> Submission:
        """Run a failed job again from the stage that failed (`ConflictError` if it has not failed). Not retried
        automatically: if a first try landed, a second would answer ConflictError for a job that is running."""
        return self._call(lambda: self._retry(job_id), retry=False)

    def cancel(self, job_id: str) -> Submission:
        """Cancel a waiting job at once, or ask a running one to stop at its next check (`cancel_requested`);
        cancelling a cancelled job again answers `already_cancelled`, a finished one `ConflictError`."""
        return self._call(lambda: self._cancel(job_id))

    def _call(self, call: Callable[[], T], retry: bool = True) -> T:
        """Run `call`, again after a transient failure (UnavailableError) when it is safe to repeat (`retry`)."""
        if not retry or not self.retries:
            return call()
        retrying = Retrying(retry=retry_if_exception_type(UnavailableError), stop=stop_after_attempt(self.retries + 1),
                            wait=wait_random_exponential(multiplier=0.5, max=8.0), reraise=True)
        return retrying(call)

    @abstractmethod
    def _submit(self, body: dict[str, Any], data: bytes) -> Submission: ...

    @abstractmethod
    def _get(self, job_id: str) -> JobView: ...

    @abstractmethod
    def _list(self, state: str | None, limit: int, cursor: str | None) -> JobList: ...

    @abstractmethod
    def _retry(self, job_id: str) -> Submission: ...

    @abstractmethod
    def _cancel(self, job_id: str) -> Submission: ...


class Client(_Client):
    """A client of the HTTP API at `base_url`. It sends `token` (a string, or a function called before each request)
    when given; otherwise a Google ID token for `audience` (default: `base_url`) from the credentials google-auth
    finds (a service account key in GOOGLE_APPLICATION_CREDENTIALS, the metadata server on Cloud Run...), for an
    https URL or when `audience` is given. Without credentials it sends none, and a 401 says why; `token=""` sends
    none at all. `capability` is for an API that takes anonymous submissions: the secret a submission answered
    (`Submission.capability`), which alone opens that job, or one of your own (32-128 URL-safe characters) to
    submit with an idempotency key; it is sent instead of a token."""

    def __init__(self, base_url: str, *, audience: str | None = None, token: Token | None = None,
                 capability: str | None = None, timeout: float = 30.0, retries: int = 3) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {base_url!r}")
        if capability is not None and (token is not None or audience is not None):
            raise ValueError("a capability is sent instead of a token: give capability= or token=/audience=, not both")
        if capability is not None and not (isinstance(capability, str) and capability):
            raise ValueError(f"capability must be a non-empty string, not {capability!r}")
        super().__init__(retries)
        self._capability = capability
        self.base_url = base_url
        self.timeout = timeout
        self._root = base_url.rstrip("/") + "/"
        self._token = token
        fetch = token is None and capability is None and (audience is not None or base_url.startswith("https://"))
        self._id_tokens = _GoogleIdTokens(audience or base_url) if fetch else None
        self._session = requests.Session()

    def close(self) -> None:
        """Close the client's connections."""
        self._session.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _submit(self, body: dict[str, Any], data: bytes) -> Submission:
        return Submission.model_validate(self._request("POST", "jobs", data=data))

    def _get(self, job_id: str) -> JobView:
        return JobView.model_validate(self._request("GET", f"jobs/{quote(job_id, safe='')}"))

    def _list(self, state: str | None, limit: int, cursor: str | None) -> JobList:
        params = {"limit": str(limit), **({"state": state} if state is not None else {}),
                  **({"cursor": cursor} if cursor is not None else {})}
        return JobList.model_validate(self._request("GET", "jobs", params=params))

    def _retry(self, job_id: str) -> Submission:
        return Submission.model_validate(self._request("POST", f"jobs/{quote(job_id, safe='')}/retry"))

    def _cancel(self, job_id: str) -> Submission:
        return Submission.model_validate(self._request("POST", f"jobs/{quote(job_id, safe='')}/cancel"))

    def _request(self, method: str, path: str, data: bytes | None = None,
                 params: dict[str, str] | None = None) -> Any:
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        token = self._token() if callable(self._token) else self._token
        if token is None and self._id_tokens is not None:
            token = self._id_tokens.get()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        elif self._capability:
            headers["Authorization"] = f"Capability {self._capability}"
        try:
            response = self._session.request(method, self._root + path, data=data, params=params, headers=headers,
                                             timeout=self.timeout)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise UnavailableError(f"cannot reach the API at {self.base_url}: {exc}", code="UNREACHABLE") from exc
        if response.status_code >= 400:
            error = from_response(response.status_code, response.text, response.reason)
            if isinstance(error, UnauthenticatedError) and not token and not self._capability:
                raise UnauthenticatedError(f"{error.message} (no token was sent: {self._why_no_token()})",
                                           status=error.status, code=error.code, field=error.field)
            raise error
        try:
            return response.json()
        except ValueError:
            raise ApiError(f"the API answered {response.status_code} with a body that is not JSON",
                           status=response.status_code, code="INVALID_RESPONSE") from None

    def _why_no_token(self) -> str:
        if self._id_tokens is None:
            return "a plain-http URL gets no Google ID token unless you pass token= or audience="
        return f"google-auth found no credentials to mint an ID token ({self._id_tokens.missing})"


class DirectClient(_Client):
    """A client that submits into Firestore and Cloud Tasks through `app`'s own commands and settings (for services
    in the same project), as `owner`: the caller the API would see, by default the anonymous caller of an API that
    requires no token; with tokens required, the `sub` of the caller's ID token, to share its jobs and keys."""

    # Fewer retries than over HTTP: the store and the queue already retry each of their calls a few times.
    def __init__(self, app: App, *, owner: str | None = None, retries: int = 1) -> None:
        if owner is not None and not (isinstance(owner, str) and owner):
            raise ValueError(f"owner must be a non-empty string (the caller's name), not {owner!r}")
        super().__init__(retries)
        self.app = app
        self.owner = owner

    @property
    def _services(self) -> Services:
        return self.app.services  # looked up per call: follows the app's configure()

    def _owner(self) -> str:
        from .callers import ANONYMOUS  # noqa: PLC0415 - callers imports the Google auth libraries

        return self.owner if self.owner is not None else ANONYMOUS

    def _submit(self, body: dict[str, Any], data: bytes) -> Submission:
        def submit() -> Submission:
            # The checks the API makes of a request body, in its order, so a request refused over HTTP is refused
            # here too: its size, text a UTF-8 store accepts, the request model.
            limit = self._services.settings.max_body_bytes
            if len(data) > limit:
                raise InvalidRequestError(f"the body exceeds {limit} bytes", status=413, code="PAYLOAD_TOO_LARGE",
                                          field="body")
            try:
                json.dumps(body, ensure_ascii=False).encode("utf-8")
            except UnicodeError as exc:
                raise InvalidRequestError(f"the body is not valid JSON text: {exc}", status=400, code="INVALID_JSON",
                                          field="body") from exc
            try:
                request = CreateJobRequest.model_validate(body)
            except pydantic.ValidationError as exc:
                raise _invalid(exc) from exc
            return _submission(self._services.commands.submit(
                self._owner(), request.job_type, request.payload, request.idempotency_key,
                delay_seconds=request.delay_seconds, run_at=request.run_at,
                callback=request.callback.model_dump(exclude_none=True) if request.callback else None,
                lane=request.lane))

        return self._direct(submit)

    def _get(self, job_id: str) -> JobView:
        def get() -> JobView:
            return _view(self._services, self._services.commands.get(self._owner(), _job_id(job_id)))

        return self._direct(get)

    def _list(self, state: str | None, limit: int, cursor: str | None) -> JobList:
        from .api import MAX_LIST_LIMIT  # noqa: PLC0415 - api imports the Google clients

        def list_jobs() -> JobList:
            # The API's checks of its query parameters, with its messages.
            try:
                wanted = None if state is None else JobState(state)
            except ValueError:
                raise InvalidRequestError(f"state must be one of {[s.value for s in JobState]}", status=422,
                                          field="state") from None
            if not 1 <= limit <= MAX_LIST_LIMIT:
                raise InvalidRequestError(f"limit must be between 1 and {MAX_LIST_LIMIT}", status=422, field="limit")
            if cursor is not None and not is_job_id(cursor):
                raise InvalidRequestError("cursor must be a value returned as next_cursor", status=422,
                                          field="cursor")
            jobs = self._services.store.list_jobs(self._owner(), wanted, limit, cursor)
            return JobList(jobs=[_view(self._services, job) for job in jobs],
                           next_cursor=jobs[-1].job_id if len(jobs) == limit else None)

        return self._direct(list_jobs)

    def _retry(self, job_id: str) -> Submission:
        return self._direct(lambda: _submission(self._services.commands.retry(self._owner(), _job_id(job_id))))

    def _cancel(self, job_id: str) -> Submission:
        return self._direct(lambda: _submission(self._services.commands.cancel(self._owner(), _job_id(job_id))))

    def _direct(self, call: Callable[[], T]) -> T:
        """Run a call on the app's services, raising what the API would have answered for its exceptions."""
        try:
            return call()
        except ApiError:
            raise
        except Exception as exc:
            error = from_exception(exc)
            if error is None:
                raise
            raise error from exc


class _GoogleIdTokens:
    """Google ID tokens for one audience, from the credentials google-auth finds in the environment, reused until
    shortly before they expire. If there are none, it says so once (`missing`) and gives no token from then on."""

    def __init__(self, audience: str) -> None:
        self.audience = audience
        self.missing: str | None = None
        self._credentials: Any = None
        self._lock = threading.Lock()  # one refresh at a time; the others wait for its token

    def get(self) -> str | None:
        import google.auth.transport.requests  # noqa: PLC0415 - only a client that sends tokens needs these
        from google.auth import exceptions  # noqa: PLC0415
        from google.oauth2 import id_token  # noqa: PLC0415

        with self._lock:
            if self.missing is not None:
                return None
            request = google.auth.transport.requests.Request()
            try:
                if self._credentials is None:
                    self._credentials = id_token.fetch_id_token_credentials(self.audience, request=request)
                if not self._credentials.valid:  # none yet, or expiring within google-auth's refresh margin
                    self._credentials.refresh(request)
            except exceptions.DefaultCredentialsError as exc:
                self.missing = str(exc)
                return None
            except exceptions.TransportError as exc:
                raise UnavailableError(f"cannot get an ID token: {exc}", code="UNREACHABLE") from exc
            except exceptions.GoogleAuthError as exc:
                raise UnauthenticatedError(f"cannot get an ID token for {self.audience}: {exc}") from exc
            return str(self._credentials.token)


def _payload(job_type: str | JobDefinition, payload: BaseModel | dict[str, Any] | None) -> dict[str, Any]:
    if payload is None:
        return {}
    if isinstance(payload, BaseModel):
        if isinstance(job_type, JobDefinition) and not isinstance(payload, job_type.payload):
            raise TypeError(f"job type {job_type.name!r} takes a {job_type.payload.__name__} payload, not a "
                            f"{type(payload).__name__}")
        return payload.model_dump(mode="json")
    if isinstance(payload, dict):
        return payload
    raise TypeError(f"payload must be a dict or a pydantic model, not {type(payload).__name__}")


def _encode(body: dict[str, Any]) -> bytes:
    """The request body as sent; a payload that is no JSON (NaN, a datetime in a dict...) is refused here."""
    try:
        return json.dumps(body, allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise InvalidRequestError(f"the payload cannot be sent as JSON: {exc}", status=400, code="INVALID_JSON",
                                  field="payload") from exc


def _invalid(exc: pydantic.ValidationError) -> InvalidRequestError:
    """The API's answer to a request body its model refuses: the first error, with its location as the field."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "body"
    return InvalidRequestError(f"{where}: {first['msg']}", status=422, field=where)


def _job_id(job_id: str) -> str:
    if not is_job_id(job_id):  # the API answers 404 for anything that is not a job ID, before any read
        raise JobNotFound(message=f"no job {job_id}")
    return job_id


def _submission(submitted: Submitted) -> Submission:
    return Submission(job_id=submitted.job_id, status=submitted.status, task_name=submitted.task_name)


def _view(services: Services, job: Job) -> JobView:
    """The job as the API shows it (as `api._view` makes it), with its job type's stages."""
    job_type = services.job_types.get(job.job_type)
    stages = [stage.name for stage in job_type.stages] if job_type else []
    return JobView.model_validate({**job.to_api(), "stages": stages})
