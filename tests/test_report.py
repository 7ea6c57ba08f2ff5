"""``zammad-cti report``: a journal written by a real mock, read back as text, JSON and JUnit.

One module-wide journal holds a PBX session with mistakes (a plain repeated
``user``, an answer before its newCall, a duplicate newCall, a call that never
hangs up, an unknown field, a malformed body, a wrong token) next to a clean
call; the tests read it through the console script and through click's
CliRunner. The mock's token is distinctive so that its absence from every
output can be checked.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner
from zammad_answers import ALREADY_EXISTS

from mock_server import MockServer
from mock_server.admin.faults import parse_fault_option
from mock_server.admin.report import ReportError, build_report, parse_since
from mock_server.cli import main

ZAMMAD_CTI = Path(sys.executable).parent / "zammad-cti"
TOKEN = "report-secret-7Qx2pZ"
WRONG_TOKEN = "wrong-secret-Lm40vB"

INBOUND = {"direction": "in", "from": "491711234567", "to": "4930600000000"}
OUTBOUND = {"direction": "out", "from": "4930600000000", "to": "4989123456"}
CALL_ORDER = ["clean-1", "user-1", "early-1", "dup-1", "open-1", "token-1"]


def clean_call(post, call_id: str) -> None:
    post(json={"event": "newCall", **INBOUND, "callId": call_id, "user": "Alice"})
    post(json={"event": "answer", **INBOUND, "callId": call_id, "user": "Alice"})
    post(json={"event": "hangup", **INBOUND, "callId": call_id, "cause": "normalClearing"})


def mistakes(post, url: str) -> None:
    # 'user' twice without [] (urlencoded), then an unknown field on the hangup.
    post(json={"event": "newCall", **INBOUND, "callId": "user-1"})
    post(data=[("event", "answer"), *INBOUND.items(), ("callId", "user-1"), ("user", "Anna"), ("user", "Ben")])
    post(json={"event": "hangup", **INBOUND, "callId": "user-1", "cause": "normalClearing", "colour": "blue"})
    # answer before (without) any newCall
    post(json={"event": "answer", **INBOUND, "callId": "early-1"})
    # the same newCall twice
    post(json={"event": "newCall", **OUTBOUND, "callId": "dup-1"})
    post(json={"event": "newCall", **OUTBOUND, "callId": "dup-1"})
    post(json={"event": "hangup", **OUTBOUND, "callId": "dup-1", "cause": "normalClearing"})
    # never hung up
    post(json={"event": "newCall", **INBOUND, "callId": "open-1"})
    # a body nobody can parse: no callId
    post(data="{not json", headers={"Content-Type": "application/json"})
    # the wrong token in the URL
    requests.post(url.replace(TOKEN, WRONG_TOKEN), json={"event": "newCall", **OUTBOUND, "callId": "token-1"},
                  timeout=10)


def poster(mock: MockServer):
    def post(**kwargs: Any) -> requests.Response:
        return requests.post(mock.endpoint_url, timeout=10, **kwargs)
    return post


def mock_config(path: Path, **extra: Any) -> dict[str, Any]:
    return {"JOURNAL": str(path), "TOKEN": TOKEN, **extra}


@pytest.fixture(scope="module")
def journal(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("report") / "j.sqlite3"
    with MockServer(mock_config(path)) as mock:
        post = poster(mock)
        clean_call(post, "clean-1")
        mistakes(post, mock.endpoint_url)
    return path


@pytest.fixture
def clean_journal(tmp_path) -> Path:
    path = tmp_path / "clean.sqlite3"
    with MockServer(mock_config(path)) as mock:
        clean_call(poster(mock), "clean-a")
        clean_call(poster(mock), "clean-b")
    return path


def report(*args: str) -> Any:
    """``zammad-cti report ARGS`` in-process; stdout and stderr apart."""
    return CliRunner().invoke(main, ["report", *args], catch_exceptions=False)


def report_process(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ZAMMAD_CTI), "report", *args], check=False, capture_output=True,
                          text=True, timeout=60, env=env)


def as_json(path: Path, *args: str) -> dict[str, Any]:
    result = report("--journal", str(path), "--format", "json", *args)
    return json.loads(result.stdout)


def calls_by_id(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {call["call_id"]: call for call in data["calls"]}


def codes(call: dict[str, Any]) -> list[str]:
    return [f["code"] for f in call["findings"]]


# text ---------------------------------------------------------------------------

@pytest.mark.skipif(not ZAMMAD_CTI.exists(), reason=f"console script {ZAMMAD_CTI} is not installed")
def test_text_report_lists_every_call_and_finding_and_fails(journal):
    result = report_process("--journal", str(journal), "--stale-after", "0")

    assert result.returncode == 1, result.stderr
    out = result.stdout
    positions = [out.index(f"Call {call_id} ") for call_id in CALL_ORDER]
    assert positions == sorted(positions), "calls in order of first appearance"
    for code in ("repeated-plain-key", "unknown-field", "event-before-newcall", "duplicate-newcall",
                 "call-not-ended", "malformed-body", "wrong-token"):
        assert code in out
    assert "Requests without a callId (1)" in out
    assert "Calls that never ended (1," in out
    assert "caller log: hangup, done" in out                      # clean-1's final state
    assert "caller log: no entry" in out                          # early-1 never made it into the log
    assert '500  {"error":"This object already exists."' in out        # the answer the duplicate got
    assert out.rstrip().splitlines()[-1] == "FAIL: 4 errors, 3 warnings in 6 calls (13 requests)"


def test_text_columns_are_aligned(journal):
    out = report("--journal", str(journal)).stdout
    dup = out[out.index("Call dup-1 "):].split("\n\n")[0].splitlines()
    events = [line for line in dup if line.startswith("  #")]
    assert len(events) == 3
    assert len({line.index("newCall") if "newCall" in line else line.index("hangup") for line in events}) == 1
    assert len({line.index(" 200 ") if " 200 " in line else line.index(" 500 ") for line in events}) == 1


def test_calls_not_ended_only_after_stale_after(journal):
    fresh = as_json(journal)  # default 600 s: open-1 started moments ago
    assert fresh["unfinished_calls"] == []
    assert "call-not-ended" not in fresh["summary"]["by_code"]
    assert fresh["stale_after"] == 600

    stale = as_json(journal, "--stale-after", "0")
    assert [u["call_id"] for u in stale["unfinished_calls"]] == ["open-1"]
    assert stale["unfinished_calls"][0]["state"] == "ringing"
    assert codes(calls_by_id(stale)["open-1"]) == ["call-not-ended"]


# json ---------------------------------------------------------------------------

def test_json_report_has_calls_events_findings_and_summary(journal):
    data = as_json(journal, "--stale-after", "0")

    assert data["report_version"] == 1
    assert data["journal"] == str(journal)
    assert [c["call_id"] for c in data["calls"]] == CALL_ORDER
    calls = calls_by_id(data)

    clean = calls["clean-1"]
    assert (clean["direction"], clean["from"], clean["to"]) == ("in", "491711234567", "4930600000000")
    assert [e["event"] for e in clean["events"]] == ["newCall", "answer", "hangup"]
    assert [(e["status"], e["answer"]) for e in clean["events"]] == [(200, {})] * 3
    assert clean["caller_log"]["state"] == "hangup" and clean["caller_log"]["done"] is True
    assert clean["findings"] == [] and clean["passed"] is True

    dup = calls["dup-1"]
    assert dup["direction"] == "out"
    assert [(e["event"], e["status"]) for e in dup["events"]] == [("newCall", 200), ("newCall", 500), ("hangup", 200)]
    assert dup["events"][1]["answer"] == ALREADY_EXISTS
    assert dup["events"][1]["findings"] == ["duplicate-newcall"]
    finding = dup["findings"][0]
    assert finding["code"] == "duplicate-newcall" and finding["severity"] == "error"
    assert finding["request_id"] == dup["events"][1]["request_id"] and finding["event"] == "newCall"
    assert "This object already exists." in finding["message"]
    assert dup["passed"] is False and dup["counts"] == {"error": 1, "warning": 0, "info": 0}

    assert sorted(codes(calls["user-1"])) == ["repeated-plain-key", "unknown-field"]
    assert calls["user-1"]["caller_log"]["to_comment"] == "Ben"  # Zammad kept the last plain value
    assert codes(calls["early-1"]) == ["event-before-newcall"] and calls["early-1"]["caller_log"] is None
    assert codes(calls["token-1"]) == ["wrong-token"]

    loose = data["requests_without_call_id"]
    assert [e["status"] for e in loose["events"]] == [500]  # malformed JSON: Zammad's handler, an Error ID
    assert codes(loose) == ["malformed-body"]

    summary = data["summary"]
    assert summary["calls"] == 6 and summary["requests"] == 13
    assert summary["requests_without_call_id"] == 1 and summary["unfinished_calls"] == 1
    assert summary["by_severity"] == {"error": 4, "warning": 3, "info": 0}
    assert summary["by_code"] == {
        "call-not-ended": 1, "duplicate-newcall": 1, "event-before-newcall": 1, "malformed-body": 1,
        "repeated-plain-key": 1, "unknown-field": 1, "wrong-token": 1,
    }
    assert list(summary["by_code"]) == sorted(summary["by_code"])
    assert summary["passed"] is False
    assert summary["verdict"] == "FAIL: 4 errors, 3 warnings in 6 calls (13 requests)"


# junit --------------------------------------------------------------------------

def test_junit_report_is_valid_xml_with_a_failure_per_failing_call(journal):
    result = report("--journal", str(journal), "--format", "junit", "--stale-after", "0")
    assert result.exit_code == 1

    root = ET.fromstring(result.stdout)
    suites = root.findall("testsuite")
    assert root.tag == "testsuites" and len(suites) == 1
    suite = suites[0]
    cases = {case.get("name"): case for case in suite.findall("testcase")}
    assert list(cases) == [f"call {call_id}" for call_id in CALL_ORDER] + ["requests without a callId"]
    assert suite.get("tests") == "7" and suite.get("failures") == "4"

    failing = {name for name, case in cases.items() if case.find("failure") is not None}
    assert failing == {"call early-1", "call dup-1", "call token-1", "requests without a callId"}
    for case in cases.values():
        assert len(case.findall("failure")) <= 1
    dup_failure = cases["call dup-1"].find("failure")
    assert dup_failure.get("type") == "duplicate-newcall"
    assert "duplicate-newcall" in dup_failure.get("message")
    assert "This object already exists." in dup_failure.text
    assert "malformed-body" in cases["requests without a callId"].find("failure").get("message")

    # warnings are no failures; they are in the testcase's output
    warned = cases["call user-1"]
    assert warned.find("failure") is None
    assert "repeated-plain-key" in warned.find("system-out").text
    assert "unknown-field" in warned.find("system-out").text
    assert "call-not-ended" in cases["call open-1"].find("system-out").text
    assert "caller log: hangup, done" in cases["call clean-1"].find("system-out").text


def test_junit_survives_control_characters_a_pbx_sent(tmp_path):
    path = tmp_path / "j.sqlite3"
    with MockServer(mock_config(path)) as mock:
        post = poster(mock)
        post(json={"event": "newCall", **INBOUND, "callId": "ctl\x01-1", "user": "A\x02B\x1b"})
        post(json={"event": "hangup", **INBOUND, "callId": "ctl\x01-1", "cause": "normalClearing"})
    result = report("--journal", str(path), "--format", "junit")
    root = ET.fromstring(result.stdout)
    assert root.find("testsuite/testcase").get("name") == "call ctl\ufffd-1"


# exit codes, selection ----------------------------------------------------------

def test_only_clean_calls_pass(clean_journal):
    for fmt in ("text", "json", "junit"):
        result = report("--journal", str(clean_journal), "--format", fmt)
        assert result.exit_code == 0, result.output
    text = report("--journal", str(clean_journal), "--stale-after", "0").stdout
    assert text.rstrip().splitlines()[-1] == "PASS: 0 errors, 0 warnings in 2 calls (6 requests)"
    assert "no findings" in text


def test_since_limits_the_report_to_later_requests(tmp_path):
    path = tmp_path / "j.sqlite3"
    with MockServer(mock_config(path)) as mock:
        post = poster(mock)
        post(json={"event": "answer", **INBOUND, "callId": "before-1"})  # an error, before the boundary
        time.sleep(0.02)
        boundary = datetime.now(timezone.utc)
        time.sleep(0.02)
        clean_call(post, "after-1")

    everything = report("--journal", str(path), "--format", "json")
    assert everything.exit_code == 1
    assert [c["call_id"] for c in json.loads(everything.stdout)["calls"]] == ["before-1", "after-1"]

    iso = boundary.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    later = report("--journal", str(path), "--format", "json", "--since", iso)
    assert later.exit_code == 0, later.output
    data = json.loads(later.stdout)
    assert [c["call_id"] for c in data["calls"]] == ["after-1"]
    assert data["since"] == iso[:23] + "Z" and data["summary"]["requests"] == 3

    assert report("--journal", str(path), "--since", "1d").exit_code == 1     # both calls are that recent
    future = (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat()
    empty = report("--journal", str(path), "--since", future)
    assert empty.exit_code == 0
    assert "No requests in the journal since then." in empty.stdout
    assert "PASS: 0 errors, 0 warnings in 0 calls (0 requests)" in empty.stdout


@pytest.mark.parametrize("text, expected", [
    ("15m", timedelta(minutes=15)), ("2h", timedelta(hours=2)), ("1d", timedelta(days=1)),
    ("90s", timedelta(seconds=90)), ("1.5h", timedelta(minutes=90)), ("1w", timedelta(weeks=1)),
])
def test_since_relative_forms(text, expected):
    now = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
    assert parse_since(text, now) == now - expected


@pytest.mark.parametrize("text, expected", [
    ("2026-11-25T10:00:00Z", datetime(2026, 11, 25, 10, 0, tzinfo=timezone.utc)),
    ("2026-11-25T11:00:00+01:00", datetime(2026, 11, 25, 10, 0, tzinfo=timezone.utc)),
    ("2026-11-25T10:00:00", datetime(2026, 11, 25, 10, 0, tzinfo=timezone.utc)),  # no zone: UTC
    ("2026-11-25", datetime(2026, 11, 25, tzinfo=timezone.utc)),
])
def test_since_iso_forms(text, expected):
    assert parse_since(text) == expected


@pytest.mark.parametrize("text", ["yesterday", "15", "m15", "-2h", "2026-13-01"])
def test_since_rejects_what_it_cannot_read(text):
    with pytest.raises(ReportError, match="ISO 8601"):
        parse_since(text)


def test_usage_errors_exit_2(tmp_path, journal):
    missing = tmp_path / "nowhere.sqlite3"
    result = report("--journal", str(missing))
    assert result.exit_code == 2
    assert f"no journal at {missing}" in result.stderr
    assert not missing.exists(), "the report must not create a journal"

    not_a_database = tmp_path / "notes.txt"
    not_a_database.write_text("this is no SQLite file, just some text that is long enough\n" * 20)
    result = report("--journal", str(not_a_database))
    assert result.exit_code == 2 and "could not be opened as a zammad-cti journal" in result.stderr

    result = report("--journal", ":memory:")
    assert result.exit_code == 2 and "keeps nothing" in result.stderr

    result = report("--journal", str(journal), "--since", "last tuesday")
    assert result.exit_code == 2 and "--since" in result.stderr

    for bad in (["--format", "html"], ["--stale-after", "-1"]):
        assert report("--journal", str(journal), *bad).exit_code == 2

    result = report("--journal", str(journal), "--output", str(tmp_path / "no" / "such" / "dir" / "r.txt"))
    assert result.exit_code == 2 and "cannot write" in result.stderr


def test_report_without_a_journal_asks_for_one():
    result = report()
    assert result.exit_code == 2 and "--journal" in result.stderr


def test_output_file_gets_the_report_and_stderr_the_verdict(tmp_path, journal):
    target = tmp_path / "report.xml"
    result = report("--journal", str(journal), "--format", "junit", "--output", str(target))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.strip() == "FAIL: 4 errors, 2 warnings in 6 calls (13 requests)"
    ET.parse(target)


# the token ----------------------------------------------------------------------

def test_no_output_contains_a_token(tmp_path, journal):
    outputs = []
    for fmt in ("text", "json", "junit"):
        for stale in ("0", "600"):
            result = report("--journal", str(journal), "--format", fmt, "--stale-after", stale)
            outputs += [result.stdout, result.stderr]
        target = tmp_path / f"report.{fmt}"
        outputs.append(report("--journal", str(journal), "--format", fmt, "--output", str(target)).stderr)
        outputs.append(target.read_text(encoding="utf-8"))
    assert any("/api/v1/cti/***" in out for out in outputs)
    for out in outputs:
        assert TOKEN not in out
        assert WRONG_TOKEN not in out


def test_a_token_sent_as_a_parameter_stays_masked(tmp_path):
    path = tmp_path / "j.sqlite3"
    with MockServer(mock_config(path)) as mock:
        post = poster(mock)
        post(json={"event": "newCall", **INBOUND, "callId": "param-1", "token": TOKEN})
        post(params={"event": "hangup", **INBOUND, "callId": "param-1", "token": TOKEN})
    for fmt in ("text", "json", "junit"):
        assert TOKEN not in report("--journal", str(path), "--format", fmt).stdout


# robustness ---------------------------------------------------------------------

def test_journal_survives_a_restart(tmp_path):
    path = tmp_path / "j.sqlite3"
    with MockServer(mock_config(path)) as first:
        post = poster(first)
        post(json={"event": "newCall", **INBOUND, "callId": "across-1"})
        post(json={"event": "answer", **INBOUND, "callId": "across-1"})
        clean_call(post, "first-1")
    with MockServer(mock_config(path)) as second:
        post = poster(second)
        post(json={"event": "hangup", **INBOUND, "callId": "across-1", "cause": "normalClearing"})
        clean_call(post, "second-1")

    result = report("--journal", str(path), "--format", "json", "--stale-after", "0")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [c["call_id"] for c in data["calls"]] == ["across-1", "first-1", "second-1"]
    across = calls_by_id(data)["across-1"]
    assert [(e["event"], e["status"]) for e in across["events"]] == [("newCall", 200), ("answer", 200), ("hangup", 200)]
    assert across["caller_log"]["state"] == "hangup" and across["findings"] == []
    assert data["summary"]["requests"] == 9


def test_an_injected_drop_shows_as_no_answer(tmp_path):
    path = tmp_path / "j.sqlite3"
    drop = parse_fault_option("drop,event=hangup,times=1")
    with MockServer(mock_config(path, FAULTS=[drop])) as mock:
        post = poster(mock)
        post(json={"event": "newCall", **INBOUND, "callId": "drop-1"})
        with pytest.raises(requests.ConnectionError):
            post(json={"event": "hangup", **INBOUND, "callId": "drop-1", "cause": "normalClearing"})
    data = as_json(path)
    hangup = data["calls"][0]["events"][1]
    assert hangup["status"] is None and hangup["fault"]["kind"] == "drop"
    assert "fault-injected" in hangup["findings"]
    text = report("--journal", str(path)).stdout
    assert "---  (no answer: fault" in text


def test_reading_a_journal_leaves_no_thread_or_file_behind(journal, tmp_path):
    before = threading.active_count()
    build_report(journal)
    assert threading.active_count() == before
    with pytest.raises(ReportError, match="no journal at"):
        build_report(tmp_path / "sub" / "j.sqlite3")
    assert not (tmp_path / "sub").exists()
