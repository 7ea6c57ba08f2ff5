"""Running the mock: in a thread for tests and the contract plugin, or under granian.

:class:`MockServer` serves the Flask app (WSGI) on 127.0.0.1 and a free port
from a background thread (Werkzeug's threaded server: quick to start, enough
for tests). :func:`run_granian` is what ``zammad-cti serve`` uses: the ASGI
app (:mod:`.http.asgi`) under granian, a Rust HTTP server, embedded in this
one process (see docs/benchmarks.md for why this server and why one
process). It stops cleanly on Ctrl-C and SIGTERM: what is in flight is
answered, what was asked to persist is written.
"""

from __future__ import annotations

import asyncio
import gc
import signal
import socket
import threading
from collections.abc import Callable, Mapping
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


def serve_asgi(app: Any, host: str, port: int, on_ready: Callable[[], None] | None = None,
               on_stop_signal: Callable[[], None] | None = None) -> None:
    """Serve an ASGI app in this process under granian until Ctrl-C or SIGTERM.

    granian's embedded server runs in this process's own event loop: the
    process that owns the state is the process that serves it, with no
    supervisor and no worker process beside it (granian calls the embedded
    mode experimental; the project's tests run it). The port must be free
    (see :func:`claim_port`). ``on_stop_signal`` runs on the event loop when
    the stop signal arrives, before granian waits for open connections.
    """
    from granian.constants import Interfaces
    from granian.log import LogLevels
    from granian.server.embed import Server

    server = Server(app, address=host, port=port, interface=Interfaces.ASGI, log_level=LogLevels.critical,
                    log_access=False)
    if on_ready is not None:
        server.on_startup(on_ready)

    def stop() -> None:
        if on_stop_signal is not None:
            on_stop_signal()
        server.stop()

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop)
        await server.serve()

    try:
        import uvloop  # libuv's event loop: the ceiling 20-28k -> 40-42k req/s, the mock 7.7-7.9k -> 11.1-11.4k
    except ImportError:  # not on Windows
        asyncio.run(serve())
    else:
        uvloop.run(serve())


def run_granian(app_config: Mapping[str, Any], host: str, port: int, threads: int = 8,
                on_ready: Callable[[int], None] | None = None,
                on_stop: Callable[[tuple[int, int] | None], None] | None = None) -> None:
    """``zammad-cti serve``: the mock under granian, in this process; :class:`PortInUse` first.

    On a stop, pushes in flight are answered, then what ``--journal`` keeps
    is written and ``on_stop`` is told what the file holds.
    """
    from .http.asgi import CtiAsgiApp

    port = claim_port(host, port)
    app = CtiAsgiApp(create_app(app_config), threads=threads)
    gc.freeze()  # the app, its rules and the spec live as long as the process: keep them out of GC scans
    try:
        serve_asgi(app, host, port, on_ready=None if on_ready is None else lambda: on_ready(port),
                   on_stop_signal=app.let_hanging_go)
    finally:
        app.close()  # done already when granian ran the lifespan's shutdown
        if on_stop is not None:
            on_stop(app.kept)
