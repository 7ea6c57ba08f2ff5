"""The push endpoint without Flask's per-request machinery: the mock's hot path.

A PBX waits for the newCall answer while the phone rings, and a load test
sends nothing else, so ``POST /api/v1/cti/<token>`` skips Flask's request
context, URL map and ``jsonify`` (about a third of the time a push took) and
goes straight to :func:`.cti.answer_push` on a Werkzeug request. Every other
request, and anything the fast path does not recognise, goes to Flask.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.wrappers import Request

from ..state import MockState
from ..zammad.errors import error_id_message
from .cti import PushReply, drop_connection, header_safe, push_reply

_PUSH_PATH = re.compile(r"^/api/v1/cti/([^/]+)/?$")
_STATUS_LINES = {code: f"{code} {HTTP_STATUS_CODES[code]}" for code in (200, 400, 401, 413, 422, 500)}

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class PushFastPath:
    """WSGI middleware: answers CTI pushes itself, passes everything else to ``app``."""

    def __init__(self, app: WSGIApp, state: MockState, max_content_length: int | None, logger: Any) -> None:
        self.app = app
        self.state = state
        self.max_content_length = max_content_length
        self.logger = logger

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST":
            return self.app(environ, start_response)
        match = _PUSH_PATH.match(environ.get("PATH_INFO", ""))
        if match is None:
            return self.app(environ, start_response)
        request = Request(environ)
        request.max_content_length = self.max_content_length
        try:
            reply = push_reply(self.state, request, match.group(1))
        except Exception:  # a bug in the mock: Zammad's generic answer, never a traceback
            self.logger.exception("internal error on a CTI push")
            reply = PushReply(500, {"error": error_id_message()})
        if reply.drop:
            return drop_connection(environ)(environ, start_response)
        body, content_type = reply.encoded()
        headers = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
        if reply.hint:  # the mock's own words (the body is Zammad's); header values are Latin-1
            headers.append(("X-Zammad-Cti-Mock-Hint", header_safe(reply.hint)))
        start_response(_STATUS_LINES.get(reply.status) or f"{reply.status} {HTTP_STATUS_CODES.get(reply.status, 'Unknown')}",
                       headers)
        return [body]
