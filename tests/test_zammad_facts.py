"""The facts read off Zammad's current code (see README "How the mock answers"), one test each, over HTTP.

Each names the file it comes from; the rules' unit tests are in test_rules.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from agent import AGENT_AUTH, AGENT_TOKEN
from zammad_answers import (
    ALREADY_EXISTS,
    AUTHENTICATION_REQUIRED,
    ERROR_ID,
    INVALID_DIRECTION,
    ZAMMAD_2021,
    missing_column,
)

from contract_tests.context import detect_profile
from contract_tests.target import Target
from mock_server import MockServer
from mock_server.zammad.caller_id import Directory
from mock_server.zammad.config import ConfigError, parse_config_text
from mock_server.zammad.profiles import UnknownProfile, load_profile, profile_names
from mock_server.zammad.routing import outbound_route


def call(event: str, call_id: str = "f1", direction: str = "in", **extra: Any) -> dict[str, Any]:
    return {"event": event, "from": "493023125741", "to": "492214710334", "direction": direction, "callId": call_id,
            **extra}


def entry_of(client, call_id: str) -> dict[str, Any] | None:
    listed = client.get("/api/v1/cti/log", headers=AGENT_AUTH).get_json()["list"]
    found = [entry for entry in listed if entry["call_id"] == call_id]
    return found[0] if found else None


# --------------------------------------------------------------------------- profiles


def test_profiles_are_files_with_aliases():
    assert profile_names() == ["2021", "current"]
    assert load_profile("5").name == load_profile("5.x").name == "2021"
    assert load_profile(None).name == load_profile("7").name == "current"
    with pytest.raises(UnknownProfile, match="known: .*current"):
        load_profile("4")


def test_configuration_names_the_profile(make_app, documented, push):
    documented["zammad"] = "2021"
    client = make_app(CTI_CONFIG=documented).test_client()
    response = push(client, {"event": "newCall", "direction": "sideways", "callId": "v"})
    assert (response.status_code, response.get_json()) == (422, ZAMMAD_2021["INVALID_DIRECTION"])
    push(client, call("newCall", "dup"))
    assert push(client, call("newCall", "dup")).get_json() == ZAMMAD_2021["ALREADY_EXISTS"]
    assert client.get("/__admin/config").get_json()["zammad"] == "2021"


def test_an_unknown_profile_in_the_configuration_is_refused():
    with pytest.raises(ConfigError, match="zammad: unknown Zammad profile '4.0'"):
        parse_config_text('{"token": "t", "zammad": "4.0", "cti_config": {}}')


# --------------------------------------------------------------------------- parameters (Rails, Rack, Cti::Log)


def test_an_empty_call_id_counts_as_given(client, push):
    """Cti::Log.process: params['callId'] || params['call_id'], and "" is true in Ruby."""
    assert push(client, {**call("newCall", ""), "call_id": "other"}).status_code == 200
    assert entry_of(client, "") is not None and entry_of(client, "other") is None


def test_a_form_without_content_type_is_read_as_a_form(client, token):
    """Rack's form_data? is true when a POST has no media type."""
    body = "event=newCall&direction=out&from=493023125741&to=498912345678&callId=no-ct"
    response = client.post(f"/api/v1/cti/{token}", data=body, content_type=None)
    assert response.get_json() == {"action": "dial", "caller_id": "498999998145", "number": "498912345678"}


@pytest.mark.parametrize(("length", "column"), [(300, "call_id"), (101, "from")])
def test_long_values_are_cut_to_their_column(client, push, length, column):
    """checks_attribute_values_and_length.rb: value[0, limit] before saving, not a refusal."""
    long_id = "c" * length if column == "call_id" else "f1"
    params = call("newCall", long_id, **({"from": "4" * length} if column == "from" else {}))
    assert (push(client, params).status_code, push(client, params).status_code) == (200, 500 if column == "from" else 422)
    stored = entry_of(client, long_id[:250])
    assert len(stored[column]) == {"call_id": 250, "from": 100}[column]


def test_a_later_event_with_the_whole_long_call_id_is_unknown(client, push):
    long_id = "L" * 300
    assert push(client, call("newCall", long_id)).status_code == 200
    response = push(client, call("hangup", long_id, cause="normalClearing"))
    assert response.status_code == 500 and ERROR_ID.match(response.get_json()["error"])


def test_two_ids_equal_once_cut_meet_the_unique_index(client, push):
    """find_by(call_id: the whole ID) finds nothing, the insert hits the unique index: 422."""
    assert push(client, call("newCall", "x" * 250 + "A")).status_code == 200
    response = push(client, call("newCall", "x" * 250 + "B"))
    assert (response.status_code, response.get_json()) == (422, ALREADY_EXISTS)


