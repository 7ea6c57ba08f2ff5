"""The journal and the caller log: in memory, in arrival order, written behind into a file when asked."""

from __future__ import annotations

import sqlite3

import requests
from agent import AGENT_AUTH

from mock_server import MockServer
from mock_server.admin.journal import EntryBlocks, Journal, push_record
from mock_server.db import JournalFile, WriteBehind
from mock_server.zammad.call_log import CallLog


def _record(call_id: str, event: str = "newCall") -> dict:
    return push_record(method="POST", path="/api/v1/cti/secret", content_type="application/json", encoding="json",
                       params={"event": event, "callId": call_id, "direction": "in"}, repeated_keys=[],
                       token_valid=True, status=200, answer={}, outcome="recorded", reason="newCall recorded",
                       details={}, duration_ms=0.1, fault=None)


def _life_cycle(n: int) -> list[dict[str, str]]:
    base = {"callId": f"order-{n}", "direction": "in", "from": "4930600000000", "to": "4989111111", "user": "x"}
    return [{**base, "event": "newCall"}, {**base, "event": "answer", "answeringNumber": "4989111111"},
            {**base, "event": "hangup", "cause": "normalClearing", "answeringNumber": "4989111111"}]


def test_30_sequential_events_come_out_in_the_order_sent():
    sent = [(params["callId"], params["event"]) for n in range(10) for params in _life_cycle(n)]
    with MockServer() as mock, requests.Session() as http:
        for n in range(10):
            for params in _life_cycle(n):
                assert http.post(mock.endpoint_url, data=params, timeout=5).status_code == 200
        listed = http.get(f"{mock.url}/__admin/requests", timeout=5).json()["requests"]
    assert [(entry["call_id"], entry["event"]) for entry in listed] == sent
    ids = [entry["id"] for entry in listed]
    assert ids == sorted(ids) and len(set(ids)) == 30


def test_the_limit_keeps_the_newest_and_numbers_go_on():
    journal = Journal(limit=3)
    for n in range(5):
        journal.record(_record(f"c{n}"))
    assert [(e["id"], e["call_id"]) for e in journal.entries()] == [(3, "c2"), (4, "c3"), (5, "c4")]
    assert [e["call_id"] for e in journal.entries(after=4)] == ["c4"]
    assert [e["call_id"] for e in journal.entries(limit=1)] == ["c4"]


def test_compressed_blocks_keep_every_entry_across_block_edges():
    journal = Journal(limit=150)  # blocks of 64: the oldest kept entry sits inside a sealed block
    for n in range(200):
        journal.record(_record(f"b{n}"))
    assert len(journal) == 150
    assert [e["id"] for e in journal.entries()] == list(range(51, 201))
    assert [e["id"] for e in journal.entries(after=63)] == list(range(64, 201))  # after a block's last id
    assert [e["id"] for e in journal.entries(after=100, limit=5)] == list(range(196, 201))
    assert [e["call_id"] for e in journal.entries(call_id="b120")] == ["b120"]
    assert journal.take_new()[2] == 51  # the lowest id kept, for the file's pruning


def test_blocks_seal_early_when_ids_jump_and_stay_small():
    blocks = EntryBlocks()
    for entry_id in (*range(1, 11), *range(20, 100)):  # a gap: a reset and a resume, say
        blocks.append(entry_id, f'{{"id":{entry_id},"pad":"{"x" * 600}"}}')
    texts = EntryBlocks.texts(blocks.snapshot(after=5))
    assert [int(t.split(",")[0].split(":")[1]) for t in texts] == [*range(6, 11), *range(20, 100)]
    sealed = sum(len(block[2]) for block in blocks._sealed)
    assert sealed < 64 * 600 / 10, f"64 entries of 620 bytes compress to {sealed} bytes"


def test_an_answer_is_judged_against_its_newcall_even_when_read_late():
    journal = Journal()
    journal.record(_record("late", "newCall"))
    answer = _record("late", "answer")
    answer["params"]["direction"] = "out"  # the answer says the opposite of its newCall
    journal.record(answer)
    codes = [f["code"] for f in journal.findings(call_id="late")]
    assert "direction-changed" in codes


def test_write_behind_round_trip_and_close_writes_what_is_left(tmp_path):
    path = tmp_path / "journal.sqlite3"
    calls, journal = CallLog(), Journal()
    behind = WriteBehind(JournalFile(path), calls, journal)
    journal.record(_record("kept-1"))
    journal.record(_record("kept-2"))
    assert behind.close() == (0, 2)  # closing at once still writes both
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM requests").fetchone()[0] == 2

    calls, journal = CallLog(), Journal()
    file = JournalFile(path)
    resumed = file.load_into(calls, journal)
    file.close()
    assert (resumed.calls, resumed.requests) == (0, 2)
    journal.record(_record("kept-3"))
    assert [(e["id"], e["call_id"]) for e in journal.entries()] == [(1, "kept-1"), (2, "kept-2"), (3, "kept-3")]


def test_a_persisted_mock_resumes_its_calls_and_a_reset_empties_the_file(tmp_path):
    path = tmp_path / "journal.sqlite3"
    config = {"JOURNAL": str(path)}
    with MockServer(config) as mock:
        for params in _life_cycle(1):
            assert requests.post(mock.endpoint_url, data=params, timeout=5).status_code == 200
    with MockServer(config) as mock:
        log = requests.get(f"{mock.url}/api/v1/cti/log", headers=AGENT_AUTH, timeout=5).json()["list"]
        assert [(e["call_id"], e["state"]) for e in log] == [("order-1", "hangup")]
        again = requests.post(mock.endpoint_url, data=_life_cycle(1)[0], timeout=5)
        assert again.status_code == 500  # the call is still there: a duplicate newCall, as in Zammad
        assert requests.post(f"{mock.url}/__admin/reset", timeout=5).status_code == 200
    with MockServer(config) as mock:
        assert requests.get(f"{mock.url}/__admin/health", timeout=5).json()["calls"] == 0
