"""The benchmark scripts still run and still measure what docs/benchmarks.md says they measure.

Not timed: the figures come from running the scripts by hand (docs/benchmarks.md);
these tests only keep them working and honest.
"""

from __future__ import annotations

import importlib.util
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from a2wsgi import ASGIMiddleware
from werkzeug.test import Client

from mock_server import create_app

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
URL = "/api/v1/cti/documented-token-3f9c2a"
MUNICH_CALL = {"event": "newCall", "from": "493023125741", "to": "4989123456", "direction": "out", "callId": "b-1"}
BLOCKED_CALL = {"event": "newCall", "from": "491715000000", "to": "493023125741", "direction": "in", "callId": "b-2"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _module(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("interface", ["app", "asgi_app"])
@pytest.mark.parametrize("params", [MUNICH_CALL, BLOCKED_CALL], ids=["dial", "reject"])
def test_the_rules_server_answers_as_the_mock(params, interface):
    # The 'rules' line of the benchmark is only a floor if it does the mock's deciding work.
    app = getattr(_module("rules_app"), interface)
    rules = Client(app if interface == "app" else ASGIMiddleware(app)).post(URL, json=params, buffered=True)
    mock = create_app().test_client().post(URL, json=params)
    assert rules.status_code == mock.status_code == 200
    assert rules.get_json() == mock.get_json() != {}


def test_serve_app_serves_the_ceiling_as_serve_serves_the_mock():
    port = _free_port()
    server = subprocess.Popen([sys.executable, str(BENCHMARKS / "serve_app.py"), "bare_app:asgi_app", str(port)],
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                answer = requests.post(f"http://127.0.0.1:{port}{URL}", json=MUNICH_CALL, timeout=2)
                break
            except requests.ConnectionError:
                assert server.poll() is None, server.stderr.read().decode()
                assert time.monotonic() < deadline, "serve_app.py never listened"
                time.sleep(0.1)
        assert (answer.status_code, answer.json()) == (200, {})
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=15) == 0


def test_the_rules_server_answers_other_events_with_nothing():
    rules = Client(_module("rules_app").app).post(URL, json={**MUNICH_CALL, "event": "hangup"})
    assert (rules.status_code, rules.get_json()) == (200, {})


def test_variants_switch_off_the_caller_log_and_the_journal():
    without = _module("variants").without
    app = without(create_app(), ["caller-log", "journal"])
    client = app.test_client()
    # Without a caller log, a hangup of a call no newCall created "succeeds" (Zammad: 500).
    assert client.post(URL, json={**MUNICH_CALL, "event": "hangup", "callId": "never-seen"}).status_code == 200
    assert client.get("/__admin/requests").get_json()["requests"] == []
    with pytest.raises(ValueError, match="unknown part"):
        without(create_app(), ["cache"])


def test_in_process_benchmark_prints_cpu_per_push():
    done = subprocess.run([sys.executable, str(BENCHMARKS / "in_process.py"), "--pushes", "400", "--runs", "1"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert re.search(r"mock as it is: [\d.]+ us CPU per push", done.stdout), done.stdout
