"""The journal's lifetime: what it stores survives however its app goes away."""

from __future__ import annotations

import sqlite3

from mock_server.admin.journal import Journal, push_record
from mock_server.db import JOURNAL_SCHEMA, Database


def _record(call_id: str) -> dict:
    return push_record(method="POST", path="/api/v1/cti/secret", content_type="application/json", encoding="json",
                       params={"event": "newCall", "callId": call_id, "direction": "in"}, repeated_keys=[],
                       token_valid=True, status=200, answer={}, outcome="recorded", reason="newCall recorded",
                       details={}, duration_ms=0.1, fault=None)


def test_closed_from_its_own_writer_thread_it_stores_the_queue_and_stops(tmp_path):
    # An app dropped in a test can be garbage-collected on the journal's writer thread,
    # which then runs close() on itself: it cannot wait for itself to finish.
    path = tmp_path / "journal.requests.sqlite3"
    journal = Journal(Database(path, JOURNAL_SCHEMA))
    errors: list[BaseException] = []
    write = journal._write

    def write_then_close(batch):
        write(batch)
        try:
            journal.close()
        except BaseException as exc:  # noqa: B036 - whatever it is, the test must see it
            errors.append(exc)

    journal._write = write_then_close
    journal.record(_record("first"))
    journal.record(_record("second"))
    journal._writer.join(timeout=10)

    assert errors == []
    assert not journal._writer.is_alive()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM requests").fetchone()[0] == 2
