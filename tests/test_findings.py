"""Findings: what the PBX did wrong, as the mock's journal and ``GET /__admin/findings`` report it.

Every request-triggered code of :data:`mock_server.admin.findings.CODES` is
provoked through the Flask test client, in the encodings where it can occur,
and checked twice: in ``GET /__admin/findings?call_id=...`` and in the
journal entry's ``findings``. Each check names the code, its severity from
``CODES``, the call, the field, and a phrase of the message saying what
Zammad does with the mistake.

The other half is the absence of false alarms: the documentation's own
payloads and complete clean calls in every encoding have no findings at all.
And findings never change the answer: each finding-producing request gets
Zammad's answer from the reference, the same as on a mock that computes no
findings, and the same as the request without its mistake where one exists.

Finally the contract checks follow ``openapi.yaml``: with a modified copy of
the spec, the findings change with it.
"""

from __future__ import annotations

import copy
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml
from zammad_answers import (
    ALREADY_EXISTS,
    FEATURE_DISABLED,
    INVALID_DIRECTION,
    INVALID_TOKEN,
    NOT_CONFIGURED,
    REJECT,
    missing_column,
)
from zammad_answers import ERROR_ID as ERROR_ID_TEXT

from mock_server.admin import findings as findings_module
from mock_server.admin import journal as journal_module
from mock_server.admin import views as views_module
from mock_server.admin.findings import CODES, ERROR, INFO, WARNING
from mock_server.resources import openapi_path

TOKEN = "documented-token-3f9c2a"  # fixtures/documented-config.json
URL = f"/api/v1/cti/{TOKEN}"

# The documentation page's four newCall payloads, verbatim
# (/work/shared/seeds/zammad-generic-cti-newcall.txt).
DOC_JSON_OUTBOUND = {"event": "newCall", "from": "493023125741", "to": "492214710334", "direction": "out",
                     "callId": "f4ebd2be-7b9a-4d58-94c2-eb06a3c2ce76", "user": "Christopher Miller"}
DOC_JSON_INBOUND = {"event": "newCall", "from": "493023125741", "to": "492214710334", "direction": "in",
                    "callId": "307fa962-de8d-4ffc-817b-7f6993204159", "user": ["Christopher Miller", "Emma Taylor"]}
DOC_FORM_OUTBOUND = {"event": "newCall", "from": "493023125741", "to": "492214710334", "direction": "out",
                     "callId": "f0871278-0600-4f5c-a746-bec3acf04f41", "user": "Christopher Miller"}
DOC_FORM_INBOUND = {"event": "newCall", "from": "493023125741", "to": "492214710334", "direction": "in",
                    "callId": "25641e3f-3317-4c48-80b3-fc573c7ffe2b", "user[]": ["Christopher Miller", "Emma Taylor"]}

# Answers, as the reference gives them.
EMPTY: dict[str, Any] = {}
DIAL_DEFAULT = {"action": "dial", "caller_id": "496990009111", "number": "492214710334"}
ERROR_ID = "<Error ID>"  # {"error": "Error ID xxxxxxxx: Please contact your administrator."}
BAD_REQUEST = "<400 error>"  # the mock's robustness answer: 400 {"error": <the reason>}
RAILS_BAD_REQUEST = "<Rails 400>"  # {"status": 400, "error": "Bad Request"}: Rack refused it before Zammad ran
HTML_PAGE = "<HTML error page>"  # Zammad's public/<status>.html, for a client that does not accept JSON
TOO_LARGE = {"error": "Request body too large: the mock accepts at most 1024 bytes"}

ENCODINGS = ("json", "urlencoded", "multipart", "query")
FORM_ENCODINGS = ("urlencoded", "multipart", "query")


def event(name: str, direction: str, call_id: str, **extra: Any) -> dict[str, Any]:
    """One CTI event between the documentation's two numbers."""
    return {"event": name, "from": "493023125741", "to": "492214710334", "direction": direction,
            "callId": call_id, **extra}


def without(params: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k not in keys}


# Sending ---------------------------------------------------------------------

@dataclass(frozen=True)
class Push:
    """One request to the CTI endpoint: parameters in an encoding, or a raw body."""

    params: dict[str, Any] | None = None
    encoding: str = "json"
    token: str = TOKEN
    raw: bytes | None = None
    content_type: str = "application/json"


def send(client, push, request: Push):
    if request.raw is not None:
        return client.post(f"/api/v1/cti/{request.token}", data=request.raw, content_type=request.content_type)
    # No Accept of the request's own: the client's (json_client) decides.
    return push(client, request.params, request.encoding, request.token, accept=None)


def json_client(app, accept: str | None = "application/json"):
    """A test client that sends ``Accept`` (the Flask test client sends none, as Go's net/http)."""
    client = app.test_client()
    if accept is not None:
        client.environ_base["HTTP_ACCEPT"] = accept
    return client


def add_fault(client, fault: dict[str, Any]) -> None:
    response = client.post("/__admin/faults", json=fault)
    assert response.status_code == 201, response.get_json()


def admin_findings(client, **query: str) -> dict[str, Any]:
    response = client.get("/__admin/findings", query_string=query)
    assert response.status_code == 200
    return response.get_json()


def journal(client, call_id: str | None = None) -> list[dict[str, Any]]:
    query = {} if call_id is None else {"call_id": call_id}
    response = client.get("/__admin/requests", query_string=query)
    assert response.status_code == 200
    return response.get_json()["requests"]


def flush(client) -> None:
    """Wait until the journal has stored (and judged) every request so far."""
    client.get("/__admin/requests", query_string={"limit": 0})


