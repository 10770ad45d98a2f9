"""OIDC ID-token verification for the task handler, the cleanup target and (optionally) the API.

Tokens are verified with `google.oauth2.id_token.verify_token` against the settings' certs URL (Google's in
production, the local Cloud Tasks emulator's JWKS in development). Certificates are cached for a few minutes;
a token signed by a key we have not seen (Google rotated its keys) refreshes them, at most once per 30 s, so
a flood of bad tokens cannot turn into a flood of certificate fetches.
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
        token = authorization[len("Bearer "):].strip()
        try:
            claims = self._verify(token, audience)
        except VERIFY_ERRORS as exc:
            raise Unauthenticated(f"invalid token: {exc}") from exc
        # PyJWT (used for a JWKS certs URL) checks exp and iat only when present: a token without them would
        # never expire. Google always sets both, so demand them.
        missing = [claim for claim in ("exp", "iat") if claim not in claims]
        if missing:
            raise Unauthenticated(f"invalid token: no {' or '.join(missing)} claim")
        if self.require_google_issuer and claims.get("iss") not in GOOGLE_ISSUERS:
            raise Unauthenticated("token not issued by Google")
        email = claims.get("email")
        if allowed_emails is not None:
            if not email or not claims.get("email_verified", False) or email not in allowed_emails:
                raise Forbidden(f"identity {email or claims.get('sub')!r} may not call this endpoint")
        return Identity(subject=str(claims.get("sub") or email or ""), email=email, claims=claims)

    def _verify(self, token: str, audience: str) -> Mapping[str, Any]:
        try:
            return id_token.verify_token(token, self.request, audience=audience, certs_url=self.certs_url,
                                         clock_skew_in_seconds=10)
        except VERIFY_ERRORS:
            # The keys may have rotated since we cached them: fetch once more (rate-limited), then decide.
            if self.request.invalidate():
                return id_token.verify_token(token, self.request, audience=audience,
                                             certs_url=self.certs_url, clock_skew_in_seconds=10)
            raise
