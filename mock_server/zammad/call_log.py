"""The caller log as a store: Zammad's ``cti_logs`` table, in memory.

One process owns it: a dict keyed by call ID (insertion-ordered, so the
oldest call is the first key) and one lock. An event is looked up, checked
and applied under the lock, so concurrent events of one call never lose or
mix up an update. Each call is kept as a row, a tuple of plain values as a
table holds it (its ``preferences`` as JSON text): CPython's cyclic garbage
collector does not track such tuples, so its full collections never walk
the caller log (10,000 entry objects made them pauses of 16 ms, the mock's
p99). The life-cycle rules themselves are the pure functions of
:mod:`.calls`. When the user asks for persistence, the write-behind thread
(:mod:`..db`) takes the changed calls with :meth:`CallLog.take_changes`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import fields
from datetime import datetime
from operator import attrgetter
from typing import Any

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
_PREFERENCES = _FIELD_NAMES.index("preferences")
_INITIALIZED_AT, _STATE = _FIELD_NAMES.index("initialized_at"), _FIELD_NAMES.index("state")
_values = attrgetter(*_FIELD_NAMES)

Row = tuple[Any, ...]


def to_row(entry: CallLogEntry) -> Row:
    """The entry as the store keeps it: its fields in order, ``preferences`` as JSON text."""
    values = list(_values(entry))
    values[_PREFERENCES] = json.dumps(entry.preferences, separators=(",", ":")) if entry.preferences else ""
    return tuple(values)


def from_row(row: Row) -> CallLogEntry:
    entry = CallLogEntry(*row)
    entry.preferences = json.loads(row[_PREFERENCES]) if row[_PREFERENCES] else {}
    return entry


def dump_entry(entry: CallLogEntry) -> str:
    """The entry as stored in a journal file (every field, so that a restart puts it back whole)."""
    data = {name: getattr(entry, name) for name in _FIELD_NAMES}
    for name in _TIME_FIELDS:
        if data[name] is not None:
            data[name] = data[name].isoformat()
    return json.dumps(data, separators=(",", ":"), default=str)


def load_entry(text: str) -> CallLogEntry:
    data = json.loads(text)
    for name in _TIME_FIELDS:
        if data.get(name) is not None:
            data[name] = datetime.fromisoformat(data[name])
    return CallLogEntry(**{name: data.get(name) for name in _FIELD_NAMES if name in data})


def _key(call_id: Any) -> str | None:
    # Zammad looks calls up with find_by(call_id: ...) on a string column: a JSON number 5
    # and "5" are one call, and an ID longer than the stored (cut) one finds nothing.
    return to_s(call_id)


class CallLog:
    """Thread-safe caller log; keeps the newest ``max_entries`` calls."""

    def __init__(self, clock: Clock = utc_now, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self._clock = clock
        self._max_entries = max_entries
        self._calls: dict[str, Row] = {}
        self._lock = threading.Lock()
        self._next_id = 1
        self._changed: dict[str, Row] | None = None  # None: nobody writes behind
        self._cleared = False

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
        with self._lock:
            row = None if key is None else self._calls.get(key)
            if row is None:
                raise CtiError("unknown-call",
                               f"{event} for callId {facts.call_id!r}, which no newCall created (Zammad: No such call_id)")
            entry = from_row(row)
            now = self._clock()
            if event == "answer":
                if not answer_call(entry, facts, now):
                    return None
            else:
                hang_up_call(entry, facts, now)
            self._save(entry)
        if answer_fails_after_saving(params) and not agent_found:
            raise CtiError("internal-error", "inbound answer with user as an array (or another non-string): Zammad "
                                             "calls user.downcase to find the answering agent, a NoMethodError; "
                                             "the caller-log entry was already updated to answer")
        return entry

    def _create(self, key: str | None, params: Mapping[str, Any], facts: CallFacts) -> CallLogEntry:
        with self._lock:
            if key is not None and key in self._calls:
                raise CtiError("duplicate-call", f"a call with callId {facts.call_id!r} already exists "
                                                 "(Zammad: RuntimeError call_id ... already exists!)")
            entry = new_call_entry(self._next_id, params, facts, self._clock())
            if entry.call_id in self._calls:
                # find_by(call_id: the whole ID) found nothing, the insert of the cut one meets the unique index.
                raise CtiError("duplicate-call-race", f"the caller log already holds call ID {entry.call_id!r} "
                                                      "(the unique index on call_id: ActiveRecord::RecordNotUnique)")
            self._next_id += 1
            self._save(entry)
            if len(self._calls) > self._max_entries:  # bounded: a long load test must not grow without end
                del self._calls[next(iter(self._calls))]
            return entry

    def _save(self, entry: CallLogEntry) -> None:
        row = self._calls[entry.call_id] = to_row(entry)
        if self._changed is not None:
            self._changed[entry.call_id] = row

    # Write-behind and resuming -------------------------------------------

    def track_changes(self) -> None:
        """Start remembering changed calls for :meth:`take_changes` (persistence was asked for)."""
        with self._lock:
            if self._changed is None:
                self._changed = {}

    def take_changes(self) -> tuple[bool, list[tuple[int, str, str]], int]:
        """(cleared since last time, the calls changed since as (id, call ID, stored text), the lowest id kept)."""
        with self._lock:
            changed, self._changed = (self._changed or {}), {}
            cleared, self._cleared = self._cleared, False
            oldest = next(iter(self._calls.values()))[0] if self._calls else self._next_id
        rows = [(row[0], key, dump_entry(from_row(row))) for key, row in changed.items()]
        return cleared, rows, oldest

    def load(self, entries: Iterable[CallLogEntry]) -> None:
        """Put back calls from an earlier run (oldest first), as they were."""
        with self._lock:
            for entry in entries:
                self._calls[_key(entry.call_id)] = to_row(entry)
                self._next_id = max(self._next_id, entry.id + 1)
            while len(self._calls) > self._max_entries:
                del self._calls[next(iter(self._calls))]

    # Reading ----------------------------------------------------------------

    def newest(self, limit: int) -> list[dict[str, Any]]:
        """Entries newest first, as Zammad orders the caller log."""
        with self._lock:
            rows = list(reversed(self._calls.values()))[:max(limit, 0)]
        return [from_row(row).to_json() for row in rows]

    def get(self, call_id: Any) -> dict[str, Any] | None:
        with self._lock:
            key = _key(call_id)
            row = None if key is None else self._calls.get(key)
        return from_row(row).to_json() if row else None

    def unfinished(self, started_before: datetime) -> list[dict[str, Any]]:
        """Calls not hung up that started before ``started_before`` (ringing or talking "forever")."""
        with self._lock:
            rows = [row for row in self._calls.values()
                    if row[_STATE] != "hangup" and row[_INITIALIZED_AT] < started_before]
        return [from_row(row).to_json() for row in rows]

    def clear(self) -> None:
        with self._lock:
            self._calls.clear()
            if self._changed is not None:
                self._changed.clear()
                self._cleared = True

    def __len__(self) -> int:
        return len(self._calls)
