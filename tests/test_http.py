"""The mock over HTTP (Flask's test client): one test per row of zammad-cti-reference.md.

Rows that do not depend on how the parameters arrive run in every encoding
Zammad accepts: JSON, urlencoded, multipart and query string.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from agent import AGENT_AUTH
from zammad_answers import (
    ALREADY_EXISTS,
    ERROR_ID,
    FEATURE_DISABLED,
    INVALID_DIRECTION,
    INVALID_TOKEN,
    NO_ROUTE,
    NOT_CONFIGURED,
    REJECT,
    missing_column,
)

from mock_server import MockServer

DISABLED = FEATURE_DISABLED

LOG_FIELDS = {
    "id", "call_id", "direction", "state", "from", "from_comment", "to", "to_comment", "queue", "comment",
    "done", "initialized_at", "start_at", "end_at", "duration_waiting_time", "duration_talking_time",
    "preferences", "created_at", "updated_at", "from_pretty", "to_pretty",
}

ENCODINGS = ("json", "urlencoded", "multipart", "query")
encodings = pytest.mark.parametrize("encoding", ENCODINGS)


def call(event: str, call_id: str = "c1", direction: str = "in", **extra: Any) -> dict[str, Any]:
    params = {"event": event, "from": "493023125741", "to": "492214710334", "direction": direction, "callId": call_id}
    params.update(extra)
    return params


def with_value(params: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """``params`` with ``key`` set to ``value``, or left out when ``value`` is None."""
    if value is None:
        params.pop(key, None)
    else:
        params[key] = value
    return params


def caller_log(client) -> list[dict[str, Any]]:
    response = client.get("/api/v1/cti/log", headers=AGENT_AUTH)
    assert response.status_code == 200
    return response.get_json()["list"]


def entry_of(client, call_id: str) -> dict[str, Any]:
    matches = [entry for entry in caller_log(client) if entry["call_id"] == call_id]
    assert len(matches) == 1, f"{call_id!r} is {len(matches)} times in the caller log"
    return matches[0]


def journal(client, **args: Any) -> list[dict[str, Any]]:
    return client.get("/__admin/requests", query_string=args).get_json()["requests"]


# --------------------------------------------------------------------------- checks 1 to 3


@encodings
@pytest.mark.parametrize("token_kind", ["right", "wrong"])
def test_disabled(make_app, documented, push, encoding, token_kind):
    client = make_app(CTI_CONFIG={**documented, "integration": False}).test_client()
    token = None if token_kind == "right" else "wrong-token"
    response = push(client, call("newCall", direction="bogus"), encoding, token=token)
    assert (response.status_code, response.get_json()) == (422, DISABLED)


def test_disabled_before_not_configured(make_app, documented, push):
    client = make_app(CTI_CONFIG={**documented, "integration": False, "cti_config": {}}).test_client()
    response = push(client, call("newCall"))
    assert (response.status_code, response.get_json()) == (422, DISABLED)


def _cti_variant(documented: dict[str, Any], variant: str) -> Any:
    cti = documented["cti_config"]
    return {
        "empty": {},
        "null": None,
        "blank-inbound": {**cti, "inbound": {}},
        "blank-outbound": {**cti, "outbound": {}},
        "missing-inbound": {"outbound": cti["outbound"]},
    }[variant]


@encodings
@pytest.mark.parametrize("variant", ["empty", "null", "blank-inbound", "blank-outbound", "missing-inbound"])
def test_not_configured(make_app, documented, push, encoding, variant):
    """Comes before the token check: a wrong token and a bad direction still get "not configured"."""
    config = {**documented, "cti_config": _cti_variant(documented, variant)}
    client = make_app(CTI_CONFIG=config).test_client()
    response = push(client, call("newCall", direction="bogus"), encoding, token="wrong-token")
    assert (response.status_code, response.get_json()) == (422, NOT_CONFIGURED)
    assert caller_log(client) == []


@encodings
@pytest.mark.parametrize("token", ["wrong-token", "DOCUMENTED-TOKEN-3F9C2A", "documented-token-3f9c2"],
                         ids=["other", "case", "prefix"])
def test_invalid_token(client, push, encoding, token):
    response = push(client, call("newCall", direction="bogus"), encoding, token=token)
    assert (response.status_code, response.get_json()) == (401, INVALID_TOKEN)
    assert caller_log(client) == []


def test_token_parameter_does_not_replace_path_token(client, push, token):
    response = push(client, call("newCall", token=token), "urlencoded", token="wrong-token")
    assert (response.status_code, response.get_json()) == (401, INVALID_TOKEN)


def test_token_override_from_test_config(make_app, push, token):
    client = make_app(TOKEN="another-token").test_client()
    assert push(client, call("newCall"), token=token).status_code == 401
    assert push(client, call("newCall"), token="another-token").status_code == 200


# --------------------------------------------------------------------------- check 4: direction


@encodings
@pytest.mark.parametrize("direction", ["sideways", "", "IN", None], ids=["other", "empty", "upper-case", "missing"])
def test_invalid_direction(client, push, encoding, direction):
    params = call("newCall")
    with_value(params, "direction", direction)
    response = push(client, params, encoding)
    assert (response.status_code, response.get_json()) == (422, INVALID_DIRECTION)
    assert caller_log(client) == []


# --------------------------------------------------------------------------- check 5: reject


@encodings
def test_blocked_caller_is_rejected_and_logged(client, push, encoding):
    response = push(client, call("newCall", call_id="spam-1", **{"from": "491715000000"}), encoding)
    assert (response.status_code, response.get_json()) == (200, REJECT)
    entry = entry_of(client, "spam-1")
    assert (entry["state"], entry["direction"], entry["from"], entry["done"]) == ("newCall", "in", "491715000000", False)


@encodings
@pytest.mark.parametrize("from_number", ["+491715000000", "00491715000000", "4917150000001"],
                         ids=["plus", "double-zero", "longer"])
def test_block_list_needs_exact_match(client, push, encoding, from_number):
    response = push(client, call("newCall", **{"from": from_number}), encoding)
    assert (response.status_code, response.get_json()) == (200, {})


def test_block_list_applies_to_inbound_new_call_only(client, push):
    push(client, call("newCall", call_id="spam-2", **{"from": "491715000000"}))
    for event in ("answer", "hangup"):
        response = push(client, call(event, call_id="spam-2", **{"from": "491715000000"}))
        assert (response.status_code, response.get_json()) == (200, {})
    outbound = push(client, call("newCall", call_id="spam-3", direction="out", **{"from": "491715000000"}))
    assert outbound.get_json()["action"] == "dial"
    assert entry_of(client, "spam-2")["state"] == "hangup"


# --------------------------------------------------------------------------- check 6: dial


@encodings
@pytest.mark.parametrize(
    ("to", "caller_id"),
    [
        ("498912345", "498999998145"),
        ("493012345", "493023125877"),
        ("492214710334", "496990009111"),
        ("4930", "496990009111"),
    ],
    ids=["munich", "berlin", "default", "4930-alone-is-default"],
)
def test_outbound_dial(client, push, encoding, to, caller_id):
    response = push(client, call("newCall", call_id="out-1", direction="out", to=to), encoding)
    assert response.status_code == 200
    assert response.get_json() == {"action": "dial", "caller_id": caller_id, "number": to}
    entry = entry_of(client, "out-1")
    assert (entry["from"], entry["queue"], entry["to"]) == (caller_id, caller_id, to)


def test_dial_keeps_a_given_queue(client, push):
    push(client, call("newCall", direction="out", to="498912345", queue="sales"))
    assert entry_of(client, "c1")["queue"] == "sales"


def test_no_dial_without_match_and_default(make_app, documented, push):
    documented["cti_config"]["outbound"]["default_caller_id"] = None
    client = make_app(CTI_CONFIG=documented).test_client()
    response = push(client, call("newCall", direction="out", to="492214710334"))
    assert (response.status_code, response.get_json()) == (200, {})
    assert entry_of(client, "c1")["from"] == "493023125741"


def test_no_dial_for_blank_to(client, push):
    response = push(client, call("newCall", direction="out", to=""))
    assert (response.status_code, response.get_json()) == (200, {})


def test_new_call_without_to_fails_the_not_null_column(client, push):
    """Nothing to route, and cti_logs.to is NOT NULL: Zammad's handler answers 422 naming the column."""
    params = with_value(call("newCall", direction="out"), "to", None)
    response = push(client, params)
    assert (response.status_code, response.get_json()) == (422, missing_column("to"))


