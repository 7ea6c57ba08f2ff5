"""The token is the endpoint's only secret: it is compared in constant time and never shown or stored in clear.

Zammad's admin page tells admins to keep the CTI URL secret, because anyone
who has it can push calls. The mock shows it exactly once, on purpose: the
"CTI endpoint (paste into your PBX)" line ``serve`` prints. Everywhere else
(journal, findings, ``/__admin/config``, the inspector, error bodies, the
SQLite file, gunicorn's log, the JUnit file of ``zammad-cti check``, the
output of ``zammad-cti report``) it is ``***``, also when the PBX sends it
as a parameter. The database keeps only its SHA-256.
"""

from __future__ import annotations

import hashlib
import hmac
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from agent import AGENT_AUTH
from click.testing import CliRunner
from test_serve_process import ZAMMAD_CTI, clean_env, free_port, stop

import mock_server.server
import mock_server.zammad.config as zammad_config
from mock_server import MockServer
from mock_server.cli import main
from mock_server.state import mock_state

TOKEN = "Sekr3t-CTI-tok-7vQ2xL"
DIGEST = hashlib.sha256(TOKEN.encode()).hexdigest()
INBOUND = {"direction": "in", "from": "494012345678", "to": "493012340000"}


def post(client, params: dict[str, Any], encoding: str = "json", token: str = TOKEN, query: Any = None):
    url = f"/api/v1/cti/{token}"
    if encoding == "json":
        return client.post(url, json=params, query_string=query)
    return client.post(url, data=params, query_string=query)


def pbx_session(client) -> None:
    """A PBX that also sends the token where it does not belong, and mistypes it."""
    post(client, {"event": "newCall", **INBOUND, "callId": "s-1", "token": TOKEN})
    post(client, {"event": "answer", **INBOUND, "callId": "s-1", "token": TOKEN, "user": "Anna"}, "urlencoded")
    post(client, {"event": "hangup", **INBOUND, "callId": "s-1", "cause": "normalClearing"}, "urlencoded",
         query={"token": TOKEN})
    post(client, {"event": "newCall", **INBOUND, "callId": "s-2", "token[value]": TOKEN}, "urlencoded")
    post(client, {"event": "newCall", **INBOUND, "callId": "s-3", "token[]": TOKEN}, "urlencoded")
    post(client, {"event": "newCall", **INBOUND, "callId": "s-4", "token": {"nested": TOKEN}})
    post(client, {"event": "newCall", **INBOUND, "callId": "s-5"}, token=TOKEN + "x")  # a near miss: wrong token
    post(client, {"event": "newCall", **INBOUND, "callId": "s-6"}, token=TOKEN + "/")  # trailing slash: same endpoint
    client.post(f"/api/v1/cti/{TOKEN}", data=b'{"event": "newCall", "token": "' + TOKEN.encode() + b'"',
                content_type="application/json")  # malformed, with the token inside


@pytest.fixture
def secret_app(make_app, tmp_path):
    app = make_app(TOKEN=TOKEN, JOURNAL=str(tmp_path / "journal.sqlite3"))
    pbx_session(app.test_client())
    return app


@pytest.mark.parametrize("path", [
    "/__admin/requests", "/__admin/findings", "/__admin/config", "/__admin/health", "/__admin/faults",
    "/__admin/", "/__admin/inspector/inspector.js", "/__admin/inspector/inspector.css", "/api/v1/cti/log",
])
def test_admin_answers_and_inspector_never_show_the_token(secret_app, path):
    response = secret_app.test_client().get(path, headers=AGENT_AUTH)
    assert response.status_code == 200
    assert TOKEN not in response.get_data(as_text=True)


def test_the_journal_masks_the_token_wherever_the_pbx_sent_it(secret_app):
    entries = secret_app.test_client().get("/__admin/requests").get_json()["requests"]
    assert len(entries) == 9
    assert {entry["path"] for entry in entries} == {"/api/v1/cti/***"}
    given = [entry["params"]["token"] for entry in entries if entry["params"] and "token" in entry["params"]]
    assert given == ["***"] * 6  # json, form, query, token[value], token[], a nested object
    assert [entry["token_valid"] for entry in entries] == [True] * 6 + [False, True, True]


def test_config_is_masked_also_after_a_put(secret_app):
    client = secret_app.test_client()
    config = client.get("/__admin/config").get_json()
    assert config["token"] == "***"
    config["cti_config"]["view_limit"] = 5
    for body in (config, {**config, "token": "another-" + TOKEN}):
        response = client.put("/__admin/config", json=body)
        assert response.status_code == 200
        assert response.get_json()["token"] == "***" and TOKEN not in response.get_data(as_text=True)