def normalized(body: Any) -> Any:
    """An answer with Zammad's random Error ID replaced, so that two answers compare."""
    if isinstance(body, dict) and isinstance(body.get("error"), str) and ERROR_ID_TEXT.match(body["error"]):
        return {"error": ERROR_ID}
    return body


def assert_answer(response, status: int, body: Any) -> None:
    if body == HTML_PAGE:
        assert (response.status_code, response.mimetype) == (status, "text/html")
        return
    got = response.get_json()
    assert response.status_code == status, got
    if body == ERROR_ID:
        assert set(got) == {"error"} and ERROR_ID_TEXT.match(got["error"]), got
    elif body == RAILS_BAD_REQUEST:
        assert got == {"status": 400, "error": "Bad Request"}, got
    elif body == BAD_REQUEST:
        assert set(got) == {"error"} and got["error"], got
    else:
        assert got == body


# One case per finding ------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    """A request that should produce ``code``, what the finding says, and Zammad's answer to it."""

    id: str
    code: str
    request: Push
    call_id: str | None
    field: str | None
    phrase: str  # part of the message: what Zammad does with the mistake
    status: int
    answer: Any
    before: tuple[Push, ...] = ()  # clean requests of the same call first
    app: dict[str, Any] = field(default_factory=dict)  # make_app overrides
    fault: dict[str, Any] | None = None  # POST /__admin/faults first
    twin: Push | None = None  # the same request without the mistake: the same answer
    accept: str | None = "application/json"  # None: no Accept header


