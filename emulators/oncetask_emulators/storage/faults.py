"""`--fault` for an HTTP API: the shared spec and plan (`oncetask_emulators.faults`), answered as HTTP errors.

The spec reads as for the gRPC emulators (`UNAVAILABLE:0.05,DELAY:50ms:0.1`); a gRPC code name becomes the HTTP
status Google's APIs map it to (UNAVAILABLE 503, RESOURCE_EXHAUSTED 429, DEADLINE_EXCEEDED 504, ...), and an
HTTP status may be named directly (`503:0.05`). A failed request is refused before it reaches the store, so it
changes nothing, like a request production drops at its front end.
"""

from __future__ import annotations

from . import errors

GRPC_TO_HTTP = {
    "CANCELLED": 499, "UNKNOWN": 500, "INVALID_ARGUMENT": 400, "DEADLINE_EXCEEDED": 504, "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409, "PERMISSION_DENIED": 403, "RESOURCE_EXHAUSTED": 429, "FAILED_PRECONDITION": 412,
    "ABORTED": 409, "OUT_OF_RANGE": 400, "UNIMPLEMENTED": 501, "INTERNAL": 500, "UNAVAILABLE": 503,
    "DATA_LOSS": 500, "UNAUTHENTICATED": 401,
}
HTTP_CODES = frozenset({"400", "401", "403", "404", "408", "409", "412", "429", "500", "502", "503", "504"})
REASONS = {400: "invalid", 401: "required", 403: "forbidden", 404: "notFound", 408: "requestTimeout",
           409: "conflict", 412: "conditionNotMet", 429: "rateLimitExceeded", 499: "cancelled",
           500: "backendError", 501: "notImplemented", 502: "badGateway", 503: "backendError",
           504: "deadlineExceeded"}


class HttpFaults:
    """Draws the faults of one request: (seconds to hold it, the error to answer instead, or None)."""

    def __init__(self, spec: str, seed: int = 0) -> None:
        from ..faults import FaultPlan  # grpc is imported only when faults are asked for (it is slow to load)

        self.plan = FaultPlan.from_spec(spec, seed, extra_names=frozenset({"DELAY"}) | HTTP_CODES)

    def __bool__(self) -> bool:
        return bool(self.plan)

    def counts(self) -> dict[str, int]:
        return self.plan.counts()

    def draw(self) -> tuple[float, errors.StorageError | None]:
        fired = self.plan.draw()
        delay = sum(rule.delay_seconds for rule in fired if rule.name == "DELAY")
        failure = next((rule for rule in fired if rule.name != "DELAY"), None)
        if failure is None:
            return delay, None
        status = int(failure.name) if failure.name.isdigit() else GRPC_TO_HTTP[failure.name]
        return delay, errors.StorageError(status, REASONS.get(status, "backendError"),
                                          f"injected fault: {failure.name}")