@pytest.mark.parametrize(("method", "path"), [
    ("POST", f"/api/v1/cti/{TOKEN}/extra"),
    ("POST", f"/api/v1/integration/cti/{TOKEN}"),
    ("POST", f"/api/v1/cti/log/{TOKEN}"),
    ("POST", f"/{TOKEN}"),
    ("GET", f"/__admin/{TOKEN}"),
    ("GET", f"/api/v1/cti/{TOKEN}"),
    ("PUT", f"/api/v1/cti/{TOKEN}"),
    ("DELETE", f"/api/v1/cti/{TOKEN}"),
    ("GET", f"/api/v1/nothing?token={TOKEN}"),
    ("GET", f"/__admin/inspector/{TOKEN}.js"),
])
def test_error_bodies_never_echo_the_token(make_app, method, path):
    client = make_app(TOKEN=TOKEN).test_client()
    response = client.open(path, method=method, headers={"Accept": "application/json"})
    assert response.status_code == 404
    assert response.is_json and set(response.get_json()) <= {"error", "error_human"}
    assert TOKEN not in response.get_data(as_text=True) and TOKEN not in str(response.headers)


def database_files(path: Path) -> list[Path]:
    """The SQLite file and what SQLite keeps beside it (-wal, -shm), and the mock's marker file."""
    return sorted(path.parent.glob(path.name + "*"))


def test_sqlite_file_keeps_only_the_digest(secret_app, tmp_path):
    database = tmp_path / "journal.sqlite3"
    mock_state(secret_app).persistence.flush()
    files = database_files(database)
    assert database in files
    everything = b"".join(f.read_bytes() for f in files)
    assert b"s-5" in everything  # the files read are the ones the mock wrote
    assert TOKEN.encode() not in everything
    assert TOKEN.encode("utf-16-le") not in everything
    mock_state(secret_app).close()  # checkpoints the WAL into the main file
    assert TOKEN.encode() not in b"".join(f.read_bytes() for f in database_files(database))


def test_report_output_never_shows_the_token(secret_app, tmp_path):
    mock_state(secret_app).close()
    runner = CliRunner()
    for fmt in ("text", "json", "junit"):
        result = runner.invoke(main, ["report", "--journal", str(tmp_path / "journal.sqlite3"), "--format", fmt])
        assert result.exit_code == 1, result.output  # the session has error-level findings
        assert "s-1" in result.output
        assert TOKEN not in result.output, f"--format {fmt}"


# --------------------------------------------------------------------------- constant-time comparison