@pytest.mark.parametrize("event", ["answer", "hangup"])
def test_only_new_call_dials(client, push, event):
    push(client, call("newCall", direction="out", to="498912345"))
    response = push(client, call(event, direction="out", to="498912345"))
    assert (response.status_code, response.get_json()) == (200, {})


# --------------------------------------------------------------------------- check 7 and the life cycle


@encodings
def test_full_inbound_life_cycle(client, push, encoding):
    for event, extra in (("newCall", {}), ("answer", {"user": "Emma Taylor"}), ("hangup", {"cause": "normalClearing"})):
        response = push(client, call(event, **extra), encoding)
        assert (response.status_code, response.get_json()) == (200, {}), event
    entry = entry_of(client, "c1")
    assert (entry["state"], entry["done"], entry["to_comment"], entry["comment"]) == (
        "hangup", True, "Emma Taylor", "normalClearing")


def test_answer_after_hangup_answers_empty(client, push):
    push(client, call("newCall"))
    push(client, call("hangup", cause="cancel"))
    response = push(client, call("answer", user="Late"))
    assert (response.status_code, response.get_json()) == (200, {})
    entry = entry_of(client, "c1")
    assert (entry["state"], entry["to_comment"], entry["start_at"]) == ("hangup", None, None)


def test_durations_over_http(app, push, use_clock):
    clock = use_clock(app)
    client = app.test_client()
    push(client, call("newCall"))
    clock.advance(3)
    push(client, call("answer"))
    clock.advance(7)
    push(client, call("hangup"))
    entry = entry_of(client, "c1")
    assert (entry["duration_waiting_time"], entry["duration_talking_time"]) == (3, 7)
    assert (entry["initialized_at"], entry["start_at"], entry["end_at"]) == (
        "2024-05-06T10:00:00.000Z", "2024-05-06T10:00:03.000Z", "2024-05-06T10:00:10.000Z")


