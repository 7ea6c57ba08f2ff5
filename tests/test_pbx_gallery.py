"""The gallery of real PBX request shapes (``fixtures/pbx/*.json``), replayed against the mock.

Each file describes one public integration's requests as data: headers as it
sends them (no Content-Type, no Accept...), the body bytes or JSON, the query
string, the answer the current Zammad gives and the finding codes the mock
must raise for it. A request is replayed after the earlier requests of its
client, on a fresh mock with the documented configuration.

A request's ``zammad_rule`` names the rule of Zammad's that decides its
answer where that is not obvious (a form without Content-Type, an HTML error
page for a client without Accept).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mock_server.resources import fixtures_dir

GALLERY = sorted((fixtures_dir() / "pbx").glob("*.json"))
TOKEN = "documented-token-3f9c2a"  # fixtures/documented-config.json


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _cases() -> list[Any]:
    cases = []
    for path in GALLERY:
        client = _load(path)
        for index, request in enumerate(client["requests"]):
            cases.append(pytest.param(path, index, id=f"{client['client']}-{index}-{request['name']}"))
    return cases


def send(client, request: dict[str, Any]):
    """The request exactly as the integration sends it: only its own headers."""
    url = f"/api/v1/cti/{TOKEN}" + (f"?{request['query']}" if request.get("query") else "")
    body = json.dumps(request["json"]) if "json" in request else request.get("body", "")
    headers = dict(request["headers"])
    # The test client sends no Accept of its own; an empty CONTENT_TYPE is "no Content-Type header".
    content_type = headers.pop("Content-Type", "")
    return client.post(url, data=body.encode("utf-8"), headers=headers, environ_overrides={"CONTENT_TYPE": content_type})


def test_the_gallery_covers_the_six_integrations():
    assert {_load(path)["client"] for path in GALLERY} == {
        "asterisk-ami-perl", "freeswitch-lua", "go-asterisk-ari", "go-3cx-bridge", "3cx-crm-template",
        "python-client"}


@pytest.mark.parametrize(("path", "index"), _cases())
def test_gallery_request_gets_zammads_answer_and_its_findings(make_app, path, index):
    requests = _load(path)["requests"]
    client = make_app().test_client()
    for earlier in requests[:index]:
        send(client, earlier)
    request = requests[index]
    response = send(client, request)
    expected = request["answer"]
    assert response.status_code == expected["status"], response.data
    if "content_type" in expected:
        assert response.mimetype == expected["content_type"], response.data
    if "json" in expected:
        assert response.get_json() == expected["json"]
    entry = client.get("/__admin/requests").get_json()["requests"][-1]
    assert sorted(f["code"] for f in entry["findings"]) == sorted(request["findings"]), entry["findings"]
    # A working client's request raises no error unless Zammad refuses or loses it.
    if response.status_code == 200:
        assert all(f["severity"] != "error" for f in entry["findings"]), entry["findings"]
