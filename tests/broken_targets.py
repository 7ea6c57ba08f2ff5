"""Broken CTI targets: the faithful mock with exactly one documented behaviour broken.

The contract suites are only worth running if they fail a target that gets
Zammad wrong. Each target here is the faithful mock (``mock_server.create_app``)
wrapped in a small WSGI middleware, or run with a configuration that makes it
ignore one rule, so that it differs from a real Zammad in one way only::

    with serve(BROKEN["callerId-key"]) as target:
        subprocess.run(["zammad-cti", "check", "--target", target.endpoint_url, ...])

Every target runs with :data:`TOKEN`, not the documented configuration's
token, so that a test can check the token never reaches the output.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

from werkzeug.test import run_wsgi_app
from werkzeug.wrappers import Response
from werkzeug.wsgi import get_input_stream
from zammad_answers import REJECT

from mock_server import create_app
from mock_server.resources import documented_config_path
from mock_server.server import BackgroundServer
from mock_server.state import mock_state
from mock_server.zammad.params import MalformedBody, rails_params

TOKEN = "teeth-secret-4d9b7e21c0a8"
PUSH_PREFIX = "/api/v1/cti/"

WSGIApp = Callable[..., Any]


def documented_config() -> dict[str, Any]:
    return json.loads(documented_config_path().read_text(encoding="utf-8"))


def faithful_app(config: Mapping[str, Any] | None = None) -> Any:
    """The mock as it is, with :data:`TOKEN`; ``config`` replaces the documented configuration."""
    return create_app({"CTI_CONFIG": dict(config) if config is not None else str(documented_config_path()),
                       "TOKEN": TOKEN})


# --- one push, as the middleware sees it -------------------------------------------------------


@dataclass
class Push:
    """The request: Zammad's parameter map (read by the mock's own parser) and the raw environ."""

    environ: dict[str, Any]
    params: dict[str, Any]

    @property
    def is_push(self) -> bool:
        path = self.environ.get("PATH_INFO", "")
        return (self.environ.get("REQUEST_METHOD") == "POST" and path.startswith(PUSH_PREFIX)
                and path != PUSH_PREFIX + "log")

    @property
    def mimetype(self) -> str:
        return (self.environ.get("CONTENT_TYPE") or "").split(";", 1)[0].strip().lower()

    def drop_body(self) -> None:
        """What the inner app sees: the same request with an empty body."""
        self.environ["wsgi.input"] = io.BytesIO(b"")
        self.environ["CONTENT_LENGTH"] = "0"


Before = Callable[[Push], Response | None]
After = Callable[[Push, int, Any], tuple[int, Any] | Response | None]


class BreakingMiddleware:
    """Runs the faithful app, changing the request before it (``before``) or its answer after it (``after``).

    ``before`` may change ``push.environ`` or answer itself (a crash, say);
    ``after`` gets the status and the parsed JSON body and may return a new
    ``(status, body)`` or a whole :class:`Response`. ``None``: leave it alone.
    """

    def __init__(self, app: Any, before: Before | None = None, after: After | None = None) -> None:
        self.app = app
        self.before = before
        self.after = after

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        data = get_input_stream(environ).read()
        environ["wsgi.input"] = io.BytesIO(data)
        environ["CONTENT_LENGTH"] = str(len(data))
        push = Push(environ, _params(environ, data))
        if not push.is_push:
            return self.app(environ, start_response)
        if self.before is not None:
            early = self.before(push)
            if early is not None:
                return early(environ, start_response)
        if self.after is None:
            return self.app(environ, start_response)
        app_iter, status, headers = run_wsgi_app(self.app, environ, buffered=True)
        response = Response(app_iter, status=status, headers=headers)
        try:
            body = json.loads(response.get_data())
        except ValueError:
            return response(environ, start_response)
        changed = self.after(push, response.status_code, body)
        if changed is None:
            return response(environ, start_response)
        if isinstance(changed, Response):
            return changed(environ, start_response)
        new_status, new_body = changed
        return json_response(new_body, new_status)(environ, start_response)


def _params(environ: dict[str, Any], data: bytes) -> dict[str, Any]:
    try:
        return rails_params(environ.get("QUERY_STRING", "").encode("latin-1"), environ.get("CONTENT_TYPE"), data).values
    except MalformedBody:
        return {}


def json_response(body: Any, status: int) -> Response:
    return Response(json.dumps(body, separators=(",", ":")), status=status, mimetype="application/json")


def html_page(status: int, title: str) -> Response:
    page = (f"<!DOCTYPE html>\n<html><head><title>{title}</title></head>"
            f"<body><h1>{title}</h1><p>We're sorry, but something went wrong.</p></body></html>\n")
    return Response(page, status=status, mimetype="text/html")


# --- the broken targets ------------------------------------------------------------------------


def _caller_id_camel_case(push: Push, status: int, body: Any) -> tuple[int, Any] | None:
    """Dial answers spell the key ``callerId`` (the documentation's typo), not ``caller_id``."""
    if status == 200 and isinstance(body, dict) and body.get("action") == "dial" and "caller_id" in body:
        return status, {"action": "dial", "callerId": body["caller_id"], "number": body.get("number")}
    return None


def _routing_ignored() -> Any:
    """Outbound calls always go out with the default caller ID: the routing table is never read."""
    config = documented_config()
    config["cti_config"]["outbound"]["routing_table"] = []
    return faithful_app(config)


def _default_ignored() -> Any:
    """An outbound call that matches no route gets ``{}``: the default caller ID is never read."""
    config = documented_config()
    config["cti_config"]["outbound"].pop("default_caller_id", None)
    return faithful_app(config)


def _any_token(push: Push) -> None:
    """Every token is taken for the right one."""
    push.environ["PATH_INFO"] = PUSH_PREFIX + TOKEN


def _reject_every_inbound_call(push: Push, status: int, body: Any) -> tuple[int, Any] | None:
    """Every inbound newCall is answered reject/busy, blocked caller or not."""
    if status == 200 and push.params.get("event") == "newCall" and push.params.get("direction") == "in":
        return 200, dict(REJECT)
    return None


def _ignore_body(mimetype: str) -> Before:
    def before(push: Push) -> None:
        if push.mimetype == mimetype:
            push.drop_body()

    before.__doc__ = f"A {mimetype} body is never read: only query-string variables count."
    return before


def _user_array_crash(push: Push) -> Response | None:
    """``user`` as an array (JSON array, ``user[]`` form fields) crashes the endpoint: a 500 HTML page."""
    if isinstance(push.params.get("user"), list):
        return html_page(500, "We're sorry, but something went wrong (500)")
    return None


def _html_errors(push: Push, status: int, body: Any) -> Response | None:
    """Error answers are HTML pages, with the right status, instead of ``{"error": ...}``."""
    if status >= 400:
        return html_page(status, f"Error {status}")
    return None


def _always_json_errors(push: Push) -> None:
    """Error answers are JSON whatever the Accept header: a client that sends none never gets Zammad's HTML error page."""
    push.environ["HTTP_ACCEPT"] = "application/json"


def _reject_with_403(push: Push, status: int, body: Any) -> tuple[int, Any] | None:
    """A blocked caller's reject comes with 403 Forbidden instead of 200."""
    if status == 200 and body == REJECT:
        return 403, body
    return None


def _every_new_call_a_duplicate(push: Push, status: int, body: Any) -> tuple[int, Any] | None:
    """Every newCall is answered ``500 This object already exists.``, as if its callId had been used before."""
    if push.params.get("event") == "newCall" and status == 200:
        return 500, {"error": "This object already exists.", "error_human": "This object already exists."}
    return None


@dataclass(frozen=True)
class BrokenTarget:
    name: str
    breaks: str  # the documented behaviour it gets wrong
    build: Callable[[], WSGIApp]


def _middleware(before: Before | None = None, after: After | None = None) -> Callable[[], WSGIApp]:
    return lambda: BreakingMiddleware(faithful_app(), before=before, after=after)


BROKEN: dict[str, BrokenTarget] = {
    target.name: target
    for target in [
        BrokenTarget("callerId-key", _caller_id_camel_case.__doc__ or "", _middleware(after=_caller_id_camel_case)),
        BrokenTarget("routing-ignored", _routing_ignored.__doc__ or "", _routing_ignored),
        BrokenTarget("default-ignored", _default_ignored.__doc__ or "", _default_ignored),
        BrokenTarget("any-token", _any_token.__doc__ or "", _middleware(before=_any_token)),
        BrokenTarget("rejects-all-inbound", _reject_every_inbound_call.__doc__ or "",
                     _middleware(after=_reject_every_inbound_call)),
        BrokenTarget("ignores-urlencoded", "An application/x-www-form-urlencoded body is never read.",
                     _middleware(before=_ignore_body("application/x-www-form-urlencoded"))),
        BrokenTarget("ignores-multipart", "A multipart/form-data body is never read.",
                     _middleware(before=_ignore_body("multipart/form-data"))),
        BrokenTarget("user-array-crash", _user_array_crash.__doc__ or "", _middleware(before=_user_array_crash)),
        BrokenTarget("html-errors", _html_errors.__doc__ or "", _middleware(after=_html_errors)),
        BrokenTarget("always-json-errors", _always_json_errors.__doc__ or "", _middleware(before=_always_json_errors)),
        BrokenTarget("reject-403", _reject_with_403.__doc__ or "", _middleware(after=_reject_with_403)),
        BrokenTarget("newcall-always-duplicate", _every_new_call_a_duplicate.__doc__ or "",
                     _middleware(after=_every_new_call_a_duplicate)),
    ]
}


# --- serving ---------------------------------------------------------------------------------------


@dataclass
class ServedTarget:
    name: str
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def endpoint_url(self) -> str:
        return f"{self.url}{PUSH_PREFIX}{TOKEN}"


@contextmanager
def serve_app(app: WSGIApp, name: str) -> Iterator[ServedTarget]:
    """Serve ``app`` on 127.0.0.1 and a free port from a thread while the block runs."""
    server = BackgroundServer(app, name=f"broken-target-{name}")  # no access log: its lines carry the token
    server.start()
    try:
        yield ServedTarget(name, server.port)
    finally:
        server.stop()
        _close_mock(app)


def _close_mock(app: Any) -> None:
    inner = getattr(app, "app", app)  # a middleware's wrapped app, or the app itself
    with suppress(AttributeError, KeyError):
        mock_state(inner).close()


@contextmanager
def serve(target: BrokenTarget) -> Iterator[ServedTarget]:
    with serve_app(target.build(), target.name) as served:
        yield served


@contextmanager
def serve_faithful() -> Iterator[ServedTarget]:
    """The faithful mock with :data:`TOKEN`, served the same way (the control case)."""
    with serve_app(faithful_app(), "faithful") as served:
        yield served


__all__ = ["BROKEN", "TOKEN", "BreakingMiddleware", "BrokenTarget", "ServedTarget", "serve", "serve_faithful"]
