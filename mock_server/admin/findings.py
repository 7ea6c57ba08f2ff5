"""Findings: what a PBX did wrong, per request and per call, in words a vendor can act on.

A real Zammad is silent about most mistakes; the mock answers exactly as it
would and records here what was wrong. Two sources:

- the contract: each request's parameters are validated against the request
  schema of ``openapi.yaml`` for its encoding (no hand-written field checks);
  unknown fields are found with ``unevaluatedProperties`` on top of it;
- the call life cycle: what the rules module reports (duplicate, unknown
  call, answer after hangup...) and what changed since the call's newCall.

Every finding has a stable ``code``, a ``severity`` (error, warning, info),
the ``call_id``, the request it came from and a ``message`` that says what
Zammad does with it. Findings never change the answer the PBX receives.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import jsonschema
import jsonschema_rs
import yaml

from ..resources import openapi_path

ERROR, WARNING, INFO = "error", "warning", "info"

# The codes, their severity, and what each means for the PBX: the table the
# README and the report print.
CODES: dict[str, tuple[str, str]] = {
    "unknown-field": (WARNING, "a field the contract does not know; Zammad ignores it"),
    "wrong-type": (ERROR, "a value of the wrong type"),
    "missing-field": (ERROR, "a required field is missing"),
    "invalid-direction": (ERROR, "direction is neither in nor out; Zammad answers 422 and drops the event"),
    "invalid-event": (ERROR, "event is none of newCall, answer, hangup; Zammad answers 422 and drops it"),
    "invalid-cause": (WARNING, "cause is none of Zammad's seven hangup causes"),
    "callid-too-long": (ERROR, "callId is longer than the 250 characters Zammad stores: it is cut, later events miss it"),
    "invalid-value": (ERROR, "a value outside what the contract allows"),
    "repeated-plain-key": (WARNING, "a key sent several times without []: Zammad keeps only the last value"),
    "missing-content-type": (WARNING, "a body without Content-Type: Rack reads it as a form"),
    "html-error-page": (WARNING, "no JSON in Accept: Zammad's error handler answered its HTML error page"),
    "wrong-token": (ERROR, "the token in the URL is not Zammad's; it answers 401 and drops the event"),
    "malformed-body": (ERROR, "a body Zammad cannot parse; it answers 500 (JSON) or 400 (form)"),
    "body-too-large": (ERROR, "a body over the mock's size limit; it answers 413"),
    "feature-disabled": (INFO, "the CTI integration is switched off in the mock's configuration"),
    "not-configured": (INFO, "the mock's cti_config is blank"),
    "event-before-newcall": (ERROR, "answer or hangup for a call that no newCall created; Zammad answers 500"),
    "duplicate-newcall": (ERROR, "a second newCall with a callId already used; Zammad answers 500"),
    "answer-user-not-a-string": (ERROR, "user is no string on an inbound answer; Zammad saves it, then answers 500"),
    "answer-after-hangup": (WARNING, "answer for a call already hung up; Zammad ignores it"),
    "direction-changed": (ERROR, "the direction changed within one call"),
    "number-changed": (WARNING, "from or to changed within one call"),
    "user-on-outbound-answer": (WARNING, "user on an outbound answer overwrites the called person's name"),
    "call-not-ended": (WARNING, "no hangup for a call: Zammad shows it ringing or talking forever"),
    "fault-injected": (INFO, "a fault was injected into this answer (the mock's /__admin/faults)"),
}

FORM_ENCODINGS = ("urlencoded", "multipart", "query")
# Outcomes of a newCall that Zammad logged: only such a newCall starts a call.
LOGGED_NEW_CALL = frozenset({"recorded", "dial", "reject"})


@dataclass(frozen=True)
class Finding:
    code: str
    message: str
    field: str | None = None

    @property
    def severity(self) -> str:
        return CODES[self.code][0]

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "severity": self.severity, "field": self.field, "message": self.message}


# The contract --------------------------------------------------------------

@cache
def _spec_validators(schema_name: str) -> tuple[Any, jsonschema.Draft202012Validator, frozenset[str]]:
    """A fast yes/no validator, a detailed one, and the field names, for a request schema of the spec."""
    spec = yaml.safe_load(openapi_path().read_text(encoding="utf-8"))
    strict = {
        "$ref": f"#/components/schemas/{schema_name}",
        "unevaluatedProperties": False,
        "components": spec["components"],
    }
    known = frozenset(spec["components"]["schemas"][schema_name].get("properties", {}))
    return jsonschema_rs.validator_for(strict), jsonschema.Draft202012Validator(strict), known


def _as_sent(params: Mapping[str, Any], encoding: str) -> dict[str, Any]:
    """Form parameters as the form schema names them: Rails arrays under ``user[]``."""
    if encoding not in FORM_ENCODINGS:
        return dict(params)
    return {(f"{key}[]" if isinstance(value, list) else key): value for key, value in params.items()}


def contract_findings(params: Mapping[str, Any], encoding: str) -> list[Finding]:
    """Deviations of one request's parameters from openapi.yaml's request schema."""
    schema_name = "CtiEventForm" if encoding in FORM_ENCODINGS else "CtiEventJson"
    fast, detailed, known = _spec_validators(schema_name)
    instance = _as_sent(params, encoding)
    instance.pop("token", None)  # Rails' path parameter, never part of the body
    try:
        if fast.is_valid(instance):
            return []
    except (ValueError, TypeError):
        pass  # values the fast validator cannot read (Decimal): let the detailed one judge
    findings = []
    for error in detailed.iter_errors(instance):
        findings.extend(_finding_for(error, instance, known))
    return _unique(findings)


# What Zammad does with a value the contract does not allow, by field.
_CONSEQUENCE = {
    "direction": "Zammad answers 422 Invalid direction! and drops the event.",
    "event": "Zammad answers 422 with an Error ID and drops the event.",
    "cause": "Zammad stores it as the call's comment, but its caller log knows only the seven causes.",
    "callId": "Zammad cannot tie the call's events together with it.",
    "call_id": "Zammad cannot tie the call's events together with it.",
}
_TYPE_CONSEQUENCE = ("Zammad stores numbers as text and other shapes as Ruby prints them, so the caller log, "
                     "routing and caller identification see something else than intended.")


def _finding_for(error: jsonschema.ValidationError, instance: Mapping[str, Any],
                 known: frozenset[str]) -> list[Finding]:
    path = [str(p) for p in error.absolute_path]
    field = path[0] if path else None
    if error.validator == "unevaluatedProperties":
        return [Finding("unknown-field", f"'{name}' is not part of the CTI contract; Zammad ignores it.", name)
                for name in instance if name not in known]
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else "?"
        return [Finding("missing-field", _missing_message(missing), missing)]
    if error.validator == "anyOf" and not path:
        return [Finding("missing-field", "neither callId nor call_id is given: Zammad cannot tie answer and "
                                         "hangup to this call.", "callId")]
    if error.validator == "type":
        return [Finding("wrong-type", f"'{'.'.join(path)}' is {type(error.instance).__name__} "
                                      f"{_short(error.instance)}, the contract says {error.validator_value}: "
                                      f"{_TYPE_CONSEQUENCE}", field)]
    if error.validator in ("enum", "const"):
        code = {"direction": "invalid-direction", "event": "invalid-event", "cause": "invalid-cause"}.get(field, "invalid-value")
        consequence = _CONSEQUENCE.get(field, "Zammad may refuse it or file it wrongly.")
        return [Finding(code, f"'{field}' is {_short(error.instance)}; allowed: {error.validator_value}. "
                              f"{consequence}", field)]
    if error.validator == "maxLength" and field in ("callId", "call_id"):
        return [Finding("callid-too-long", f"{field} has {len(error.instance)} characters; Zammad cuts it to "
                                           f"{error.validator_value} before saving, so later events that send the "
                                           "whole ID find no call (500).", field)]
    if error.validator in ("oneOf", "anyOf") and error.context:
        # e.g. user: neither a string nor an array of strings; report the closest branch.
        best = jsonschema.exceptions.best_match(error.context)
        return _finding_for(best, instance, known) if best is not None else []
    consequence = _CONSEQUENCE.get(field, "Zammad may refuse it or file it wrongly.")
    return [Finding("invalid-value", f"'{'.'.join(path) or 'body'}': {error.message}. {consequence}", field)]


def _missing_message(name: str) -> str:
    consequence = {
        "from": "on a newCall the caller log's NOT NULL from column refuses it: Zammad answers 422 "
                "(Attribute 'from\" of relation \"cti_logs' required!).",
        "to": "on a newCall the caller log's NOT NULL to column refuses it: Zammad answers 422, and an outbound "
              "call gets no caller ID.",
        "direction": "Zammad answers 422 Invalid direction!",
        "event": "Zammad answers 422 with an Error ID.",
    }.get(name, "the contract requires it.")
    return f"'{name}' is missing: {consequence}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _unique(findings: list[Finding]) -> list[Finding]:
    seen, unique = set(), []
    for finding in findings:
        key = (finding.code, finding.field)
        if key not in seen:
            seen.add(key)
            unique.append(finding)
    return unique


def summarize(findings: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts by severity and by code, for the report and the inspector."""
    by_code: dict[str, int] = {}
    by_severity = {ERROR: 0, WARNING: 0, INFO: 0}
    for finding in findings:
        by_code[finding["code"]] = by_code.get(finding["code"], 0) + 1
        by_severity[finding["severity"]] = by_severity.get(finding["severity"], 0) + 1
    return {"by_severity": by_severity, "by_code": dict(sorted(by_code.items()))}


