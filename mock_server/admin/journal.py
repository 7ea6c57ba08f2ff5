"""The request journal: every request the CTI endpoint received, what it answered, and the findings.

It answers "what did my PBX send, and what did the mock make of it". The
token never enters it: the path is stored masked and only whether the token
was right is kept.

One process owns it, in memory: a push records its entry as soon as its
answer is decided (before a latency fault's wait), under a lock that
numbers it, so the journal's order is the order the requests arrived in.
The findings of an entry are worked out then, against its call's newCall;
those that need a call's later requests (a second hangup, a reused callId)
are judged when the journal is read (:mod:`.findings`). When persistence is
asked for, the write-behind thread (:mod:`..db`) takes new entries with
:meth:`Journal.take_new`.
"""

from __future__ import annotations

import json
import threading
import zlib
from collections import deque
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from ..zammad.calls import call_id_of, rails_time
from .findings import ACCEPT_UNKNOWN, LOGGED_NEW_CALL, Finding, request_findings

DEFAULT_JOURNAL_LIMIT = 100_000
MASK = "***"
_JSON = json.JSONEncoder(default=str, separators=(",", ":"))
# One entry as the journal file stores it: id, time, call ID, the entry's JSON, and its findings as
# (finding id, code, severity, JSON without the id).
FileRow = tuple[int, str, str | None, str, list[tuple[int, str, str, str]]]
NEW_CALLS_KEPT = 10_000  # newCall params at hand for judging answers and hangups: the caller log's default size


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
                html: bool = False, unreadable_parts: int = 0) -> dict[str, Any]:
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
        # Multipart parts whose name could not be read, left out of params (only when there were any).
        **({"unreadable_parts": unreadable_parts} if unreadable_parts else {}),
    }


def _findings_of(entry: dict[str, Any], new_call_params: dict[str, Any] | None) -> list[Finding]:
    """The findings of one journal entry; ``new_call_params`` are its call's newCall's, if known."""
    return request_findings(params=entry["params"], encoding=entry["encoding"], repeated_keys=entry["repeated_keys"],
                            outcome=entry["outcome"], token_valid=entry["token_valid"], fault=entry["fault"],
                            new_call_params=new_call_params, status=entry["status"],
                            accept=entry.get("accept", ACCEPT_UNKNOWN), html_answer=entry.get("html"),
                            unreadable_parts=entry.get("unreadable_parts", 0),
                            content_type_missing=not entry["content_type"] and entry["params"] is not None
                            and entry["encoding"] == "urlencoded")


class EntryBlocks:
    """Journal entries as JSON text, oldest first, compressed 64 at a time.

    The newest entries are plain text; every 64 are joined and compressed
    (zlib, level 1: about 1 us an entry, 670 -> 45 bytes on a PBX's pushes),
    so 100,000 entries take a few MB instead of 70. Ids are consecutive
    within a block; a reader decompresses only the blocks it asks for.
    Not thread-safe: the :class:`Journal` holds its lock around it.
    """

    SIZE = 64

    def __init__(self) -> None:
        self._sealed: deque[list[Any]] = deque()  # [first id, count, compressed texts, how many leading ones dropped]
        self._open: list[str] = []
        self._open_first = 0
        self.count = 0

    def append(self, entry_id: int, text: str) -> None:
        if self._open and entry_id != self._open_first + len(self._open):
            self._seal()
        if not self._open:
            self._open_first = entry_id
        self._open.append(text)
        self.count += 1
        if len(self._open) >= self.SIZE:
            self._seal()

    def _seal(self) -> None:
        data = zlib.compress("\n".join(self._open).encode("utf-8"), 1)  # JSON text never holds a raw newline
        self._sealed.append([self._open_first, len(self._open), data, 0])
        self._open = []

    def drop_oldest(self) -> None:
        if self._sealed:
            block = self._sealed[0]
            block[3] += 1
            if block[3] == block[1]:
                self._sealed.popleft()
        else:
            del self._open[0]
            self._open_first += 1
        self.count -= 1

    def first_id(self) -> int | None:
        if self._sealed:
            return self._sealed[0][0] + self._sealed[0][3]
        return self._open_first if self._open else None

    def snapshot(self, after: int | None = None) -> list[tuple[int, int, bytes | list[str]]]:
        """What holds the entries after the id ``after``, cheap to take under the lock: see :meth:`texts`."""
        low = (after or 0) + 1
        parts: list[tuple[int, int, bytes | list[str]]] = [
            (max(first + dropped, low), first, data) for first, count, data, dropped in self._sealed
            if first + count > low]
        if self._open and self._open_first + len(self._open) > low:
            parts.append((max(self._open_first, low), self._open_first, list(self._open)))
        return parts

    @staticmethod
    def texts(parts: list[tuple[int, int, bytes | list[str]]]) -> list[str]:
        """The entries of a :meth:`snapshot`, as JSON texts, oldest first (decompressed outside the lock)."""
        texts: list[str] = []
        for start, first, data in parts:
            block = data if isinstance(data, list) else zlib.decompress(data).decode("utf-8").split("\n")
            texts.extend(block[start - first:])
        return texts

    def clear(self) -> None:
        self._sealed.clear()
        self._open = []
        self.count = 0


