"""Fault injection: a slow, failing or unreachable Zammad on demand, through ``/__admin/faults`` and ``serve --fault``.

Each kind (latency, status, drop, hang) does what the README promises to a
real HTTP client, the selectors (``event``, ``probability``, ``times``)
narrow it, the admin API lists, adds and removes faults and refuses broken
ones with a message, and every faulted request shows in the journal with its
fault and a ``fault-injected`` finding. ``serve --fault`` parses the same
faults from the command line (and refuses bad ones before starting), and a
request held by a hang fault does not hold up a normal push.
"""

from __future__ import annotations

import queue
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from agent import AGENT_AUTH
from click.testing import CliRunner
from test_serve_process import ZAMMAD_CTI, Served, clean_env, free_port, stop
from zammad_answers import ERROR_ID

import mock_server.server
from mock_server import MockServer
from mock_server.cli import main

NEW_CALL = {"event": "newCall", "from": "494012345678", "to": "493012340000", "direction": "in"}


def call(event: str, call_id: str) -> dict[str, str]:
    return {**NEW_CALL, "event": event, "callId": call_id}


class Mock:
    """A running mock and the admin calls the tests make on it."""

    def __init__(self, base: str, endpoint: str) -> None:
        self.base = base
        self.endpoint = endpoint
        self.http = requests.Session()
        self.http.trust_env = False

    def push(self, params: dict[str, Any], timeout: float = 10) -> requests.Response:
        return self.http.post(self.endpoint, json=params, timeout=timeout)

    def add_fault(self, fault: dict[str, Any]) -> dict[str, Any]:
        response = self.http.post(f"{self.base}/__admin/faults", json=fault, timeout=5)
        assert response.status_code == 201, response.text
        return response.json()

    def faults(self) -> list[dict[str, Any]]:
        return self.http.get(f"{self.base}/__admin/faults", timeout=5).json()["faults"]

    def journal(self) -> list[dict[str, Any]]:
        return self.http.get(f"{self.base}/__admin/requests", timeout=5).json()["requests"]

    def findings(self) -> list[dict[str, Any]]:
        return self.http.get(f"{self.base}/__admin/findings", timeout=5).json()["findings"]

    def caller_log(self) -> list[dict[str, Any]]:
        return self.http.get(f"{self.base}/api/v1/cti/log", headers=AGENT_AUTH, timeout=5).json()["list"]


@pytest.fixture(scope="module")
def mock_server_for_module() -> Iterator[MockServer]:
    with MockServer() as server:
        yield server


@pytest.fixture
def mock(mock_server_for_module) -> Iterator[Mock]:
    """The module's MockServer with no faults, an empty caller log and an empty journal."""
    server = mock_server_for_module
    handle = Mock(server.url, server.endpoint_url)
    handle.http.delete(f"{server.url}/__admin/faults", timeout=5)
    handle.http.post(f"{server.url}/__admin/reset", timeout=5)
    yield handle
    handle.http.delete(f"{server.url}/__admin/faults", timeout=5)
    handle.http.close()


# --------------------------------------------------------------------------- the four kinds


def timed_push(mock: Mock, params: dict[str, Any]) -> tuple[float, requests.Response]:
    started = time.perf_counter()
    response = mock.push(params)
    return time.perf_counter() - started, response


def test_fixed_latency_answers_normally_but_late(mock):
    mock.add_fault({"kind": "latency", "latency_ms": 300})
    elapsed, response = timed_push(mock, call("newCall", "lat-1"))
    assert (response.status_code, response.json()) == (200, {})
    assert elapsed >= 0.3
    assert mock.caller_log()[0]["call_id"] == "lat-1"  # processed, not only delayed


def test_latency_range_waits_at_least_its_minimum(mock):
    mock.add_fault({"kind": "latency", "latency_ms": [200, 350]})
    for n in range(3):
        elapsed, response = timed_push(mock, call("newCall", f"range-{n}"))
        assert response.status_code == 200
        assert elapsed >= 0.2


