"""The request journal: every request the CTI endpoint received, what it answered, and the findings.

It answers "what did my PBX send, and what did the mock make of it". The
token never enters it: the path is stored masked and only whether the token
was right is kept.

Writing is off the request path: a request hands a small record to a writer
thread, which works out the findings and stores records in batches, one
transaction each. The PBX's answer never waits for the journal. Readers in
the same process call :meth:`Journal.flush` first, so they see every request
answered before; :meth:`Journal.close` flushes what is left (graceful stop).
"""

from __future__ import annotations

import json
import queue
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ..db import Database
from ..zammad.calls import call_id_of, rails_time
from .findings import ACCEPT_UNKNOWN, LOGGED_NEW_CALL, Finding, request_findings
from .writer_board import WriterBoard

DEFAULT_JOURNAL_LIMIT = 100_000
MASK = "***"
_JSON = json.JSONEncoder(default=str, separators=(",", ":"))
PRUNE_EVERY = 1_000  # rows between two prunes of the oldest journal entries
_BATCH = 2048
_GATHER_SECONDS = 0.05
_ROWS_PER_STATEMENT = 64  # 3 or 6 parameters each: well under SQLite's 32,766
# An answer whose newCall another worker's writer may still be gathering is rechecked this often, this long.
_RECHECK_SECONDS = 0.01
_RECHECK_FOR_SECONDS = 1.0
_RECENT_NEW_CALLS = 4096  # newCall parameters kept at hand for the findings of answer and hangup


def _storable(text: str) -> str:
    """A lone surrogate a PBX sent (JSON "\\ud800") cannot be bound as SQLite text: it becomes U+FFFD."""
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace") if not text.isascii() else text


def mask_path(path: str) -> str:
    """``/api/v1/cti/SECRET`` -> ``/api/v1/cti/***`` (the caller log path stays readable)."""
    prefix = "/api/v1/cti/"
    if path.startswith(prefix) and path != prefix + "log":
        return prefix + MASK
    return path


def without_token(params: dict[str, Any]) -> dict[str, Any]:
    # A PBX may repeat the token as a parameter; Rails' path token wins, and
    # the journal must not keep either.
    return {k: (MASK if k == "token" else v) for k, v in params.items()}


def push_record(*, method: str, path: str, content_type: str | None, encoding: str | None,
                params: dict[str, Any] | None, repeated_keys: list[str], token_valid: bool, status: int,
                answer: dict[str, Any], outcome: str, reason: str, details: dict[str, Any],
                duration_ms: float, fault: dict[str, Any] | None, accept: Any = ACCEPT_UNKNOWN,
                html: bool = False) -> dict[str, Any]:
    """One journal entry as a plain dict (no Flask objects: it crosses to the writer thread)."""
    shown = without_token(params) if params is not None else None
    return {
        "time": rails_time(datetime.now(timezone.utc)),
        "method": method,
        "path": mask_path(path),
        "content_type": content_type,
        "encoding": encoding,
        "params": shown,
        "repeated_keys": repeated_keys,
        "call_id": call_id_of(shown or {}),
        "event": (shown or {}).get("event"),
        "token_valid": token_valid,
        "status": status or None,  # None: a fault sent no answer
        "answer": answer,
        "outcome": outcome,
        "reason": reason,
        "details": details,
        "duration_ms": round(duration_ms, 3),
        "fault": fault,
        # The Accept header (None: not sent): Zammad's error pages follow it.
        **({} if accept is ACCEPT_UNKNOWN else {"accept": accept}),
        "html": html,  # Zammad's HTML error page was sent: the request's Accept did not ask for JSON
    }


def _findings_of(entry: dict[str, Any], new_call_params: dict[str, Any] | None) -> list[Finding]:
    """The findings of one journal entry; ``new_call_params`` are its call's newCall's, if known."""
    return request_findings(params=entry["params"], encoding=entry["encoding"], repeated_keys=entry["repeated_keys"],
                            outcome=entry["outcome"], token_valid=entry["token_valid"], fault=entry["fault"],
                            new_call_params=new_call_params, status=entry["status"],
                            accept=entry.get("accept", ACCEPT_UNKNOWN), html_answer=entry.get("html"),
                            content_type_missing=not entry["content_type"] and entry["params"] is not None
                            and entry["encoding"] == "urlencoded")


