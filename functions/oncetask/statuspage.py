"""The status page: static files served by the API with a strict Content-Security-Policy, and the page's
configuration (how it signs in).

The page is plain files under `static/` (HTML, CSS and ES modules, no inline script or style), so the policy can
allow scripts from this origin only, plus the sign-in library's origins when the page signs in with Firebase
Authentication. Every job it shows comes from the API, with the caller's ID token: the page sees what its user may.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any

import flask

from .settings import Settings

# The Firebase JS SDK the page imports (ES modules from Google's CDN). To bump it: change the version here, check
# the page signs in, and keep the CSP origins below in step with what that version loads.
FIREBASE_SDK = "https://www.gstatic.com/firebasejs/12.7.0"
# What Firebase Authentication's web SDK reaches for a Google sign-in: its REST endpoints, and for the popup, the
# Google API loader (apis.google.com) and the project's auth domain in a hidden iframe.
FIREBASE_SCRIPT_ORIGINS = ("https://www.gstatic.com", "https://apis.google.com")
FIREBASE_CONNECT_ORIGINS = ("https://identitytoolkit.googleapis.com", "https://securetoken.googleapis.com",
                            "https://www.googleapis.com")

CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8"}
PAGE = "status.html"


@lru_cache(maxsize=1)
def static_files() -> dict[str, bytes]:
    """Every file of the page, by name, read once: a name not in here is a 404, so no path reaches the disk."""
    folder = resources.files("oncetask").joinpath("static")
    return {entry.name: entry.read_bytes() for entry in folder.iterdir()
            if entry.is_file() and any(entry.name.endswith(ext) for ext in CONTENT_TYPES)}


def sign_in(settings: Settings) -> dict[str, Any]:
    """How the page signs its user in: a local token issuer's page (development, tests), Firebase Authentication
    (production), or not at all (no Firebase project configured)."""
    if settings.status_sign_in_url:
        return {"provider": "issuer", "url": settings.status_sign_in_url}
    if settings.firebase_project_id and settings.firebase_api_key:
        return {"provider": "firebase", "sdk": FIREBASE_SDK, "firebase": {
            "apiKey": settings.firebase_api_key, "authDomain": settings.effective_firebase_auth_domain,
            "projectId": settings.firebase_project_id}}
    return {"provider": "none"}


def page_config(settings: Settings) -> dict[str, Any]:
    """What the page's script needs before its first call (public: it holds no secret; a Firebase web API key
    identifies the project, it does not authorise anything)."""
    return {"require_auth": settings.api_require_auth, "anonymous_submissions": settings.allow_anonymous_submissions,
            "sign_in": sign_in(settings)}


def content_security_policy(settings: Settings) -> str:
    scripts, connect, frames = ["'self'"], ["'self'"], ["'none'"]
    if sign_in(settings)["provider"] == "firebase":
        scripts += FIREBASE_SCRIPT_ORIGINS
        connect += FIREBASE_CONNECT_ORIGINS
        frames = [f"https://{settings.effective_firebase_auth_domain}"]
    return "; ".join((
        "default-src 'none'", f"script-src {' '.join(scripts)}", "style-src 'self'", "img-src 'self' data:",
        f"connect-src {' '.join(connect)}", f"frame-src {' '.join(frames)}", "base-uri 'none'", "form-action 'none'",
        "frame-ancestors 'none'"))


def security_headers(settings: Settings) -> dict[str, str]:
    """The headers of every file of the page."""
    return {"Content-Security-Policy": content_security_policy(settings), "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"}


def static_response(settings: Settings, name: str) -> flask.Response | None:
    """The file `name` of the page with its headers, or None if there is no such file."""
    body = static_files().get(name)
    if body is None:
        return None
    content_type = next(t for ext, t in CONTENT_TYPES.items() if name.endswith(ext))
    return flask.Response(body, status=200, content_type=content_type, headers=security_headers(settings))