def _cases() -> list[Case]:
    cases: list[Case] = []
    long_id = "x" * 251

    for enc in ENCODINGS:
        req = event("newCall", "out", f"unknown-{enc}", extension="21")
        cases.append(Case(f"unknown-field-{enc}", "unknown-field", Push(req, enc), f"unknown-{enc}", "extension",
                          "Zammad ignores it", 200, DIAL_DEFAULT, twin=Push(without(req, "extension"), enc)))

    # Rails reads no brackets in JSON keys: a JSON `user[]` is an unknown field, the names are lost.
    req = event("newCall", "in", "json-brackets", **{"user[]": ["Christopher Miller", "Emma Taylor"]})
    cases.append(Case("unknown-field-json-user-brackets", "unknown-field", Push(req), "json-brackets", "user[]",
                      "Zammad ignores it", 200, EMPTY, twin=Push(without(req, "user[]"))))

    req = event("newCall", "out", "type-from", **{"from": 493023125741})
    cases.append(Case("wrong-type-from-json-number", "wrong-type", Push(req), "type-from", "from",
                      "Zammad", 200, DIAL_DEFAULT, twin=Push(event("newCall", "out", "type-from"))))
    req = event("newCall", "in", "type-user", user={"name": "Emma Taylor"})
    cases.append(Case("wrong-type-user-json-object", "wrong-type", Push(req), "type-user", "user",
                      "Zammad", 200, EMPTY, twin=Push(event("newCall", "in", "type-user", user="Emma Taylor"))))

    for enc in ("json", "urlencoded"):
        cases.append(Case(f"missing-field-from-{enc}", "missing-field",
                          Push(without(event("newCall", "in", f"nofrom-{enc}"), "from"), enc), f"nofrom-{enc}",
                          "from", "NOT NULL", 422, missing_column("from")))
    # Without `to`: no dial answer, and the caller log's to column is NOT NULL.
    for enc, direction in (("json", "out"), ("multipart", "in")):
        cases.append(Case(f"missing-field-to-{enc}-{direction}", "missing-field",
                          Push(without(event("newCall", direction, f"noto-{enc}"), "to"), enc), f"noto-{enc}",
                          "to", "NOT NULL", 422, missing_column("to")))
    for enc in ("json", "query"):
        cases.append(Case(f"missing-field-callId-and-call_id-{enc}", "missing-field",
                          Push(without(event("newCall", "in", "-"), "callId"), enc), None,
                          "callId", "Zammad cannot tie answer and hangup", 422, missing_column("call_id")))

    for enc in ("json", "urlencoded"):
        cases.append(Case(f"invalid-direction-{enc}", "invalid-direction",
                          Push(event("newCall", "sideways", f"dir-{enc}"), enc), f"dir-{enc}", "direction",
                          "422", 422, INVALID_DIRECTION))
    for enc in ("json", "multipart"):
        cases.append(Case(f"invalid-event-{enc}", "invalid-event", Push(event("ring", "in", f"ev-{enc}"), enc),
                          f"ev-{enc}", "event", "422", 422, ERROR_ID))
    for enc in ("json", "multipart"):
        cid = f"cause-{enc}"
        cases.append(Case(f"invalid-cause-{enc}", "invalid-cause",
                          Push(event("hangup", "in", cid, cause="hungUp"), enc), cid, "cause", "Zammad", 200, EMPTY,
                          before=(Push(event("newCall", "in", cid), enc),),
                          twin=Push(event("hangup", "in", cid, cause="normalClearing"), enc)))

    cases.append(Case("callid-too-long-json-251", "callid-too-long", Push(event("newCall", "in", long_id)),
                      long_id, "callId", "cuts the rest", 200, EMPTY))
    cases.append(Case("callid-too-long-urlencoded-call_id-251", "callid-too-long",
                      Push({**without(event("newCall", "in", "-"), "callId"), "call_id": long_id}, "urlencoded"),
                      long_id, "call_id", "cuts the rest", 200, EMPTY))
    # minLength: the one contract rule no more specific code covers. Ruby's || takes "" as given.
    cases.append(Case("invalid-value-empty-callId-json", "invalid-value", Push(event("newCall", "in", "")),
                      "", "callId", "Zammad", 200, EMPTY))

    for enc in FORM_ENCODINGS:
        cid = f"repeat-{enc}"
        req = event("newCall", "in", cid, user=["Christopher Miller", "Emma Taylor"])  # user=A&user=B
        cases.append(Case(f"repeated-plain-key-{enc}", "repeated-plain-key", Push(req, enc), cid, "user",
                          "Zammad keeps only the last value", 200, EMPTY,
                          twin=Push(event("newCall", "in", cid, user="Emma Taylor"), enc)))

    # name="\x12k\": a backslash escapes the closing quote; Werkzeug reads no name, the part is left out.
    cid = "unreadable-part"
    raw = b"".join(b'--PBX\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n' % (name, value) for name, value in (
        (b"event", b"newCall"), (b"direction", b"in"), (b"from", b"493023125741"), (b"to", b"492214710334"),
        (b"callId", cid.encode()), (b"\x12k\\", b"{}"))) + b"--PBX--\r\n"
    cases.append(Case(cid, "unreadable-part", Push(raw=raw, content_type="multipart/form-data; boundary=PBX"), cid,
                      None, "leaves them out", 200, EMPTY))

    for enc in ("json", "urlencoded"):
        cases.append(Case(f"wrong-token-{enc}", "wrong-token",
                          Push(event("newCall", "in", f"token-{enc}"), enc, token="not-the-token"),
                          f"token-{enc}", None, "Zammad answers 401", 401, INVALID_TOKEN))

    cases.append(Case("malformed-body-json-syntax", "malformed-body", Push(raw=b'{"event": "newCall", "from": '),
                      None, None, "Zammad answers 500", 500, ERROR_ID))
    cases.append(Case("malformed-body-json-not-utf8", "malformed-body",
                      Push(raw=b'{"event": "newCall", "user": "\xff\xfe"}'),
                      None, None, "Zammad answers 400", 400, RAILS_BAD_REQUEST))

    cases.append(Case("missing-content-type", "missing-content-type",
                      Push(raw=b"event=newCall&direction=in&from=493023125741&to=492214710334&callId=no-ct",
                           content_type=None), "no-ct", None, "Rack reads it as a form", 200, EMPTY))
    cases.append(Case("body-too-large", "body-too-large", Push(raw=b'{"event": "newCall", "user": "' + b"x" * 2048 + b'"}'),
                      None, None, "413", 413, TOO_LARGE, app={"MAX_CONTENT_LENGTH": 1024}))

    off = {"token": TOKEN, "integration": False, "cti_config": {"inbound": {"block_caller_ids": []},
                                                                "outbound": {"default_caller_id": "1"}}}
    cases.append(Case("feature-disabled-integration-false", "feature-disabled",
                      Push(event("newCall", "in", "off")), "off", None, "switched off", 422, FEATURE_DISABLED,
                      app={"CTI_CONFIG": off}))
    for name, cti in (("cti_config-empty", {}),
                      ("inbound-blank", {"inbound": {}, "outbound": {"default_caller_id": "496990009111"}})):
        cases.append(Case(f"not-configured-{name}", "not-configured", Push(event("newCall", "out", "blank")),
                          "blank", None, "blank", 422, NOT_CONFIGURED,
                          app={"CTI_CONFIG": {"token": TOKEN, "integration": True, "cti_config": cti}}))

    cases.append(Case("event-before-newcall-answer-json", "event-before-newcall",
                      Push(event("answer", "in", "early-a")), "early-a", None, "Zammad answers 500", 500, ERROR_ID))
    cases.append(Case("event-before-newcall-hangup-urlencoded", "event-before-newcall",
                      Push(event("hangup", "in", "early-h", cause="normalClearing"), "urlencoded"),
                      "early-h", None, "Zammad answers 500", 500, ERROR_ID))
    cases.append(Case("duplicate-newcall-json", "duplicate-newcall", Push(event("newCall", "in", "dup")), "dup",
                      None, "This object already exists.", 500, ALREADY_EXISTS,
                      before=(Push(event("newCall", "in", "dup")),)))
    cases.append(Case("answer-user-not-a-string-urlencoded", "answer-user-not-a-string",
                      Push(event("answer", "in", "array-user", **{"user[]": ["Emma Taylor"]}), "urlencoded"),
                      "array-user", "user", "user.downcase", 500, ERROR_ID,
                      before=(Push(event("newCall", "in", "array-user"), "urlencoded"),)))
    cases.append(Case("answer-after-hangup-json", "answer-after-hangup", Push(event("answer", "in", "late")), "late",
                      None, "Zammad ignores it", 200, EMPTY,
                      before=(Push(event("newCall", "in", "late")),
                              Push(event("hangup", "in", "late", cause="cancel")))))
    cases.append(Case("direction-changed-json", "direction-changed", Push(event("answer", "out", "turn")), "turn",
                      "direction", "Zammad's done and missed-call rules", 200, EMPTY,
                      before=(Push(event("newCall", "in", "turn")),)))
    cases.append(Case("number-changed-from-json", "number-changed",
                      Push(event("hangup", "in", "moved-from", cause="normalClearing", **{"from": "4930111111"})),
                      "moved-from", "from", "Zammad keeps the newCall's numbers", 200, EMPTY,
                      before=(Push(event("newCall", "in", "moved-from")),),
                      twin=Push(event("hangup", "in", "moved-from", cause="normalClearing"))))
    cases.append(Case("number-changed-to-urlencoded", "number-changed",
                      Push(event("answer", "in", "moved-to", to="4930222222"), "urlencoded"),
                      "moved-to", "to", "Zammad keeps the newCall's numbers", 200, EMPTY,
                      before=(Push(event("newCall", "in", "moved-to"), "urlencoded"),),
                      twin=Push(event("answer", "in", "moved-to"), "urlencoded")))
    for enc in ("json", "urlencoded"):
        cid = f"outuser-{enc}"
        cases.append(Case(f"user-on-outbound-answer-{enc}", "user-on-outbound-answer",
                          Push(event("answer", "out", cid, user="Emma Taylor"), enc), cid, "user",
                          "Zammad writes it into the called party's name", 200, EMPTY,
                          before=(Push(event("newCall", "out", cid, user="Christopher Miller"), enc),),
                          twin=Push(event("answer", "out", cid), enc)))

    cases.append(Case("fault-injected-status-503", "fault-injected", Push(event("newCall", "out", "fault-503")),
                      "fault-503", None, "shaped this answer", 503, ERROR_ID,
                      fault={"kind": "status", "status": 503, "times": 1}))
    cases.append(Case("fault-injected-latency", "fault-injected", Push(event("newCall", "out", "fault-slow")),
                      "fault-slow", None, "shaped this answer", 200, DIAL_DEFAULT,
                      fault={"kind": "latency", "latency_ms": 1, "times": 1}))
    cases.append(Case("whitespace-value-json-from", "whitespace-value",
                      Push(event("newCall", "in", "space-json", **{"from": "493023125741 "})), "space-json", "from",
                      "Zammad stores and matches it as sent", 200, EMPTY,
                      twin=Push(event("newCall", "in", "space-json"))))
    # A raw '+' in a form body is a space: the number arrives as " 4930...".
    raw_plus = b"event=newCall&from=+493023125741&to=492214710334&direction=in&callId=raw-plus"
    cases.append(Case("whitespace-value-urlencoded-raw-plus", "whitespace-value",
                      Push(raw=raw_plus, content_type="application/x-www-form-urlencoded"), "raw-plus", "from",
                      "encode it as %2B", 200, EMPTY))
    cases.append(Case("second-hangup-json", "second-hangup",
                      Push(event("hangup", "in", "twice", cause="cancel")), "twice", None,
                      "Zammad overwrites the first hangup", 200, EMPTY,
                      before=(Push(event("newCall", "in", "twice")),
                              Push(event("hangup", "in", "twice", cause="normalClearing")))))
    cases.append(Case("event-after-hangup-json", "event-after-hangup",
                      Push(event("transfer", "in", "after-end")), "after-end", None,
                      "after the call's hangup", 422, ERROR_ID,
                      before=(Push(event("newCall", "in", "after-end")),
                              Push(event("hangup", "in", "after-end", cause="normalClearing")))))
    cases.append(Case("callid-reused-json", "callid-reused", Push(event("newCall", "in", "reused")), "reused",
                      None, "a call that already ended", 500, ALREADY_EXISTS,
                      before=(Push(event("newCall", "in", "reused")),
                              Push(event("hangup", "in", "reused", cause="normalClearing")))))
    cases.append(Case("html-error-page-no-accept", "html-error-page", Push(event("answer", "in", "no-accept")),
                      "no-accept", None, "HTML error page", 500, HTML_PAGE, accept=None))
    return cases