@encodings
def test_duplicate_new_call(client, push, encoding):
    assert push(client, call("newCall"), encoding).status_code == 200
    response = push(client, call("newCall"), encoding)
    assert (response.status_code, response.get_json()) == (500, ALREADY_EXISTS)
    assert len(caller_log(client)) == 1


@encodings
@pytest.mark.parametrize("event", ["answer", "hangup"])
def test_unknown_call(client, push, encoding, event):
    response = push(client, call(event, call_id="never-started"), encoding)
    assert response.status_code == 500
    assert ERROR_ID.match(response.get_json()["error"]), response.get_json()
    assert set(response.get_json()) == {"error"}


def test_error_ids_are_new_each_time(client, push):
    first = push(client, call("hangup", call_id="x")).get_json()["error"]
    second = push(client, call("hangup", call_id="x")).get_json()["error"]
    assert ERROR_ID.match(first) and ERROR_ID.match(second)
    assert first != second


@encodings
@pytest.mark.parametrize("event", ["ringing", "", None], ids=["unknown", "empty", "missing"])
def test_unknown_or_missing_event(client, push, encoding, event):
    params = call("newCall")
    with_value(params, "event", event)
    response = push(client, params, encoding)
    assert response.status_code == 422
    assert ERROR_ID.match(response.get_json()["error"]), response.get_json()
    assert caller_log(client) == []


