"""``zammad-cti serve`` as a real process: the printed URL works, options apply, SIGTERM stops it."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

ZAMMAD_CTI = Path(sys.executable).parent / "zammad-cti"
DOCUMENTED_TOKEN = "documented-token-3f9c2a"
START_TIMEOUT = 20
STOP_TIMEOUT = 15

OUTBOUND_NEW_CALL = {"event": "newCall", "from": "493023125741", "to": "492214710334", "direction": "out",
                     "callId": "serve-1", "user": "Christopher Miller"}

pytestmark = pytest.mark.skipif(not ZAMMAD_CTI.exists(), reason=f"console script {ZAMMAD_CTI} is not installed")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env() -> dict[str, str]:
    """No ZAMMAD_CTI_* settings and no proxies from the developer's shell."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith("ZAMMAD_CTI_") and not k.lower().endswith("_proxy")}


class Served:
    """A running ``zammad-cti serve`` and the lines it printed."""

    def __init__(self, process: subprocess.Popen, port: int) -> None:
        self.process = process
        self.port = port
        self.lines: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.process.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def endpoint_url(self) -> str:
        """Wait for the printed CTI endpoint URL (once; later calls return it again)."""
        printed = [line.split()[-1] for line in self.lines if "CTI endpoint" in line]
        if printed:
            return printed[0]
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                pytest.fail(f"zammad-cti serve exited ({self.process.wait()}) before printing its URL: {self.lines}")
            self.lines.append(line)
            if "CTI endpoint" in line:
                return line.split()[-1]
        pytest.fail(f"zammad-cti serve printed no endpoint URL within {START_TIMEOUT} s: {self.lines}")

    def base_url_when_up(self) -> str:
        """The printed URL's base, once a worker answers ``/__admin/health`` (the URL comes at bind time)."""
        base = self.endpoint_url().split("/api/")[0]
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                requests.get(f"{base}/__admin/health", timeout=2)
                return base
            except requests.ConnectionError:
                assert time.monotonic() < deadline, f"serve did not answer within {START_TIMEOUT} s"
                time.sleep(0.05)

    def post_when_up(self, url: str, payload: dict) -> requests.Response:
        """The URL is printed when the socket is bound; retry briefly while the worker boots."""
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                return requests.post(url, json=payload, timeout=5)
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)


def children(pid: int) -> list[int]:
    """The worker processes gunicorn forked (Linux /proc; empty elsewhere)."""
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def stop(process: subprocess.Popen) -> None:
    """SIGTERM the process we started; SIGKILL it and its own workers if it does not stop."""
    if process.poll() is None:
        workers = children(process.pid)
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            for pid in [process.pid, *workers]:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            process.wait(timeout=10)
    for stream in (process.stdout, process.stderr):
        if stream:
            stream.close()


