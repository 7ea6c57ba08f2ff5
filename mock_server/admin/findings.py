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

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
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
    "callid-too-long": (ERROR, "callId is longer than the 250 characters Zammad stores: it is cut, and later events "
                               "with the full callId find no call"),
    "invalid-value": (ERROR, "a value outside what the contract allows"),
    "repeated-plain-key": (WARNING, "a key sent several times without []: Zammad keeps only the last value"),
    "unreadable-part": (WARNING, "a multipart part whose name cannot be read; the mock leaves it out, Rails may "
                                 "read it otherwise"),
    "wrong-token": (ERROR, "the token in the URL is not Zammad's; it answers 401 and drops the event"),
    "malformed-body": (ERROR, "a body Zammad cannot parse; it answers 400 (Rack) or 500 (broken JSON)"),
    "missing-content-type": (WARNING, "a body without Content-Type: Rack reads it as a form"),
    "answer-user-not-a-string": (ERROR, "user is no string on an inbound answer; Zammad saves it, then answers 500"),
    "body-too-large": (ERROR, "a body over the mock's size limit; it answers 413"),
    "feature-disabled": (INFO, "the CTI integration is switched off in the mock's configuration"),
    "not-configured": (INFO, "the mock's cti_config is blank"),
    "event-before-newcall": (ERROR, "answer or hangup for a call that no newCall created; Zammad answers 500"),
    "duplicate-newcall": (ERROR, "a second newCall with a callId already used; Zammad answers 500"),
    "answer-after-hangup": (WARNING, "answer for a call already hung up; Zammad ignores it"),
    "direction-changed": (ERROR, "the direction changed within one call"),
    "number-changed": (WARNING, "from or to changed within one call"),
    "user-on-outbound-answer": (WARNING, "user on an outbound answer overwrites the called person's name"),
    "call-not-ended": (WARNING, "no hangup for a call: Zammad shows it ringing or talking forever"),
    "fault-injected": (INFO, "a fault was injected into this answer (the mock's /__admin/faults)"),
    "whitespace-value": (WARNING, "a value with leading or trailing whitespace (a raw + in a form is a space)"),
    "second-hangup": (WARNING, "a second hangup for a call already hung up: Zammad overwrites the first"),
    "event-after-hangup": (INFO, "an event other than answer for a call already hung up"),
    "callid-reused": (ERROR, "a newCall reuses the callId of a call that ended; Zammad answers 500"),
    "html-error-page": (WARNING, "no JSON in Accept: Zammad answers this error with its HTML error page, not JSON"),
}

FORM_ENCODINGS = ("urlencoded", "multipart", "query")
# Outcomes where Zammad refused the request: one finding says why, none is drawn from its fields' life cycle.
REFUSED = frozenset({"invalid-token", "invalid-direction", "unknown-event", "unknown-call", "duplicate-call",
                     "duplicate-call-race", "missing-column", "internal-error"})
# Answers the controller gives itself (always JSON); other errors come from Zammad's error handler,
# which answers a request without Accept with its HTML error page.
CONTROLLER_ANSWERS = frozenset({"feature-disabled", "not-configured", "invalid-token", "invalid-direction"})
NOT_ZAMMADS = frozenset({"body-too-large", "fault"})  # the web server's or the mock's own answers
ACCEPT_UNKNOWN = object()  # journal entries from before the Accept header was kept
# Fields whose value Zammad stores or compares as sent: surrounding whitespace changes what it sees.
TEXT_FIELDS = ("from", "to", "callId", "call_id", "user", "queue", "answeringNumber")
EVENT_FIELDS_PATH = Path(__file__).with_name("event_fields.json")
# Outcomes of a newCall that Zammad logged: only such a newCall starts a call.
LOGGED_NEW_CALL = frozenset({"recorded", "dial", "reject"})