# --------------------------------------------------------------------------- how parameters arrive


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart", "query"])
def test_rails_array_user(client, push, encoding):
    push(client, call("newCall", **{"user[]": ["Christopher Miller", "Emma Taylor"]}), encoding)
    assert entry_of(client, "c1")["to_comment"] == "Christopher Miller, Emma Taylor"


def test_json_array_user(client, push):
    push(client, call("newCall", user=["Christopher Miller", "Emma Taylor"]), "json")
    assert entry_of(client, "c1")["to_comment"] == "Christopher Miller, Emma Taylor"


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart", "query"])
def test_plain_repeated_user_keeps_last(client, push, encoding):
    push(client, call("newCall", user=["Christopher Miller", "Emma Taylor"]), encoding)
    assert entry_of(client, "c1")["to_comment"] == "Emma Taylor"
    assert journal(client)[-1]["repeated_keys"] == ["user"]


@encodings
def test_call_id_alias(client, push, encoding):
    params = call("newCall")
    params["call_id"] = params.pop("callId")
    assert push(client, params, encoding).status_code == 200
    response = push(client, call("hangup", call_id="c1"), encoding)
    assert (response.status_code, response.get_json()) == (200, {})
    assert entry_of(client, "c1")["state"] == "hangup"


def test_query_and_json_body_merge_query_wins(client, token):
    """Rails: request_parameters.merge(query_parameters)."""
    response = client.post(
        f"/api/v1/cti/{token}",
        query_string={"event": "newCall", "direction": "in", "from": "493023125741", "callId": "m1", "queue": "q"},
        json={"from": "body-from", "to": "492214710334"},
    )
    assert (response.status_code, response.get_json()) == (200, {})
    entry = entry_of(client, "m1")
    assert (entry["from"], entry["to"], entry["queue"]) == ("493023125741", "492214710334", "q")


def test_query_and_form_body_merge_query_wins(client, token):
    response = client.post(
        f"/api/v1/cti/{token}",
        query_string={"event": "newCall", "direction": "out", "to": "492214710334", "callId": "m2"},
        data={"to": "498912345678", "direction": "in"},
    )
    assert response.get_json() == {"action": "dial", "caller_id": "496990009111", "number": "492214710334"}


def test_query_direction_alone_is_enough(client, token):
    response = client.post(f"/api/v1/cti/{token}?event=newCall&direction=out&to=498912345&callId=q1")
    assert response.get_json() == {"action": "dial", "caller_id": "498999998145", "number": "498912345"}


@pytest.mark.parametrize("body", ["[1, 2]", '"newCall"', "42", "null"], ids=["array", "string", "number", "null"])
def test_json_body_that_is_not_an_object(client, token, body):
    response = client.post(f"/api/v1/cti/{token}", data=body, content_type="application/json")
    assert (response.status_code, response.get_json()) == (422, INVALID_DIRECTION)


@pytest.mark.parametrize("body", ['{"event": "newCall",', "{event: newCall}"], ids=["truncated", "unquoted"])
def test_malformed_json(client, token, body):
    """Rails' ParseError is a StandardError: Zammad's error handler answers 500 with an Error ID."""
    response = client.post(f"/api/v1/cti/{token}", data=body.encode("latin-1"), content_type="application/json",
                           headers={"Accept": "application/json"})
    assert response.status_code == 500
    assert response.mimetype == "application/json"
    assert set(response.get_json()) == {"error"}
    assert ERROR_ID.match(response.get_json()["error"])


def test_malformed_json_comes_after_the_integration_checks(make_app, documented):
    documented["integration"] = False
    client = make_app(CTI_CONFIG=documented).test_client()
    response = client.post(f"/api/v1/cti/{documented['token']}", data=b'{"event":', content_type="application/json")
    assert (response.status_code, response.get_json()) == (422, FEATURE_DISABLED)


