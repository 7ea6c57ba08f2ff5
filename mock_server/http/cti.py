"""Zammad's routes: ``POST /api/v1/cti/{token}`` and ``GET /api/v1/cti/log``.

:func:`answer_push` is the push endpoint on a plain Werkzeug request; the
Flask route below and the fast path in :mod:`.fast_path` both call it.
"""

from __future__ import annotations

import html
import json
import socket
import time
from dataclasses import dataclass
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, current_app, jsonify, request
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.wrappers import Request, Response

from ..admin.faults import MAX_HANG_SECONDS, latency_seconds
from ..admin.journal import push_record
from ..state import MockState, mock_state
from ..zammad.log_reading import caller_log_answer, reader_of
from ..zammad.endpoint import Answer, push
from ..zammad.errors import CtiError, error_id_message
from .negotiation import ERROR_PAGE, RAILS_BAD_REQUEST, first_type_is_json, wants_json
from .request_params import MalformedBody, UnreadableJson, encoding_of, parse_request

bp = Blueprint("cti", __name__)


# In the app, PushFastPath (fast_path.py) answers these requests before Flask sees them; the
# rule stays so that Flask answers other methods with 405 and an Allow header, and so that the
# blueprint works on its own. strict_slashes=False: Rails ignores a trailing slash.
@bp.post("/api/v1/cti/<token>", strict_slashes=False)
def cti_push(token: str) -> Response:
    return answer_push(mock_state(current_app), request, token)


def http_error_message(exc: HTTPException, max_content_length: int | None) -> str:
    """The text of a Werkzeug HTTP error, as the mock words it."""
    if exc.code == 413:
        return f"Request body too large: the mock accepts at most {max_content_length} bytes"
    return exc.description or exc.name


def json_bytes(body: Any) -> bytes:
    """JSON as Flask's jsonify writes it: compact, one trailing newline."""
    return (json.dumps(body, separators=(",", ":"), default=str) + "\n").encode("utf-8")


def json_response(body: Any, status: int) -> Response:
    return Response(json_bytes(body), status=status, mimetype="application/json")


@dataclass
class PushReply:
    """What the push endpoint sends: a JSON answer, or nothing (``drop``: close the connection)."""

    status: int
    body: Any
    drop: bool = False
    html: bool = False  # Zammad's HTML error page instead of the JSON body
    hint: str | None = None  # the mock's own words on why (an X-Zammad-Cti-Mock-Hint header)

    def encoded(self) -> tuple[bytes, str]:
        """The bytes to send and their content type."""
        if self.html:
            return html_error_page(self.status, self.body), "text/html; charset=utf-8"
        return json_bytes(self.body), "application/json"


def html_error_page(status: int, body: Any) -> bytes:
    message = body.get("error_human") or body.get("error") if isinstance(body, dict) else ""
    return ERROR_PAGE.format(status=status, phrase=HTTP_STATUS_CODES.get(status, ""),
                             message=html.escape(str(message or ""))).encode("utf-8")


def answer_push(state: MockState, request: Request, token: str) -> Response:
    """The push endpoint as a Werkzeug response."""
    reply = push_reply(state, request, token)
    if reply.drop:
        return drop_connection(request.environ)
    data, content_type = reply.encoded()
    response = Response(data, status=reply.status, content_type=content_type)
    if reply.hint:
        response.headers["X-Zammad-Cti-Mock-Hint"] = header_safe(reply.hint)
    return response


def header_safe(text: str) -> str:
    """A header value: one Latin-1 line (the hint may quote what the PBX sent)."""
    return " ".join(text.split()).encode("latin-1", "replace").decode("latin-1")[:500]


def split_format(token: str) -> tuple[str, str | None]:
    """Rails' ``/api/v1/cti/:token(.:format)``: ``abc.json`` is token ``abc`` in format ``json``."""
    name, dot, fmt = token.partition(".")
    return (name, fmt) if dot else (token, None)