CASES = _cases()


def run_case(make_app, push, case: Case, request: Push | None = None):
    """A fresh app, the case's set-up, then its request (or ``request``); the app, client and answer."""
    app = make_app(**case.app)
    client = json_client(app, case.accept)
    for earlier in case.before:
        response = send(client, push, earlier)
        assert response.status_code == 200, response.get_json()
    if case.fault is not None:
        add_fault(client, case.fault)
    return app, client, send(client, push, request or case.request)


def test_every_request_code_has_a_case():
    """Each code a request can trigger is exercised here; call-not-ended has its own tests below."""
    assert {case.code for case in CASES} | {"call-not-ended"} == set(CODES)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_finding_is_reported(make_app, push, case: Case):
    _, client, response = run_case(make_app, push, case)
    assert response.status_code == case.status

    # The journal entry of the request carries the finding...
    entries = journal(client, case.call_id)
    if case.call_id is None:
        entries = [e for e in entries if e["call_id"] is None]
    entry = entries[-1]
    assert entry["call_id"] == case.call_id
    in_entry = [f for f in entry["findings"] if f["code"] == case.code]
    assert len(in_entry) == 1, entry["findings"]

    # ...and so does GET /__admin/findings?call_id=..., tied to that entry.
    if case.call_id is None:
        listed = [f for f in admin_findings(client)["findings"] if f["call_id"] is None]
    else:
        listed = admin_findings(client, call_id=case.call_id)["findings"]
    of_request = [f for f in listed if f["request_id"] == entry["id"]]
    found = [f for f in of_request if f["code"] == case.code]
    assert len(found) == 1, of_request
    finding = found[0]
    assert {k: finding[k] for k in ("code", "severity", "field", "message")} == in_entry[0]
    assert finding["time"] == entry["time"]

    # The set-up requests of the call were clean: the finding is the request's own.
    assert [f for f in listed if f["request_id"] != entry["id"]] == []

    assert finding["code"] == case.code
    assert finding["severity"] == CODES[case.code][0]
    assert finding["call_id"] == case.call_id
    assert finding["field"] == case.field
    # Checked last: the message says what Zammad does with the mistake (findings.py's docstring).
    assert case.phrase in finding["message"], (
        f"the {case.code} message does not say what Zammad does (expected {case.phrase!r}): {finding['message']!r}")


