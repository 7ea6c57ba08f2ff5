"""The ceiling: a bare WSGI app that reads the body and answers ``{}``, nothing else.

``benchmarks/run.py`` serves it with the very gunicorn worker and settings
``zammad-cti serve`` uses, so the ratio mock/ceiling measures the mock's own cost.
"""


def app(environ, start_response):
    environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "2")])
    return [b"{}"]
