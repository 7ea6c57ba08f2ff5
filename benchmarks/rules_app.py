"""A floor under the mock: its own body parsing and Zammad rules, without caller log or journal.

``benchmarks/run.py`` serves ``asgi_app`` like the ceiling (``--servers
rules``); ``app`` is the same in WSGI, for the tests. The gap between it and
the ceiling is what parsing a push the way Rails does and deciding Zammad's
answer cost; the gap between the mock and it is the caller log and the
journal with its findings.
"""

import json

from mock_server.app import resolve_config
from mock_server.zammad.endpoint import check_access, new_call_action
from mock_server.zammad.params import rails_params

CONFIG = resolve_config(None)  # the documented Munich/Berlin configuration, as serve loads it


def answer(path: str, query: bytes, content_type: str | None, body: bytes) -> bytes:
    params = rails_params(query, content_type, body).values
    check_access(CONFIG, path.rstrip("/").rsplit("/", 1)[-1])
    action = new_call_action(CONFIG.cti_config, params)
    return json.dumps(action.body if action else {}).encode()


def app(environ, start_response):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = answer(environ["PATH_INFO"], environ.get("QUERY_STRING", "").encode("latin-1"),
                  environ.get("CONTENT_TYPE"), environ["wsgi.input"].read(length))
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


async def asgi_app(scope, receive, send):
    if scope["type"] != "http":
        return
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    content_type = dict(scope["headers"]).get(b"content-type", b"").decode("latin-1") or None
    body = answer(scope["path"], scope["query_string"], content_type, b"".join(chunks))
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
