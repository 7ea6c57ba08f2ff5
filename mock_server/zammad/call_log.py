"""The caller log as a store: Zammad's ``cti_logs`` table, kept in the mock's SQLite database.

The life-cycle rules themselves are the pure functions of :mod:`.calls`; this
module loads a call, applies one of them and saves it with a compare-and-swap
(``UPDATE ... WHERE entry = <what was read>``), retried on a lost race, so
concurrent events of one call (even in different worker processes) never lose
or mix up an update, and SQLite's write lock is held for one statement only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import fields
from datetime import datetime
from typing import Any

from ..db import Database
from .caller_id import Directory
from .calls import (
    DEFAULT_MAX_ENTRIES,
    EVENTS,
    CallFacts,
    CallLogEntry,
    Clock,
    answer_call,
    answer_fails_after_saving,
    hang_up_call,
    new_call_entry,
    utc_now,
)
from .errors import CtiError
from .ruby import to_s

_TIME_FIELDS = {"initialized_at", "start_at", "end_at", "created_at", "updated_at"}
_FIELD_NAMES = [f.name for f in fields(CallLogEntry)]


def _dump(entry: CallLogEntry) -> str:
    # Not dataclasses.asdict: it deep-copies, and this runs on every event.
    data = {name: getattr(entry, name) for name in _FIELD_NAMES}
    for name in _TIME_FIELDS:
        if data[name] is not None:
            data[name] = data[name].isoformat()
    return json.dumps(data, separators=(",", ":"))


def _load(row_id: int, text: str) -> CallLogEntry:
    data = json.loads(text)
    for name in _TIME_FIELDS:
        if data.get(name) is not None:
            data[name] = datetime.fromisoformat(data[name])
    data["id"] = row_id
    return CallLogEntry(**{name: data.get(name) for name in _FIELD_NAMES})


def _key(call_id: Any) -> str | None:
    # Zammad looks calls up with find_by(call_id: ...) on a string column: a JSON number 5
    # and "5" are one call, and an ID longer than the stored (cut) one finds nothing.
    return to_s(call_id)


class CallLog:
    """Thread- and process-safe caller log; keeps the newest ``max_entries`` calls (up to 10% more)."""

    def __init__(self, db: Database, clock: Clock = utc_now, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self._db = db
        self._clock = clock
        self._max_entries = max_entries
        # Prune now and then, not on every call: between max_entries and 10% more are kept.
        self._prune_every = max(1, min(1_000, max_entries // 10))

    def process(self, params: Mapping[str, Any], directory: Directory, agent_found: bool = False) -> CallLogEntry | None:
        """Record one event; raises the :class:`CtiError` a real Zammad would answer with.

        ``agent_found``: an ``answeringNumber`` named a known agent (see
        :func:`.calls.answer_fails_after_saving`).
        """
        facts = CallFacts.of(params, directory)
        event = params.get("event")
        if event not in EVENTS:
            raise CtiError("unknown-event",
                           f"event {event!r} is none of newCall, answer, hangup (Zammad: ArgumentError Unknown event)")
        key = _key(facts.call_id)
        if event == "newCall":
            return self._create(key, params, facts)
        while True:
            with self._db.connection() as conn:
                row = None if key is None else conn.execute(
                    "SELECT id, entry FROM calls WHERE call_id = ?", (key,)).fetchone()
            if row is None:
                raise CtiError("unknown-call",
                               f"{event} for callId {facts.call_id!r}, which no newCall created (Zammad: No such call_id)")
            entry = _load(*row)
            now = self._clock()
            if event == "answer":
                if not answer_call(entry, facts, now):
                    return None
            else:
                hang_up_call(entry, facts, now)
            # Compare and swap: the write lock is held for this one statement only, never while
            # Python runs; if another event of the call came first, apply this one to its result.
            cursor = self._db.write("UPDATE calls SET entry = ? WHERE id = ? AND entry = ?",
                                    (_dump(entry), entry.id, row[1]))
            if cursor.rowcount:
                break
        if answer_fails_after_saving(params) and not agent_found:
            raise CtiError("internal-error", "inbound answer with user as an array (or another non-string): Zammad "
                                             "calls user.downcase to find the answering agent, a NoMethodError; "
                                             "the caller-log entry was already updated to answer")
        return entry

    def _create(self, key: str | None, params: Mapping[str, Any], facts: CallFacts) -> CallLogEntry:
        if key is not None:
            with self._db.connection() as conn:
                if conn.execute("SELECT 1 FROM calls WHERE call_id = ?", (key,)).fetchone():
                    raise CtiError("duplicate-call", f"a call with callId {facts.call_id!r} already exists "
                                                     "(Zammad: RuntimeError call_id ... already exists!)")
        entry = new_call_entry(0, params, facts, self._clock())
        # One statement, atomic on its own: the unique call_id decides between two newCalls
        # racing for the same callId, and between IDs that are one once cut at 250 characters.
        cursor = self._db.write("INSERT OR IGNORE INTO calls (call_id, entry) VALUES (?, ?)",
                                (entry.call_id, _dump(entry)))
        if cursor.rowcount == 0:
            raise CtiError("duplicate-call-race", f"the caller log already holds call ID {entry.call_id!r} "
                                                  "(the unique index on call_id: ActiveRecord::RecordNotUnique)")
        entry.id = cursor.lastrowid
        if entry.id % self._prune_every == 0:
            # Bounded: a long load test must not grow the database without end.
            self._db.write("DELETE FROM calls WHERE id <= ?", (entry.id - self._max_entries,))
        return entry

    def newest(self, limit: int) -> list[dict[str, Any]]:
        """Entries newest first, as Zammad orders the caller log."""
        with self._db.connection() as conn:
            rows = conn.execute("SELECT id, entry FROM calls ORDER BY id DESC LIMIT ?", (max(limit, 0),)).fetchall()
        return [_load(*row).to_json() for row in rows]

    def get(self, call_id: Any) -> dict[str, Any] | None:
        with self._db.connection() as conn:
            row = conn.execute("SELECT id, entry FROM calls WHERE call_id = ?", (_key(call_id) or "",)).fetchone()
        return _load(*row).to_json() if row else None

    def unfinished(self, started_before: datetime) -> list[dict[str, Any]]:
        """Calls not hung up that started before ``started_before`` (ringing or talking "forever")."""
        with self._db.connection() as conn:
            rows = conn.execute(
                "SELECT id, entry FROM calls WHERE json_extract(entry, '$.state') != 'hangup' "
                "AND json_extract(entry, '$.initialized_at') < ? ORDER BY id",
                (started_before.isoformat(),),
            ).fetchall()
        return [_load(*row).to_json() for row in rows]

    def clear(self) -> None:
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM calls")

    def __len__(self) -> int:
        with self._db.connection() as conn:
            return conn.execute("SELECT count(*) FROM calls").fetchone()[0]
