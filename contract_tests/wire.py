"""What the target received: the parameters Zammad builds from a request as it went over the wire.

Shared by the schemathesis checks (which judge an answer by the parameters
Zammad saw) and the transport (which notes the newCalls a target accepted).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import requests

from mock_server.zammad.params import MalformedBody, rails_params


def sent_params(request: requests.PreparedRequest) -> dict[str, Any] | None:
    """The parameters Zammad builds from the request sent (Rails' params, by the rules module).

    Read from the wire rather than from ``case.body``: a form value that was
    an integer or a one-element list in the case is a plain string on the
    wire, and that is what Zammad's rules see. None when the body is one a
    Rails app cannot parse (the contract only fixes the shape of that answer).
    """
    raw = request.body or b""
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    query = urlsplit(request.url or "").query.encode("latin-1", "replace")
    try:
        return rails_params(query, request.headers.get("Content-Type"), raw).values
    except MalformedBody:  # broken JSON, bad UTF-8 or %-escapes, nested deeper than Rack reads
        return None