def push_reply(state: MockState, request: Request, token: str) -> PushReply:
    """Parse, apply faults, answer as Zammad, and hand the journal its record."""
    started = time.perf_counter()
    parsed = None
    fault = None
    token, path_format = split_format(token)
    try:
        unreadable = None
        try:
            parsed = parse_request(request)
        except UnreadableJson as exc:
            unreadable = CtiError("internal-error", f"{exc} (Rails: ActionDispatch::Http::Parameters::ParseError, "
                                                    "rescued as StandardError)")
        params = parsed.params if parsed else None
        fault = state.take_fault(params.get("event") if params else None) if state.faults else None
        if fault is not None and fault["kind"] != "latency":
            answer = _fault_answer(fault)
        else:
            answer = push(state.config, state.calls, state.directory, token, params, unreadable)
    except MalformedBody as exc:
        # Rack refused it before Zammad's code ran: Rails' public exceptions answer (JSON or its page).
        answer = Answer(400, dict(RAILS_BAD_REQUEST), str(exc), outcome="malformed-body")
    except HTTPException as exc:  # Werkzeug's 413 for a body over the limit
        message = http_error_message(exc, request.max_content_length)
        answer = Answer(exc.code or 400, {"error": message}, message,
                        outcome="body-too-large" if exc.code == 413 else "malformed-body")
    accept = request.headers.get("Accept")
    if answer.outcome == "malformed-body":
        as_html = not first_type_is_json(accept)
    else:
        as_html = answer.via_handler and not wants_json(
            accept, path_format or (parsed.params.get("format") if parsed else None))
    if fault is not None and fault["kind"] == "latency":
        time.sleep(latency_seconds(fault))
    state.journal.record(push_record(
        method=request.method,
        path=request.path,
        content_type=request.content_type,
        encoding=parsed.encoding if parsed else encoding_of(request),
        params=parsed.params if parsed else None,
        repeated_keys=parsed.repeated_keys if parsed else [],
        token_valid=state.token_valid(token),
        status=answer.status,
        answer=answer.body,
        outcome=answer.outcome,
        reason=answer.reason,
        details=answer.details,
        duration_ms=(time.perf_counter() - started) * 1000,
        fault=fault,
        accept=request.headers.get("Accept"),
        html=as_html,
    ))
    if fault is not None and fault["kind"] in ("drop", "hang"):
        if fault["kind"] == "hang":
            time.sleep(min(float(fault.get("seconds", 60)), MAX_HANG_SECONDS))
        return PushReply(0, None, drop=True)
    hint = answer.reason if answer.outcome == "malformed-body" else None
    return PushReply(answer.status, answer.body, html=as_html, hint=hint)


def _fault_answer(fault: dict[str, Any]) -> Answer:
    reason = f"fault {fault['id']} ({fault['kind']}) injected"
    if fault["kind"] == "status":
        body = fault.get("body") or {"error": error_id_message()}
        return Answer(fault["status"], body, reason, outcome="fault")
    return Answer(0, {}, reason + ": no answer sent", outcome="fault")


def drop_connection(environ: dict[str, Any]) -> Response:
    """Close the client's connection without an answer, as an unreachable Zammad would.

    Werkzeug's server (MockServer) hands over the socket, which is shut down.
    Granian (``serve``) does not: there the answer's head goes out and the
    connection is cut before its body, so the client still gets no answer.
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


@bp.get("/api/v1/cti/log")
def caller_log():
    """Zammad's caller log, for an agent who names their API token (``app/controllers/cti_controller.rb``)."""
    state = mock_state(current_app)
    config = state.config
    try:
        agent = reader_of(config, request.headers.get("Authorization"), current_app.config.get("OPEN_CALLER_LOG"))
    except CtiError as exc:
        reply = config.profile.reply(exc)
        as_html = not wants_json(request.headers.get("Accept"), request.args.get("format"))
        answer = PushReply(reply.status, reply.body, html=as_html)
        data, content_type = answer.encoded()
        response = Response(data, status=reply.status, content_type=content_type)
        response.headers["X-Failure"] = reply.body.get("error_human") or reply.body.get("error", "")
        return response
    return jsonify(caller_log_answer(config, state.calls, state.directory, agent))