def test_empty_json_body_reads_as_no_parameters(client, token):
    response = client.post(f"/api/v1/cti/{token}", data="", content_type="application/json")
    assert (response.status_code, response.get_json()) == (422, INVALID_DIRECTION)


# --------------------------------------------------------------------------- every answer is JSON


def _requests_of_every_kind(client, token, accept):
    url = f"/api/v1/cti/{token}"
    headers = {"Accept": accept}
    yield "dial", client.post(url, json=call("newCall", call_id="j1", direction="out"), headers=headers)
    yield "empty", client.post(url, json=call("newCall", call_id="j2"), headers=headers)
    yield "reject", client.post(url, json=call("newCall", call_id="j3", **{"from": "491715000000"}), headers=headers)
    yield "401", client.post("/api/v1/cti/wrong", json=call("newCall"), headers=headers)
    yield "422", client.post(url, json={"event": "newCall"}, headers=headers)
    yield "500", client.post(url, json=call("newCall", call_id="j2"), headers=headers)
    yield "500 malformed", client.post(url, data="{", content_type="application/json", headers=headers)
    yield "404", client.get("/api/v1/nothing-here", headers=headers)
    yield "404 GET push", client.get(url, headers=headers)
    yield "log", client.get("/api/v1/cti/log", headers={**AGENT_AUTH, **headers})
    yield "health", client.get("/__admin/health", headers=headers)


@pytest.mark.parametrize("accept", ["application/json", "*/*", "text/html, application/json;q=0.9"])
def test_every_answer_is_json_for_a_client_that_accepts_json(client, token, accept):
    for kind, response in _requests_of_every_kind(client, token, accept):
        assert response.mimetype == "application/json", kind
        assert isinstance(json.loads(response.get_data(as_text=True)), dict), kind


HANDLER_ERRORS = [
    pytest.param({"event": "ring", "direction": "in", "callId": "x"}, 422, id="unknown-event"),
    pytest.param({"event": "hangup", "direction": "in", "callId": "nobody"}, 500, id="unknown-call"),
]
CONTROLLER_ERRORS = [
    pytest.param({"event": "newCall", "direction": "sideways", "callId": "x"}, 422, INVALID_DIRECTION, id="direction"),
]


@pytest.mark.parametrize(("params", "status"), HANDLER_ERRORS)
@pytest.mark.parametrize("accept", [None, "text/html,application/xhtml+xml,*/*;q=0.8", "text/plain"],
                         ids=["no-accept", "browser", "text"])
def test_handler_errors_are_an_html_page_without_json_in_accept(client, push, params, status, accept):
    """respond_to: format.json only for a JSON Accept; no Accept (Go's net/http) gets public/<status>.html."""
    response = push(client, params, "urlencoded", accept=accept)
    assert response.status_code == status
    assert response.mimetype == "text/html"
    assert "<html" in response.get_data(as_text=True)


@pytest.mark.parametrize(("params", "status", "body"), CONTROLLER_ERRORS)
def test_controller_errors_stay_json_without_accept(client, push, params, status, body):
    response = push(client, params, "urlencoded", accept=None)
    assert (response.status_code, response.mimetype, response.get_json()) == (status, "application/json", body)
    wrong = push(client, call("newCall"), "urlencoded", token="wrong", accept=None)
    assert (wrong.status_code, wrong.mimetype, wrong.get_json()) == (401, "application/json", INVALID_TOKEN)


@pytest.mark.parametrize("spelling", ["query", "path"])
def test_format_json_parameter_or_path_asks_for_json(client, token, spelling):
    url = f"/api/v1/cti/{token}.json" if spelling == "path" else f"/api/v1/cti/{token}?format=json"
    response = client.post(url, data={"event": "hangup", "direction": "in", "callId": "nobody"})
    assert (response.status_code, response.mimetype) == (500, "application/json")
    assert ERROR_ID.match(response.get_json()["error"])


