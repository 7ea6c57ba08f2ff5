"""The push endpoint on WSGI: the Flask app's middleware, and so ``MockServer``'s and the tests'.

``POST /api/v1/cti/<token>`` never reaches Flask: Flask's request context,
URL map and ``jsonify`` would be most of a push's cost. This middleware
reads the body, hands a :class:`.push.PushRequest` to :func:`.push.answer_push`
and sends the reply; a latency or hang fault holds the server's thread with
it (``serve`` answers pushes on its event loop instead, see :mod:`.asgi`).
Every other request goes to Flask.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from werkzeug.exceptions import BadRequest, RequestEntityTooLarge
from werkzeug.wrappers import Response
from werkzeug.wsgi import get_input_stream

from ..state import MockState
from .push import PushRequest, push_token, reply_to, status_line

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class PushMiddleware:
    """Answers CTI pushes itself, passes everything else to ``app``."""

    def __init__(self, app: WSGIApp, state: MockState, max_content_length: int | None, logger: Any) -> None:
        self.app = app
        self.state = state
        self.max_content_length = max_content_length
        self.logger = logger

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        token = push_token(environ.get("PATH_INFO", "")) if environ.get("REQUEST_METHOD") == "POST" else None
        if token is None:
            return self.app(environ, start_response)
        reply = reply_to(self.state, push_request(environ, token, self.max_content_length), self.max_content_length,
                         self.logger)
        if reply.delay:
            time.sleep(reply.delay)
        if reply.drop:
            return drop_connection(environ)(environ, start_response)
        data, content_type = reply.encoded()
        start_response(status_line(reply.status), reply.headers(data, content_type))
        return [data]


def push_request(environ: dict[str, Any], token: str, limit: int | None) -> PushRequest:
    """The push as the rules read it; the body read whole, or why not."""
    body, problem, too_large = b"", None, False
    announced = environ.get("CONTENT_LENGTH") or ""
    if announced.isdigit():
        # What a PBX sends: the announced bytes, straight from the server's input stream.
        length = int(announced)
        if limit is not None and length > limit:
            too_large = True
        elif length:
            body = environ["wsgi.input"].read(length)
            if len(body) < length:
                problem = f"the body ended after {len(body)} of the {length} bytes announced"
    else:  # chunked, or no length at all: Werkzeug knows when such a stream ends
        try:
            body = get_input_stream(environ, max_content_length=limit).read()
        except RequestEntityTooLarge:
            too_large = True
        except BadRequest:  # the client stopped sending
            problem = "the body ended before it was complete"
    return PushRequest(path=environ.get("PATH_INFO", ""), token=token,
                       query_string=environ.get("QUERY_STRING", "").encode("latin-1"),
                       content_type=environ.get("CONTENT_TYPE") or None, accept=environ.get("HTTP_ACCEPT"),
                       body=body, body_problem=problem, too_large=too_large)


def drop_connection(environ: dict[str, Any]) -> Response:
    """Close the client's connection without an answer, as an unreachable Zammad would.

    Werkzeug's server (MockServer) hands over the socket, which is shut down.
    A server that does not answers with a head and cuts the connection
    before the body, so the client still gets no answer.
    """
    sock = environ.get("werkzeug.socket")
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        # The server's attempt to write this goes nowhere; the client has seen the connection close.
        return Response(b"", status=500)
    return Response(_cut_off(), status=500, headers={"Content-Length": "1"}, mimetype="application/json")


def _cut_off() -> Iterator[bytes]:
    raise ConnectionAbortedError("fault: connection dropped without an answer")
    yield b""  # a generator: the server raises it while sending the body
