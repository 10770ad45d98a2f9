"""Who is calling: a server client (rules do not apply), a signed-in end user, or nobody.

As the official emulator: `authorization: Bearer owner` (what the server client libraries send to an
emulator) bypasses rules, like production's Admin and server SDKs, which IAM governs instead. A Firebase ID
token is decoded *without* verifying its signature (unsigned `alg: none` tokens from the Auth emulator or
tests, and signed ones alike); its `sub` (or `user_id`) is `request.auth.uid` and all its claims are
`request.auth.token`. A request without the header is an unauthenticated client: rules apply with
`request.auth == null`.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass

from ..errors import Unauthenticated

# The gRPC metadata of the request being served, set around each handler by the service's guard.
CALL_METADATA: ContextVar[Sequence[tuple[str, str]] | None] = ContextVar("firestore_call_metadata", default=None)

_INVALID = ("Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or "
            "other valid authentication credential.")


@dataclass(frozen=True)
class Caller:
    admin: bool
    auth: dict | None  # request.auth: {"uid": ..., "token": {claims}}, or None when unauthenticated

    def describe(self) -> str:
        if self.admin:
            return "owner"
        return f"uid {self.auth['uid']!r}" if self.auth else "an unauthenticated client"


OWNER = Caller(admin=True, auth=None)
ANONYMOUS = Caller(admin=False, auth=None)


def current_caller() -> Caller:
    return caller_from_metadata(CALL_METADATA.get())


def caller_from_metadata(metadata: Sequence[tuple[str, str]] | None) -> Caller:
    value = next((v for k, v in metadata or () if k.lower() == "authorization"), None)
    if value is None:
        return ANONYMOUS
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    return caller_from_header(value)


@functools.lru_cache(maxsize=1024)  # a client sends the same token on every call; decode it once
def caller_from_header(value: str) -> Caller:
    """The caller an `authorization` header names. The claims are shared between requests: rules never
    mutate values."""
    scheme, _, token = value.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated(f"{_INVALID} (the emulator expects `Bearer owner` or `Bearer <Firebase ID token>`)")
    if token == "owner":
        return OWNER
    claims = decode_id_token(token)
    uid = claims.get("sub") or claims.get("user_id")
    if not isinstance(uid, str) or not uid:
        raise Unauthenticated(f"{_INVALID} (the ID token has no `sub` or `user_id` claim)")
    return Caller(admin=False, auth={"uid": uid, "token": claims})


def decode_id_token(token: str) -> dict:
    """The claims of a JWT, signature not checked. UNAUTHENTICATED for anything that is not a JWT."""
    parts = token.split(".")
    if len(parts) != 3:
        raise Unauthenticated(f"{_INVALID} (the bearer token is neither `owner` nor a JWT)")
    try:
        header = json.loads(_b64url(parts[0]))
        claims = json.loads(_b64url(parts[1]))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise Unauthenticated(f"{_INVALID} (the bearer token is not a decodable JWT)") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise Unauthenticated(f"{_INVALID} (the bearer token's header and payload must be JSON objects)")
    return claims


def _b64url(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