def test_severities_are_the_documented_ones():
    """README's table: which codes are errors, warnings and notes about the mock."""
    by_severity: dict[str, set[str]] = {ERROR: set(), WARNING: set(), INFO: set()}
    for code, (severity, _meaning) in CODES.items():
        by_severity[severity].add(code)
    assert by_severity == {
        WARNING: {"unknown-field", "invalid-cause", "repeated-plain-key", "unreadable-part", "answer-after-hangup",
                  "number-changed",
                  "user-on-outbound-answer", "call-not-ended", "whitespace-value", "second-hangup",
                  "html-error-page", "missing-content-type"},
        ERROR: {"wrong-type", "missing-field", "invalid-direction", "invalid-event", "callid-too-long",
                "invalid-value", "wrong-token", "malformed-body", "body-too-large", "event-before-newcall",
                "duplicate-newcall", "direction-changed", "callid-reused", "answer-user-not-a-string"},
        INFO: {"feature-disabled", "not-configured", "fault-injected", "event-after-hangup"},
    }


# Findings never change the answer ---------------------------------------------------

@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_findings_never_change_the_answer(make_app, push, monkeypatch, case: Case):
    _, _, response = run_case(make_app, push, case)
    assert_answer(response, case.status, case.answer)  # Zammad's answer, per the reference

    if case.twin is not None:  # the same request without its mistake gets the same answer
        _, _, clean = run_case(make_app, push, case, case.twin)
        assert (clean.status_code, normalized(clean.get_json())) == (response.status_code,
                                                                    normalized(response.get_json()))

    # A mock that judges nothing answers the same.
    monkeypatch.setattr(journal_module, "request_findings", lambda **_: [])
    monkeypatch.setattr(views_module, "sequence_findings", lambda _entries: ({}, set()))
    _, quiet_client, quiet = run_case(make_app, push, case)
    assert (quiet.status_code, normalized(quiet.get_json())) == (response.status_code,
                                                                normalized(response.get_json()))
    assert admin_findings(quiet_client)["findings"] == []


# No false alarms -----------------------------------------------------------------------

def _clean_calls() -> list[tuple[str, list[tuple[Push, dict[str, Any]]]]]:
    """Complete calls as a careful PBX sends them: (name, [(request, expected answer)])."""
    calls = []
    out_json = DOC_JSON_OUTBOUND["callId"]
    calls.append(("docs-json-outbound", [
        (Push(DOC_JSON_OUTBOUND), DIAL_DEFAULT),
        (Push(event("answer", "out", out_json)), EMPTY),
        (Push(event("hangup", "out", out_json, cause="normalClearing", answeringNumber="492214710334")), EMPTY),
    ]))
    in_json = DOC_JSON_INBOUND["callId"]
    calls.append(("docs-json-inbound", [
        (Push(DOC_JSON_INBOUND), EMPTY),
        (Push(event("answer", "in", in_json, user="Emma Taylor", answeringNumber="492214710334")), EMPTY),
        # the alias call_id, as the contract's hangup example sends it
        (Push({**without(event("hangup", "in", "-"), "callId"), "call_id": in_json, "cause": "normalClearing",
               "user": ["Christopher Miller", "Emma Taylor"]}), EMPTY),
    ]))
    out_form = DOC_FORM_OUTBOUND["callId"]
    calls.append(("docs-form-outbound-multipart", [
        (Push(DOC_FORM_OUTBOUND, "multipart"), DIAL_DEFAULT),
        (Push(event("answer", "out", out_form), "multipart"), EMPTY),
        (Push(event("hangup", "out", out_form, cause="normalClearing"), "multipart"), EMPTY),
    ]))
    in_form = DOC_FORM_INBOUND["callId"]
    calls.append(("docs-form-inbound-multipart", [
        (Push(DOC_FORM_INBOUND, "multipart"), EMPTY),
        (Push(event("answer", "in", in_form, user="Emma Taylor"), "multipart"), EMPTY),
        (Push(event("hangup", "in", in_form, cause="normalClearing",
                    **{"user[]": ["Christopher Miller", "Emma Taylor"]}), "multipart"), EMPTY),
    ]))
    for enc in ("urlencoded", "query"):
        cid = f"{in_form}-{enc}"
        calls.append((f"form-inbound-user-array-{enc}", [
            (Push({**DOC_FORM_INBOUND, "callId": cid, "queue": "support"}, enc), EMPTY),
            (Push(event("answer", "in", cid, user="Emma Taylor", answeringNumber="492214710334"), enc), EMPTY),
            (Push(event("hangup", "in", cid, cause="normalClearing"), enc), EMPTY),
        ]))
        cid = f"{out_form}-{enc}"
        calls.append((f"form-outbound-{enc}", [
            # Some PBXs repeat the token as a parameter: not a field of the body's contract, and no finding.
            (Push({**DOC_FORM_OUTBOUND, "callId": cid, "token": TOKEN}, enc), DIAL_DEFAULT),
            (Push(event("answer", "out", cid), enc), EMPTY),
            (Push(event("hangup", "out", cid, cause="normalClearing"), enc), EMPTY),
        ]))
    calls.append(("munich-route-json-missed-then-busy", [
        (Push(event("newCall", "out", "munich", to="498912345678", user="Christopher Miller")),
         {"action": "dial", "caller_id": "498999998145", "number": "498912345678"}),
        (Push(event("hangup", "out", "munich", to="498912345678", cause="busy")), EMPTY),
    ]))
    calls.append(("blocked-inbound-rejected-then-hung-up", [
        (Push(event("newCall", "in", "blocked", **{"from": "491715000000"})), REJECT),
        (Push(event("hangup", "in", "blocked", cause="busy", **{"from": "491715000000"})), EMPTY),
    ]))
    calls.append(("inbound-missed-forwarded-callid-250", [
        (Push(event("newCall", "in", "y" * 250, queue="sales")), EMPTY),
        (Push(event("hangup", "in", "y" * 250, cause="forwarded")), EMPTY),
    ]))
    return calls