def test_status_fault_answers_zammad_error_shape_by_default(mock):
    mock.add_fault({"kind": "status", "status": 503})
    response = mock.push(call("newCall", "st-1"))
    assert response.status_code == 503
    assert response.headers["Content-Type"].startswith("application/json")
    assert set(response.json()) == {"error"} and ERROR_ID.match(response.json()["error"])


def test_status_fault_with_a_custom_body(mock):
    body = {"error": "upstream Zammad is restarting"}
    mock.add_fault({"kind": "status", "status": 502, "body": body})
    response = mock.push(call("newCall", "st-2"))
    assert (response.status_code, response.json()) == (502, body)


def test_status_fault_does_not_create_the_call(mock):
    fault = mock.add_fault({"kind": "status", "status": 500})
    assert mock.push(call("newCall", "st-3")).status_code == 500
    assert mock.caller_log() == []
    mock.http.delete(f"{mock.base}/__admin/faults/{fault['id']}", timeout=5)
    # Had the faulted newCall been processed, this one would be "Object already exists!".
    response = mock.push(call("newCall", "st-3"))
    assert (response.status_code, response.json()) == (200, {})


def test_drop_closes_the_connection_without_an_answer(mock):
    mock.add_fault({"kind": "drop"})
    with pytest.raises(requests.ConnectionError):
        mock.push(call("newCall", "drop-1"), timeout=5)


def test_hang_keeps_the_client_waiting_until_it_gives_up(mock):
    mock.add_fault({"kind": "hang", "seconds": 1})
    started = time.perf_counter()
    with pytest.raises(requests.ReadTimeout):
        mock.push(call("newCall", "hang-1"), timeout=0.3)
    assert time.perf_counter() - started >= 0.3


# --------------------------------------------------------------------------- selectors


def test_event_selector_faults_only_that_event(mock):
    mock.add_fault({"kind": "status", "status": 503, "event": "hangup"})
    assert mock.push(call("newCall", "ev-1")).status_code == 200
    assert mock.push(call("answer", "ev-1")).status_code == 200
    assert mock.push(call("hangup", "ev-1")).status_code == 503
    assert mock.caller_log()[0]["state"] == "answer"


@pytest.mark.parametrize(("probability", "expected"), [(0, 200), (1, 503)])
def test_probability_zero_never_and_one_always(mock, probability, expected):
    mock.add_fault({"kind": "status", "status": 503, "probability": probability})
    statuses = {mock.push(call("newCall", f"p{probability}-{n}")).status_code for n in range(15)}
    assert statuses == {expected}


def test_times_applies_to_the_next_n_then_the_fault_is_gone(mock):
    fault = mock.add_fault({"kind": "status", "status": 503, "times": 3})
    seen = []
    for n in range(3):
        seen.append(mock.push(call("newCall", f"times-{n}")).status_code)
        left = [f.get("times") for f in mock.faults() if f["id"] == fault["id"]]
        assert left == ([2 - n] if n < 2 else [])
    seen.append(mock.push(call("newCall", "times-3")).status_code)
    assert seen == [503, 503, 503, 200]
    assert mock.faults() == []


# --------------------------------------------------------------------------- the admin API


def test_delete_one_fault_then_all(mock):
    first = mock.add_fault({"kind": "latency", "latency_ms": 1, "event": "answer"})
    second = mock.add_fault({"kind": "status", "status": 503, "event": "hangup"})
    third = mock.add_fault({"kind": "drop", "event": "dropped"})
    assert [f["id"] for f in mock.faults()] == [first["id"], second["id"], third["id"]]

    response = mock.http.delete(f"{mock.base}/__admin/faults/{second['id']}", timeout=5)
    assert (response.status_code, response.json()) == (200, {"removed": 1})
    assert [f["id"] for f in mock.faults()] == [first["id"], third["id"]]

    response = mock.http.delete(f"{mock.base}/__admin/faults/{second['id']}", timeout=5)
    assert response.status_code == 404 and second["id"] in response.json()["error"]

    response = mock.http.delete(f"{mock.base}/__admin/faults", timeout=5)
    assert (response.status_code, response.json()) == (200, {"removed": 2})
    assert mock.faults() == []
    assert mock.push(call("newCall", "del-1")).status_code == 200