@dataclass(frozen=True)
class Finding:
    code: str
    message: str
    field: str | None = None
    level: str | None = None  # overrides the code's severity (missing-field: it depends on the event)

    @property
    def severity(self) -> str:
        return self.level or CODES[self.code][0]

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
        # What a missing field means depends on the event: event_fields.json says it, not the
        # schema's one required list (Zammad never reads from/to on answer or hangup).
        if error.validator == "required" or (error.validator == "anyOf" and not list(error.absolute_path)):
            continue
        findings.extend(_finding_for(error, instance, known))
    return _unique(findings)


@cache
def event_fields() -> dict[str, dict[str, dict[str, str]]]:
    """Per event, the fields Zammad reads and what their absence means (event_fields.json)."""
    data = json.loads(EVENT_FIELDS_PATH.read_text(encoding="utf-8"))
    return {event: fields for event, fields in data.items() if not event.startswith("_")}


def missing_field_findings(params: Mapping[str, Any]) -> list[Finding]:
    """``missing-field`` for the fields this event needs, with the severity event_fields.json gives."""
    event = params.get("event")
    fields = event_fields().get(event) if isinstance(event, str) else None
    findings = []
    for name, meaning in (fields or {}).items():
        given = ("callId" in params or "call_id" in params) if name == "callId" else name in params
        if not given:
            label = "neither callId nor call_id" if name == "callId" else f"'{name}'"
            findings.append(Finding("missing-field", f"{label} is missing on {event}: {meaning['why']}", name,
                                    level=meaning["severity"]))
    return findings


def whitespace_findings(params: Mapping[str, Any], encoding: str | None) -> list[Finding]:
    """Values with surrounding whitespace; in a form, a leading space before digits is most likely a raw ``+``."""
    findings = []
    for key in TEXT_FIELDS:
        values = params.get(key)
        for value in values if isinstance(values, list) else [values]:
            if not isinstance(value, str) or value == value.strip():
                continue
            cause = ""
            if encoding in FORM_ENCODINGS and value.startswith(" ") and value[1:2].isdigit():
                cause = (" A '+' sent unencoded in a form is read as a space: encode it as %2B "
                         "(or send the number without '+').")
            findings.append(Finding("whitespace-value", f"'{key}' is {_short(value)}, with whitespace around it: "
                                                        "Zammad stores and matches it as sent, so caller "
                                                        f"identification, routing and the caller log see it too.{cause}",
                                    key))
            break
    return findings


