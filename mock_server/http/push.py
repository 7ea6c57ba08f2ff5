"""The push endpoint, ``POST /api/v1/cti/{token}``: one request, one room per step.

    params = rails_params(query, content type, body)   # zammad/params.py: Rails' parameters
    fault  = state.take_fault(event)                   # admin/faults.py: the fault gate
    answer = push(config, calls, directory, ...)       # zammad/endpoint.py: Zammad's rules and caller log
    state.journal.record(...)                          # admin/journal.py: numbered, in arrival order

:func:`answer_push` runs them on a :class:`PushRequest`, the few things of an
HTTP request the path reads, which the server's adapter builds: ``asgi.py``
under ``serve``, ``wsgi.py`` for the Flask app and ``MockServer``. The
:class:`PushReply` says what to send, after how long, or that nothing is to
be sent; the adapter does the waiting (on the event loop, or in a thread)
and the sending. Nothing here blocks.
"""

from __future__ import annotations

import html
import json
import time
from dataclasses import dataclass
from typing import Any

from werkzeug.http import HTTP_STATUS_CODES

from ..admin.faults import fault_answer, fault_delay
from ..admin.journal import push_record
from ..state import MockState
from ..zammad.endpoint import Answer, push
from ..zammad.errors import CtiError, error_id_message
from ..zammad.params import MalformedBody, ParsedParams, UnreadableJson, encoding_of, rails_params
from .negotiation import ERROR_PAGE, RAILS_BAD_REQUEST, first_type_is_json, wants_json

PUSH_PREFIX = "/api/v1/cti/"


@dataclass(frozen=True, slots=True)
class PushRequest:
    """What the push path reads of an HTTP request."""

    path: str  # as sent, for the journal (which masks the token)
    token: str  # the path's last segment, ``.json`` and all
    query_string: bytes
    content_type: str | None
    accept: str | None
    body: bytes
    body_problem: str | None = None  # the body was not read whole: why (too large, cut short)
    too_large: bool = False


def push_token(path: str) -> str | None:
    """The token segment of ``/api/v1/cti/<token>[/]``; None for any other path (and the caller log)."""
    if not path.startswith(PUSH_PREFIX):
        return None
    token = path[len(PUSH_PREFIX):]
    if token.endswith("/"):  # Rails ignores a trailing slash
        token = token[:-1]
    if not token or "/" in token:
        return None
    return token


@dataclass(slots=True)
class PushReply:
    """What the push endpoint sends: a JSON answer or Zammad's HTML page, maybe late, or nothing at all."""

    status: int
    body: Any
    html: bool = False  # Zammad's HTML error page instead of the JSON body
    hint: str | None = None  # the mock's own words on why (an X-Zammad-Cti-Mock-Hint header)
    delay: float = 0.0  # seconds to wait before answering (a latency or hang fault)
    drop: bool = False  # after the delay, close the connection without an answer

    def encoded(self) -> tuple[bytes, str]:
        """The bytes to send and their content type."""
        if self.html:
            return html_error_page(self.status, self.body), "text/html; charset=utf-8"
        return json_bytes(self.body), "application/json"

    def headers(self, data: bytes, content_type: str) -> list[tuple[str, str]]:
        headers = [("Content-Type", content_type), ("Content-Length", str(len(data)))]
        if self.hint:
            headers.append(("X-Zammad-Cti-Mock-Hint", header_safe(self.hint)))
        return headers


def json_bytes(body: Any) -> bytes:
    """JSON as Flask's jsonify writes it: compact, one trailing newline."""
    return (json.dumps(body, separators=(",", ":"), default=str) + "\n").encode("utf-8")


def html_error_page(status: int, body: Any) -> bytes:
    message = body.get("error_human") or body.get("error") if isinstance(body, dict) else ""
    return ERROR_PAGE.format(status=status, phrase=HTTP_STATUS_CODES.get(status, ""),
                             message=html.escape(str(message or ""))).encode("utf-8")


def header_safe(text: str) -> str:
    """A header value: one Latin-1 line (the hint may quote what the PBX sent)."""
    return " ".join(text.split()).encode("latin-1", "replace").decode("latin-1")[:500]


def status_line(status: int) -> str:
    return f"{status} {HTTP_STATUS_CODES.get(status, 'Unknown')}"


def too_large_message(limit: int | None) -> str:
    return f"Request body too large: the mock accepts at most {limit} bytes"


def split_format(token: str) -> tuple[str, str | None]:
    """Rails' ``/api/v1/cti/:token(.:format)``: ``abc.json`` is token ``abc`` in format ``json``."""
    name, dot, fmt = token.partition(".")
    return (name, fmt) if dot else (token, None)


def answer_push(state: MockState, request: PushRequest, max_content_length: int | None) -> PushReply:
    """Answer one push as Zammad does, and journal it."""
    started = time.perf_counter()
    token, path_format = split_format(request.token)
    parsed: ParsedParams | None = None
    fault = None
    try:
        if request.too_large:
            message = too_large_message(max_content_length)
            answer = Answer(413, {"error": message}, message, outcome="body-too-large")
        else:
            if request.body_problem:
                raise MalformedBody(request.body_problem)
            unreadable = None
            try:
                parsed = rails_params(request.query_string, request.content_type, request.body)
            except UnreadableJson as exc:
                unreadable = CtiError("internal-error", f"{exc} (Rails: ActionDispatch::Http::Parameters::ParseError, "
                                                        "rescued as StandardError)")
            params = parsed.values if parsed else None
            fault = state.take_fault(params.get("event") if params else None)
            answer = fault_answer(fault) or push(state.config, state.calls, state.directory, token, params, unreadable)
    except MalformedBody as exc:
        # Rack refused it before Zammad's code ran: Rails' public exceptions answer (JSON or its page).
        answer = Answer(400, dict(RAILS_BAD_REQUEST), str(exc), outcome="malformed-body")
    if answer.outcome == "malformed-body":
        as_html = not first_type_is_json(request.accept)
    else:
        as_html = answer.via_handler and not wants_json(
            request.accept, path_format or (parsed.values.get("format") if parsed else None))
    delay, drop = fault_delay(fault)
    state.journal.record(push_record(
        method="POST",
        path=request.path,
        content_type=request.content_type,
        encoding=parsed.encoding if parsed else encoding_of(request.content_type, bool(request.body)),
        params=parsed.values if parsed else None,
        repeated_keys=parsed.repeated_keys if parsed else [],
        unreadable_parts=parsed.unreadable_parts if parsed else 0,
        token_valid=state.token_valid(token),
        status=answer.status,
        answer=answer.body,
        outcome=answer.outcome,
        reason=answer.reason,
        details=answer.details,
        # A latency fault's wait counts: the PBX waits it too (a hang or drop sends no answer at all).
        duration_ms=(time.perf_counter() - started + (0 if drop else delay)) * 1000,
        fault=fault,
        accept=request.accept,
        html=as_html,
    ))
    hint = answer.reason if answer.outcome == "malformed-body" else None
    return PushReply(answer.status, answer.body, html=as_html, hint=hint, delay=delay, drop=drop)


def reply_to(state: MockState, request: PushRequest, max_content_length: int | None, logger: Any) -> PushReply:
    """:func:`answer_push`, and for a bug in the mock Zammad's generic 500 instead of a traceback."""
    try:
        return answer_push(state, request, max_content_length)
    except Exception:
        logger.exception("internal error on a CTI push")
        return PushReply(500, {"error": error_id_message()})
