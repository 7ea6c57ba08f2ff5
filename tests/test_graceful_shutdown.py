"""SIGTERM while requests are in flight: every one is answered, the journal keeps them, a restart finds them.

A PBX keeps pushing while an admin restarts the mock (a deploy, a container
stop). The README promises a clean stop: requests in flight are answered and
the journal is flushed. Here hangups are held in flight by an injected
1.5 s latency when SIGTERM arrives; each must still get its ``200 {}``, the
process must exit 0 within the graceful timeout, and a new ``serve`` on the
same journal must list every request answered before the stop and show the
calls hung up.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from agent import AGENT_AUTH
from test_serve_process import ZAMMAD_CTI, Served, clean_env, free_port, stop

CALLS = 8
LATENCY_MS = 1500
STOP_WITHIN = 15  # seconds

pytestmark = pytest.mark.skipif(not ZAMMAD_CTI.exists(), reason=f"console script {ZAMMAD_CTI} is not installed")


def call(event: str, n: int) -> dict[str, str]:
    params = {"event": event, "from": f"49401234{n:04d}", "to": "493012340000", "direction": "in",
              "callId": f"term-{n}"}
    if event == "hangup":
        params["cause"] = "normalClearing"
    return params


@pytest.fixture
def serve(tmp_path) -> Iterator:
    """``serve(*args)`` starts ``zammad-cti serve`` on the test's journal; every process is stopped by PID."""
    started: list[subprocess.Popen] = []
    journal = tmp_path / "journal.sqlite3"

    def start(*args: str) -> tuple[Served, str]:
        port = free_port()
        process = subprocess.Popen(
            [str(ZAMMAD_CTI), "serve", "--port", str(port), "--threads", "16", "--journal", str(journal), *args],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=clean_env(),
        )
        started.append(process)
        served = Served(process, port)
        url = served.endpoint_url()
        served.base_url_when_up()
        return served, url

    try:
        yield start
    finally:
        for process in started:
            stop(process)


def caller_log(base: str) -> dict[str, dict[str, Any]]:
    return {entry["call_id"]: entry for entry in requests.get(f"{base}/api/v1/cti/log", headers=AGENT_AUTH, timeout=5).json()["list"]}


def test_sigterm_answers_requests_in_flight_and_keeps_the_journal(serve):
    served, url = serve("--fault", f"latency:{LATENCY_MS},event=hangup")
    base = url.split("/api/")[0]
    for n in range(CALLS):
        response = requests.post(url, json=call("newCall", n), timeout=5)
        assert (response.status_code, response.json()) == (200, {})

    answers: dict[int, Any] = {}

    def hang_up(n: int) -> None:
        try:
            response = requests.post(url, json=call("hangup", n), timeout=STOP_WITHIN)
            answers[n] = (response.status_code, response.json())
        except requests.RequestException as exc:
            answers[n] = repr(exc)

    threads = [threading.Thread(target=hang_up, args=(n,), daemon=True) for n in range(CALLS)]
    sent = time.monotonic()
    for thread in threads:
        thread.start()
    # The latency comes after the event is processed: once the caller log shows every call hung up,
    # every hangup is in flight, its answer still LATENCY_MS away.
    while not all(entry["state"] == "hangup" for entry in caller_log(base).values()):
        assert time.monotonic() - sent < LATENCY_MS / 1000, "the hangups were not all received in time"
        time.sleep(0.02)
    os.kill(served.process.pid, signal.SIGTERM)
    stopping = time.monotonic()
    assert sum(thread.is_alive() for thread in threads) == CALLS, "a hangup was answered before SIGTERM"

    for thread in threads:
        thread.join(timeout=STOP_WITHIN)
    assert answers == {n: (200, {}) for n in range(CALLS)}
    assert served.process.wait(timeout=STOP_WITHIN) == 0
    assert time.monotonic() - stopping < STOP_WITHIN
    assert time.monotonic() - sent >= LATENCY_MS / 1000  # the latency was served in full, not cut short

    # The same journal, no fault: everything answered before the stop is there.
    _, url = serve()
    base = url.split("/api/")[0]
    journal = requests.get(f"{base}/__admin/requests", timeout=5).json()["requests"]
    seen = sorted((entry["call_id"], entry["event"], entry["status"]) for entry in journal)
    expected = sorted((f"term-{n}", event, 200) for n in range(CALLS) for event in ("newCall", "hangup"))
    assert seen == expected
    assert all(entry["fault"]["kind"] == "latency" for entry in journal if entry["event"] == "hangup")
    assert requests.get(f"{base}/__admin/faults", timeout=5).json() == {"faults": []}
    log = caller_log(base)
    assert sorted(log) == sorted(f"term-{n}" for n in range(CALLS))
    assert {(entry["state"], entry["comment"]) for entry in log.values()} == {("hangup", "normalClearing")}


def test_sigterm_does_not_wait_for_a_hanging_request(serve):
    """A hang fault answers nothing by design: a stop answers what is in flight and does not wait for it."""
    served, url = serve("--fault", "hang:60,event=newCall")
    base = url.split("/api/")[0]
    outcome: list[str] = []

    def hung() -> None:
        try:
            requests.post(url, json=call("newCall", 1), timeout=STOP_WITHIN)
            outcome.append("answered")
        except requests.RequestException as exc:
            outcome.append(type(exc).__name__)

    thread = threading.Thread(target=hung, daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while not requests.get(f"{base}/__admin/requests", timeout=5).json()["requests"]:
        assert time.monotonic() < deadline, "the hanging newCall never reached the journal"
        time.sleep(0.02)
    stopping = time.monotonic()
    os.kill(served.process.pid, signal.SIGTERM)
    assert served.process.wait(timeout=STOP_WITHIN) == 0
    assert time.monotonic() - stopping < 5, "the stop waited for the hanging request"
    thread.join(timeout=STOP_WITHIN)
    assert outcome and outcome != ["answered"], outcome