# --------------------------------------------------------------------------- the caller log


def test_log_shape_and_fields(client, push):
    push(client, call("newCall"))
    body = client.get("/api/v1/cti/log", headers=AGENT_AUTH).get_json()
    assert set(body) == {"list", "assets", "backends"}
    assert isinstance(body["assets"], dict)
    assert len(body["list"]) == 1
    assert set(body["list"][0]) == LOG_FIELDS


def test_log_newest_first_at_most_view_limit(make_app, documented, push):
    documented["cti_config"]["view_limit"] = 2
    client = make_app(CTI_CONFIG=documented).test_client()
    for n in (1, 2, 3):
        push(client, call("newCall", call_id=f"v{n}"))
    assert [entry["call_id"] for entry in caller_log(client)] == ["v3", "v2"]


def test_log_default_view_limit_is_60(client, push):
    for n in range(61):
        push(client, call("newCall", call_id=f"d{n}"))
    entries = caller_log(client)
    assert len(entries) == 60
    assert entries[0]["call_id"] == "d60"
    assert entries[-1]["call_id"] == "d1"


def test_log_is_bounded_by_max_calls(make_app, push):
    client = make_app(MAX_CALLS=2).test_client()
    for n in (1, 2, 3):
        push(client, call("newCall", call_id=f"b{n}"))
    assert [entry["call_id"] for entry in caller_log(client)] == ["b3", "b2"]


def test_inbound_caller_identified(client, push):
    push(client, call("newCall", **{"from": "493023125741"}))
    assert entry_of(client, "c1")["from_comment"] == "Christopher Miller"


def test_outbound_callee_identified(client, push):
    push(client, call("newCall", direction="out", to="02214710334", user="Christopher Miller"))
    entry = entry_of(client, "c1")
    assert (entry["from_comment"], entry["to_comment"]) == ("Christopher Miller", "Emma Taylor")


def test_unknown_caller_has_no_comment(client, push):
    push(client, call("newCall", **{"from": "anonymous"}))
    entry = entry_of(client, "c1")
    assert (entry["from_comment"], entry["preferences"]) == (None, {"from_pretty": "", "to_pretty": "+49 221 4710334"})


# --------------------------------------------------------------------------- the admin API


def test_health_counts(client, push):
    push(client, call("newCall"))
    push(client, call("answer"))
    body = client.get("/__admin/health").get_json()
    assert (body["status"], body["calls"], body["requests"]) == ("ok", 1, 2)


def test_reset_clears_log_and_journal(client, push):
    push(client, call("newCall"))
    response = client.post("/__admin/reset")
    assert response.status_code == 200
    assert caller_log(client) == []
    assert journal(client) == []
    assert push(client, call("newCall")).status_code == 200  # the call ID is free again


def test_get_config_masks_token(client, token, documented):
    response = client.get("/__admin/config")
    assert response.status_code == 200
    assert token not in response.get_data(as_text=True)
    body = response.get_json()
    assert body["token"] == "***"
    assert body["cti_config"] == documented["cti_config"]


def test_put_config_applies_to_next_request_and_keeps_token(client, push, token):
    new = {"cti_config": {"outbound": {"routing_table": [{"dest": "4940*", "caller_id": "494011111111"}]},
                          "inbound": {"block_caller_ids": [{"caller_id": "anonymous"}]}}}
    response = client.put("/__admin/config", json=new)
    assert response.status_code == 200
    assert token not in response.get_data(as_text=True)
    dial = push(client, call("newCall", call_id="p1", direction="out", to="494012345"), token=token)
    assert dial.get_json() == {"action": "dial", "caller_id": "494011111111", "number": "494012345"}
    assert push(client, call("newCall", call_id="p2", direction="out", to="498912345")).get_json() == {}
    assert push(client, call("newCall", call_id="p3", **{"from": "anonymous"})).get_json() == REJECT
    assert client.get("/__admin/config").get_json()["cti_config"] == new["cti_config"]


