"""The documentation page's four curl commands, run verbatim with the real curl against the mock.

The commands are copied as the page shows them (seed:
zammad-generic-cti-newcall.txt), placeholders included. The page breaks
each command over lines with a trailing backslash; the seed text flattens
each break to `` \\ ``, which is turned back into a plain space here, the
way the shell joins continued lines. Then only the placeholders and the
scheme change: ``{FQDN-Zammad}`` -> ``127.0.0.1:PORT``, ``{instance specific
token}`` -> the token, ``https://`` -> ``http://``.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from agent import AGENT_AUTH

from mock_server import MockServer

CURL = shutil.which("curl")
pytestmark = pytest.mark.skipif(CURL is None, reason="the curl binary is not installed, so the doc commands cannot be replayed")

# Copied from the documentation page, exactly as shown there.
JSON_OUTBOUND = """$ curl --request POST 'https://{FQDN-Zammad}/api/v1/cti/{instance specific token}' \\ --header 'Content-Type: application/json' \\ --data-raw '{ "event": "newCall", "from": "493023125741", "to": "492214710334", "direction": "out", "callId": "f4ebd2be-7b9a-4d58-94c2-eb06a3c2ce76", "user": "Christopher Miller" }'"""
JSON_INBOUND = """$ curl --request POST 'https://{FQDN-Zammad}/api/v1/cti/{instance specific token}' \\ --header 'Content-Type: application/json' \\ --data-raw '{ "event": "newCall", "from": "493023125741", "to": "492214710334", "direction": "in", "callId": "307fa962-de8d-4ffc-817b-7f6993204159", "user": ["Christopher Miller", "Emma Taylor"] }'"""
FORM_OUTBOUND = """$ curl --request POST 'https://{FQDN-Zammad}/api/v1/cti/{instance specific token}' \\ --form 'event="newCall"' \\ --form 'from="493023125741"' \\ --form 'to="492214710334"' \\ --form 'direction="out"' \\ --form 'callId="f0871278-0600-4f5c-a746-bec3acf04f41"' \\ --form 'user="Christopher Miller"'"""
FORM_INBOUND = """$ curl --request POST 'https://{FQDN-Zammad}/api/v1/cti/{instance specific token}' \\ --form 'event="newCall"' \\ --form 'from="493023125741"' \\ --form 'to="492214710334"' \\ --form 'direction="in"' \\ --form 'callId="25641e3f-3317-4c48-80b3-fc573c7ffe2b"' \\ --form 'user[]="Christopher Miller"' \\ --form 'user[]="Emma Taylor"'"""

# The answers the page documents for them.
DIAL_ANSWER = '{ "action": "dial", "caller_id": "496990009111", "number": "492214710334" }'
EMPTY_ANSWER = "{}"
# The page's "situation specific" dial example, which spells the key callerId.
SITUATION_SPECIFIC_DIAL = '{ "action": "dial", "callerId": "493055571642", "number": "491711234567890" }'

DOC_COMMANDS = [
    pytest.param(JSON_OUTBOUND, DIAL_ANSWER, "json", "f4ebd2be-7b9a-4d58-94c2-eb06a3c2ce76", id="json-outbound"),
    pytest.param(JSON_INBOUND, EMPTY_ANSWER, "json", "307fa962-de8d-4ffc-817b-7f6993204159", id="json-inbound"),
    pytest.param(FORM_OUTBOUND, DIAL_ANSWER, "multipart", "f0871278-0600-4f5c-a746-bec3acf04f41", id="form-outbound"),
    pytest.param(FORM_INBOUND, EMPTY_ANSWER, "multipart", "25641e3f-3317-4c48-80b3-fc573c7ffe2b", id="form-inbound"),
]


def runnable(command: str, mock: MockServer, token: str) -> list[str]:
    """The page's command with the placeholders filled in, split as the shell would."""
    assert command.startswith("$ curl ")
    text = command[len("$ "):].replace(" \\ ", " ")
    text = text.replace("{FQDN-Zammad}", f"127.0.0.1:{mock.port}")
    text = text.replace("{instance specific token}", token)
    text = text.replace("https://", "http://")
    argv = shlex.split(text)
    argv[0] = CURL
    return argv


def run_curl(argv: list[str]) -> str:
    # A proxy from the environment must not stand between curl and the local mock.
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def server():
    with MockServer() as running:
        yield running


@pytest.fixture
def mock(server, documented):
    """The module's mock, with an empty log and journal and the documented configuration."""
    admin = server.app.test_client()
    assert admin.put("/__admin/config", json=documented).status_code == 200
    assert admin.post("/__admin/reset").status_code == 200
    return server


@pytest.mark.parametrize(("command", "documented_answer", "encoding", "call_id"), DOC_COMMANDS)
def test_doc_command_gets_documented_answer(mock, token, command, documented_answer, encoding, call_id):
    answer = run_curl(runnable(command, mock, token))
    assert json.loads(answer) == json.loads(documented_answer)

    journal = mock.app.test_client().get("/__admin/requests").get_json()["requests"]
    assert [(e["encoding"], e["call_id"], e["status"]) for e in journal] == [(encoding, call_id, 200)]


@pytest.mark.parametrize("command", [JSON_INBOUND, FORM_INBOUND], ids=["json", "form"])
def test_doc_inbound_users_are_both_logged(mock, token, command):
    run_curl(runnable(command, mock, token))
    entries = mock.app.test_client().get("/api/v1/cti/log", headers=AGENT_AUTH).get_json()["list"]
    assert [(e["to_comment"], e["from_comment"]) for e in entries] == [
        ("Christopher Miller, Emma Taylor", "Christopher Miller")]


def test_doc_form_values_lose_their_quotes(mock, token):
    run_curl(runnable(FORM_OUTBOUND, mock, token))
    entry = mock.app.test_client().get("/api/v1/cti/log", headers=AGENT_AUTH).get_json()["list"][0]
    assert (entry["from"], entry["to"], entry["from_comment"]) == ("496990009111", "492214710334", "Christopher Miller")


def test_dial_answer_spells_caller_id_not_callerId(mock, token, documented):
    """The page's situation-specific example says callerId; a real Zammad (and the mock) sends caller_id."""
    example = json.loads(SITUATION_SPECIFIC_DIAL)
    documented["cti_config"]["outbound"]["routing_table"].insert(
        0, {"dest": "49171*", "caller_id": example["callerId"], "note": "the page's situation-specific example"})
    assert mock.app.test_client().put("/__admin/config", json=documented).status_code == 200
    command = JSON_OUTBOUND.replace('"to": "492214710334"', f'"to": "{example["number"]}"')
    answer = json.loads(run_curl(runnable(command, mock, token)))
    assert answer == {"action": "dial", "caller_id": example["callerId"], "number": example["number"]}
    assert "callerId" not in answer
    assert answer != example


def _readme_block(marker: str) -> str:
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    after = text[text.index(f"<!-- {marker} -->"):]
    start = after.index("```")
    body = after[after.index("\n", start) + 1:]
    return body[:body.index("```")]


def test_readme_first_call_block_gets_its_answer(mock):
    """The README's "first call" block, run with the real curl against the mock."""
    lines = _readme_block("first-call").replace("\\\n", " ").splitlines()
    command = next(line for line in lines if line.startswith("curl "))
    argv = shlex.split(command.replace("127.0.0.1:3000", f"127.0.0.1:{mock.port}"))
    argv[0] = CURL
    assert json.loads(run_curl(argv)) == json.loads(_readme_block("first-call-answer"))
    findings = mock.app.test_client().get("/__admin/findings").get_json()["findings"]
    assert findings == []