@pytest.fixture
def serve(tmp_path) -> Iterator:
    """Start ``zammad-cti serve`` on a free port, with a journal of its own (never the user's)."""
    started: list[subprocess.Popen] = []

    def start(*args: str) -> Served:
        port = free_port()
        journal = tmp_path / f"journal-{len(started)}.sqlite3"
        process = subprocess.Popen(
            [str(ZAMMAD_CTI), "serve", "--port", str(port), "--threads", "2", "--journal", str(journal), *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env(),
        )
        started.append(process)
        return Served(process, port)

    try:
        yield start
    finally:
        for process in started:
            stop(process)


def test_printed_url_works_and_sigterm_stops_it(serve):
    served = serve()
    url = served.endpoint_url()
    assert url == f"http://127.0.0.1:{served.port}/api/v1/cti/{DOCUMENTED_TOKEN}"
    response = served.post_when_up(url, OUTBOUND_NEW_CALL)
    assert response.status_code == 200
    assert response.json() == {"action": "dial", "caller_id": "496990009111", "number": "492214710334"}

    started = time.monotonic()
    os.kill(served.process.pid, signal.SIGTERM)
    code = served.process.wait(timeout=STOP_TIMEOUT)
    assert code == 0
    assert time.monotonic() - started < STOP_TIMEOUT
    with pytest.raises(requests.ConnectionError):
        requests.post(url, json=OUTBOUND_NEW_CALL, timeout=2)


def test_token_option_overrides(serve):
    served = serve("--token", "cli-token-42")
    url = served.endpoint_url()
    assert url.endswith("/api/v1/cti/cli-token-42")
    assert served.post_when_up(url, OUTBOUND_NEW_CALL).status_code == 200
    old = requests.post(url.replace("cli-token-42", DOCUMENTED_TOKEN), json=OUTBOUND_NEW_CALL, timeout=5)
    assert (old.status_code, old.json()) == (401, {"error": "Invalid token, please contact your admin!"})


def test_yaml_config(serve, tmp_path):
    config = tmp_path / "pbx.yaml"
    config.write_text(
        "token: yaml-token-7\n"
        "cti_config:\n"
        "  outbound:\n"
        "    routing_table:\n"
        "      - dest: '4922*'\n"
        "        caller_id: '492211111111'\n"
        "  inbound:\n"
        "    block_caller_ids: []\n",
        encoding="utf-8",
    )
    served = serve("--config", str(config))
    url = served.endpoint_url()
    assert url.endswith("/api/v1/cti/yaml-token-7")
    response = served.post_when_up(url, OUTBOUND_NEW_CALL)
    assert response.json() == {"action": "dial", "caller_id": "492211111111", "number": "492214710334"}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"token": "t"}', "'cti_config' is a required property"),
        ("token: [unclosed\n", "is neither JSON nor YAML"),
        (None, "does not exist"),
    ],
    ids=["invalid", "unparseable", "missing-file"],
)
def test_bad_config_exits_non_zero(tmp_path, content, expected):
    config = tmp_path / "bad.yaml"
    if content is not None:
        config.write_text(content, encoding="utf-8")
    done = subprocess.run(
        [str(ZAMMAD_CTI), "serve", "--port", str(free_port()), "--config", str(config),
         "--journal", str(tmp_path / "journal.sqlite3")],
        capture_output=True, text=True, timeout=30, env=clean_env(),
    )
    assert done.returncode != 0
    assert expected in done.stderr
    assert "CTI endpoint" not in done.stdout


def _start_default(port: int) -> Served:
    """``zammad-cti serve`` as a new user starts it: no --journal."""
    process = subprocess.Popen([str(ZAMMAD_CTI), "serve", "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env())
    return Served(process, port)


def test_a_second_serve_on_a_busy_port_exits_1_and_the_first_keeps_answering(serve):
    first = serve()
    url = first.endpoint_url()
    first.base_url_when_up()
    second = subprocess.run([str(ZAMMAD_CTI), "serve", "--port", str(first.port)], capture_output=True, text=True,
                            timeout=START_TIMEOUT, env=clean_env())
    assert second.returncode == 1
    assert second.stderr.strip().count("\n") == 0 and "cannot listen on" in second.stderr, second.stderr
    assert "CTI endpoint" not in second.stdout
    for n in range(5):  # every push still lands on the first mock
        response = requests.post(url, json={**OUTBOUND_NEW_CALL, "callId": f"busy-{n}"}, timeout=5)
        assert response.status_code == 200


def test_a_restarted_default_serve_starts_empty_and_answers_as_documented():
    port = free_port()
    for run in range(2):
        served = _start_default(port)
        try:
            url = served.endpoint_url()
            response = served.post_when_up(url, OUTBOUND_NEW_CALL)
            assert response.status_code == 200, f"run {run + 1}: {response.status_code} {response.text}"
            assert response.json() == {"action": "dial", "caller_id": "496990009111", "number": "492214710334"}
        finally:
            os.kill(served.process.pid, signal.SIGTERM)
            served.process.wait(timeout=STOP_TIMEOUT)
        printed = list(served.lines)
        while (line := served._lines.get(timeout=5)) is not None:
            printed.append(line)
        assert any("in memory only, starts empty" in line for line in printed), printed
        assert printed[-1] == "zammad-cti mock stopped; nothing kept (no --journal)", printed
