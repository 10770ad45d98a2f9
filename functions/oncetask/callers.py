"""Who is calling the API, and whose jobs they may see: the one place an `Authorization` header becomes a `Caller`.

- `Bearer <ID token>`: a verified Google ID token (a service) or Firebase ID token (a person). Its `sub` is the
  caller's **owner**: the jobs it submits carry it, and it sees and acts on those only. For a person that is their
  Firebase uid, which is also `request.auth.uid` in firestore.rules, so the rules and the API agree on who owns a
  job; for a service, its Google account's `sub` (the service account's unique ID).
- `Capability <secret>`: where anonymous submissions are allowed, the secret a submission answered with (or one the
  caller chose for it). The job's owner is `capability:<sha256 of the secret>`: only the hash is stored, and only
  the secret's holder (or an operator) can read, retry or cancel the job.
- no header: refused (401), unless anonymous submissions are allowed (the caller may submit, and gets a
  capability), or the API does not require tokens (local development: the shared caller `anonymous`).

An operator (a subject or verified email listed in `ONCETASK_OPERATORS`, or a Firebase user with the custom claim
`oncetask_operator: true`) sees and acts on every job.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from enum import Enum

from .auth import ApiTokens, Identity, Unauthenticated
from .settings import Settings

ANONYMOUS = "anonymous"  # the development caller's owner: a caller without a token where none is required
CAPABILITY_OWNER_PREFIX = "capability:"
CAPABILITY = re.compile(r"^[A-Za-z0-9_-]{32,128}$")  # URL-safe; 32 characters are 192 bits when random
OPERATOR_CLAIM = "oncetask_operator"  # a Firebase custom claim (firestore.rules reads the same one)


class CallerKind(str, Enum):
    PERSON = "person"  # a Firebase ID token
    SERVICE = "service"  # a Google ID token
    CAPABILITY = "capability"  # the holder of a job's capability
    ANONYMOUS = "anonymous"  # nobody: may only submit (where anonymous submissions are allowed)
    DEVELOPMENT = "development"  # no token where none is required (local development)


@dataclass(frozen=True)
class Caller:
    kind: CallerKind
    owner: str | None  # whose jobs it creates and sees; None for an anonymous caller, who has none yet
    operator: bool = False
    email: str | None = None
    capability: str | None = None  # the secret itself, for a capability holder (a submission echoes it)

    @property
    def may_list(self) -> bool:
        """A listing shows an identity's jobs: a capability opens one job, not a list."""
        return self.kind in (CallerKind.PERSON, CallerKind.SERVICE, CallerKind.DEVELOPMENT)


def new_capability() -> str:
    return secrets.token_urlsafe(32)


def capability_owner(secret: str) -> str:
    """The owner of the jobs a capability opens: a hash of it, so the stored job never holds the secret."""
    return CAPABILITY_OWNER_PREFIX + hashlib.sha256(secret.encode()).hexdigest()


def is_operator(identity: Identity, operators: frozenset[str]) -> bool:
    """Listed by subject or by verified email (case-insensitively), or a Firebase user with the operator claim."""
    if identity.provider == "firebase" and identity.claims.get(OPERATOR_CLAIM) is True:
        return True
    listed = {entry.lower() for entry in operators}
    email = identity.verified_email
    return identity.subject.lower() in listed or (email is not None and email.lower() in listed)


def caller_from(authorization: str | None, settings: Settings, tokens: ApiTokens) -> Caller:
    """The caller an `Authorization` header names, or Unauthenticated. A header that is sent is always checked: a
    bad token is refused, never taken for an anonymous call."""
    scheme, _, credential = (authorization or "").strip().partition(" ")
    credential = credential.strip()
    if not scheme:
        if not settings.api_require_auth:
            return Caller(CallerKind.DEVELOPMENT, ANONYMOUS)
        if settings.allow_anonymous_submissions:
            return Caller(CallerKind.ANONYMOUS, None)
        raise Unauthenticated("missing bearer token: send `Authorization: Bearer <ID token>`")
    if scheme.lower() == "bearer" and credential:
        identity = tokens.verify(credential)
        kind = CallerKind.PERSON if identity.provider == "firebase" else CallerKind.SERVICE
        return Caller(kind, identity.subject, is_operator(identity, settings.operators), identity.email)
    if scheme.lower() == "capability" and credential:
        if not settings.allow_anonymous_submissions:
            raise Unauthenticated("capabilities are accepted only where anonymous submissions are allowed")
        if not CAPABILITY.match(credential):
            raise Unauthenticated("a capability is 32-128 characters of A-Z, a-z, 0-9, '-' and '_'")
        return Caller(CallerKind.CAPABILITY, capability_owner(credential), capability=credential)
    raise Unauthenticated("unsupported authorization: send `Authorization: Bearer <ID token>`")


def api_tokens(settings: Settings) -> ApiTokens:
    return ApiTokens(google_audience=settings.api_audience, google_certs_url=settings.oidc_certs_url,
                     firebase_project=settings.firebase_project_id, firebase_certs_url=settings.firebase_certs_url,
                     cache_seconds=settings.certs_cache_seconds,
                     accept_anonymous_firebase=settings.allow_anonymous_submissions)
