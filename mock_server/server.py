"""Running the mock: in a thread for tests and the contract plugin, or under gunicorn.

:class:`MockServer` serves on 127.0.0.1 and a free port from a background
thread (Werkzeug's threaded server: quick to start, enough for tests).
``run_gunicorn`` is what ``zammad-cti serve`` uses: a production WSGI server
that stops cleanly on Ctrl-C and SIGTERM.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from flask import Flask
from werkzeug.serving import make_server

from .app import create_app
from .state import mock_state


class MockServer:
    """A mock on a free local port: ``with MockServer() as mock: requests.post(mock.endpoint_url, ...)``."""

    def __init__(self, test_config: Mapping[str, Any] | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app: Flask = create_app(test_config)
        self._server = make_server(host, port, self.app, threaded=True)
        self._thread: threading.Thread | None = None
        self.host = host
        self.port = self._server.server_port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def endpoint_url(self) -> str:
        """The full CTI endpoint URL, token included, as Zammad's admin page shows it."""
        return f"{self.url}/api/v1/cti/{mock_state(self.app).config.token}"

    def start(self) -> MockServer:
        self._thread = threading.Thread(target=self._server.serve_forever, name="zammad-cti-mock", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> MockServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def run_gunicorn(app: Flask, host: str, port: int, threads: int = 8, on_ready=None) -> None:
    """Serve ``app`` under gunicorn (one process: the caller log lives in its memory)."""
    from gunicorn.app.base import BaseApplication

    class _Application(BaseApplication):
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", 1)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("threads", threads)
            self.cfg.set("graceful_timeout", 10)
            self.cfg.set("accesslog", None)
            self.cfg.set("loglevel", "warning")
            if on_ready is not None:
                self.cfg.set("when_ready", lambda _arbiter: on_ready())

        def load(self) -> Flask:
            return app

    _Application().run()
