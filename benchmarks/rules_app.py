"""A floor under the mock: its own body parsing and Zammad rules, without caller log or journal.

``benchmarks/run.py`` serves it like the ceiling (``--servers rules``). The
gap between it and the ceiling is what parsing a push the way Rails does and
deciding Zammad's answer cost in this stack; the gap between the mock and it
is the caller log (SQLite, shared by the workers) and the journal with its
findings.
"""

import json

from mock_server.app import resolve_config
from mock_server.zammad.params import rails_params
from mock_server.zammad.endpoint import check_access, new_call_action

CONFIG = resolve_config(None)  # the documented Munich/Berlin configuration, as serve loads it


def app(environ, start_response):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    params = rails_params(environ.get("QUERY_STRING", "").encode("latin-1"), environ.get("CONTENT_TYPE"),
                          environ["wsgi.input"].read(length)).values
    check_access(CONFIG, environ["PATH_INFO"].rstrip("/").rsplit("/", 1)[-1])
    action = new_call_action(CONFIG.cti_config, params)
    body = json.dumps(action.body if action else {}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