def test_put_config_with_token_replaces_it(client, push, token, documented):
    response = client.put("/__admin/config", json={"token": "fresh-token", "cti_config": documented["cti_config"]})
    assert response.status_code == 200
    assert push(client, call("newCall"), token=token).status_code == 401
    assert push(client, call("newCall"), token="fresh-token").status_code == 200


def test_put_config_can_switch_integration_off(client, push):
    client.put("/__admin/config", json={"integration": False, "cti_config": {}})
    assert push(client, call("newCall")).get_json() == DISABLED


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"cti_config": {"outbound": {"routing_table": [{"dest": "49*"}]}}},
         "cti_config/outbound/routing_table/0: 'caller_id' is a required property"),
        ({"integration": True}, "'cti_config' is a required property"),
        ({"token": "", "cti_config": {}}, "token"),
        ([1, 2], "JSON object"),
    ],
    ids=["row-without-caller-id", "no-cti-config", "empty-token", "not-an-object"],
)
def test_put_invalid_config(client, push, body, fragment):
    response = client.put("/__admin/config", json=body)
    assert response.status_code == 400
    assert fragment in response.get_json()["error"]
    dial = push(client, call("newCall", direction="out", to="498912345"))
    assert dial.get_json()["caller_id"] == "498999998145"  # the old configuration still runs


def test_put_config_that_is_not_json(client):
    response = client.put("/__admin/config", data="token: x", content_type="text/yaml")
    assert response.status_code == 400
    assert "JSON object" in response.get_json()["error"]


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_journal_records_parsed_request(client, push, encoding):
    users = ["A", "B"]
    user_key = "user" if encoding == "json" else "user[]"  # JSON sends the array itself
    push(client, call("newCall", direction="out", to="498912345", **{user_key: users}), encoding)
    (entry,) = journal(client)
    assert entry["params"] == {"event": "newCall", "from": "493023125741", "to": "498912345",
                               "direction": "out", "callId": "c1", "user": users}
    assert entry["encoding"] == encoding
    assert entry["status"] == 200
    assert entry["answer"] == {"action": "dial", "caller_id": "498999998145", "number": "498912345"}
    assert (entry["call_id"], entry["event"]) == ("c1", "newCall")
    assert entry["path"] == "/api/v1/cti/***"


def test_journal_filters_by_call_id(client, push):
    push(client, call("newCall", call_id="a"))
    push(client, call("newCall", call_id="b"))
    push(client, call("hangup", call_id="a"))
    assert [e["event"] for e in journal(client, call_id="a")] == ["newCall", "hangup"]
    assert len(journal(client, limit=1)) == 1


def test_journal_never_contains_the_token(client, push, token):
    push(client, call("newCall", call_id="t1", token=token), "urlencoded")
    push(client, call("newCall", call_id="t2"), "json")
    client.post(f"/api/v1/cti/{token}?token={token}", json=call("hangup", call_id="t2", token=token))
    client.post(f"/api/v1/cti/{token}", data="{", content_type="application/json")
    push(client, call("newCall", call_id="t3"), token=token + "x")
    text = client.get("/__admin/requests").get_data(as_text=True)
    assert len(json.loads(text)["requests"]) == 5
    assert token not in text
    assert [e["token_valid"] for e in json.loads(text)["requests"]] == [True, True, True, True, False]


# --------------------------------------------------------------------------- HTTP outside Zammad's routes


def test_unknown_route_is_zammads_404(client):
    """Zammad's catch-all route (errors#routing): 404, in the format the client accepts."""
    response = client.post("/api/v1/cti", headers={"Accept": "application/json"})
    assert (response.status_code, response.mimetype, response.get_json()) == (404, "application/json", NO_ROUTE)
    assert "/api/v1/cti" in response.headers["X-Zammad-Cti-Mock-Hint"]
    page = client.post("/api/v1/cti")
    assert (page.status_code, page.mimetype) == (404, "text/html")


