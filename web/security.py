"""Security headers on every response, and CSRF protection for the form.

CSRF, kept simple:

* The form page stores a random token in the (signed, ``SameSite=Lax``, ``HttpOnly``) session
  and prints it in a ``<meta>`` tag; the page's script sends it back in ``X-CSRF-Token`` (a plain
  form field ``csrf_token`` is accepted too).
* Every unsafe API request (POST, PUT, PATCH, DELETE) that carries the session cookie must carry
  the matching token: a cookie alone never authorises anything.
* Every unsafe request whose ``Origin`` header names another site is refused, cookie or not.
  Browsers always send ``Origin`` on cross-origin POSTs, so another site cannot drive the API
  through a visitor's browser.
* ``Origin: null`` is what a browser sends for the page's own form post under this site's
  ``Referrer-Policy: no-referrer`` (and also from sandboxed or file pages): it names no site, so
  such a request must carry the session's token, cookie or not.
* Programmatic clients (curl, scripts) send neither a session cookie nor an ``Origin`` header and
  need no token: the API has no ambient credentials for them to abuse.

Refusals are ``403 {"error": "csrf_failed"}``.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

from flask import Flask, Response, request, session

from web.errors import ApiError

CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
_SESSION_KEY = "csrf"
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def csrf_token() -> str:
    """This session's token, created on first use."""
    token = session.get(_SESSION_KEY)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        session[_SESSION_KEY] = token
    return token


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def check_csrf(app: Flask) -> None:
    """Raise 403 when an unsafe request fails the rules in this module's docstring."""
    if request.method not in _UNSAFE:
        return
    origin = request.headers.get("Origin")
    opaque = origin is not None and origin.strip().lower() == "null"
    if origin is not None and not opaque:
        from web.context import settings

        allowed = {_origin(request.host_url), _origin(settings().public_url)}
        if origin.lower() not in allowed:
            raise ApiError(403, "csrf_failed", "Requests from other sites are not accepted.")
    if not opaque and app.config["SESSION_COOKIE_NAME"] not in request.cookies:
        return
    expected = session.get(_SESSION_KEY)
    given = request.headers.get(CSRF_HEADER) or request.form.get(CSRF_FIELD) or ""
    if not (
        isinstance(expected, str)
        and expected
        and hmac.compare_digest(expected.encode(), given.encode("utf-8", "surrogatepass"))
    ):
        raise ApiError(
            403,
            "csrf_failed",
            "The form has expired or its security token is missing: reload the page and retry.",
        )


def content_security_policy(s3_public_origin: str | None) -> str:
    img = "'self' data: blob:" + (f" {s3_public_origin}" if s3_public_origin else "")
    return "; ".join(
        (
            "default-src 'self'",
            f"img-src {img}",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


def init_app(app: Flask) -> None:
    from web.context import state

    settings = state(app).settings
    s3_origin = None
    if settings.storage == "s3":
        endpoint = settings.s3_public_endpoint_url or settings.s3_endpoint_url
        s3_origin = _origin(endpoint) if endpoint else "https://*.amazonaws.com"
    csp = content_security_policy(s3_origin)
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.public_url.lower().startswith("https://"),
    )

    @app.after_request
    def _security_headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("Content-Security-Policy", csp)
        headers["X-Content-Type-Options"] = "nosniff"
        headers["X-Frame-Options"] = "DENY"
        headers["Referrer-Policy"] = "no-referrer"
        return response