@dataclass
class _Recheck:
    request_id: int
    call_id: str
    entry: dict[str, Any]
    others_pending: dict[int, tuple[int, int]]  # the other writers' board slots when the entry was judged
    deadline: float


class Journal:
    """The journal, kept in the mock's SQLite database: the newest ``limit`` requests survive a restart."""

    def __init__(self, db: Database, limit: int = DEFAULT_JOURNAL_LIMIT) -> None:
        self._db = db
        self._limit = limit
        self._queue: queue.SimpleQueue[dict[str, Any] | threading.Event | None] = queue.SimpleQueue()
        self._hurry = threading.Event()
        self._recent_new_calls: dict[str, dict[str, Any]] = {}  # insertion-ordered: the oldest goes first
        self._board = WriterBoard(f"{db.path}.writers")
        self._rechecks: list[_Recheck] = []  # only the writer thread touches these
        self._writer = threading.Thread(target=self._write_forever, name="zammad-cti-journal", daemon=True)
        self._writer.start()
        self._closed = False

    # Writing ----------------------------------------------------------------

    def record(self, record: dict[str, Any]) -> None:
        """Queue one :func:`push_record`; returns at once."""
        self._board.queued()
        self._queue.put(record)

    def _write_forever(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=_RECHECK_SECONDS if self._rechecks else None)
            except queue.Empty:
                self._recheck_safely()
                continue
            if isinstance(item, dict):
                # Let requests gather for a moment: one wake-up and one transaction for many
                # requests, instead of a thread switch per request that slows every answer.
                # A reader waiting in flush() cuts the moment short; a reader in another worker
                # waits for it (see writer_board.py: a writer that looked for readers every few
                # milliseconds cost every push about 20 us).
                self._hurry.wait(_GATHER_SECONDS)
            self._hurry.clear()
            batch, waiters, stop = [], [], False
            while True:
                if item is None:
                    stop = True
                elif isinstance(item, threading.Event):
                    waiters.append(item)
                else:
                    batch.append(item)
                if len(batch) >= _BATCH:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                rechecks = len(self._rechecks)
                try:
                    self._write(batch)
                except Exception as exc:  # never lose the writer thread: say so and go on
                    print(f"zammad-cti: journal write failed ({exc!r}); {len(batch)} entries lost", flush=True)
                # Entries waiting for a recheck count as stored once it is done.
                self._board.stored(len(batch) - (len(self._rechecks) - rechecks))
            self._recheck_safely()
            for waiter in waiters:
                waiter.set()
            if stop:  # only close() asks the writer to stop
                self._board.release()  # after the last write: readers elsewhere waited for it
                self._db.close()  # idempotent: close() closes it again once it has joined
                return

    def _write(self, batch: list[dict[str, Any]]) -> None:
        # The findings first, outside the transaction: the write lock is held only for the inserts.
        rows, finding_rows, rechecks = [], [], []
        others_pending = self._board.others_pending()  # before the query: what it may not see yet
        stored_new_calls = self._stored_new_calls(batch)
        for index, entry in enumerate(batch):
            call_id = None if entry["call_id"] is None else _storable(str(entry["call_id"]))
            new_call_params = None
            if call_id is not None and entry["event"] in ("answer", "hangup"):
                new_call_params = self._recent_new_calls.get(call_id) or stored_new_calls.get(call_id)
            findings = _findings_of(entry, new_call_params)
            entry["findings"] = [f.to_json() for f in findings]
            if new_call_params is None and others_pending and call_id is not None \
                    and entry["event"] in ("answer", "hangup") and entry["params"] is not None:
                rechecks.append((index, call_id, entry))
            if entry["event"] == "newCall" and call_id is not None and entry["outcome"] in LOGGED_NEW_CALL:
                self._recent_new_calls[call_id] = entry["params"]
                if len(self._recent_new_calls) > _RECENT_NEW_CALLS:
                    del self._recent_new_calls[next(iter(self._recent_new_calls))]
            rows.append((entry["time"], call_id, _JSON.encode(entry)))
            finding_rows += [(index, entry["time"], call_id, f.code, f.severity, _JSON.encode(f.to_json()))
                             for f in findings]
        # Many rows per statement: SQLite is entered once per chunk, so this thread hands the GIL
        # back and forth with the request threads once per chunk, not once per row.
        with self._db.transaction() as conn:
            first = None
            for start in range(0, len(rows), _ROWS_PER_STATEMENT):
                chunk = rows[start:start + _ROWS_PER_STATEMENT]
                conn.execute("INSERT INTO requests (time, call_id, entry) VALUES " + ",".join(["(?,?,?)"] * len(chunk)),
                             [value for row in chunk for value in row])
                if first is None:
                    # AUTOINCREMENT ids inserted under one write lock are consecutive.
                    first = conn.execute("SELECT last_insert_rowid()").fetchone()[0] - len(chunk) + 1
            for start in range(0, len(finding_rows), _ROWS_PER_STATEMENT):
                chunk = finding_rows[start:start + _ROWS_PER_STATEMENT]
                conn.execute("INSERT INTO findings (request_id, time, call_id, code, severity, entry) VALUES "
                             + ",".join(["(?,?,?,?,?,?)"] * len(chunk)),
                             [value for index, *rest in chunk for value in (first + index, *rest)])
        deadline = time.monotonic() + _RECHECK_FOR_SECONDS
        self._rechecks += [_Recheck(first + index, call_id, entry, others_pending, deadline)
                           for index, call_id, entry in rechecks]
        last = first + len(batch) - 1
        if last // PRUNE_EVERY != (first - 1) // PRUNE_EVERY:
            with self._db.transaction() as conn:
                conn.execute("DELETE FROM requests WHERE id <= ?", (last - self._limit,))
                conn.execute("DELETE FROM findings WHERE request_id <= ?", (last - self._limit,))

    def _stored_new_calls(self, batch: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """The stored newCall parameters of the calls this batch answers or hangs up, where not at hand:
        newCalls from before a restart, or ones another worker received. One query per batch."""
        wanted = {str(entry["call_id"]) for entry in batch
                  if entry["call_id"] is not None and entry["event"] in ("answer", "hangup")}
        wanted -= self._recent_new_calls.keys()
        if not wanted:
            return {}
        return self._query_new_calls(wanted)

    def _recheck_safely(self) -> None:
        try:
            self._recheck()
        except Exception as exc:  # the findings stay as they were; the writer goes on
            print(f"zammad-cti: journal recheck failed ({exc!r}); {len(self._rechecks)} entries left as they are",
                  flush=True)
            self._board.stored(len(self._rechecks))
            self._rechecks = []

    def _recheck(self) -> None:
        """Complete the findings of answers and hangups whose newCall another worker was still storing.

        Their entries are stored at once, without the findings that compare them with the
        newCall (direction-changed, number-changed); the newCall is looked for again until
        it is found, or the other writers have stored what they held then, or a second passed.
        Nobody waits for anybody: two writers each holding the other's newCall both go on.
        """
        if not self._rechecks:
            return
        # Whether the other writers had caught up is asked before the query, which then sees all they stored.
        caught_up = [self._board.caught_up(recheck.others_pending) for recheck in self._rechecks]
        found = self._query_new_calls({recheck.call_id for recheck in self._rechecks})
        now, done, kept = time.monotonic(), [], []
        for recheck, others_done in zip(self._rechecks, caught_up, strict=True):
            if recheck.call_id in found:
                done.append((recheck, found[recheck.call_id]))
            elif others_done or now > recheck.deadline:
                done.append((recheck, None))  # there is no such newCall, or it takes too long
            else:
                kept.append(recheck)
        self._rechecks = kept
        added = []
        for recheck, new_call_params in done:
            if new_call_params is None:
                continue
            entry = recheck.entry
            findings = _findings_of(entry, new_call_params)
            known = {(f["code"], f["field"]) for f in entry["findings"]}
            new = [f for f in findings if (f.code, f.field) not in known]
            if new:
                entry["findings"] += [f.to_json() for f in new]
                added.append((recheck, new))
        if added:
            with self._db.transaction() as conn:
                for recheck, new in added:
                    conn.execute("UPDATE requests SET entry = ? WHERE id = ?",
                                 (_JSON.encode(recheck.entry), recheck.request_id))
                    conn.executemany(
                        "INSERT INTO findings (request_id, time, call_id, code, severity, entry) VALUES (?,?,?,?,?,?)",
                        [(recheck.request_id, recheck.entry["time"], recheck.call_id, f.code, f.severity,
                          _JSON.encode(f.to_json())) for f in new])
        if done:
            self._board.stored(len(done))

    def _query_new_calls(self, call_ids: set[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        with self._db.connection() as conn:
            for call_id, params in conn.execute(
                f"SELECT call_id, json_extract(entry, '$.params') FROM requests WHERE call_id IN "
                f"({','.join('?' * len(call_ids))}) AND json_extract(entry, '$.event') = 'newCall' "
                f"AND json_extract(entry, '$.outcome') IN ({','.join('?' * len(LOGGED_NEW_CALL))}) ORDER BY id",
                [*call_ids, *LOGGED_NEW_CALL],
            ):
                found.setdefault(call_id, json.loads(params))
        return found

    def flush(self, timeout: float = 10) -> None:
        """Wait until every request recorded so far, by this worker or another, is stored."""
        if self._closed or not self._writer.is_alive():
            return
        done = threading.Event()
        self._queue.put(done)
        self._hurry.set()
        done.wait(timeout)
        self._board.wait_for_writers(timeout)

    def close(self) -> None:
        """Store what is queued, stop the writer (a graceful stop loses nothing), close the file."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._hurry.set()
        if threading.current_thread() is self._writer:
            # The app was garbage-collected on the writer thread itself: it cannot wait for
            # itself, so it closes the file once it has stored what is queued.
            return
        self._writer.join(timeout=30)
        self._db.close()

    # Reading ----------------------------------------------------------------

    def entries(self, call_id: str | None = None, limit: int | None = None,
                since: str | None = None, after: int | None = None) -> list[dict[str, Any]]:
        """Oldest first; filtered by ``call_id``, ``since`` (time) or ``after`` (id); the newest ``limit``."""
        self.flush()
        sql, args, where = "SELECT id, entry FROM requests", [], []
        for clause, value in (("call_id = ?", call_id), ("time >= ?", since), ("id > ?", after)):
            if value is not None:
                where.append(clause)
                args.append(value)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(max(limit, 0))
        with self._db.connection() as conn:
            rows = conn.execute(sql, args).fetchall()
        return [{**json.loads(text), "id": row_id} for row_id, text in reversed(rows)]

    def findings(self, call_id: str | None = None, since: str | None = None) -> list[dict[str, Any]]:
        """Stored findings, oldest first, each with its request's id, time and call."""
        self.flush()
        sql, args, where = "SELECT id, request_id, time, call_id, entry FROM findings", [], []
        for clause, value in (("call_id = ?", call_id), ("time >= ?", since)):
            if value is not None:
                where.append(clause)
                args.append(value)
        if where:
            sql += " WHERE " + " AND ".join(where)
        with self._db.connection() as conn:
            rows = conn.execute(sql + " ORDER BY id", args).fetchall()
        return [{"id": fid, "request_id": rid, "time": time, "call_id": cid, **json.loads(text)}
                for fid, rid, time, cid, text in rows]

    def clear(self) -> None:
        self.flush()
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM requests")
            conn.execute("DELETE FROM findings")

    def __len__(self) -> int:
        self.flush()
        with self._db.connection() as conn:
            return conn.execute("SELECT count(*) FROM requests").fetchone()[0]

