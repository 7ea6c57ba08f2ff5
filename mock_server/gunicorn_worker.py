"""The gunicorn worker ``zammad-cti serve`` runs: gthread, with JSON errors and no token in logs.

Gunicorn answers requests it cannot parse (garbage request lines, broken
headers) itself, with an HTML page, before the app sees them. A Zammad stand-in
answers JSON, so the worker swaps that writer for a JSON one; and since such
a request line may hold the token anywhere, gunicorn's answers and log lines
are masked: the token itself wherever it stands, and whatever stands where a
token would.
"""

from __future__ import annotations

import gc
import json
import logging
import re

from gunicorn import util
from gunicorn.workers.gthread import ThreadWorker

_TOKEN_PLACES = re.compile(r"(/cti/|[?&;]token=)(?!log\b)[^\s/?&#'\"\\]+", re.IGNORECASE)
_known_token: str | None = None  # this worker process's token, once its app is loaded


def mask(text: str) -> str:
    if _known_token:
        text = re.sub(re.escape(_known_token), "***", text, flags=re.IGNORECASE)
    return _TOKEN_PLACES.sub(r"\1***", text)


def write_json_error(sock, status_int: int, reason: str, mesg: str) -> None:
    body = mask(json.dumps({"error": f"{reason}: {mesg}"}))
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json; charset=utf-8\r\nContent-Length: {len(body.encode())}\r\n\r\n"
    )
    util.write_nonblock(sock, (head + body).encode("latin-1", "replace"))


class _MaskTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = mask(record.getMessage())
        record.args = ()
        return True


class JsonErrorWorker(ThreadWorker):
    def init_process(self) -> None:
        util.write_error = write_json_error  # this worker process only
        for name in ("gunicorn.error", "gunicorn.access"):
            logging.getLogger(name).addFilter(_MaskTokens())
        super().init_process()

    def load_wsgi(self) -> None:
        global _known_token
        super().load_wsgi()
        from .state import EXTENSION_KEY

        state = getattr(self.wsgi, "extensions", {}).get(EXTENSION_KEY)  # any other app: nothing to mask
        _known_token = state.config.token if state is not None else None
        # The app, its rules and the spec live as long as the worker: keep them out of
        # the cyclic garbage collector's scans, which otherwise revisit them again and again.
        gc.freeze()
