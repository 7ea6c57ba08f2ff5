"""The gunicorn worker ``zammad-cti serve`` runs: gthread, with JSON errors and no token in logs.

Gunicorn answers requests it cannot parse (garbage request lines, broken
headers) itself, with an HTML page, before the app sees them. A Zammad stand-in
answers JSON, so the worker swaps that writer for a JSON one; and since such
a request line may hold the token, gunicorn's log lines are masked.
"""

from __future__ import annotations

import json
import logging
import re

from gunicorn import util
from gunicorn.workers.gthread import ThreadWorker

_TOKEN_IN_PATH = re.compile(r"(/api/v1/cti/)(?!log\b)[^\s/?#'\"]+")


def write_json_error(sock, status_int: int, reason: str, mesg: str) -> None:
    body = json.dumps({"error": f"{reason}: {mesg}"})
    body = _TOKEN_IN_PATH.sub(r"\1***", body)
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json; charset=utf-8\r\nContent-Length: {len(body.encode())}\r\n\r\n"
    )
    util.write_nonblock(sock, (head + body).encode("latin-1", "replace"))


class _MaskTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = _TOKEN_IN_PATH.sub(r"\1***", record.getMessage())
        record.args = ()
        return True


class JsonErrorWorker(ThreadWorker):
    def init_process(self) -> None:
        util.write_error = write_json_error  # this worker process only
        for name in ("gunicorn.error", "gunicorn.access"):
            logging.getLogger(name).addFilter(_MaskTokens())
        super().init_process()