# What Zammad does with a value the contract does not allow, by field.
_CONSEQUENCE = {
    "direction": "Zammad answers 422 Invalid 'direction'! and drops the event.",
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
        return [Finding("callid-too-long", f"{field} has {len(error.instance)} characters; Zammad stores at most "
                                           f"{error.validator_value} and cuts the rest, so a later answer or hangup "
                                           "with the full callId finds no call.", field)]
    if error.validator in ("oneOf", "anyOf") and error.context:
        # e.g. user: neither a string nor an array of strings; report the closest branch.
        best = jsonschema.exceptions.best_match(error.context)
        return _finding_for(best, instance, known) if best is not None else []
    consequence = _CONSEQUENCE.get(field, "Zammad may refuse it or file it wrongly.")
    return [Finding("invalid-value", f"'{'.'.join(path) or 'body'}': {error.message}. {consequence}", field)]


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
    status: int | None = None,
    accept: Any = ACCEPT_UNKNOWN,
    html_answer: bool | None = None,
    content_type_missing: bool = False,
    unreadable_parts: int = 0,
) -> list[Finding]:
    """Everything wrong with one request; ``new_call_params`` are those of the call's newCall, if seen.

    ``accept`` is the request's Accept header (None: none sent); ``html_answer`` whether the
    mock answered with Zammad's HTML error page (None: not recorded, judged from ``accept``). A
    request Zammad refused gets one finding that says why, and nothing drawn from its fields' life cycle.
    """
    findings: list[Finding] = []
    if fault is not None:
        findings.append(Finding("fault-injected", f"fault {fault.get('id')} ({fault.get('kind')}) shaped this answer."))
    findings += _html_page_findings(outcome, status, accept, html_answer)
    if not token_valid:
        answer = ("Zammad answers 401 Invalid token and ignores the event" if outcome == "invalid-token" else
                  "once the integration is on and configured, Zammad answers 401 Invalid token and ignores the event")
        findings.append(Finding("wrong-token", f"The token in the URL is not the configured one: {answer}. "
                                               "Copy the URL from Zammad's CTI page."))
        if outcome == "invalid-token":
            return findings
    if outcome == "body-too-large":
        findings.append(Finding("body-too-large", "The body is larger than the mock accepts (413); a real Zammad's "
                                                  "web server refuses such bodies too. A CTI event is a few hundred bytes."))
        return findings
    if outcome == "malformed-body" or params is None:
        answer = "500 with an Error ID" if outcome == "internal-error" else "400"
        findings.append(Finding("malformed-body", f"The body could not be parsed; Zammad answers {answer} and ignores "
                                                  "the event."))
        return findings
    if content_type_missing:
        findings.append(Finding("missing-content-type", "The body came without a Content-Type header: Rack reads it "
                                                        "as a form (a JSON body sent so is lost). Send Content-Type: "
                                                        "application/x-www-form-urlencoded."))
    field_findings = contract_findings(params, encoding or "json") + missing_field_findings(params)
    if outcome in ("feature-disabled", "not-configured"):
        # Zammad read nothing; what the fields would mean once it is on still helps.
        return findings + [Finding(outcome, CODES[outcome][1] + ".")] + field_findings
    refused = outcome in REFUSED or (status is not None and status >= 400 and outcome not in NOT_ZAMMADS)
    if refused:
        return findings + [_refusal(outcome, params, field_findings)]
    findings += field_findings + whitespace_findings(params, encoding)
    if unreadable_parts:
        findings.append(Finding("unreadable-part", f"{unreadable_parts} multipart part(s) had a name that cannot be "
                                                   "read (a quote escaped by a backslash, say): the mock leaves them "
                                                   "out; Zammad (Rack) may read them as other fields or refuse the "
                                                   "body. Quote names plainly."))
    for key in repeated_keys:
        findings.append(Finding("repeated-plain-key", f"'{key}' was sent several times without []: Zammad keeps only "
                                                      f"the last value ({_short(params.get(key))}); send '{key}[]' "
                                                      "for several values.", key))
    findings += _life_cycle_findings(params, outcome, new_call_params)
    return findings


def _html_page_findings(outcome: str, status: int | None, accept: Any, html_answer: bool | None) -> list[Finding]:
    if html_answer is None:  # not recorded: judge from the Accept header alone
        html_answer = not (accept is not None or status is None or status < 400
                           or outcome in CONTROLLER_ANSWERS | NOT_ZAMMADS)
    if not html_answer:
        return []
    sent = "no Accept header" if accept is None else f"Accept {_short(accept)}, which asks for no JSON"
    return [Finding("html-error-page", f"The request has {sent}: Zammad answers this {status} with its HTML "
                                       f"error page (public/{status}.html, text/html), not its JSON error. "
                                       "Send 'Accept: application/json' to get the error as JSON.")]


