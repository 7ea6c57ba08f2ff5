"""The request journal: every request the CTI endpoint received, and what it answered.

It answers "what did my PBX send, and what did the mock make of it". The
token never enters it: the path is stored masked and only whether the token
was right is kept.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ..zammad.calls import call_id_of, rails_time

if TYPE_CHECKING:
    from flask import Request

    from ..http.request_params import ParsedRequest
    from ..zammad.endpoint import Answer

DEFAULT_JOURNAL_LIMIT = 1_000
MASK = "***"


def mask_path(path: str) -> str:
    """``/api/v1/cti/SECRET`` -> ``/api/v1/cti/***`` (the caller log path stays readable)."""
    prefix = "/api/v1/cti/"
    if path.startswith(prefix) and path != prefix + "log":
        return prefix + MASK
    return path


def _without_token(params: dict[str, Any]) -> dict[str, Any]:
    # A PBX may repeat the token as a parameter; Rails' path token wins, and
    # the journal must not keep either.
    return {k: (MASK if k == "token" else v) for k, v in params.items()}


class Journal:
    """A bounded, thread-safe journal kept in memory (the newest ``limit`` requests)."""

    def __init__(self, limit: int = DEFAULT_JOURNAL_LIMIT) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=limit)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def record_push(
        self,
        request: Request,
        token_valid: bool,
        parsed: ParsedRequest | None,
        answer: Answer,
        duration_ms: float,
    ) -> dict[str, Any]:
        params = _without_token(parsed.params) if parsed else {}
        entry = {
            "time": rails_time(datetime.now(timezone.utc)),
            "method": request.method,
            "path": mask_path(request.path),
            "content_type": request.content_type,
            "encoding": parsed.encoding if parsed else None,
            "params": params,
            "repeated_keys": parsed.repeated_keys if parsed else [],
            "call_id": call_id_of(params),
            "event": params.get("event"),
            "token_valid": token_valid,
            "status": answer.status,
            "answer": answer.body,
            "reason": answer.reason,
            "details": answer.details,
            "duration_ms": round(duration_ms, 3),
        }
        with self._lock:
            entry["id"] = next(self._ids)
            self._entries.append(entry)
        return entry

    def entries(self, call_id: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Oldest first; filtered by ``call_id`` when given."""
        with self._lock:
            entries = list(self._entries)
        if call_id is not None:
            entries = [e for e in entries if str(e["call_id"]) == call_id]
        if limit is not None:
            entries = entries[-limit:]
        return entries

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