@pytest.mark.parametrize("missing", ["from", "to", "callId"])
def test_new_call_without_a_not_null_column(client, push, missing):
    params = call("newCall", "nn")
    del params[missing]
    response = push(client, params)
    column = {"callId": "call_id"}.get(missing, missing)
    assert (response.status_code, response.get_json()) == (422, missing_column(column))


# --------------------------------------------------------------------------- Cti::Driver::Base


def test_inbound_answer_with_user_array_fails_after_saving(client, push):
    push(client, call("newCall", "arr"))
    response = push(client, {**call("answer", "arr"), "user[]": ["Emma Taylor"]}, "urlencoded")
    assert response.status_code == 500 and ERROR_ID.match(response.get_json()["error"])
    assert entry_of(client, "arr")["state"] == "answer"  # saved before push_open_ticket_screen failed


def test_inbound_answer_with_user_array_passes_when_answering_number_names_an_agent(make_app, documented, push):
    documented["agents"][0]["phone"] = "+49 30 5551234"
    client = make_app(CTI_CONFIG=documented).test_client()
    push(client, call("newCall", "arr"))
    response = push(client, {**call("answer", "arr"), "user": ["A", "B"], "answeringNumber": "493055512 34"})
    assert (response.status_code, response.get_json()) == (200, {})


def test_outbound_answer_with_user_array_is_fine(client, push):
    push(client, call("newCall", "arr-out", "out"))
    assert push(client, {**call("answer", "arr-out", "out"), "user": ["A", "B"]}).status_code == 200


def test_routing_dest_is_an_unescaped_pattern():
    """dest.gsub('*', '.+?') inside /^...$/: a '.' matches any character."""
    cti = {"outbound": {"routing_table": [{"dest": "49.9*", "caller_id": "dot"}], "default_caller_id": "d"}}
    assert outbound_route(cti, "4919123")[0] == "dot"
    assert outbound_route(cti, "49.9123")[0] == "dot"
    assert outbound_route(cti, "4999")[0] == "d"  # .+? needs one character after the 9


def test_an_invalid_dest_and_a_numeric_to_fail_as_in_zammad(make_app, documented, push):
    documented["cti_config"]["outbound"]["routing_table"].append({"dest": "(*", "caller_id": "x"})
    client = make_app(CTI_CONFIG=documented).test_client()
    munich = push(client, call("newCall", "r1", "out", to="498912345678"))
    assert munich.status_code == 200  # the broken row comes later: never reached
    broken = push(client, call("newCall", "r2", "out", to="442071234567"))
    assert broken.status_code == 500 and ERROR_ID.match(broken.get_json()["error"])
    numeric = push(client, call("newCall", "r3", "out", to=498912345678))
    assert numeric.status_code == 500 and entry_of(client, "r3") is None


def test_a_numeric_to_dials_the_default_when_there_is_no_routing_table(make_app, documented, push):
    documented["cti_config"]["outbound"]["routing_table"] = []
    client = make_app(CTI_CONFIG=documented).test_client()
    response = push(client, call("newCall", "n1", "out", to=4930123))
    assert response.get_json() == {"action": "dial", "caller_id": "496990009111", "number": 4930123}


# --------------------------------------------------------------------------- the caller log (cti_controller.rb, Cti::Log)


def test_the_caller_log_wants_an_agent(client):
    missing = client.get("/api/v1/cti/log", headers={"Accept": "application/json"})
    assert (missing.status_code, missing.get_json()) == (403, AUTHENTICATION_REQUIRED)
    wrong = client.get("/api/v1/cti/log", headers={"Authorization": "Token token=nope", "Accept": "*/*"})
    assert wrong.status_code == 401 and wrong.get_json()["error"] == "Can't find User for Token"
    for spelling in (f"Token token={AGENT_TOKEN}", f'Token token="{AGENT_TOKEN}"', f"Bearer {AGENT_TOKEN}"):
        assert client.get("/api/v1/cti/log", headers={"Authorization": spelling}).status_code == 200, spelling


def test_the_open_caller_log_is_the_mocks_own_switch(make_app):
    client = make_app(OPEN_CALLER_LOG=True).test_client()
    assert client.get("/api/v1/cti/log").status_code == 200


def test_backends_pretty_numbers_and_assets(client, push):
    push(client, call("newCall", "p1", **{"from": "+49 30 23125741"}))
    body = client.get("/api/v1/cti/log", headers=AGENT_AUTH).get_json()
    assert [b["name"] for b in body["backends"]] == ["CTI (generic)", "sipgate.io", "Placetel"]
    assert body["backends"][0]["enabled"] is True
    entry = body["list"][0]
    assert (entry["from_pretty"], entry["to_pretty"]) == ("+49 30 23125741", "+49 221 4710334")
    assert entry["preferences"]["from_pretty"] == "+49 30 23125741"
    user_id = entry["preferences"]["from"][0]["user_id"]
    assert body["assets"]["User"][str(user_id)]["lastname"] == "Miller"