CLEAN_CALLS = _clean_calls()


def test_clean_calls_have_no_findings_at_all(make_app, push):
    """The documentation's payloads and complete calls in every encoding: not one finding."""
    app = make_app(STALE_CALL_SECONDS=0)  # every call is ended, so not even call-not-ended
    client = app.test_client()
    for name, steps in CLEAN_CALLS:
        for request, answer in steps:
            response = send(client, push, request)
            assert (response.status_code, response.get_json()) == (200, answer), (name, request)

    listed = admin_findings(client)
    assert listed["findings"] == [], [(f["call_id"], f["code"], f["message"]) for f in listed["findings"]]
    assert listed["summary"] == {"by_severity": {ERROR: 0, WARNING: 0, INFO: 0}, "by_code": {}}
    entries = journal(client)
    assert len(entries) == sum(len(steps) for _, steps in CLEAN_CALLS)
    assert [(e["call_id"], e["findings"]) for e in entries if e["findings"]] == []


@pytest.mark.parametrize("encoding", FORM_ENCODINGS)
def test_rails_array_is_not_a_repeated_plain_key(make_app, push, encoding):
    """``user[]=A&user[]=B`` is the Rails array: no repeated-plain-key (``user=A&user=B`` is one, above)."""
    client = json_client(make_app())
    response = push(client, event("newCall", "in", "arr", **{"user[]": ["Christopher Miller", "Emma Taylor"]}),
                    encoding)
    assert (response.status_code, response.get_json()) == (200, EMPTY)
    assert admin_findings(client, call_id="arr")["findings"] == []
    assert journal(client, "arr")[-1]["repeated_keys"] == []


@pytest.mark.parametrize(
    ("refused", "code", "retry_fix"),
    [
        pytest.param(Push(event("newCall", "in", "retry", **{"from": "0000"}), token="old-token"), "wrong-token",
                     "from", id="wrong-token-then-retry-number-changed"),
        pytest.param(Push(event("newCall", "IN", "retry")), "invalid-direction", "direction",
                     id="invalid-direction-then-retry-direction-changed"),
    ],
)
def test_a_refused_newcall_is_not_the_calls_newcall(make_app, push, refused, code, retry_fix):
    """Zammad refuses the first newCall (401 / 422) and logs nothing; the PBX retries correctly.

    The call then starts with the retry: its answer and hangup agree with it, so the
    only finding is the refused request's own. Each request is stored before the next
    (flush), so the journal is read back rather than the writer's batch.
    """
    client = json_client(make_app())
    first = send(client, push, refused)
    assert first.status_code in (401, 422)
    flush(client)
    for params in (event("newCall", "in", "retry"), event("answer", "in", "retry"),
                   event("hangup", "in", "retry", cause="normalClearing")):
        response = push(client, params)
        assert (response.status_code, response.get_json()) == (200, EMPTY)
        flush(client)
    listed = admin_findings(client, call_id="retry")["findings"]
    assert [(f["code"], f["field"]) for f in listed if f["code"] != code] == [], (
        f"false alarm: the refused newCall's {retry_fix} was taken as the call's: "
        + "; ".join(f["message"] for f in listed if f["code"] != code))


# call-not-ended -------------------------------------------------------------------------

@pytest.mark.parametrize("answered", [False, True], ids=["ringing", "answered"])
def test_call_not_ended_until_the_hangup(make_app, push, answered):
    client = json_client(make_app(STALE_CALL_SECONDS=0))
    assert push(client, event("newCall", "in", "open")).status_code == 200
    if answered:
        assert push(client, event("answer", "in", "open")).status_code == 200

    listed = admin_findings(client, call_id="open")
    assert [f["code"] for f in listed["findings"]] == ["call-not-ended"]
    finding = listed["findings"][0]
    assert finding["severity"] == CODES["call-not-ended"][0] == WARNING
    assert finding["call_id"] == "open"
    assert finding["field"] is None
    assert finding["request_id"] is None  # computed when asked, from the caller log
    state = "answered" if answered else "ringing"
    assert f"Zammad shows it {state} forever" in finding["message"]
    assert "Send hangup" in finding["message"]
    assert listed["summary"]["by_code"] == {"call-not-ended": 1}
    # Not a property of any one request: the journal entries stay clean.
    assert all(entry["findings"] == [] for entry in journal(client, "open"))

    assert push(client, event("hangup", "in", "open", cause="normalClearing")).status_code == 200
    assert admin_findings(client, call_id="open")["findings"] == []
    assert admin_findings(client)["findings"] == []


def test_call_not_ended_waits_for_stale_call_seconds(make_app, push):
    client = json_client(make_app())  # STALE_CALL_SECONDS 600
    assert push(client, event("newCall", "in", "fresh")).status_code == 200
    assert admin_findings(client)["findings"] == []


# Filters and the summary --------------------------------------------------------------------

def _session(client, push) -> None:
    """Several calls with several findings each, one without a callId, one never ended."""
    push(client, event("newCall", "out", "alpha", extension="7"))  # unknown-field
    push(client, event("hangup", "out", "alpha", cause="hungUp"))  # invalid-cause
    push(client, event("newCall", "in", "beta"))
    push(client, event("newCall", "in", "beta"))  # duplicate-newcall
    push(client, event("hangup", "in", "beta", cause="normalClearing", user=["A", "B"]), "urlencoded")  # repeated
    push(client, event("answer", "in", "gamma"))  # event-before-newcall
    client.post(URL, data=b"{", content_type="application/json")  # malformed-body, no call
    push(client, event("newCall", "in", "open"))  # call-not-ended (STALE_CALL_SECONDS 0)


