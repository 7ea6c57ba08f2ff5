"""``serve --journal PATH``: the caller log and the journal, written behind into one SQLite file.

The state is in memory (:mod:`.zammad.call_log`, :mod:`.admin.journal`);
this file is where it goes when the user asks to keep it. A thread of its
own wakes every half second, takes what changed and writes it in one
transaction, so a push never waits for the disk. At the start the file's
contents are loaded back (what the start-up banner reports as resumed);
``report`` reads the same file.

Tables: ``calls`` (the caller log, one row per call), ``requests`` (the
journal, with each entry's findings) and ``findings`` (the same findings,
one row each, for SQL queries).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from .admin.journal import Journal
from .zammad.call_log import CallLog, load_entry

FLUSH_EVERY_SECONDS = 0.5

SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    id      INTEGER PRIMARY KEY,
    call_id TEXT NOT NULL UNIQUE,
    entry   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS requests (
    id      INTEGER PRIMARY KEY,
    time    TEXT NOT NULL,
    call_id TEXT,
    entry   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS requests_call_id ON requests (call_id);
CREATE TABLE IF NOT EXISTS findings (
    id         INTEGER PRIMARY KEY,
    request_id INTEGER,
    time       TEXT NOT NULL,
    call_id    TEXT,
    code       TEXT NOT NULL,
    severity   TEXT NOT NULL,
    entry      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS findings_call_id ON findings (call_id);
"""


class JournalFileError(Exception):
    """The file cannot be used as a journal (not SQLite, unreadable); the message says why."""


@dataclass
class Resumed:
    calls: int
    requests: int


class JournalFile:
    """One SQLite file; used by one thread at a time (the write-behind, or ``report``)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise JournalFileError(f"{self.path} could not be opened as a zammad-cti journal: {exc}") from None

    def load_into(self, calls: CallLog, journal: Journal) -> Resumed:
        """Put the file's calls and requests back into memory."""
        try:
            call_rows = self._conn.execute("SELECT entry FROM calls ORDER BY id").fetchall()
            request_rows = self._conn.execute("SELECT id, entry FROM requests ORDER BY id").fetchall()
            calls.load(load_entry(text) for (text,) in call_rows)
            journal.load({**json.loads(text), "id": row_id} for row_id, text in request_rows)
        except (sqlite3.Error, ValueError, TypeError) as exc:
            raise JournalFileError(f"{self.path} could not be read as a zammad-cti journal: {exc}") from None
        return Resumed(len(call_rows), len(request_rows))

    def write(self, calls: CallLog, journal: Journal) -> tuple[int, int]:
        """Write what changed since the last call, in one transaction; returns (calls, requests) written."""
        calls_cleared, call_rows, oldest_call = calls.take_changes()
        journal_cleared, entries, oldest_request = journal.take_new()
        if not (calls_cleared or call_rows or journal_cleared or entries):
            return 0, 0
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            if calls_cleared:
                conn.execute("DELETE FROM calls")
            conn.executemany("INSERT OR REPLACE INTO calls (id, call_id, entry) VALUES (?, ?, ?)", call_rows)
            conn.execute("DELETE FROM calls WHERE id < ?", (oldest_call,))
            if journal_cleared:
                conn.execute("DELETE FROM requests")
                conn.execute("DELETE FROM findings")
            conn.executemany("INSERT OR REPLACE INTO requests (id, time, call_id, entry) VALUES (?, ?, ?, ?)",
                             [row[:4] for row in entries])
            conn.executemany(
                "INSERT OR REPLACE INTO findings (id, request_id, time, call_id, code, severity, entry) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(finding_id, request_id, time, call_id, code, severity, text)
                 for request_id, time, call_id, _, findings in entries
                 for finding_id, code, severity, text in findings])
            conn.execute("DELETE FROM requests WHERE id < ?", (oldest_request,))
            conn.execute("DELETE FROM findings WHERE request_id < ?", (oldest_request,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return len(call_rows), len(entries)

    def counts(self) -> tuple[int, int]:
        calls = self._conn.execute("SELECT count(*) FROM calls").fetchone()[0]
        requests = self._conn.execute("SELECT count(*) FROM requests").fetchone()[0]
        return calls, requests

    def close(self) -> None:
        self._conn.close()


class WriteBehind:
    """The thread that writes the caller log and the journal into a :class:`JournalFile` in batches."""

    def __init__(self, file: JournalFile, calls: CallLog, journal: Journal) -> None:
        self.file = file
        self._calls = calls
        self._journal = journal
        calls.track_changes()
        journal.track_new()
        self._stop = threading.Event()
        self._lock = threading.Lock()  # one write at a time: the thread's, or a flush's
        self.written = (0, 0)
        self._thread = threading.Thread(target=self._run, name="zammad-cti-write-behind", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(FLUSH_EVERY_SECONDS):
            try:
                self.flush()
            except Exception as exc:  # never lose the thread: say so and try again next time
                print(f"zammad-cti: writing {self.file.path} failed ({exc!r}); retrying", flush=True)

    def flush(self) -> None:
        with self._lock:
            calls, requests = self.file.write(self._calls, self._journal)
            self.written = (self.written[0] + calls, self.written[1] + requests)

    def close(self) -> tuple[int, int]:
        """Write what is left and close the file; returns what the file holds (calls, requests)."""
        self._stop.set()
        self._thread.join(timeout=30)
        self.flush()
        counts = self.file.counts()
        self.file.close()
        return counts