def test_token_is_compared_as_digests_with_compare_digest(make_app, monkeypatch):
    calls: list[tuple[Any, Any]] = []
    real = hmac.compare_digest

    def recording(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(zammad_config.hmac, "compare_digest", recording)
    client = make_app(TOKEN=TOKEN).test_client()
    assert post(client, {"event": "newCall", **INBOUND, "callId": "ct-1"}).status_code == 200
    assert post(client, {"event": "newCall", **INBOUND, "callId": "ct-2"}, token="wrong").status_code == 401
    assert calls, "the token was not compared with hmac.compare_digest"
    for a, b in calls:
        assert TOKEN not in (a, b), "the clear token reached the comparison"
    assert (DIGEST, DIGEST) in calls
    assert (hashlib.sha256(b"wrong").hexdigest(), DIGEST) in calls or (DIGEST, hashlib.sha256(b"wrong").hexdigest()) in calls


def test_compare_digest_decides(make_app, monkeypatch):
    """The answer follows compare_digest's verdict: no other comparison lets the right token through."""
    monkeypatch.setattr(zammad_config.hmac, "compare_digest", lambda a, b: False)
    client = make_app(TOKEN=TOKEN).test_client()
    assert post(client, {"event": "newCall", **INBOUND, "callId": "cd-1"}).status_code == 401


# --------------------------------------------------------------------------- the serve process


class ServeProcess:
    """``zammad-cti serve`` with stdout and stderr in files, read whenever a test wants."""

    def __init__(self, tmp: Path, *args: str) -> None:
        self.stdout_path, self.stderr_path = tmp / "stdout.txt", tmp / "stderr.txt"
        self.port = free_port()
        with open(self.stdout_path, "w") as out, open(self.stderr_path, "w") as err:
            self.process = subprocess.Popen(
                [str(ZAMMAD_CTI), "serve", "--port", str(self.port), *args],
                stdout=out, stderr=err, text=True, env=clean_env(),
            )

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def wait_until_up(self, host: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while "CTI endpoint" not in self.stdout():
            assert self.process.poll() is None, f"serve exited: {self.stderr()}"
            assert time.monotonic() < deadline, "serve printed no endpoint URL"
            time.sleep(0.05)
        while True:
            try:
                requests.get(f"http://{host}:{self.port}/__admin/health", timeout=2)
                return
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "serve did not answer"
                time.sleep(0.05)


SERVE_HOST = "127.0.0.2"  # loopback, yet not 127.0.0.1: serve must warn


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[ServeProcess]:
    if not ZAMMAD_CTI.exists():
        pytest.skip(f"console script {ZAMMAD_CTI} is not installed")
    tmp = tmp_path_factory.mktemp("secrets-serve")
    serve = ServeProcess(tmp, "--host", SERVE_HOST, "--token", TOKEN, "--journal", str(tmp / "journal.sqlite3"))
    try:
        serve.wait_until_up(SERVE_HOST)
        yield serve
    finally:
        stop(serve.process)


def raw_exchange(host: str, port: int, raw: bytes) -> bytes:
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(raw)
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


def test_serve_warns_when_binding_beyond_localhost(served):
    assert f"warning: binding {SERVE_HOST}" in served.stderr()


def test_serve_does_not_warn_on_localhost(monkeypatch, tmp_path):
    monkeypatch.setattr(mock_server.server, "run_granian", lambda *args, **kwargs: None)
    result = CliRunner().invoke(main, ["serve", "--host", "127.0.0.1", "--journal", str(tmp_path / "j.sqlite3")])
    assert result.exit_code == 0 and "warning" not in result.output


def test_serve_prints_the_token_once_and_logs_it_nowhere(served):
    base = f"http://{SERVE_HOST}:{served.port}"
    with requests.Session() as http:
        http.trust_env = False
        http.post(f"{base}/api/v1/cti/{TOKEN}", json={"event": "newCall", **INBOUND, "callId": "p-1", "token": TOKEN})
        http.post(f"{base}/api/v1/cti/{TOKEN}x", json={"event": "newCall", **INBOUND, "callId": "p-2"})
        http.post(f"{base}/api/v1/cti/{TOKEN}/extra", json={})
        http.get(f"{base}/api/v1/cti/{TOKEN}")
        # A body that makes the mock log an internal error with its traceback (the token is in the URL).
        http.post(f"{base}/api/v1/cti/{TOKEN}", data=b'{"from": ' + b"9" * 5000 + b"}",
                  headers={"Content-Type": "application/json"})
    for raw in (b"POST /api/v1/cti/%s\x01 HTTP/1.1\r\nHost: pbx\r\n\r\n",
                b"POST /api/v1/cti/%s HTTP/1.1\r\nHost: pbx\r\nbroken header\r\n\r\n",
                b"POST /api/v1/cti/%s?x HTTP/7.0\r\n\r\n"):
        raw_exchange(SERVE_HOST, served.port, raw.replace(b"%s", TOKEN.encode()))
    time.sleep(0.5)  # any log line is written after the answer
    shown = [line for line in served.stdout().splitlines() if TOKEN in line]
    assert len(shown) == 1 and "CTI endpoint (paste into your PBX)" in shown[0], shown
    assert TOKEN not in served.stderr()


@pytest.mark.parametrize("raw", [
    pytest.param(b"POST /api/v1/integration/cti/%s\x01 HTTP/1.1\r\nHost: pbx\r\n\r\n", id="old-doc-path"),
    pytest.param(b"POST /api/v1/cti/log?token=%s\x01 HTTP/1.1\r\nHost: pbx\r\n\r\n", id="token-as-query-parameter"),
])
def test_serve_logs_no_token_of_any_bad_request_line(served, raw):
    before = len(served.stderr())
    answer = raw_exchange(SERVE_HOST, served.port, raw.replace(b"%s", TOKEN.encode()))
    time.sleep(0.3)
    logged = served.stderr()[before:]
    assert TOKEN not in logged, logged
    assert TOKEN.encode() not in answer


def test_serve_journal_file_keeps_only_the_digest(served, tmp_path_factory):
    base = f"http://{SERVE_HOST}:{served.port}"
    requests.post(f"{base}/api/v1/cti/{TOKEN}", data={"event": "newCall", **INBOUND, "callId": "f-1", "token": TOKEN},
                  timeout=5)
    files_of = Path(served.stdout().split("journal:")[1].split()[0].rstrip(":"))
    deadline = time.monotonic() + 10
    while b"f-1" not in (everything := b"".join(f.read_bytes() for f in database_files(files_of))):
        assert time.monotonic() < deadline, "the journal file never got the push (written behind twice a second)"
        time.sleep(0.2)
    assert TOKEN.encode() not in everything


# --------------------------------------------------------------------------- zammad-cti check


def test_check_junit_and_output_never_show_the_token(tmp_path):
    """A failing run writes every request, answer and curl command: the token must be masked in all of them."""
    junit = tmp_path / "check.xml"
    with MockServer({"TOKEN": TOKEN}) as target:
        # Half the answers fail, and the failing answer itself carries the token.
        requests.post(f"{target.url}/__admin/faults", timeout=5, json={
            "kind": "status", "status": 503, "probability": 0.5, "body": {"error": f"echo {TOKEN} {target.endpoint_url}"}})
        done = subprocess.run(
            [str(ZAMMAD_CTI), "check", "--target", target.endpoint_url, "--suite", "fixtures", "--junit", str(junit)],
            capture_output=True, text=True, timeout=120, env=clean_env(),
        )
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    text = junit.read_text(encoding="utf-8")
    assert "<failure" in text and "curl" in text
    assert TOKEN not in text
    assert TOKEN not in done.stdout and TOKEN not in done.stderr