def _key(finding: dict[str, Any]) -> tuple[Any, ...]:
    return finding["request_id"], finding["call_id"], finding["code"], finding["field"]


def test_call_id_filter(make_app, push):
    client = json_client(make_app(STALE_CALL_SECONDS=0))
    _session(client, push)
    everything = admin_findings(client)["findings"]
    codes = {call: sorted(f["code"] for f in everything if f["call_id"] == call)
             for call in ("alpha", "beta", "gamma", "open", None)}
    assert codes == {"alpha": ["invalid-cause", "unknown-field"],
                     "beta": ["duplicate-newcall", "repeated-plain-key"],
                     "gamma": ["event-before-newcall"],
                     "open": ["call-not-ended"],
                     None: ["malformed-body"]}
    for call in ("alpha", "beta", "gamma", "open"):
        listed = admin_findings(client, call_id=call)["findings"]
        assert [_key(f) for f in listed] == [_key(f) for f in everything if f["call_id"] == call]
    assert admin_findings(client, call_id="no-such-call") == {
        "findings": [], "summary": {"by_severity": {ERROR: 0, WARNING: 0, INFO: 0}, "by_code": {}}}


def test_since_filter(make_app, push):
    client = json_client(make_app())
    push(client, event("newCall", "in", "early", extension="1"))
    push(client, event("answer", "in", "early-gone"))
    flush(client)
    time.sleep(0.005)  # journal times have millisecond resolution
    push(client, event("newCall", "in", "later", extension="2"))
    push(client, event("hangup", "in", "later", cause="hungUp"))

    everything = admin_findings(client)["findings"]
    later = [f for f in everything if f["call_id"] == "later"]
    assert len(everything) == 4 and len(later) == 2
    since = min(f["time"] for f in later)
    assert all(f["time"] < since for f in everything if f["call_id"] != "later")

    assert [_key(f) for f in admin_findings(client, since=since)["findings"]] == [_key(f) for f in later]
    assert [_key(f) for f in admin_findings(client, since="2000-01-01T00:00:00.000Z")["findings"]] == \
        [_key(f) for f in everything]
    assert admin_findings(client, since="2999-01-01T00:00:00.000Z")["findings"] == []
    both = admin_findings(client, since=since, call_id="early")
    assert both["findings"] == [] and both["summary"]["by_code"] == {}


def test_since_filter_applies_to_calls_not_ended(make_app, push):
    """A call-not-ended finding carries its newCall's time; a later ``since`` leaves it out like any other."""
    client = json_client(make_app(STALE_CALL_SECONDS=0))
    push(client, event("newCall", "in", "open"))
    listed = admin_findings(client)["findings"]
    assert [f["code"] for f in listed] == ["call-not-ended"]
    since = "2999-01-01T00:00:00.000Z"
    after = admin_findings(client, since=since)
    assert [(f["code"], f["time"]) for f in after["findings"] if f["time"] < since] == []


def test_summary_counts_match_the_list(make_app, push):
    client = json_client(make_app(STALE_CALL_SECONDS=0))
    _session(client, push)
    add_fault(client, {"kind": "status", "status": 503, "times": 1})
    push(client, event("newCall", "in", "delta"))  # fault-injected (info)
    push(client, event("hangup", "in", "delta"))  # event-before-newcall: the faulted newCall logged nothing

    for query in ({}, {"call_id": "alpha"}, {"call_id": "delta"}, {"call_id": "open"}):
        listed = admin_findings(client, **query)
        findings = listed["findings"]
        severities = Counter(f["severity"] for f in findings)
        assert listed["summary"] == {
            "by_severity": {severity: severities.get(severity, 0) for severity in (ERROR, WARNING, INFO)},
            "by_code": dict(sorted(Counter(f["code"] for f in findings).items())),
        }, query
        assert all(f["severity"] == CODES[f["code"]][0] for f in findings)
    summary = admin_findings(client)["summary"]
    assert summary["by_severity"] == {ERROR: 4, WARNING: 4, INFO: 1}
    assert summary["by_code"] == {"call-not-ended": 1, "duplicate-newcall": 1, "event-before-newcall": 2,
                                  "fault-injected": 1, "invalid-cause": 1, "malformed-body": 1,
                                  "repeated-plain-key": 1, "unknown-field": 1}


# The contract checks follow openapi.yaml -------------------------------------------------------

@pytest.fixture
def swap_spec(monkeypatch, tmp_path) -> Callable[[Callable[[dict[str, Any]], None]], None]:
    """``swap_spec(change)``: the findings read a copy of openapi.yaml that ``change`` edited.

    The validators are cached per schema name; the cache is cleared on the way in and
    again after the original spec is back, so no other test sees the copy.
    """
    original = yaml.safe_load(openapi_path().read_text(encoding="utf-8"))

    def install(change: Callable[[dict[str, Any]], None]) -> None:
        spec = copy.deepcopy(original)
        change(spec)
        path = tmp_path / "openapi.yaml"
        path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
        monkeypatch.setattr(findings_module, "openapi_path", lambda: path)
        findings_module._spec_validators.cache_clear()

    findings_module._spec_validators.cache_clear()
    try:
        yield install
    finally:
        monkeypatch.undo()
        findings_module._spec_validators.cache_clear()
    # The published spec is back: the copy's changes are gone.
    assert findings_module.openapi_path() == openapi_path()
    back = findings_module.contract_findings(event("hangup", "in", "x", cause="transferred", queue="q"), "json")
    assert [(f.code, f.field) for f in back] == [("invalid-cause", "cause")]