def test_old_documentation_path_is_404_without_token(client, token):
    response = client.post(f"/api/v1/integration/cti/{token}", json=call("newCall"), headers={"Accept": "*/*"})
    assert (response.status_code, response.get_json()) == (404, NO_ROUTE)
    assert token not in response.get_data(as_text=True) and token not in str(response.headers)
    assert "old documentation" in response.headers["X-Zammad-Cti-Mock-Hint"]


@pytest.mark.parametrize("path", ["/api/v1/integration/cti/{token}", "/api/v1/cti/{token}/extra"],
                         ids=["old-doc-path", "extra-segment"])
def test_404_never_echoes_the_token(client, token, path):
    response = client.post(path.format(token=token), json=call("newCall"))
    assert response.status_code == 404
    assert token not in response.get_data(as_text=True)


def test_trailing_slash_is_the_same_endpoint(client, token):
    """Rails ignores a trailing slash: Zammad processes the push as usual."""
    response = client.post(f"/api/v1/cti/{token}/", json={**call("newCall"), "direction": "out", "to": "498912345678"})
    assert response.status_code == 200
    assert response.get_json()["caller_id"] == "498999998145"


def test_get_on_push_url_is_404(client, token):
    """Zammad routes only POST there; a GET falls through to the catch-all route."""
    response = client.get(f"/api/v1/cti/{token}", headers={"Accept": "application/json"})
    assert (response.status_code, response.get_json()) == (404, NO_ROUTE)


@pytest.mark.parametrize("encoding", ["json", "urlencoded", "multipart"])
def test_body_too_large_is_json_413(make_app, push, encoding):
    client = make_app(MAX_CONTENT_LENGTH=1024).test_client()
    response = push(client, call("newCall", user="x" * 2048), encoding)
    assert response.status_code == 413
    assert response.mimetype == "application/json"
    assert "1024" in response.get_json()["error"]
    assert caller_log(client) == []


# --------------------------------------------------------------------------- concurrency, real sockets


def local_session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxy from the environment between us and 127.0.0.1
    return session


def test_concurrent_life_cycles_lose_nothing():
    calls = 50
    with MockServer() as mock:
        barrier = threading.Barrier(calls)

        def life_cycle(n: int) -> list[int]:
            with local_session() as session:
                barrier.wait(timeout=10)
                statuses = []
                for event in ("newCall", "answer", "hangup"):
                    params = call(event, call_id=f"load-{n}", user=f"Agent {n}")
                    statuses.append(session.post(mock.endpoint_url, json=params, timeout=10).status_code)
                return statuses

        with ThreadPoolExecutor(max_workers=calls) as pool:
            results = list(pool.map(life_cycle, range(calls)))
        with local_session() as session:
            entries = session.get(f"{mock.url}/api/v1/cti/log", headers=AGENT_AUTH, timeout=10).json()["list"]
            health = session.get(f"{mock.url}/__admin/health", timeout=10).json()

    assert results == [[200, 200, 200]] * calls
    assert sorted(entry["call_id"] for entry in entries) == sorted(f"load-{n}" for n in range(calls))
    assert {entry["state"] for entry in entries} == {"hangup"}
    assert all(entry["to_comment"] == f"Agent {entry['call_id'][5:]}" for entry in entries)
    assert len({entry["id"] for entry in entries}) == calls
    assert (health["calls"], health["requests"]) == (calls, 3 * calls)


def test_mock_server_endpoint_url_carries_token(token):
    with MockServer() as mock, local_session() as session:
        assert mock.endpoint_url == f"http://127.0.0.1:{mock.port}/api/v1/cti/{token}"
        response = session.post(mock.endpoint_url, json=call("newCall", direction="out"), timeout=10)
    assert response.json() == {"action": "dial", "caller_id": "496990009111", "number": "492214710334"}
