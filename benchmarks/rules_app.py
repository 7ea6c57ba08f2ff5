"""A floor under the mock: its own body parsing and Zammad rules, without caller log or journal.

``benchmarks/run.py`` serves it like the ceiling (``--servers rules``). The
gap between it and the ceiling is what parsing a push the way Rails does and
deciding Zammad's answer cost in this stack; the gap between the mock and it
is the caller log (SQLite, shared by the workers) and the journal with its
findings.
"""

import json

from werkzeug.wrappers import Request

from mock_server.app import resolve_config
from mock_server.http.request_params import parse_request
from mock_server.zammad.endpoint import check_access, new_call_action

CONFIG = resolve_config(None)  # the documented Munich/Berlin configuration, as serve loads it


def app(environ, start_response):
    params = parse_request(Request(environ)).params
    check_access(CONFIG, environ["PATH_INFO"].rstrip("/").rsplit("/", 1)[-1])
    action = new_call_action(CONFIG.cti_config, params)
    body = json.dumps(action.body if action else {}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