class Journal:
    """The newest ``limit`` requests, oldest first, numbered in the order they arrived.

    An entry is judged (its findings worked out) as it is recorded, against
    its call's newCall, and kept as compact JSON text in compressed blocks
    (:class:`EntryBlocks`): a hundredth of the memory of the dicts, and
    nothing for the cyclic garbage collector to walk (a full collection over
    100,000 entry dicts was the mock's p99). The newCall parameters kept at
    hand for judging are JSON text too.
    """

    def __init__(self, limit: int = DEFAULT_JOURNAL_LIMIT) -> None:
        self._limit = limit
        self._entries = EntryBlocks()
        self._lock = threading.Lock()
        self._next_id = 1
        self._next_finding_id = 1
        self._new_calls: dict[str, str] = {}  # call ID -> its newCall's params as JSON, for answers and hangups
        self._pending: list[FileRow] | None = None  # entries for the write-behind, ready to insert; None: nobody writes
        self._cleared = False

    # Writing ----------------------------------------------------------------

    def record(self, record: dict[str, Any]) -> None:
        """Number, judge and append one :func:`push_record`."""
        with self._lock:
            record["id"] = self._next_id
            self._next_id += 1
            self._judge(record)
            if self._entries.count > self._limit:
                self._entries.drop_oldest()

    def load(self, entries: Iterable[dict[str, Any]]) -> None:
        """Put back entries from an earlier run (judged, oldest first); new ones are numbered after them."""
        with self._lock:
            for entry in entries:
                self._entries.append(entry["id"], _JSON.encode(entry))
                self._next_id = max(self._next_id, entry["id"] + 1)
                self._note_new_call(entry)
                for finding in entry.get("findings", []):
                    self._next_finding_id = max(self._next_finding_id, finding.get("id", 0) + 1)
                if self._entries.count > self._limit:
                    self._entries.drop_oldest()

    def track_new(self) -> None:
        """Keep new entries ready for :meth:`take_new` (persistence was asked for)."""
        with self._lock:
            if self._pending is None:
                self._pending = []

    def _note_new_call(self, entry: dict[str, Any]) -> None:
        call_id = entry["call_id"]
        if entry["event"] == "newCall" and call_id is not None and entry["outcome"] in LOGGED_NEW_CALL:
            self._new_calls[str(call_id)] = _JSON.encode(entry["params"])
            if len(self._new_calls) > NEW_CALLS_KEPT:
                del self._new_calls[next(iter(self._new_calls))]

    def _judge(self, entry: dict[str, Any]) -> None:
        """Work out the findings of a new entry and append it (under the lock)."""
        new_call_params = None
        if entry["call_id"] is not None and entry["event"] in ("answer", "hangup"):
            kept = self._new_calls.get(str(entry["call_id"]))
            new_call_params = None if kept is None else json.loads(kept)
        findings, file_findings = [], []
        for finding in _findings_of(entry, new_call_params):
            shown = finding.to_json()
            findings.append({"id": self._next_finding_id, **shown})
            if self._pending is not None:
                file_findings.append((self._next_finding_id, shown["code"], shown["severity"], _JSON.encode(shown)))
            self._next_finding_id += 1
        entry["findings"] = findings
        self._note_new_call(entry)
        text = _JSON.encode(entry)
        self._entries.append(entry["id"], text)
        if self._pending is not None:  # what the file needs, now, so that its thread does no JSON work
            call_id = None if entry["call_id"] is None else str(entry["call_id"])
            self._pending.append((entry["id"], entry["time"], call_id, text, file_findings))

    def _judged(self, after: int | None = None, newest: int | None = None) -> list[dict[str, Any]]:
        """Every entry (or those after the id ``after``; or only the ``newest`` of those) as dicts."""
        with self._lock:
            if newest is not None:
                last = self._next_id - 1
                after = max(after or 0, last - newest)
            parts = self._entries.snapshot(after)
        return [json.loads(text) for text in EntryBlocks.texts(parts)]

    def take_new(self) -> tuple[bool, list[FileRow], int]:
        """For the write-behind: (cleared since last time, the entries since as file rows, the lowest id kept)."""
        with self._lock:
            cleared, self._cleared = self._cleared, False
            rows, self._pending = (self._pending or []), ([] if self._pending is not None else None)
            first = self._entries.first_id()
            return cleared, rows, self._next_id if first is None else first

    # Reading ----------------------------------------------------------------

    def entries(self, call_id: str | None = None, limit: int | None = None,
                since: str | None = None, after: int | None = None) -> list[dict[str, Any]]:
        """Oldest first; filtered by ``call_id``, ``since`` (time) or ``after`` (id); the newest ``limit``."""
        filtered = call_id is not None or since is not None
        chosen = self._judged(after=after, newest=None if filtered or limit is None else max(limit, 0))
        if call_id is not None:
            chosen = [e for e in chosen if e["call_id"] is not None and str(e["call_id"]) == call_id]
        if since is not None:
            chosen = [e for e in chosen if e["time"] >= since]
        if limit is not None:
            chosen = chosen[len(chosen) - max(limit, 0):] if limit > 0 else []
        for e in chosen:
            e["findings"] = [_without_id(f) for f in e["findings"]]
        return chosen

    def findings(self, call_id: str | None = None, since: str | None = None) -> list[dict[str, Any]]:
        """Every finding, oldest first, each with its request's id, time and call."""
        chosen = self._judged()
        if call_id is not None:
            chosen = [e for e in chosen if e["call_id"] is not None and str(e["call_id"]) == call_id]
        if since is not None:
            chosen = [e for e in chosen if e["time"] >= since]
        return [{"id": f["id"], "request_id": e["id"], "time": e["time"],
                 "call_id": None if e["call_id"] is None else str(e["call_id"]), **_without_id(f)}
                for e in chosen for f in e["findings"]]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._new_calls.clear()
            if self._pending is not None:
                self._pending.clear()
            self._cleared = True

    def __len__(self) -> int:
        return self._entries.count


def _without_id(finding: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in finding.items() if k != "id"}
