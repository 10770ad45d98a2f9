"""ID-token verification for the task handler, the cleanup target and the API.

Tokens are verified with `google.oauth2.id_token.verify_token` against a certs URL (Google's in production, the
local Cloud Tasks emulator's JWKS or a test issuer's in development): signature, audience, `exp` and `iat`, all
always; nothing turns a check off. Certificates are cached for a few minutes; a token signed by a key we have not
seen (Google rotated its keys) refreshes them, at most once per 30 s, so a flood of bad tokens cannot turn into a
flood of certificate fetches.

The API takes two kinds of token (`ApiTokens`): Google ID tokens (services: `iss` accounts.google.com, `aud` the
API's audience, Google's keys) and Firebase Authentication / Identity Platform ID tokens (people: `iss`
https://securetoken.google.com/<project>, `aud` the project, the securetoken keys). The issuer the token names
picks the keys and audience it is verified with, and is checked again on the verified claims.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import google.auth.transport.requests
import jwt
from google.auth import exceptions as auth_exceptions
from google.auth import transport
from google.oauth2 import id_token

GOOGLE_ISSUERS = frozenset({"accounts.google.com", "https://accounts.google.com"})
CLOCK_SKEW_SECONDS = 10
MAX_SUBJECT_LENGTH = 128  # Firebase's limit for a uid; Google subjects are 21 digits
# What verification raises for a bad token: google-auth for x509 certs, PyJWT for a JWKS (v3) certs URL.
VERIFY_ERRORS = (ValueError, KeyError, jwt.PyJWTError, auth_exceptions.GoogleAuthError)


class Unauthenticated(Exception):
    """No token, or one that does not verify: 401."""


class Forbidden(Exception):
    """A valid token for the wrong identity: 403."""


@dataclass(frozen=True)
class Identity:
    subject: str
    email: str | None
    claims: Mapping[str, Any]
    provider: str = "google"  # "google" (a Google ID token) or "firebase" (a Firebase Authentication ID token)

    @property
    def verified_email(self) -> str | None:
        """The token's email, only when the token says the address was verified."""
        return self.email if self.email and self.claims.get("email_verified") is True else None


class _CachedResponse:
    def __init__(self, response: transport.Response) -> None:
        self.status = response.status
        self.headers = response.headers
        self.data = response.data


class CachingRequest(transport.Request):
    """A transport.Request that reuses GET responses (the certificates) for `ttl` seconds."""

    def __init__(self, ttl: float, inner: transport.Request | None = None) -> None:
        self._inner = inner or google.auth.transport.requests.Request()
        self._ttl = ttl
        self._cache: dict[str, tuple[float, _CachedResponse]] = {}
        self._lock = threading.Lock()
        self._last_forced = 0.0

    def __call__(self, url: str, method: str = "GET", body: Any = None, headers: Any = None,
                 timeout: Any = None, **kwargs: Any) -> transport.Response:
        if method != "GET":
            return self._inner(url, method=method, body=body, headers=headers, timeout=timeout, **kwargs)
        with self._lock:
            cached = self._cache.get(url)
            if cached and cached[0] > time.monotonic():
                return cached[1]  # type: ignore[return-value]
        response = _CachedResponse(self._inner(url, method="GET", headers=headers, timeout=timeout or 10))
        if response.status == 200:
            with self._lock:
                self._cache[url] = (time.monotonic() + self._ttl, response)
        return response  # type: ignore[return-value]

    def invalidate(self) -> bool:
        """Drop cached certificates unless that was done in the last 30 s; whether it was done."""
        with self._lock:
            if time.monotonic() - self._last_forced < 30:
                return False
            self._last_forced = time.monotonic()
            self._cache.clear()
            return True


