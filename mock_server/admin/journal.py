"""The request journal: every request the CTI endpoint received, and what it answered.

It answers "what did my PBX send, and what did the mock make of it". The
token never enters it: the path is stored masked and only whether the token
was right is kept.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ..db import Database
from ..zammad.calls import call_id_of, rails_time
from .findings import Finding

if TYPE_CHECKING:
    from flask import Request

    from ..http.request_params import ParsedRequest
    from ..zammad.endpoint import Answer

DEFAULT_JOURNAL_LIMIT = 100_000
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
    """The journal, kept in the mock's SQLite database: the newest ``limit`` requests survive a restart."""

    def __init__(self, db: Database, limit: int = DEFAULT_JOURNAL_LIMIT) -> None:
        self._db = db
        self._limit = limit

    def record_push(
        self,
        request: Request,
        token_valid: bool,
        parsed: ParsedRequest | None,
        answer: Answer,
        duration_ms: float,
        fault: dict[str, Any] | None = None,
        findings: list[Finding] = (),
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
            "status": answer.status or None,  # None: a fault sent no answer
            "answer": answer.body,
            "reason": answer.reason,
            "details": answer.details,
            "duration_ms": round(duration_ms, 3),
            "fault": fault,
            "findings": [f.to_json() for f in findings],
        }
        call_id = None if entry["call_id"] is None else str(entry["call_id"])
        with self._db.transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO requests (time, call_id, entry) VALUES (?, ?, ?)",
                (entry["time"], call_id, json.dumps(entry, default=str, separators=(",", ":"))),
            )
            entry["id"] = cursor.lastrowid
            conn.execute("DELETE FROM requests WHERE id <= ?", (entry["id"] - self._limit,))
            if findings:
                conn.executemany(
                    "INSERT INTO findings (request_id, time, call_id, code, severity, entry) VALUES (?, ?, ?, ?, ?, ?)",
                    [(entry["id"], entry["time"], call_id, f.code, f.severity, json.dumps(f.to_json())) for f in findings],
                )
                conn.execute("DELETE FROM findings WHERE request_id <= ?", (entry["id"] - self._limit,))
        return entry

    def new_call_params(self, call_id: Any) -> dict[str, Any] | None:
        """The parameters of the first newCall journaled for ``call_id`` (for life-cycle findings)."""
        if call_id is None:
            return None
        with self._db.connection() as conn:
            rows = conn.execute(
                "SELECT entry FROM requests WHERE call_id = ? ORDER BY id LIMIT 20", (str(call_id),)
            ).fetchall()
        for (text,) in rows:
            entry = json.loads(text)
            if entry.get("event") == "newCall":
                return entry["params"]
        return None

    def findings(self, call_id: str | None = None, since: str | None = None) -> list[dict[str, Any]]:
        """Stored findings, oldest first, each with its request's id, time and call."""
        sql, args, where = "SELECT id, request_id, time, call_id, entry FROM findings", [], []
        if call_id is not None:
            where.append("call_id = ?")
            args.append(call_id)
        if since is not None:
            where.append("time >= ?")
            args.append(since)
        if where:
            sql += " WHERE " + " AND ".join(where)
        with self._db.connection() as conn:
            rows = conn.execute(sql + " ORDER BY id", args).fetchall()
        return [{"id": fid, "request_id": rid, "time": time, "call_id": cid, **json.loads(text)}
                for fid, rid, time, cid, text in rows]

    def entries(self, call_id: str | None = None, limit: int | None = None,
                since: str | None = None, after: int | None = None) -> list[dict[str, Any]]:
        """Oldest first; filtered by ``call_id`` when given; the newest ``limit`` when given."""
        sql, args = "SELECT id, entry FROM requests", []
        where = []
        if call_id is not None:
            where.append("call_id = ?")
            args.append(call_id)
        if since is not None:
            where.append("time >= ?")
            args.append(since)
        if after is not None:
            where.append("id > ?")
            args.append(after)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(max(limit, 0))
        with self._db.connection() as conn:
            rows = conn.execute(sql, args).fetchall()
        return [{**json.loads(text), "id": row_id} for row_id, text in reversed(rows)]

    def clear(self) -> None:
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM requests")
            conn.execute("DELETE FROM findings")

    def __len__(self) -> int:
        with self._db.connection() as conn:
            return conn.execute("SELECT count(*) FROM requests").fetchone()[0]