def test_notify_map_filters_by_the_agents_queues(make_app, documented, push):
    documented["cti_config"]["notify_map"] = [{"queue": "4930600000000", "user_ids": ["2"]}]
    documented["agents"].append({"id": 3, "login": "other@example.com", "token": "other-token"})
    client = make_app(CTI_CONFIG=documented).test_client()
    push(client, call("newCall", "mine", to="4930600000000"))
    push(client, call("newCall", "theirs", to="4930700000000"))
    mine = client.get("/api/v1/cti/log", headers=AGENT_AUTH).get_json()["list"]
    other = client.get("/api/v1/cti/log", headers={"Authorization": "Token token=other-token"}).get_json()["list"]
    assert [e["call_id"] for e in mine] == ["mine"] and other == []
    assert {e["call_id"] for e in client.get("/__admin/calllog").get_json()["list"]} == {"mine", "theirs"}


# --------------------------------------------------------------------------- caller identification (Cti::CallerId)


def test_maybe_level_only_when_no_known_user_matches():
    directory = Directory([{"name": "Known Person", "phone": "030 111111"},
                           {"name": "Ticket Writer", "articles": ["please call 030 111111 or 030 222222"]}])
    assert directory.comment_for("4930111111") == "Known Person"
    found = directory.identify("4930222222")
    assert found.comment == "maybe Ticket Writer"
    assert [r["level"] for r in found.preferences("from")["from"]] == ["maybe"]


def test_one_record_per_user_newest_first_at_most_20():
    contacts = [{"name": f"User {n}", "phone": "030 333333", "mobile": "030 333333"} for n in range(25)]
    found = Directory(contacts).identify("4930333333")
    assert len(found.records) == 20
    assert found.records[0].name == "User 24" and len({r.user_id for r in found.records}) == 20


# --------------------------------------------------------------------------- the configuration mirrors Zammad's settings


def test_token_comes_from_the_option_or_is_made():
    given = parse_config_text('{"cti_config": {"inbound": {}, "outbound": {}}}', token="from-option")
    assert given.token == "from-option" and not given.notes
    made = parse_config_text('{"cti_config": {"inbound": {}, "outbound": {}}}')
    assert len(made.token) >= 16 and "random" in made.notes[0]


def test_a_bare_cti_config_is_recognised_with_a_hint(documented):
    config = parse_config_text(json.dumps(documented["cti_config"]), token="t")
    assert config.cti_config == documented["cti_config"]
    assert "bare cti_config" in config.notes[0]


# --------------------------------------------------------------------------- the check tells the version


@pytest.mark.parametrize("zammad", ["current", "2021"])
def test_one_probe_tells_the_version(documented, zammad):
    with MockServer({"CTI_CONFIG": {**documented, "zammad": zammad}}) as mock:
        found = detect_profile(Target.from_url(mock.endpoint_url), None)
    assert found is not None and found.name == zammad


def test_the_probe_says_nothing_for_an_unknown_answer(documented):
    with MockServer({"CTI_CONFIG": documented}) as mock:
        assert detect_profile(Target.from_url(mock.endpoint_url.replace("documented", "wrong")), None) is None


def test_invalid_direction_texts_differ_between_versions():
    assert load_profile("current").text("invalid-direction") == INVALID_DIRECTION["error"]
    assert load_profile("2021").text("invalid-direction") != INVALID_DIRECTION["error"]


# --------------------------------------------------------------------------- Rack refuses before Zammad runs


@pytest.mark.parametrize(("accept", "json_answer"), [("application/json", True), ("*/*", False), (None, False)])
def test_user_and_user_brackets_conflict_is_rails_400(client, token, accept, json_answer):
    """Rack's ParameterTypeError: Rails' public exceptions answer JSON only for a JSON-first Accept."""
    headers = {"Accept": accept} if accept else {}
    response = client.post(f"/api/v1/cti/{token}", data="event=newCall&direction=in&callId=c&user=a&user%5B%5D=b",
                           content_type="application/x-www-form-urlencoded", headers=headers)
    assert response.status_code == 400
    if json_answer:
        assert response.get_json() == {"status": 400, "error": "Bad Request"}
    else:
        assert response.mimetype == "text/html"
    assert "expected Array (got String) for param `user'" in response.headers["X-Zammad-Cti-Mock-Hint"]


def test_a_plain_key_after_the_array_overwrites_it(client, token):
    response = client.post(f"/api/v1/cti/{token}", data="event=newCall&direction=in&from=1&to=2&callId=o&user%5B%5D=b&user=a",
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200
    assert entry_of(client, "o")["to_comment"] == "a"