def _refusal(outcome: str, params: Mapping[str, Any], field_findings: list[Finding]) -> Finding:
    """The one finding that says why Zammad refused the request."""
    def first(*codes: str, fields: tuple[str, ...] = ()) -> Finding | None:
        return next((f for f in field_findings if f.code in codes and (not fields or f.field in fields)
                     and f.severity == ERROR), None)

    event = params.get("event")
    call_fields = ("callId", "call_id")
    if outcome == "invalid-direction":
        return first("invalid-direction") or Finding(
            "invalid-direction", "'direction' is missing: Zammad answers 422 Invalid 'direction'! and drops the event.",
            "direction")
    if outcome == "unknown-event":
        return first("invalid-event") or Finding(
            "invalid-event", "'event' is missing: Zammad answers 422 with an Error ID and drops the request.", "event")
    if outcome == "call-id-refused":
        return first("missing-field", "callid-too-long", "invalid-value", "wrong-type", fields=call_fields) \
            or Finding("invalid-value", "Zammad could not store this callId and refused the newCall.", "callId")
    if outcome == "unknown-call":
        return first("missing-field", "callid-too-long", fields=call_fields) or Finding(
            "event-before-newcall", f"{_short(event)} for a callId that no newCall created: Zammad answers 500 and "
                                    "drops it. Send newCall first, with the same callId.")
    if outcome in ("duplicate-call", "duplicate-call-race"):
        return Finding("duplicate-newcall", "newCall with a callId already used: Zammad answers 500 "
                                            "(This object already exists.). Use a new callId for every call.")
    if outcome == "missing-column":
        return first("missing-field") or Finding(
            "missing-field", "a NOT NULL column of the caller log is empty: Zammad answers 422.")
    if outcome == "internal-error" and event == "answer" and not isinstance(params.get("user"), (str, type(None))):
        return Finding("answer-user-not-a-string", f"user is {_short(params.get('user'))} on an inbound answer: "
                       "Zammad saves the answer, then looks the agent up with user.downcase, which fails, and answers "
                       "500. Send one user name (user=..., not user[]) on answer, or an answeringNumber of the agent.",
                       "user")
    return first("missing-field", "wrong-type", "invalid-value", "invalid-direction", "invalid-event") or Finding(
        "invalid-value", f"Zammad refused the request ({outcome}).")


def _life_cycle_findings(params: Mapping[str, Any], outcome: str, new_call: Mapping[str, Any] | None) -> list[Finding]:
    event = params.get("event")
    findings = []
    if outcome == "ignored":
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


# What only the order of a call's requests shows -------------------------------

def sequence_findings(entries: list[dict[str, Any]]) -> tuple[dict[int, list[Finding]], set[int]]:
    """Findings that need the call's earlier requests: per request id, and the ids whose
    ``duplicate-newcall`` a ``callid-reused`` replaces (one refusal, one finding).

    ``entries`` are journal entries (with ``id``) oldest first, of any calls.
    """
    ended: dict[str, bool] = {}
    added: dict[int, list[Finding]] = {}
    superseded: set[int] = set()
    for entry in entries:
        call_id, params = entry.get("call_id"), entry.get("params")
        if call_id is None or not isinstance(params, Mapping):
            continue
        key, event, outcome = str(call_id), entry.get("event"), entry.get("outcome")
        if ended.get(key):
            finding = None
            if event == "hangup" and outcome == "recorded":
                finding = Finding("second-hangup", "hangup for a call already hung up (a ring group's losing leg?): "
                                                   "Zammad overwrites the first hangup's end time, durations and "
                                                   "cause. Send one hangup per callId.")
            elif event == "newCall" and outcome == "duplicate-call":
                finding = Finding("callid-reused", "newCall with the callId of a call that already ended: Zammad "
                                                   "keeps every callId, answers 500 (This object already exists.) "
                                                   "and logs nothing. Use a new callId for every call, not one per "
                                                   "caller number or channel.")
                superseded.add(entry["id"])
            elif event not in ("answer", "hangup", "newCall"):
                finding = Finding("event-after-hangup", f"{_short(event)} after the call's hangup: Zammad knows no "
                                                        "events after the end of a call.")
            if finding is not None:
                added.setdefault(entry["id"], []).append(finding)
        if event == "hangup" and outcome == "recorded":
            ended[key] = True
        elif event == "newCall" and outcome in LOGGED_NEW_CALL:
            ended[key] = False
    return added, superseded


def with_sequence_findings(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The entries with their ``findings`` completed by :func:`sequence_findings` (copies, oldest first)."""
    added, superseded = sequence_findings(entries)
    result = []
    for entry in entries:
        findings = [f for f in entry.get("findings", [])
                    if not (entry.get("id") in superseded and f.get("code") == "duplicate-newcall")]
        findings += [f.to_json() for f in added.get(entry.get("id"), [])]
        result.append({**entry, "findings": findings})
    return result
