"""Running the mock: in a thread for tests and the contract plugin, or under granian.

:class:`MockServer` serves on 127.0.0.1 and a free port from a background
thread (Werkzeug's threaded server: quick to start, enough for tests).
:func:`run_granian` is what ``zammad-cti serve`` uses: granian, a Rust HTTP
server, with one worker process that owns the whole state (see
docs/benchmarks.md for why this server and why one process). It stops
cleanly on Ctrl-C and SIGTERM: what is in flight is answered, what was asked
to persist is written.
"""

from __future__ import annotations

import gc
import socket
import threading
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

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


class PortInUse(Exception):
    """Another server listens on the address; the message says which."""


def claim_port(host: str, port: int) -> int:
    """The port to serve on: ``port``, or a free one for 0; :class:`PortInUse` when taken.

    Bound without SO_REUSEPORT, so that a mock (or anything) already there
    makes this fail instead of sharing the port with it.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port in TIME_WAIT is free
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise PortInUse(f"cannot listen on {host}:{port}: {exc.strerror}") from None
        return probe.getsockname()[1]


# The app of this worker process: its state is written behind and closed when granian stops it.
_served: list[Flask] = []


def _load_app(app_config: Mapping[str, Any], _target: str) -> Flask:
    app = create_app(app_config)
    gc.freeze()  # the app, its rules and the spec live as long as the worker: keep them out of GC scans
    _served.append(app)
    return app


def _close_served(on_stop: Callable[[tuple[int, int] | None], None] | None) -> None:
    for app in _served:
        written = mock_state(app).close()
        if on_stop is not None:
            on_stop(written)


def run_granian(app_config: Mapping[str, Any], host: str, port: int, threads: int = 32,
                on_ready: Callable[[int], None] | None = None,
                on_stop: Callable[[tuple[int, int] | None], None] | None = None) -> None:
    """Serve the mock under granian (one worker process) until Ctrl-C or SIGTERM; :class:`PortInUse` first."""
    from granian import Granian
    from granian.constants import Interfaces
    from granian.log import LogLevels
    from granian.server.mp import MPServer, WorkerProcess

    port = claim_port(host, port)
    inner = MPServer._spawn_wsgi_worker.__wrapped__

    @WorkerProcess.wrap_target
    def serve_then_close(worker_id: int, callback: Any, *args: Any) -> None:
        try:
            inner(worker_id, callback, *args)  # returns once granian stopped and answered what was in flight
        finally:
            _close_served(on_stop)

    server = Granian("mock_server", address=host, port=port, interface=Interfaces.WSGI, workers=1,
                     blocking_threads=threads, log_level=LogLevels.critical, log_access=False)
    if on_ready is not None:
        server.on_startup(lambda: on_ready(port))
    server.serve(spawn_target=serve_then_close, target_loader=partial(_load_app, app_config))