@pytest.mark.parametrize(("fault", "fragment"), [
    pytest.param({"kind": "explode"}, "kind", id="unknown-kind"),
    pytest.param({"latency_ms": 5}, "kind", id="no-kind"),
    pytest.param({"kind": "latency"}, "latency_ms", id="latency-without-ms"),
    pytest.param({"kind": "latency", "latency_ms": [100]}, "latency_ms", id="latency-range-of-one"),
    pytest.param({"kind": "latency", "latency_ms": -5}, "latency_ms", id="negative-latency"),
    pytest.param({"kind": "status"}, "status", id="status-without-status"),
    pytest.param({"kind": "status", "status": 99}, "status", id="status-below-100"),
    pytest.param({"kind": "status", "status": "503"}, "status", id="status-as-string"),
    pytest.param({"kind": "hang", "seconds": 601}, "seconds", id="hang-over-600-s"),
    pytest.param({"kind": "drop", "probability": 1.5}, "probability", id="probability-over-1"),
    pytest.param({"kind": "drop", "times": 0}, "times", id="times-zero"),
    pytest.param({"kind": "drop", "colour": "red"}, "colour", id="unknown-property"),
    pytest.param(["drop"], "object", id="not-an-object"),
])
def test_invalid_fault_is_refused_with_a_message(mock, fault, fragment):
    response = mock.http.post(f"{mock.base}/__admin/faults", json=fault, timeout=5)
    assert response.status_code == 400
    assert fragment in response.json()["error"]
    assert mock.faults() == []


def test_fault_body_that_is_not_json_is_refused(mock):
    response = mock.http.post(f"{mock.base}/__admin/faults", data="kind=drop",
                              headers={"Content-Type": "application/json"}, timeout=5)
    assert response.status_code == 400 and response.json()["error"]


def test_faulted_requests_show_in_journal_and_findings(mock):
    status = mock.add_fault({"kind": "status", "status": 503, "event": "newCall", "times": 1})
    mock.push(call("newCall", "jr-1"))
    latency = mock.add_fault({"kind": "latency", "latency_ms": 10, "event": "hangup"})
    mock.push(call("newCall", "jr-1"))
    mock.push(call("hangup", "jr-1"))
    entries = mock.journal()
    assert [(e["event"], e["status"], (e["fault"] or {}).get("id")) for e in entries] == [
        ("newCall", 503, status["id"]), ("newCall", 200, None), ("hangup", 200, latency["id"])]
    assert entries[0]["fault"]["kind"] == "status"
    injected = [f for f in mock.findings() if f["code"] == "fault-injected"]
    assert [f["request_id"] for f in injected] == [entries[0]["id"], entries[2]["id"]]
    assert {f["severity"] for f in injected} == {"info"}


def test_dropped_request_is_journaled_without_an_answer(mock):
    fault = mock.add_fault({"kind": "drop"})
    with pytest.raises(requests.ConnectionError):
        mock.push(call("newCall", "jd-1"), timeout=5)
    [entry] = mock.journal()
    assert entry["status"] is None and entry["fault"]["id"] == fault["id"]


# --------------------------------------------------------------------------- serve --fault


@pytest.mark.parametrize("spec", [
    pytest.param("explode", id="unknown-kind"),
    pytest.param("latency", id="latency-without-value"),
    pytest.param("latency:soon", id="latency-not-a-number"),
    pytest.param("latency:500-", id="latency-open-range"),
    pytest.param("status:abc", id="status-not-a-number"),
    pytest.param("status:42", id="status-below-100"),
    pytest.param("drop:5", id="drop-with-value"),
    pytest.param("hang:9999", id="hang-over-600-s"),
    pytest.param("status:503,times=0", id="times-zero"),
    pytest.param("status:503,times=x", id="times-not-a-number"),
    pytest.param("latency:10,probability=2", id="probability-over-1"),
    pytest.param("drop,event", id="option-without-value"),
    pytest.param("drop,colour=red", id="unknown-option"),
    pytest.param(",", id="empty"),
])
def test_serve_refuses_a_bad_fault_before_starting(monkeypatch, tmp_path, spec):
    def must_not_start(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"serve started the server despite --fault {spec!r}")

    monkeypatch.setattr(mock_server.server, "run_granian", must_not_start)
    result = CliRunner().invoke(main, ["serve", "--port", "0", "--journal", str(tmp_path / "j.sqlite3"),
                                       "--fault", spec])
    assert result.exit_code != 0
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert f"--fault {spec!r}" in result.output, result.output


