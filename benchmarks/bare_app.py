"""The ceiling: a bare app that reads the body and answers ``{}``, nothing else.

``asgi_app`` is served by ``benchmarks/run.py`` exactly as ``zammad-cti
serve`` serves the mock (granian, embedded, one process), so the ratio
mock/ceiling measures the mock's own cost; ``app``, the same in WSGI, is
served by gunicorn for the comparison.
"""


def app(environ, start_response):
    environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "2")])
    return [b"{}"]


_HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"2")]


async def asgi_app(scope, receive, send):
    if scope["type"] != "http":
        return  # no lifespan to speak of
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": b"{}"})
