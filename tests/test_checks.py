"""The contract's checks have teeth: each fails on a near-miss answer and passes on Zammad's.

Unit tests of :mod:`contract_tests.checks` against the documented
configuration. That the suites built on them fail a broken target end to end
is test_teeth.py's job.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from zammad_answers import REJECT

from contract_tests import checks
from contract_tests.checks import ALL_CHECKS, NotJson, RuleViolation, decode_answer

ROOT = Path(__file__).resolve().parents[1]
CTI = json.loads((ROOT / "fixtures" / "documented-config.json").read_text(encoding="utf-8"))["cti_config"]

ERROR_ID = "Error ID aB3_x-9Q: Please contact your administrator."


def new_call(direction: str, **params: Any) -> dict[str, Any]:
    defaults = {"event": "newCall", "direction": direction, "callId": "c-1", "user": "Christopher Miller",
                "from": "493023125741" if direction == "out" else "492214710334",
                "to": "492214710334" if direction == "out" else "493023125741"}
    return {**defaults, **params}


def event(name: str, **params: Any) -> dict[str, Any]:
    return {"event": name, "direction": "in", "callId": "c-1", "from": "492214710334", "to": "493023125741", **params}


def dial(caller_id: str, number: str) -> dict[str, str]:
    return {"action": "dial", "caller_id": caller_id, "number": number}


def fails(check: checks.Check, params: dict[str, Any], status: int, body: Any, cti: Any = CTI) -> str:
    with pytest.raises(RuleViolation) as caught:
        check(cti, params, status, body)
    assert caught.value.rule == check.__name__
    return str(caught.value)


# --- Zammad's own answers pass every check ------------------------------------------------------

ZAMMADS_ANSWERS = [
    pytest.param(new_call("out", to="498912345678"), 200, dial("498999998145", "498912345678"), id="munich-route"),
    pytest.param(new_call("out", to="493012345678"), 200, dial("493023125877", "493012345678"), id="berlin-route"),
    pytest.param(new_call("out", to="492214710334"), 200, dial("496990009111", "492214710334"), id="default"),
    pytest.param(new_call("out", to="4989"), 200, dial("496990009111", "4989"), id="bare-prefix-is-unrouted"),
    pytest.param(new_call("out", to=""), 200, {}, id="outbound-blank-to"),
    pytest.param(new_call("in", **{"from": "491715000000"}), 200, REJECT, id="blocked"),
    pytest.param(new_call("in", **{"from": "+491715000000"}), 200, {}, id="near-miss-not-blocked"),
    pytest.param(new_call("in"), 200, {}, id="inbound"),
    pytest.param(new_call("out", to="498912345678"), 500, {"error": "This object already exists.", "error_human": "This object already exists."}, id="duplicate"),
    pytest.param(event("answer"), 200, {}, id="answer"),
    pytest.param(event("hangup", cause="normalClearing"), 500, {"error": ERROR_ID}, id="hangup-unknown-call"),
    pytest.param(new_call("sideways"), 422, {"error": "Invalid 'direction'!"}, id="invalid-direction"),
    pytest.param({"event": "newCall", "callId": "c-1"}, 422, {"error": "Invalid 'direction'!"}, id="no-direction"),
    pytest.param(event("ring"), 422, {"error": ERROR_ID}, id="unknown-event"),
    pytest.param(new_call("out", callId=None), 422, {"error": ERROR_ID}, id="routing-needs-a-call-id"),
]


@pytest.mark.parametrize(("params", "status", "body"), ZAMMADS_ANSWERS)
def test_zammads_answer_passes_every_check(params: dict[str, Any], status: int, body: Any) -> None:
    for check in ALL_CHECKS:
        check(CTI, params, status, body)


def test_the_check_lists() -> None:
    assert checks.ALL_CHECKS == checks.RULE_CHECKS + checks.ANSWER_CHECKS
    names = [check.__name__ for check in ALL_CHECKS]
    assert len(set(names)) == len(names)
    assert set(names) <= set(checks.__all__)
    assert {"dial_follows_routing_table", "dial_falls_back_to_default", "blocked_caller_is_rejected",
            "unblocked_inbound_gets_empty_answer", "errors_are_zammads", "only_lifecycle_5xx",
            "answers_are_json"} <= set(names)


# --- each check fails on its near miss -------------------------------------------------------------


def test_dial_key_spelled_callerId_fails_and_says_so() -> None:
    message = fails(checks.dial_follows_routing_table, new_call("out", to="498912345678"), 200,
                    {"action": "dial", "callerId": "498999998145", "number": "498912345678"})
    assert "'callerId'" in message and "'caller_id'" in message
    assert "dest '4989*'" in message


def test_wrong_routed_caller_id_fails() -> None:
    message = fails(checks.dial_follows_routing_table, new_call("out", to="498912345678"), 200,
                    dial("496990009111", "498912345678"))
    assert "'caller_id' is '496990009111', Zammad answers '498999998145'" in message


def test_dial_number_must_be_the_to_as_sent() -> None:
    message = fails(checks.dial_follows_routing_table, new_call("out", to="498912345678"), 200,
                    dial("498999998145", "+498912345678"))
    assert "'number'" in message


def test_routed_call_without_dial_fails() -> None:
    fails(checks.dial_follows_routing_table, new_call("out", to="498912345678"), 200, {})


def test_routed_call_answered_with_a_server_error_fails() -> None:
    # An Error ID is the life-cycle answer of answer/hangup, never of a fresh newCall.
    fails(checks.dial_follows_routing_table, new_call("out", to="498912345678"), 500, {"error": ERROR_ID})


def test_first_matching_row_wins() -> None:
    cti = copy.deepcopy(CTI)
    cti["outbound"]["routing_table"].insert(0, {"dest": "49*", "caller_id": "491111111111"})
    checks.dial_follows_routing_table(cti, new_call("out", to="498912345678"), 200,
                                      dial("491111111111", "498912345678"))
    fails(checks.dial_follows_routing_table, new_call("out", to="498912345678"), 200,
          dial("498999998145", "498912345678"), cti=cti)


def test_default_ignored_fails() -> None:
    message = fails(checks.dial_falls_back_to_default, new_call("out", to="492214710334"), 200, {})
    assert "default caller ID '496990009111'" in message


def test_bare_route_prefix_gets_the_default() -> None:
    # '4989*' needs at least one more digit: '4989' itself is unrouted.
    fails(checks.dial_falls_back_to_default, new_call("out", to="4989"), 200, dial("498999998145", "4989"))


def test_no_default_means_empty_answer() -> None:
    cti = copy.deepcopy(CTI)
    del cti["outbound"]["default_caller_id"]
    checks.dial_falls_back_to_default(cti, new_call("out", to="492214710334"), 200, {})
    fails(checks.dial_falls_back_to_default, new_call("out", to="492214710334"), 200,
          dial("496990009111", "492214710334"), cti=cti)


def test_reject_with_403_fails() -> None:
    message = fails(checks.blocked_caller_is_rejected, new_call("in", **{"from": "491715000000"}), 403, REJECT)
    assert "Zammad answers 200, got 403" in message


def test_blocked_caller_let_through_fails() -> None:
    fails(checks.blocked_caller_is_rejected, new_call("in", **{"from": "491715000000"}), 200, {})


def test_reject_with_extra_keys_fails() -> None:
    fails(checks.blocked_caller_is_rejected, new_call("in", **{"from": "491715000000"}), 200,
          {**REJECT, "note": "spam"})


def test_unblocked_caller_rejected_fails() -> None:
    fails(checks.unblocked_inbound_gets_empty_answer, new_call("in", **{"from": "491715000001"}), 200, REJECT)


def test_hangup_with_an_action_fails() -> None:
    fails(checks.answer_and_hangup_get_empty_answer, event("hangup"), 200, dial("496990009111", "493023125741"))


def test_answer_refused_as_duplicate_fails() -> None:
    fails(checks.answer_and_hangup_get_empty_answer, event("answer"), 500, {"error": "This object already exists.", "error_human": "This object already exists."})


def test_invalid_direction_accepted_fails() -> None:
    fails(checks.invalid_direction_is_rejected, new_call("inbound"), 200, {})
    fails(checks.invalid_direction_is_rejected, new_call("inbound"), 422, {"error": "Invalid direction"})


def test_unknown_event_as_server_error_fails() -> None:
    fails(checks.unknown_event_is_rejected, event("ring"), 500, {"error": ERROR_ID})
    fails(checks.unknown_event_is_rejected, event("ring"), 200, {})


@pytest.mark.parametrize("params", [
    pytest.param(new_call("in", **{"from": "491715000000", "callId": None}), id="no-call-id"),
    pytest.param(new_call("in", **{"from": "491715000000", "callId": "x" * 251}), id="call-id-too-long"),
    pytest.param(new_call("in", **{"from": "491715000000", "to": None}), id="no-to"),
    pytest.param(new_call("out", to="49" + "8" * 99), id="to-too-long"),
    pytest.param({k: v for k, v in new_call("in").items() if k != "from"}, id="inbound-without-from"),
])
def test_rules_leave_alone_a_newcall_zammads_log_cannot_store(params: dict[str, Any]) -> None:
    # cti_logs.call_id (250), .from and .to (100) are NOT NULL text: Zammad fails in its database instead.
    for check in checks.RULE_CHECKS:
        check(CTI, params, 422, {"error": ERROR_ID})
    checks.only_lifecycle_5xx(CTI, params, 500, {"error": ERROR_ID})


def test_outbound_routing_does_not_need_from() -> None:
    # The call is logged with the dial-out caller ID, so a missing 'from' does not matter.
    params = {k: v for k, v in new_call("out", to="498912345678").items() if k != "from"}
    fails(checks.dial_follows_routing_table, params, 200, {})


def test_html_error_page_fails() -> None:
    page = NotJson("text/html; charset=utf-8", "<html><body>We're sorry, but something went wrong.</body></html>")
    assert "is not Zammad's error body" in fails(checks.errors_are_zammads, event("hangup"), 500, page)
    assert "not JSON" in fails(checks.answers_are_json, event("hangup"), 500, page)


def test_error_texts_are_zammads() -> None:
    message = fails(checks.errors_are_zammads, new_call("in"), 401, {"error": "Unauthorized"})
    assert "Invalid token, please contact your admin!" in message
    fails(checks.errors_are_zammads, new_call("in"), 422, {"error": "direction is invalid"})
    fails(checks.errors_are_zammads, new_call("in"), 500, {"error": "Error ID 123: Please contact your administrator."})
    fails(checks.errors_are_zammads, new_call("in"), 422, {"error": "Invalid 'direction'!", "detail": "sideways"})
    fails(checks.errors_are_zammads, new_call("in"), 404, {"message": "not found"})
    # The web stack's own answers: the contract fixes the shape, not the text.
    checks.errors_are_zammads(CTI, {}, 400, {"error": "Malformed request body: could not parse JSON"})
    checks.errors_are_zammads(CTI, {}, 405, {"error": "The method is not allowed for the requested URL."})


def test_a_502_fails() -> None:
    message = fails(checks.only_lifecycle_5xx, event("hangup"), 502, {"error": ERROR_ID})
    assert "a 502 answer" in message
    fails(checks.only_lifecycle_5xx, new_call("in"), 503, NotJson("text/plain", "Service Unavailable"))


def test_lifecycle_500_must_fit_the_event() -> None:
    checks.only_lifecycle_5xx(CTI, new_call("in"), 500, {"error": "This object already exists.", "error_human": "This object already exists."})
    checks.only_lifecycle_5xx(CTI, event("answer"), 500, {"error": ERROR_ID})
    fails(checks.only_lifecycle_5xx, new_call("in"), 500, {"error": ERROR_ID})
    fails(checks.only_lifecycle_5xx, event("hangup"), 500, {"error": "This object already exists.", "error_human": "This object already exists."})
    fails(checks.only_lifecycle_5xx, event("hangup"), 500, {"error": "Internal Server Error"})


def test_answers_are_json() -> None:
    checks.answers_are_json(CTI, {}, 200, decode_answer("application/json; charset=utf-8", b"{}"))
    fails(checks.answers_are_json, {}, 200, decode_answer("text/html", b"{}"))
    fails(checks.answers_are_json, {}, 200, decode_answer("application/json", b"{broken"))
    fails(checks.answers_are_json, {}, 200, decode_answer(None, b""))


def test_failure_message_names_rule_expected_and_actual() -> None:
    message = fails(checks.blocked_caller_is_rejected, new_call("in", **{"from": "491715000000"}), 403, REJECT)
    first, expected, actual = message.splitlines()
    assert first.startswith("blocked_caller_is_rejected: inbound newCall from '491715000000'")
    assert expected.strip() == 'expected: {"body": {"action": "reject", "reason": "busy"}, "status": 200}'
    assert actual.strip() == 'actual:   403 {"action": "reject", "reason": "busy"}'


def test_integration_refusal_names_zammads_422() -> None:
    assert checks.integration_refusal(True, CTI) is None
    assert "switched off" in checks.integration_refusal(False, CTI)
    assert "blank" in checks.integration_refusal(True, {})
    assert "blank" in checks.integration_refusal(True, {**CTI, "inbound": {}})
