"""The live inspector: one HTML page at ``/__admin/`` over the admin API.

| route                              | what it serves                       |
|------------------------------------|--------------------------------------|
| GET /__admin/                      | the page (``/__admin`` redirects here) |
| GET /__admin/inspector/<asset>     | its stylesheet and script            |

The page is static: no templating, no build step, no third-party asset. Its
script polls ``/__admin/requests?after=``, ``/api/v1/cti/log``,
``/__admin/findings`` and ``/__admin/health`` and draws what they return.
It never asks for the configuration, so the token cannot reach it; what the
PBX sent is inserted as text, never as markup, and a strict
Content-Security-Policy refuses anything that is not served from here.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, abort

STATIC = Path(__file__).resolve().parent / "static"

# name -> content type; nothing outside this table is served.
ASSETS: dict[str, str] = {
    "inspector.css": "text/css; charset=utf-8",
    "inspector.js": "text/javascript; charset=utf-8",
}

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
])

bp = Blueprint("inspector", __name__, url_prefix="/__admin")


@bp.get("/")
def page() -> Response:
    return _static_response("inspector.html", "text/html; charset=utf-8")


@bp.get("/inspector/<name>")
def asset(name: str) -> Response:
    if name not in ASSETS:
        abort(404)
    return _static_response(name, ASSETS[name])


def _static_response(name: str, content_type: str) -> Response:
    response = Response((STATIC / name).read_bytes(), content_type=content_type)
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    # The mock may be upgraded under a running browser: always revalidate.
    response.headers["Cache-Control"] = "no-cache"
    return response
