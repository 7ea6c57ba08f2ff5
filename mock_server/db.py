"""One SQLite database per mock: the caller log, the journal and the findings.

SQLite in WAL mode lets several gunicorn workers (processes) and their threads
share one caller log without lost updates: a newCall is one ``INSERT OR
IGNORE`` (the unique callId decides duplicates), an answer or hangup a
compare-and-swap ``UPDATE`` (see :mod:`.zammad.call_log`), so a call's events
are applied one at a time whichever worker receives them. Readers take pooled
connections; writers share one connection per process under a lock.

``path=":memory:"`` means "keep nothing": a temporary database file, deleted
when the mock closes (a plain in-memory SQLite database cannot be shared
between threads, let alone processes).
"""

from __future__ import annotations

import fcntl
import json
import mmap
import os
import sqlite3
import struct
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

WRITE_WAIT_SECONDS = 30
_GENERATION = struct.Struct("<Q")  # the settings' generation as other workers see it

# The state every worker shares: the caller log and the settings. Small, hot writes.
STATE_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id TEXT NOT NULL UNIQUE,
    entry   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

# The journal and its findings, in a file of their own: SQLite locks a whole
# file per write, and the journal's batches must not hold up a ringing call.
JOURNAL_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    time    TEXT NOT NULL,
    call_id TEXT,
    entry   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS requests_call_id ON requests (call_id);
