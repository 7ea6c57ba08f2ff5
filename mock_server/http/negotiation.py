"""Which format an error from Zammad's error handler takes: JSON or Zammad's HTML error page.

Zammad's handler answers with ``respond_to { format.json ...; format.any
<public/STATUS.html> }`` (``app/controllers/application_controller/handles_errors.rb``),
so Rails' format negotiation decides: a ``format`` parameter (or a ``.json``
path) first; else the ``Accept`` header, unless it is missing or looks like a
browser's (``*/*`` beside other types), in which case Rails assumes HTML.
From an Accept list Rails takes JSON when the list names JSON or a lone
``*/*``, whatever their order; anything else gets the HTML page.
"""

from __future__ import annotations

import re
from typing import Any

_BROWSER_LIKE = re.compile(r",\s*\*/\*|\*/\*\s*,")  # ActionDispatch's BROWSER_LIKE_ACCEPTS
_JSON_TYPES = {"application/json", "text/x-json", "application/jsonrequest", "*/*"}


def wants_json(accept: str | None, format_param: Any = None) -> bool:
    """Whether Rails would render the ``format.json`` branch for this request."""
    if format_param is not None:
        return format_param == "json"
    if not accept or not accept.strip() or _BROWSER_LIKE.search(accept):
        return False
    for item in accept.split(","):
        media, _, params = item.strip().partition(";")
        if "q=0" in params.replace(" ", "") and not re.search(r"q=0\.\d*[1-9]", params):
            continue  # q=0: not acceptable
        if media.strip().lower() in _JSON_TYPES:
            return True
    return False


def first_type_is_json(accept: str | None) -> bool:
    """Rails' public exceptions (a 400 Rack raised before Zammad's code): JSON when the first type asked for is.

    ``ActionDispatch::PublicExceptions`` renders ``{"status":400,"error":"Bad Request"}`` with
    ``to_json`` for ``request.formats.first``; ``*/*`` or no Accept get ``public/400.html``.
    """
    if not accept or _BROWSER_LIKE.search(accept):
        return False
    first = accept.split(",")[0].partition(";")[0].strip().lower()
    return first in _JSON_TYPES - {"*/*"}


RAILS_BAD_REQUEST = {"status": 400, "error": "Bad Request"}

ERROR_PAGE = """<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>{status} {phrase}</title></head>
<body>
<h1>{status} {phrase}</h1>
<p>{message}</p>
<p>(The zammad-cti mock's stand-in for Zammad's public/{status}.html, which Zammad sends, with this status,
to a client whose Accept header does not ask for JSON. Send <code>Accept: application/json</code>.)</p>
</body>
</html>
"""