# Calls that never ended ----------------------------------------------------

def unfinished_call_findings(entries: list[dict[str, Any]], stale_after: float) -> list[dict[str, Any]]:
    """``call-not-ended`` for caller-log entries that got no hangup within ``stale_after`` seconds."""
    findings = []
    for entry in entries:
        state = "ringing" if entry["state"] == "newCall" else "answered"
        finding = Finding("call-not-ended", f"the call is still {state} {int(stale_after)} s or more after its "
                                            f"newCall ({entry['initialized_at']}) and no hangup came: Zammad shows it "
                                            f"{state} forever. Send hangup at the end of every call, rejected and "
                                            "unanswered ones too.")
        findings.append({"id": None, "request_id": None, "time": entry["initialized_at"],
                         "call_id": entry["call_id"], **finding.to_json()})
    return findings


# The request as a whole and the life cycle ---------------------------------

def request_findings(
    *,
    params: Mapping[str, Any] | None,
    encoding: str | None,
    repeated_keys: list[str],
    outcome: str,
    token_valid: bool,
    fault: Mapping[str, Any] | None,
    new_call_params: Mapping[str, Any] | None,
    content_type_missing: bool = False,
    html_answer: bool = False,
    accept: str | None = None,
) -> list[Finding]:
    """Everything wrong with one request; ``new_call_params`` are those of the call's newCall, if seen."""
    findings: list[Finding] = []
    if fault is not None:
        findings.append(Finding("fault-injected", f"fault {fault.get('id')} ({fault.get('kind')}) shaped this answer."))
    if not token_valid:
        answer = ("Zammad answers 401 Invalid token and ignores the event" if outcome == "invalid-token" else
                  "once the integration is on and configured, Zammad answers 401 Invalid token and ignores the event")
        findings.append(Finding("wrong-token", f"The token in the URL is not the configured one: {answer}. "
                                               "Copy the URL from Zammad's CTI page."))
    if outcome == "body-too-large":
        findings.append(Finding("body-too-large", "The body is larger than the mock accepts (413); a real Zammad's "
                                                  "web server refuses such bodies too. A CTI event is a few hundred bytes."))
        return findings
    if outcome == "malformed-body" or params is None:
        answer = "500 with an Error ID" if outcome == "internal-error" else "400"
        findings.append(Finding("malformed-body", f"The body could not be parsed; Zammad answers {answer} and ignores "
                                                  "the event."))
        return findings
    if html_answer:
        findings.append(Finding("html-error-page", f"The request's Accept header ({accept!r}) does not ask for JSON, "
                                                   "so Zammad's error handler answered this error with its HTML error "
                                                   "page, not the JSON body: send Accept: application/json to read "
                                                   "Zammad's error text."))
    if outcome in ("feature-disabled", "not-configured"):
        findings.append(Finding(outcome, CODES[outcome][1] + "."))
    if content_type_missing and encoding == "urlencoded":
        findings.append(Finding("missing-content-type", "The body came without a Content-Type header: Rack reads it "
                                                        "as a form (a JSON body sent so is lost). Send Content-Type: "
                                                        "application/x-www-form-urlencoded."))
    findings += contract_findings(params, encoding or "json")
    for key in repeated_keys:
        findings.append(Finding("repeated-plain-key", f"'{key}' was sent several times without []: Zammad keeps only "
                                                      f"the last value ({_short(params.get(key))}); send '{key}[]' "
                                                      "for several values.", key))
    findings += _life_cycle_findings(params, outcome, new_call_params)
    return findings


