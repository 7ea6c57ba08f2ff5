"""The mock on ASGI, as ``serve`` runs it: pushes on the event loop, the rest in Flask's threads.

One thread owns the push path, as one thread owns Redis' data: every push
is parsed, decided, logged and journaled on the event loop, one after the
other, in the order they arrive, with no lock ever contended and no thread
waiting for the GIL (32 threads taking turns on it made the old p99). The
server's own threads (granian's, in Rust) do the sockets. A latency or hang
fault is an ``asyncio.sleep``: it holds no thread, and the next push goes on.

Everything that is not a push (``/__admin``, the inspector, the caller log,
Zammad's 404s) is the Flask app, run by ``a2wsgi`` in a small thread pool:
those routes are read by people and inspectors, not by a busy PBX.

On a stop, requests held by a hang fault are let go at once
(:meth:`CtiAsgiApp.let_hanging_go`, from the stop signal); granian answers
what is still in flight (a latency fault's answer included) before the
lifespan's shutdown, which writes what ``--journal`` keeps:
:attr:`CtiAsgiApp.kept` says what.
"""

from __future__ import annotations

import asyncio
from typing import Any

from a2wsgi import WSGIMiddleware
from flask import Flask

from ..state import mock_state
from .push import PushReply, PushRequest, push_token, reply_to


class CtiAsgiApp:
    """``POST /api/v1/cti/<token>`` answered on the event loop; everything else by ``flask_app``."""

    def __init__(self, flask_app: Flask, threads: int = 8) -> None:
        self.state = mock_state(flask_app)
        self.max_content_length: int | None = flask_app.config["MAX_CONTENT_LENGTH"]
        self.logger = flask_app.logger
        self.flask = WSGIMiddleware(flask_app, workers=threads)
        self.kept: tuple[int, int] | None = None  # what the journal file holds once stopped
        self.stopped = False
        self._stop_event: asyncio.Event | None = None  # set when the mock stops: hanging requests let go

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            token = push_token(scope["path"]) if scope["method"] == "POST" else None
            if token is None:
                await self.flask(scope, receive, send)
            else:
                await self._push(scope, receive, send, token)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _push(self, scope: dict[str, Any], receive: Any, send: Any, token: str) -> None:
        request = await _push_request(scope, receive, token, self.max_content_length)
        reply = reply_to(self.state, request, self.max_content_length, self.logger)
        if reply.drop and reply.delay:  # a hang fault answers nothing: a stop cuts it short
            await self._hang(reply.delay)
        elif reply.delay:
            await asyncio.sleep(reply.delay)
        await _send(send, reply)

    async def _hang(self, seconds: float) -> None:
        """Hold a request that gets no answer, until ``seconds`` pass or the mock stops."""
        try:
            await asyncio.wait_for(self._stopping().wait(), seconds)
        except asyncio.TimeoutError:
            pass

    def _stopping(self) -> asyncio.Event:
        if self._stop_event is None:
            self._stop_event = asyncio.Event()
        return self._stop_event

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def let_hanging_go(self) -> None:
        """The mock is stopping: requests held by a hang fault are cut now (call on the event loop).

        The server waits for open connections before the lifespan's shutdown,
        so this comes first, from the stop signal itself.
        """
        self._stopping().set()

    def close(self) -> None:
        """Write what is left behind; idempotent."""
        if not self.stopped:
            self.stopped = True
            self.kept = self.state.close()


async def _push_request(scope: dict[str, Any], receive: Any, token: str, limit: int | None) -> PushRequest:
    headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
    announced = headers.get("content-length", "")
    body, problem, too_large = b"", None, False
    if announced.isdigit() and limit is not None and int(announced) > limit:
        too_large = True
    else:
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                problem = f"the body ended after {size} bytes" + (f" of the {announced} announced" if announced else "")
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if limit is not None and size > limit:
                too_large = True
                break
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        if problem is None and not too_large and announced.isdigit() and size < int(announced):
            problem = f"the body ended after {size} of the {announced} bytes announced"
    return PushRequest(path=scope["path"], token=token, query_string=scope.get("query_string", b""),
                       content_type=headers.get("content-type"), accept=headers.get("accept"),
                       body=body, body_problem=problem, too_large=too_large)


class DroppedConnection(ConnectionAbortedError):
    """A drop or hang fault: the server cuts the connection after the head, before any body."""


async def _send(send: Any, reply: PushReply) -> None:
    if reply.drop:
        # ASGI cannot close a connection unanswered: the head goes out, the body never does.
        await send({"type": "http.response.start", "status": 500,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"1")]})
        await send({"type": "http.response.body", "body": b"", "more_body": True})
        raise DroppedConnection("fault: connection dropped without an answer")
    data, content_type = reply.encoded()
    headers = [(name.lower().encode("latin-1"), value.encode("latin-1"))
               for name, value in reply.headers(data, content_type)]
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": data})