def _findings_of_call(make_app, push, encoding: str, **hangup: Any) -> list[tuple[str, str | None]]:
    client = json_client(make_app())
    push(client, event("newCall", "in", "spec", queue="sales"), encoding)
    push(client, event("hangup", "in", "spec", **hangup), encoding)
    return sorted((f["code"], f["field"]) for f in admin_findings(client, call_id="spec")["findings"])


@pytest.mark.parametrize("encoding", ["json", "multipart"])
def test_findings_follow_the_spec_when_the_cause_enum_grows(make_app, push, swap_spec, encoding):
    # As published, `transferred` is none of Zammad's causes.
    assert _findings_of_call(make_app, push, encoding, cause="transferred") == [("invalid-cause", "cause")]
    swap_spec(lambda spec: spec["components"]["schemas"]["Cause"]["enum"].append("transferred"))
    assert _findings_of_call(make_app, push, encoding, cause="transferred") == []


@pytest.mark.parametrize("encoding", ["json", "multipart"])
def test_findings_follow_the_spec_when_a_property_is_removed(make_app, push, swap_spec, encoding):
    """Without `queue` in the request schemas, `queue` is a field the contract does not know."""
    assert _findings_of_call(make_app, push, encoding, cause="normalClearing") == []

    def change(spec: dict[str, Any]) -> None:
        for name in ("CtiEventJson", "CtiEventForm"):
            del spec["components"]["schemas"][name]["properties"]["queue"]

    swap_spec(change)
    assert _findings_of_call(make_app, push, encoding, cause="normalClearing") == [("unknown-field", "queue")]


def test_findings_follow_the_spec_when_a_cause_is_removed(make_app, push, swap_spec):
    swap_spec(lambda spec: spec["components"]["schemas"]["Cause"]["enum"].remove("busy"))
    client = json_client(make_app())
    push(client, event("newCall", "in", "busy-call"))
    push(client, event("hangup", "in", "busy-call", cause="busy"))
    assert [f["code"] for f in admin_findings(client, call_id="busy-call")["findings"]] == ["invalid-cause"]


# Per event, one refusal one finding (issue 13) ----------------------------------------

def _codes_of_last(client, call_id: str) -> list[tuple[str, str, str | None]]:
    entry = journal(client, call_id)[-1]
    return [(f["code"], f["severity"], f["field"]) for f in entry["findings"]]


@pytest.mark.parametrize("encoding", ("json", "urlencoded"))
def test_answer_and_hangup_without_numbers_are_no_error(make_app, push, encoding):
    """Zammad reads from/to on newCall only: a working client leaving them out of answer and hangup is fine."""
    client = json_client(make_app())
    push(client, event("newCall", "in", "lean"), encoding)
    assert push(client, {"event": "answer", "direction": "in", "callId": "lean"}, encoding).status_code == 200
    assert _codes_of_last(client, "lean") == []
    assert push(client, {"event": "hangup", "direction": "in", "callId": "lean", "cause": "normalClearing"},
                encoding).status_code == 200
    assert _codes_of_last(client, "lean") == []


def test_hangup_without_cause_is_an_info_from_the_event_table(make_app, push):
    client = json_client(make_app())
    push(client, event("newCall", "in", "nocause"))
    push(client, event("hangup", "in", "nocause"))
    assert _codes_of_last(client, "nocause") == [("missing-field", INFO, "cause")]
    assert findings_module.event_fields()["hangup"]["cause"]["severity"] == INFO


@pytest.mark.parametrize("direction", ("", "IN"))
def test_a_refused_answer_gets_one_finding(make_app, push, direction):
    client = json_client(make_app())
    push(client, event("newCall", "in", "refused-answer"))
    response = push(client, event("answer", direction, "refused-answer", **{"from": "4930999"}))
    assert response.status_code == 422
    assert [code for code, _, _ in _codes_of_last(client, "refused-answer")] == ["invalid-direction"]


def test_a_refused_request_is_not_judged_on_its_fields(make_app, push):
    client = json_client(make_app())
    response = push(client, {**event("answer", "in", "nobody"), "extension": "21", "user": ["A", "B"]}, "urlencoded")
    assert response.status_code == 500
    assert [code for code, _, _ in _codes_of_last(client, "nobody")] == ["event-before-newcall"]


def test_html_error_page_only_without_accept_and_only_for_the_error_handler(make_app, push):
    with_accept = json_client(make_app())
    push(with_accept, event("answer", "in", "json-accept"))
    assert "html-error-page" not in [c for c, _, _ in _codes_of_last(with_accept, "json-accept")]
    no_accept = json_client(make_app(), accept=None)
    # The controller's own answers (401, 422 direction) are always JSON.
    push(no_accept, event("newCall", "in", "tok"), token="not-the-token")
    push(no_accept, event("newCall", "sideways", "dir"))
    assert "html-error-page" not in [c for c, _, _ in _codes_of_last(no_accept, "tok")]
    assert "html-error-page" not in [c for c, _, _ in _codes_of_last(no_accept, "dir")]


def test_callid_reused_replaces_duplicate_newcall_in_the_list(make_app, push):
    client = json_client(make_app())
    for params in (event("newCall", "in", "again"), event("hangup", "in", "again", cause="normalClearing"),
                   event("newCall", "in", "again")):
        push(client, params)
    codes = [f["code"] for f in admin_findings(client, call_id="again")["findings"]]
    assert codes == ["callid-reused"]