class TokenVerifier:
    def __init__(self, certs_url: str, cache_seconds: float = 300.0, require_google_issuer: bool = False) -> None:
        self.certs_url = certs_url
        self.request = CachingRequest(cache_seconds)
        self.require_google_issuer = require_google_issuer

    def verify(self, authorization: str | None, audience: str, allowed_emails: frozenset[str] | None) -> Identity:
        """The caller's identity from an `Authorization: Bearer <ID token>` header, or Unauthenticated/Forbidden."""
        if not authorization or not authorization.startswith("Bearer "):
            raise Unauthenticated("missing bearer token")
        claims = self.claims(authorization[len("Bearer "):].strip(), audience)
        if self.require_google_issuer and claims.get("iss") not in GOOGLE_ISSUERS:
            raise Unauthenticated("token not issued by Google")
        email = claims.get("email")
        if allowed_emails is not None:
            if not email or not claims.get("email_verified", False) or email not in allowed_emails:
                raise Forbidden(f"identity {email or claims.get('sub')!r} may not call this endpoint")
        return Identity(subject=str(claims.get("sub") or email or ""), email=email, claims=claims)

    def claims(self, token: str, audience: str) -> Mapping[str, Any]:
        """The claims of `token` once its signature (by one of our keys), audience, `exp` and `iat` are verified;
        Unauthenticated otherwise."""
        if not audience:
            raise Unauthenticated("invalid token: no audience is configured to check it against")
        try:
            claims = self._verify(token, audience)
        except VERIFY_ERRORS as exc:
            raise Unauthenticated(f"invalid token: {exc}") from exc
        # PyJWT (used for a JWKS certs URL) checks exp and iat only when present: a token without them would
        # never expire. Google always sets both, so demand them.
        missing = [claim for claim in ("exp", "iat") if claim not in claims]
        if missing:
            raise Unauthenticated(f"invalid token: no {' or '.join(missing)} claim")
        return claims

    def _verify(self, token: str, audience: str) -> Mapping[str, Any]:
        try:
            return id_token.verify_token(token, self.request, audience=audience, certs_url=self.certs_url,
                                         clock_skew_in_seconds=CLOCK_SKEW_SECONDS)
        except VERIFY_ERRORS:
            # The keys may have rotated since we cached them: fetch once more (rate-limited), then decide.
            if self.request.invalidate():
                return id_token.verify_token(token, self.request, audience=audience,
                                             certs_url=self.certs_url, clock_skew_in_seconds=CLOCK_SKEW_SECONDS)
            raise


class ApiTokens:
    """The API's token check: a Google ID token for `google_audience` (verified with the keys at `google_certs_url`)
    or a Firebase ID token of `firebase_project` (the keys at `firebase_certs_url`); an empty audience or project
    accepts no token of that kind. The issuer the (unverified) token names only picks the keys: it is checked
    again, exactly, on the verified claims."""

    def __init__(self, *, google_audience: str, google_certs_url: str, firebase_project: str,
                 firebase_certs_url: str, cache_seconds: float = 300.0,
                 accept_anonymous_firebase: bool = False) -> None:
        self.google_audience = google_audience
        self.firebase_project = firebase_project
        self.firebase_issuer = f"https://securetoken.google.com/{firebase_project}" if firebase_project else ""
        self.accept_anonymous_firebase = accept_anonymous_firebase
        self._google = TokenVerifier(google_certs_url, cache_seconds, require_google_issuer=True)
        self._firebase = TokenVerifier(firebase_certs_url, cache_seconds)

    def verify(self, token: str) -> Identity:
        issuer = _unverified_issuer(token)
        if issuer in GOOGLE_ISSUERS:
            if not self.google_audience:
                raise Unauthenticated("this API accepts no Google ID tokens (no API audience is configured)")
            claims = self._google.claims(token, self.google_audience)
            if claims.get("iss") not in GOOGLE_ISSUERS:
                raise Unauthenticated("invalid token: not issued by Google")
            return Identity(_subject(claims), _email(claims), claims, provider="google")
        if self.firebase_issuer and issuer == self.firebase_issuer:
            claims = self._firebase.claims(token, self.firebase_project)
            if claims.get("iss") != self.firebase_issuer:
                raise Unauthenticated("invalid token: not issued by this Firebase project")
            _check_firebase(claims, self.accept_anonymous_firebase)
            return Identity(_subject(claims), _email(claims), claims, provider="firebase")
        raise Unauthenticated(f"invalid token: tokens of issuer {issuer!r} are not accepted")


def _unverified_issuer(token: str) -> str:
    """The `iss` a token claims, read before any check only to choose the keys that verify it."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise Unauthenticated(f"invalid token: {exc}") from exc
    issuer = claims.get("iss")
    if not isinstance(issuer, str) or not issuer:
        raise Unauthenticated("invalid token: no issuer")
    return issuer


def _subject(claims: Mapping[str, Any]) -> str:
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject or len(subject) > MAX_SUBJECT_LENGTH:
        raise Unauthenticated(f"invalid token: the subject must be a string of 1-{MAX_SUBJECT_LENGTH} characters")
    return subject


def _email(claims: Mapping[str, Any]) -> str | None:
    email = claims.get("email")
    return email if isinstance(email, str) and email else None


def _check_firebase(claims: Mapping[str, Any], accept_anonymous: bool) -> None:
    """What Firebase documents for its ID tokens beyond signature, audience, issuer, exp and iat: `auth_time` (when
    the user signed in) in the past; and an anonymous Firebase account is nobody in particular, so it is an identity
    here only where anonymous callers are allowed anyway."""
    auth_time = claims.get("auth_time")
    if (not isinstance(auth_time, (int, float)) or isinstance(auth_time, bool)
            or auth_time > time.time() + CLOCK_SKEW_SECONDS):
        raise Unauthenticated("invalid token: auth_time must be a time in the past")
    firebase = claims.get("firebase")
    provider = firebase.get("sign_in_provider") if isinstance(firebase, Mapping) else None
    if provider == "anonymous" and not accept_anonymous:
        raise Unauthenticated("anonymous Firebase accounts are not accepted by this API")
