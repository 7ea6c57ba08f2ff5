"""Running the mock: in a thread for tests and the contract plugin, or under gunicorn.

:class:`MockServer` serves on 127.0.0.1 and a free port from a background
thread (Werkzeug's threaded server: quick to start, enough for tests).
``run_gunicorn`` is what ``zammad-cti serve`` uses: a production WSGI server
that stops cleanly on Ctrl-C and SIGTERM.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import platformdirs
from flask import Flask
from werkzeug.serving import WSGIRequestHandler, make_server

from .app import create_app
from .state import mock_state


class _QuietHandler(WSGIRequestHandler):
    """No access log: its lines would carry the token, and the journal has it all anyway."""

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


class BackgroundServer:
    """Werkzeug's threaded server for any WSGI app, on a background thread, without an access log."""

    def __init__(self, app: Callable[..., Any], host: str = "127.0.0.1", port: int = 0, name: str = "zammad-cti-mock"):
        self._server = make_server(host, port, app, threaded=True, request_handler=_QuietHandler)
        self._thread: threading.Thread | None = None
        self._name = name
        self.host = host
        self.port = self._server.server_port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.serve_forever, name=self._name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


class MockServer:
    """A mock on a free local port: ``with MockServer() as mock: requests.post(mock.endpoint_url, ...)``."""

    def __init__(self, test_config: Mapping[str, Any] | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app: Flask = create_app(test_config)
        self._server = BackgroundServer(self.app, host, port)
        self.host = host
        self.port = self._server.port

    @property
    def url(self) -> str:
        return self._server.url

    @property
    def endpoint_url(self) -> str:
        """The full CTI endpoint URL, token included, as Zammad's admin page shows it."""
        return f"{self.url}/api/v1/cti/{mock_state(self.app).config.token}"

    def start(self) -> MockServer:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()
        mock_state(self.app).close()

    def __enter__(self) -> MockServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def default_journal_path() -> Path:
    """``journal.sqlite3`` in the user's data directory (``~/.local/share/zammad-cti`` on Linux)."""
    return Path(platformdirs.user_data_dir("zammad-cti", appauthor=False)) / "journal.sqlite3"


def run_gunicorn(app_config: Mapping[str, Any], host: str, port: int, workers: int = 1, threads: int = 8,
                 on_ready: Callable[[int], None] | None = None) -> None:
    """Serve the mock under gunicorn until Ctrl-C or SIGTERM.

    Each worker builds its own app after the fork (SQLite connections must not
    cross a fork); they share the caller log through the journal file.
    """
    from gunicorn.app.base import BaseApplication

    # Per-worker sockets must agree on the port: choose a free one now when asked for any.
    bound_port = port or _free_port(host)
    port = bound_port

    class _Application(BaseApplication):
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("worker_class", "mock_server.gunicorn_worker.JsonErrorWorker")
            self.cfg.set("threads", threads)
            self.cfg.set("graceful_timeout", 10)
            # Several workers: each gets a SO_REUSEPORT socket of its own, so the kernel spreads
            # new connections over them. On one shared socket a burst of keep-alive connections
            # (a PBX's, or wrk's) can all land on one worker while the other idles.
            self.cfg.set("reuse_port", workers > 1)
            self.cfg.set("accesslog", None)
            self.cfg.set("loglevel", "warning")
            if on_ready is not None:
                self.cfg.set("when_ready", lambda arbiter: on_ready(bound_port))

        def load(self) -> Flask:
            return create_app(app_config)

    _Application().run()