@pytest.mark.skipif(not ZAMMAD_CTI.exists(), reason=f"console script {ZAMMAD_CTI} is not installed")
def test_serve_refuses_a_bad_fault_as_a_process(tmp_path):
    """The same through the console script: exit 1 with the message on stderr, no URL printed."""
    done = subprocess.run(
        [str(ZAMMAD_CTI), "serve", "--port", str(free_port()), "--journal", str(tmp_path / "j.sqlite3"),
         "--fault", "status:503,times=0"],
        capture_output=True, text=True, timeout=30, env=clean_env(),
    )
    assert done.returncode == 1
    assert "--fault 'status:503,times=0'" in done.stderr and "times" in done.stderr
    assert "CTI endpoint" not in done.stdout


@pytest.fixture
def serve(tmp_path) -> Iterator:
    """``serve(*args)``: a ``zammad-cti serve`` with its own journal, stopped (by its PID) at the end."""
    if not ZAMMAD_CTI.exists():
        pytest.skip(f"console script {ZAMMAD_CTI} is not installed")
    started: list[subprocess.Popen] = []
    mocks: list[Mock] = []

    def start(*args: str) -> tuple[Served, Mock]:
        port = free_port()
        process = subprocess.Popen(
            [str(ZAMMAD_CTI), "serve", "--port", str(port), "--journal", str(tmp_path / f"j{len(started)}.sqlite3"),
             *args],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=clean_env(),
        )
        started.append(process)
        served = Served(process, port)
        url = served.endpoint_url()
        mock = Mock(served.base_url_when_up(), url)
        mocks.append(mock)
        return served, mock

    try:
        yield start
    finally:
        for mock in mocks:
            mock.http.close()  # an idle keep-alive connection would hold up gunicorn's graceful stop
        for process in started:
            stop(process)


def printed_lines(served: Served, until: str, timeout: float = 10) -> list[str]:
    """What serve printed after its endpoint line, up to the line ``until`` (read from Served's pump)."""
    lines, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = served._lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            break
        if line is None:
            break
        lines.append(line)
        if line == until:
            break
    return lines


def test_serve_fault_options_apply_from_the_start(serve):
    served, mock = serve("--fault", "status:503,times=2,event=newCall", "--fault", "latency:150-250,event=hangup")
    printed = printed_lines(served, until="Stop with Ctrl-C.")
    assert len([line for line in printed if "fault injected" in line]) == 2, printed
    kinds = [(f["kind"], f.get("event")) for f in mock.faults()]
    assert kinds == [("status", "newCall"), ("latency", "hangup")]
    assert [mock.push(call("newCall", f"cli-{n}")).status_code for n in range(3)] == [503, 503, 200]
    started = time.perf_counter()
    assert mock.push(call("hangup", "cli-2")).status_code == 200
    assert time.perf_counter() - started >= 0.15
    assert [f["kind"] for f in mock.faults()] == ["latency"]


def test_a_hanging_request_does_not_hold_up_a_normal_push(serve):
    served, mock = serve("--fault", "hang:20,event=answer")
    base, url = mock.base, mock.endpoint
    held = threading.Thread(target=lambda: _swallow(lambda: requests.post(
        url, data=call("answer", "held-1"), timeout=15)), daemon=True)
    held.start()
    time.sleep(0.5)  # the answer is now hanging in the mock
    started = time.monotonic()
    answered = requests.post(url, data=call("newCall", "free-1"), timeout=5)
    assert answered.status_code == 200
    assert time.monotonic() - started < 2, "a normal push waited for the hanging one"
    assert requests.get(f"{base}/__admin/health", timeout=5).status_code == 200


def _swallow(send) -> None:
    try:
        send()
    except requests.RequestException:
        pass