CREATE TABLE IF NOT EXISTS findings (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id INTEGER,
    time       TEXT NOT NULL,
    call_id    TEXT,
    code       TEXT NOT NULL,
    severity   TEXT NOT NULL,
    entry      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS findings_call_id ON findings (call_id);
"""


def journal_file(path: str | os.PathLike[str]) -> str:
    """Where the journal lives beside the state file: ``journal.sqlite3`` -> ``journal.requests.sqlite3``."""
    if str(path) == ":memory:":
        return ":memory:"
    path = Path(path).expanduser()
    return str(path.with_name(f"{path.stem}.requests{path.suffix or '.sqlite3'}"))


class Database:
    """A SQLite file shared by every thread and every worker process.

    Connections are pooled rather than kept per thread: Werkzeug's threaded
    server starts a thread per request, and a connection is worth reusing.
    """

    def __init__(self, path: str | os.PathLike[str] = ":memory:", schema: str = STATE_SCHEMA) -> None:
        self.temporary = str(path) == ":memory:"
        if self.temporary:
            fd, name = tempfile.mkstemp(prefix="zammad-cti-", suffix=".sqlite3")
            os.close(fd)
            self.path = Path(name)
        else:
            self.path = Path(path).expanduser()
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._idle: list[sqlite3.Connection] = []
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        # Threads of one process take turns here rather than in SQLite's busy
        # handler, which sleeps a whole millisecond or more per collision.
        self._write_lock = threading.Lock()
        self._write_conn: sqlite3.Connection | None = None
        self._closed = False
        with self.connection() as conn:
            conn.executescript(schema)  # idempotent; executescript manages its own transaction

    def _open(self, busy_timeout_ms: int = 30_000) -> sqlite3.Connection:
        if self._closed:  # a request still in flight at shutdown: no new connection, no new temporary file
            raise sqlite3.ProgrammingError(f"{self.path}: the database is closed")
        # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE below).
        conn = sqlite3.connect(self.path, timeout=busy_timeout_ms / 1000, isolation_level=None,
                               check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")  # no fsync: survives a crash of the mock, not of the machine
        with self._lock:
            self._all.append(conn)
        return conn

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """A pooled connection for reads (autocommit) or a transaction of the caller's own."""
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = self._open()
        try:
            yield conn
        finally:
            with self._lock:
                if self._closed:
                    conn.close()
                else:
                    self._idle.append(conn)

    # Writes: one connection per process, used under ``_write_lock``. It has no
    # busy timeout: SQLite's own busy handler sleeps a millisecond or more when
    # another worker process holds the lock for a few microseconds, so waiting
    # is done here, in steps of 50 microseconds doubling up to one millisecond.

    def _writer(self) -> sqlite3.Connection:
        if self._write_conn is None:
            self._write_conn = self._open(busy_timeout_ms=0)
        return self._write_conn

    @staticmethod
    def _when_free(statement: Callable[[], Any]) -> Any:
        delay, waited = 0.00005, 0.0
        while True:
            try:
                return statement()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc) or waited > WRITE_WAIT_SECONDS:
                    raise
            time.sleep(delay)
            waited += delay
            delay = min(delay * 2, 0.001)

    def write(self, sql: str, args: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        """One write statement, atomic on its own (SQLite wraps it in a transaction)."""
        with self._write_lock:
            conn = self._writer()
            return self._when_free(lambda: conn.execute(sql, args))

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that holds SQLite's write lock from its first statement."""
        with self._write_lock:
            conn = self._writer()
            self._when_free(lambda: conn.execute("BEGIN IMMEDIATE"))
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            self._when_free(lambda: conn.execute("COMMIT"))

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for conn in self._all:
                try:
                    conn.close()
                except sqlite3.Error:
                    pass
            self._all.clear()
            self._idle.clear()
            self._write_conn = None
        if self.temporary:
            for suffix in ("", "-wal", "-shm", ".generation", ".writers"):
                try:
                    os.remove(f"{self.path}{suffix}")
                except FileNotFoundError:
                    pass


class SharedSettings:
    """Settings every worker process must agree on (configuration, faults), in the ``meta`` table.

    Every change bumps ``generation`` and publishes it in a small file beside
    the database that every worker maps into memory. A worker reads that
    number before each request: a memory read, no system call, so the
    request's thread keeps the GIL (a ``stat`` would hand it to another
    thread and wait to get it back). When the number changed, the worker
    rereads the table.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self._marker = Path(f"{db.path}.generation")
        fd = os.open(self._marker, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size < _GENERATION.size:
                os.ftruncate(fd, _GENERATION.size)  # zeros: "no change published yet"
            self._published = mmap.mmap(fd, _GENERATION.size)
        finally:
            os.close(fd)  # the mapping stays valid
        self._publish_lock = threading.Lock()

    def generation(self) -> int:
        """A value that changes whenever the settings change, in any process."""
        return _GENERATION.unpack_from(self._published)[0]

    @contextmanager
    def _changing(self) -> Iterator[list[int]]:
        """Writers take turns (a file lock, across processes) from their transaction to publishing its
        generation, so the published number only grows and never runs ahead of the table."""
        with self._publish_lock, open(self._marker, "rb") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            new_generation: list[int] = []
            yield new_generation
            if new_generation:
                _GENERATION.pack_into(self._published, 0, new_generation[0])

    def read(self, *keys: str) -> dict[str, Any]:
        with self._db.connection() as conn:
            return self._read(conn, keys)

    @staticmethod
    def _read(conn: sqlite3.Connection, keys: tuple[str, ...]) -> dict[str, Any]:
        marks = ",".join("?" * len(keys))
        rows = conn.execute(f"SELECT key, value FROM meta WHERE key IN ({marks})", keys).fetchall()
        return {key: json.loads(value) for key, value in rows}

    def write(self, **values: Any) -> None:
        with self._changing() as generation, self._db.transaction() as conn:
            generation.append(self._write(conn, values))

    @staticmethod
    def _write(conn: sqlite3.Connection, values: dict[str, Any]) -> int:
        for key, value in values.items():
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, json.dumps(value)))
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('generation', '1') "
            "ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1"
        )
        return int(conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])

    def start(self, boot_id: str, **values: Any) -> bool:
        """Set ``values`` once per start of the mock: the first worker of a boot writes, later ones adopt.

        A worker that gunicorn starts later (or restarts) must not reset what
        ``/__admin`` changed since; a new ``serve`` (a new boot id) must.
        """
        with self._changing() as generation, self._db.transaction() as conn:
            if self._read(conn, ("boot",)).get("boot") != boot_id:
                generation.append(self._write(conn, {**values, "boot": boot_id}))
        return bool(generation)

    def update(self, key: str, change: Callable[[Any], Any]) -> Any:
        """Read-modify-write ``key`` atomically across processes; returns ``change``'s result."""
        with self._changing() as generation, self._db.transaction() as conn:
            current = self._read(conn, (key,)).get(key)
            new_value, result = change(current)
            if new_value is not current:
                generation.append(self._write(conn, {key: new_value}))
        return result