def _life_cycle_findings(params: Mapping[str, Any], outcome: str, new_call: Mapping[str, Any] | None) -> list[Finding]:
    event = params.get("event")
    findings = []
    if outcome == "unknown-call":
        findings.append(Finding("event-before-newcall", f"{event} for a callId that no newCall created: Zammad answers "
                                                        "500 and drops it. Send newCall first, with the same callId."))
    elif outcome == "duplicate-call":
        findings.append(Finding("duplicate-newcall", "newCall with a callId already used: Zammad answers 500 "
                                                     "(This object already exists.). Use a new callId for every call."))
    elif outcome == "internal-error" and event == "answer":
        findings.append(Finding("answer-user-not-a-string", f"user is {_short(params.get('user'))} on an inbound "
                                "answer: Zammad saves the answer, then looks the agent up with user.downcase, which "
                                "fails, and answers 500. Send one user name (user=..., not user[]) on answer, or an "
                                "answeringNumber of the agent.", "user"))
    elif outcome == "ignored":
        findings.append(Finding("answer-after-hangup", "answer after the call was hung up: Zammad ignores it "
                                                       "(the caller log keeps the hangup)."))
    if event == "answer" and params.get("direction") == "out" and params.get("user") not in (None, "", []):
        findings.append(Finding("user-on-outbound-answer", "user on an outbound answer: Zammad writes it into the "
                                                           "called party's name (to_comment), replacing the "
                                                           "identified customer. Leave user out of outbound answers.",
                                "user"))
    if new_call is not None and event in ("answer", "hangup"):
        if params.get("direction") != new_call.get("direction"):
            findings.append(Finding("direction-changed", f"direction is {params.get('direction')!r} but the call's "
                                                         f"newCall said {new_call.get('direction')!r}: Zammad's done "
                                                         "and missed-call rules follow each event's own direction.",
                                    "direction"))
        for key in ("from", "to"):
            if key in params and params.get(key) != new_call.get(key):
                findings.append(Finding("number-changed", f"'{key}' is {_short(params.get(key))} but the call's "
                                                          f"newCall said {_short(new_call.get(key))}: Zammad keeps "
                                                          "the newCall's numbers.", key))
    return findings
