"""The Zammad rules the contract asserts: one small named check per rule.

Every check has the same shape and knows nothing of HTTP clients or test
runners, so the schemathesis suite, the state machine and users' own tests
share them::

    check(cti_config, params, status, body, zammad=<Profile>) -> None

``cti_config`` is Zammad's setting of that name (the configuration the target
is known to run), ``params`` the parameters as Zammad sees them (one merged
map: ``event``, ``direction``, ``from``, ``to``, ``callId``...), ``status`` and
``body`` the answer (``body`` as :func:`decode_answer` gives it: parsed JSON,
or a :class:`NotJson` for anything else), ``zammad`` the version profile
whose words the target is expected to answer in (default: the current
Zammad; see :mod:`mock_server.zammad.profiles`). A check returns ``None`` when its
rule does not apply or holds, and raises :class:`RuleViolation` (a
:class:`~contract_tests.failures.ContractFailure`, hence an ``AssertionError``)
naming the rule, the problem, what Zammad answers and what came back.

The rules themselves (routing patterns, the block list) are imported from
:mod:`mock_server.zammad.routing` and the error texts from the version
profiles, which the mock runs too, so a Zammad rule lives in one place.

The rule checks assume what the contract suites guarantee: the request
carried the target's token and the target's integration is switched on and
configured (:func:`integration_refusal` says when it is not). A request
sent with a wrong token, or whose parameters are not known (a body no Rails
app could parse), gets :data:`ANSWER_CHECKS` only, with ``params={}``.

An error with the life-cycle body that fits the event (``This object
already exists.`` for a ``newCall`` whose ``callId`` was used before, an
``Error ID`` for an ``answer``/``hangup`` of an unknown call) is Zammad's
answer to a retried or reordered event: the routing checks do not apply to it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mock_server.zammad.calls import EVENTS, MAX_CALL_ID_LENGTH, call_id_of
from mock_server.zammad.endpoint import new_call_action
from mock_server.zammad.profiles import Profile, load_profile
from mock_server.zammad.routing import REJECT_ANSWER, blocked_entry, dial_answer, outbound_route

from . import needs
from .failures import ContractFailure, _show

__all__ = [
    "ALL_CHECKS",
    "ANSWER_CHECKS",
    "RULE_CHECKS",
    "Check",
    "NotJson",
    "RuleViolation",
    "answer_and_hangup_get_empty_answer",
    "answers_are_json",
    "blocked_caller_is_rejected",
    "decode_answer",
    "dial_falls_back_to_default",
    "dial_follows_routing_table",
    "errors_are_zammads",
    "fresh_call_id_is_no_duplicate",
    "expected_new_call_answer",
    "integration_refusal",
    "invalid_direction_is_rejected",
    "is_error_id",
    "lifecycle_error_fits",
    "only_lifecycle_5xx",
    "unblocked_inbound_gets_empty_answer",
    "unknown_event_is_rejected",
]

Check = Callable[..., None]  # (cti_config, params, status, body, zammad=Profile) -> None
CURRENT = load_profile()

DIRECTIONS = ("in", "out")
MAX_NUMBER_LENGTH = 100  # Zammad's cti_logs.from and .to columns

_ERROR_ID = re.compile(needs.ERROR_ID_PATTERN.strip("^$"))



# What Rails itself answers (ActionDispatch::PublicExceptions, for a JSON Accept) when a request fails
# before Zammad's code runs: Rack refused its parameters (400), or the body broke Rails' parsing (500).
RAILS_PUBLIC_ANSWERS = ((400, {"status": 400, "error": "Bad Request"}),
                        (500, {"status": 500, "error": "Internal Server Error"}))


def zammad_error_texts(zammad: Profile) -> dict[int, tuple[str, ...]]:
    """The fixed error texts (not Error IDs) a Zammad version answers the CTI endpoint with, per status."""
    texts: dict[int, list[str]] = {}
    for code, spec in zammad.answers.items():
        if "error" in spec and "{" not in spec["error"] and code not in ("no-route",):
            texts.setdefault(spec["status"], []).append(spec["error"])
    return {status: tuple(found) for status, found in texts.items()}


def expected_error(code: str, zammad: Profile = CURRENT) -> dict[str, Any]:
    """Zammad's answer for the case ``code`` (``invalid-direction``, ``duplicate-call``...), as a version gives it.

    :func:`contract_tests.needs.expected_error` resolves it; an Error ID case shows the pattern as
    ``Error ID xxxxxxxx: ...``.
    """
    status, body, _matches = needs.expected_error(code, zammad)
    return {"status": status, "body": body or {"error": "Error ID xxxxxxxx: Please contact your administrator."}}


# --- answers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class NotJson:
    """An answer that is not a JSON document (an HTML error page, a proxy's text, nothing)."""

    content_type: str | None
    text: str

    def __str__(self) -> str:
        return f"<not JSON, Content-Type {self.content_type!r}> {self.text[:300]!r}"


def decode_answer(content_type: str | None, content: bytes | str) -> Any:
    """The body as the checks see it: parsed JSON when declared and valid, else :class:`NotJson`."""
    text = content.decode("utf-8", "replace") if isinstance(content, bytes) else content
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type == "application/json":
        try:
            return json.loads(text)
        except ValueError:
            pass
    return NotJson(content_type, text)


def is_error_id(text: Any) -> bool:
    """Zammad's generic error text, ``Error ID xxxxxxxx: Please contact your administrator.``."""
    return isinstance(text, str) and _ERROR_ID.fullmatch(text) is not None


def _error_text(body: Any) -> str | None:
    """The text of Zammad's error body, ``{"error": "..."}`` (plus an equal ``error_human``), else None."""
    if not isinstance(body, dict) or not isinstance(body.get("error"), str):
        return None
    if set(body) == {"error"} or (set(body) == {"error", "error_human"} and body["error_human"] == body["error"]):
        return body["error"]
    return None


def _is_duplicate(status: int, body: Any, zammad: Profile) -> bool:
    """Zammad's answer to a newCall whose callId it holds: 500, or 422 when two newCalls race to the unique index."""
    duplicate = expected_error("duplicate-call", zammad)
    race = expected_error("duplicate-call-race", zammad)
    return (status, body) in ((duplicate["status"], duplicate["body"]), (race["status"], race["body"]))


def lifecycle_error_fits(event: Any, status: int, body: Any, zammad: Profile = CURRENT) -> bool:
    """The error Zammad gives a retried or reordered event: duplicate newCall, or answer/hangup of an unknown call."""
    if event == "newCall":
        return _is_duplicate(status, body, zammad)
    if event in ("answer", "hangup"):
        return status == 500 and is_error_id(_error_text(body))
    return False


# --- what Zammad answers -------------------------------------------------------------------


def integration_refusal(integration: bool, cti_config: Mapping[str, Any] | None, zammad: Profile = CURRENT) -> str | None:
    """Why Zammad answers every push 422 before it reads it (checks 1 and 2), or None when it does not."""
    if not integration:
        return f"the CTI integration is switched off: every push is answered 422 {zammad.text('feature-disabled')!r}"
    if not cti_config or not cti_config.get("inbound") or not cti_config.get("outbound"):
        return ("the CTI configuration or its inbound/outbound part is blank: every push is answered 422 "
                f"{zammad.text('not-configured')!r}")
    return None


def expected_new_call_answer(cti_config: Mapping[str, Any], params: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The rule that decides a well-formed newCall (valid direction, known callId) and Zammad's 200 body.

    The rule itself is the mock's, :func:`mock_server.zammad.endpoint.new_call_action`: one place for it.
    """
    action = new_call_action(cti_config, {**params, "event": "newCall"})
    if action is not None:
        return action.reason, action.body
    if params.get("direction") == "in":
        return "inbound call, caller not on the block list", {}
    return "outbound call without a matching route or default caller ID", {}


# --- failures ------------------------------------------------------------------------------


class RuleViolation(ContractFailure):
    """One rule did not hold: which, why, what Zammad answers, what came back."""

    def __init__(self, rule: str, problem: str, expected: Any, status: int, body: Any) -> None:
        self.rule = rule
        self.problem = problem
        self.expected = expected
        self.status = status
        self.body = body
        super().__init__(
            f"{rule}: {problem}\n  expected: {_show(expected)}\n  actual:   {status} {_show(body)}"
        )


def _require_answer(rule: str, why: str, expected: dict[str, Any], status: int, body: Any) -> None:
    """Zammad answers ``200 expected``; explain precisely how the answer differs."""
    if status == 200 and body == expected:
        return
    if status != 200:
        problem = f"{why}: Zammad answers 200, got {status}"
    elif not isinstance(body, dict):
        problem = f"{why}: Zammad answers the JSON object {_show(expected)}"
    else:
        problem = f"{why}: {_body_difference(expected, body)}"
    raise RuleViolation(rule, problem, {"status": 200, "body": expected}, status, body)


def _body_difference(expected: dict[str, Any], body: dict[str, Any]) -> str:
    if "caller_id" in expected and "callerId" in body and "caller_id" not in body:
        return ("the answer spells the key 'callerId' (the documentation's typo); Zammad sends 'caller_id', "
                "and a PBX that reads 'caller_id' never sees the caller ID")
    differences = []
    for key in sorted(set(expected) | set(body)):
        if key not in body:
            differences.append(f"{key!r} is missing (Zammad: {expected[key]!r})")
        elif key not in expected:
            differences.append(f"{key!r} is not in Zammad's answer (got {body[key]!r})")
        elif body[key] != expected[key]:
            differences.append(f"{key!r} is {body[key]!r}, Zammad answers {expected[key]!r}")
    return "; ".join(differences)


# --- applicability -------------------------------------------------------------------------


def _known_call_id(params: Mapping[str, Any]) -> bool:
    """A callId Zammad's caller log can hold: a non-blank string of at most 250 characters."""
    call_id = call_id_of(params)
    return isinstance(call_id, str) and bool(call_id.strip()) and len(call_id) <= MAX_CALL_ID_LENGTH


def _storable_new_call(cti_config: Mapping[str, Any], params: Mapping[str, Any], direction: str) -> bool:
    """A newCall of ``direction`` that Zammad's caller log can store, so that its rule decides the answer.

    Zammad logs every newCall before it answers (the reject and the dial
    included), and its ``cti_logs`` table wants ``call_id`` (at most 250
    characters), ``from`` and ``to`` (at most 100) as text: a newCall without
    them fails in the database, whatever its rule would have answered.
    """
    if params.get("event") != "newCall" or params.get("direction") != direction or not _known_call_id(params):
        return False
    to, logged_from = params.get("to"), params.get("from")
    if not isinstance(to, str) or len(to) > MAX_NUMBER_LENGTH:
        return False
    if direction == "out":
        route = outbound_route(cti_config, to)
        if route is not None:
            logged_from = route[0]  # logged with the dial-out caller ID
    return isinstance(logged_from, str) and len(logged_from) <= MAX_NUMBER_LENGTH


# --- the checks ----------------------------------------------------------------------------


def dial_follows_routing_table(cti_config: Mapping[str, Any], params: Mapping[str, Any], status: int, body: Any,
                               zammad: Profile = CURRENT) -> None:
    """An outbound newCall whose ``to`` matches a routing row: ``200 {"action":"dial","caller_id":<row>,"number":<to>}``."""
    if not _storable_new_call(cti_config, params, "out") or lifecycle_error_fits("newCall", status, body, zammad):
        return
    to = params["to"]
    route = outbound_route(cti_config, to)
    if route is None or route[1] is None:
        return
    caller_id, row = route
    why = f"outbound newCall to {to!r} matches routing row dest {row.get('dest')!r}"
    _require_answer("dial_follows_routing_table", why, dial_answer(caller_id, to), status, body)


def dial_falls_back_to_default(cti_config: Mapping[str, Any], params: Mapping[str, Any], status: int, body: Any,
                               zammad: Profile = CURRENT) -> None:
    """An outbound newCall no routing row matches: dial with the default caller ID, or ``{}`` without one."""
    if not _storable_new_call(cti_config, params, "out") or lifecycle_error_fits("newCall", status, body, zammad):
        return
    to = params["to"]
    route = outbound_route(cti_config, to)
    if route is not None and route[1] is not None:
        return  # a routing row decides: dial_follows_routing_table
    if route is None:
        why = (f"outbound newCall to {to!r}: no routing row matches and no default caller ID is set"
               if to.strip() else "outbound newCall with a blank 'to': nothing to route")
        expected: dict[str, Any] = {}
    else:
        why = f"outbound newCall to {to!r}: no routing row matches, default caller ID {route[0]!r} applies"
        expected = dial_answer(route[0], to)
    _require_answer("dial_falls_back_to_default", why, expected, status, body)


def blocked_caller_is_rejected(cti_config: Mapping[str, Any], params: Mapping[str, Any], status: int, body: Any,
                               zammad: Profile = CURRENT) -> None:
    """An inbound newCall from a number on the block list: exactly ``200 {"action":"reject","reason":"busy"}``."""
    if not _storable_new_call(cti_config, params, "in") or lifecycle_error_fits("newCall", status, body, zammad):
        return
    caller = params["from"]
    if blocked_entry(cti_config, caller) is None:
        return
    why = f"inbound newCall from {caller!r}, which is on the block list"
    _require_answer("blocked_caller_is_rejected", why, dict(REJECT_ANSWER), status, body)


def unblocked_inbound_gets_empty_answer(cti_config: Mapping[str, Any], params: Mapping[str, Any], status: int, body: Any,
                                        zammad: Profile = CURRENT) -> None:
    """An inbound newCall from a number not on the block list: ``200 {}``."""
    if not _storable_new_call(cti_config, params, "in") or lifecycle_error_fits("newCall", status, body, zammad):
        return
    caller = params["from"]
    if blocked_entry(cti_config, caller) is not None:
        return
    why = f"inbound newCall from {caller!r}, which is not on the block list"
    _require_answer("unblocked_inbound_gets_empty_answer", why, {}, status, body)


def answer_and_hangup_get_empty_answer(cti_config: Mapping[str, Any], params: Mapping[str, Any], status: int, body: Any,
                                       zammad: Profile = CURRENT) -> None:
    """``answer`` and ``hangup`` get ``200 {}`` (or the 500 of an unknown call); never dial or reject."""
    event = params.get("event")
    if event not in ("answer", "hangup") or params.get("direction") not in DIRECTIONS or not _known_call_id(params):
        return
    if lifecycle_error_fits(event, status, body, zammad):
        return
    why = f"{event} of call {call_id_of(params)!r} (500 with an Error ID only when no newCall created it)"
    _require_answer("answer_and_hangup_get_empty_answer", why, {}, status, body)


def invalid_direction_is_rejected(cti_config: Mapping[str, Any], params: Mapping[str, Any], status: int, body: Any,
                                  zammad: Profile = CURRENT) -> None:
    """``direction`` neither ``in`` nor ``out`` (missing included): ``422 {"error":"Invalid 'direction'!"}``."""
    direction = params.get("direction")
    if direction in DIRECTIONS:
        return
    expected = expected_error("invalid-direction", zammad)
    if status == expected["status"] and body == expected["body"]:
        return
    raise RuleViolation(
        "invalid_direction_is_rejected",
        f"direction {direction!r} is neither 'in' nor 'out': Zammad {zammad.name} refuses the event with 422",
        expected, status, body,
    )


def unknown_event_is_rejected(cti_config: Mapping[str, Any], params: Mapping[str, Any], status: int, body: Any,
                              zammad: Profile = CURRENT) -> None:
    """A valid direction but an unknown or missing ``event``: 422 with an ``Error ID`` text."""
    event = params.get("event")
    if event in EVENTS or params.get("direction") not in DIRECTIONS:
        return
    if status == 422 and is_error_id(_error_text(body)):
        return
    raise RuleViolation(
        "unknown_event_is_rejected",
        f"event {event!r} is none of {', '.join(EVENTS)}: Zammad's error handler answers 422 with an Error ID",
        {"status": 422, "body": {"error": "Error ID xxxxxxxx: Please contact your administrator."}}, status, body,
    )


def errors_are_zammads(cti_config: Mapping[str, Any], params: Mapping[str, Any], status: int, body: Any,
                       zammad: Profile = CURRENT) -> None:
    """Every 4xx/5xx body is Zammad's ``{"error": <text>}`` (with ``error_human`` where its handler humanised it);
    for 401, 422 and 500 the text is one the Zammad version answers with.

    Other error statuses (400 unreadable body, 404/405 unrouted request, 413
    body too large) come from the web stack in front of the controller; the
    contract fixes their shape, not their text.
    """
    if status < 400:
        return
    if (status, body) in RAILS_PUBLIC_ANSWERS:
        return  # Rails' own answer to a request refused before Zammad's code ran
    text = _error_text(body)
    if text is None:
        raise RuleViolation(
            "errors_are_zammads", f"a {status} answer is not Zammad's error body {{\"error\": \"...\"}}",
            {"status": status, "body": {"error": "<text>"}}, status, body,
        )
    allowed = zammad_error_texts(zammad).get(status)
    if allowed is None or text in allowed or (status in (422, 500) and is_error_id(text)):
        return
    if status == 422 and text.startswith("Attribute '") and text.endswith("' required!"):
        return  # a NOT NULL column a newCall left empty, named as the database names it
    choices = [*allowed, *(["Error ID xxxxxxxx: Please contact your administrator."] if status != 401 else [])]
    raise RuleViolation(
        "errors_are_zammads", f"{text!r} is not a text Zammad {zammad.name} answers with {status}",
        {"status": status, "body": {"error": " | ".join(choices)}}, status, body,
    )


def only_lifecycle_5xx(cti_config: Mapping[str, Any], params: Mapping[str, Any], status: int, body: Any,
                       zammad: Profile = CURRENT) -> None:
    """A 5xx is a failure unless it is Zammad's life-cycle 500 for this event.

    ``This object already exists.`` answers a repeated newCall, an ``Error
    ID`` an answer/hangup for an unknown call (or a newCall Zammad's code
    fails on: a ``to`` that is no string); any other 5xx (a crash page, a 502 from a
    proxy, a 500 for a well-formed newCall) is a server error.
    """
    if status < 500:
        return
    event = params.get("event")
    if lifecycle_error_fits(event, status, body, zammad):
        return
    text = _error_text(body)
    if not params and (status, body) in RAILS_PUBLIC_ANSWERS:
        return  # an unreadable request that failed in Rails before Zammad's code ran
    if status == 500 and event not in EVENTS and (_is_duplicate(status, body, zammad) or is_error_id(text)):
        return  # the event is not known here (an unreadable request): the body is a life-cycle one
    if status == 500 and event == "newCall" and is_error_id(text) and not _storable_new_call(
            cti_config, params, params.get("direction")):
        return  # Zammad's generic error handler, on a newCall its caller log cannot store
    duplicate = expected_error("duplicate-call", zammad)
    expected = {
        "newCall": f'{duplicate["status"]} {json.dumps(duplicate["body"])} (repeated callId) or a 200 answer',
        "answer": '500 {"error": "Error ID ...: Please contact your administrator."} (unknown callId) or 200 {}',
        "hangup": '500 {"error": "Error ID ...: Please contact your administrator."} (unknown callId) or 200 {}',
    }.get(event, "no 5xx other than Zammad's life-cycle 500s")
    raise RuleViolation(
        "only_lifecycle_5xx", f"a {status} answer to event {event!r} is a server error, not one of Zammad's life-cycle errors",
        expected, status, body,
    )


def fresh_call_id_is_no_duplicate(cti_config: Mapping[str, Any], params: Mapping[str, Any], status: int,
                                  body: Any, zammad: Profile = CURRENT) -> None:
    """A storable newCall whose callId was never sent before is no duplicate: never ``This object already exists.``.

    Only for requests whose callIds are fresh by construction (the schema
    suite rewrites every one): elsewhere a repeated callId makes that 500 right.
    """
    direction = params.get("direction")
    if direction not in DIRECTIONS or not _storable_new_call(cti_config, params, direction):
        return
    if _is_duplicate(status, body, zammad):
        raise RuleViolation(
            "fresh_call_id_is_no_duplicate", "the callId of this newCall was never sent before: Zammad logs the call "
            "and answers by its rules", "200 with the rule's answer (dial, reject or {})", status, body,
        )


def answers_are_json(cti_config: Mapping[str, Any], params: Mapping[str, Any], status: int, body: Any,
                     zammad: Profile = CURRENT) -> None:
    """Every answer is a JSON document with ``Content-Type: application/json``."""
    if isinstance(body, NotJson):
        raise RuleViolation(
            "answers_are_json", "Zammad answers every request with JSON (Content-Type application/json)",
            "Content-Type: application/json and a JSON body", status, body,
        )


RULE_CHECKS: tuple[Check, ...] = (
    dial_follows_routing_table,
    dial_falls_back_to_default,
    blocked_caller_is_rejected,
    unblocked_inbound_gets_empty_answer,
    answer_and_hangup_get_empty_answer,
    invalid_direction_is_rejected,
    unknown_event_is_rejected,
)
"""The rules that depend on the request's parameters, in the order Zammad applies them."""

ANSWER_CHECKS: tuple[Check, ...] = (errors_are_zammads, only_lifecycle_5xx, answers_are_json)
"""The rules every answer of the endpoint obeys, whatever was sent (pass ``params={}`` when unknown)."""

ALL_CHECKS: tuple[Check, ...] = RULE_CHECKS + ANSWER_CHECKS
"""Every rule; run them all on each answer to a request sent with the target's token."""
