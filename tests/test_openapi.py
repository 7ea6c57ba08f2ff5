"""The contract itself: openapi.yaml is valid, its examples obey its schemas.

These tests need no server. They pin four things:

* the document is valid OpenAPI 3.1 and schemathesis can load and generate
  from it;
* every named example (request bodies and responses) validates against the
  schema of its own media type, and the example names other parts of the
  project rely on exist;
* the documentation page's payloads appear verbatim, and the dial/reject
  examples agree with fixtures/documented-config.json;
* the schemas have teeth: near-misses (``callerId`` instead of ``caller_id``,
  a reworded error text) are rejected.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_spec

from mock_server.zammad.endpoint import new_call_action

ROOT = Path(__file__).resolve().parents[1]
SPEC_PATH = ROOT / "openapi.yaml"
CONFIG_PATH = ROOT / "fixtures" / "documented-config.json"
PROFILES_DIR = ROOT / "mock_server" / "zammad" / "profiles"

SPEC: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))

PUSH_PATH = "/api/v1/cti/{token}"
LOG_PATH = "/api/v1/cti/log"
JSON = "application/json"
URLENCODED = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"

# Key of the examples that schemathesis and other tools ignore; holds request
# bodies that are meant to violate the schema.
INVALID_EXAMPLES_KEY = "x-invalid-examples"

FORM_EXAMPLES = {
    "docsFormOutboundNewCall",
    "docsFormInboundNewCall",
    "munichDial",
    "berlinDial",
    "blockedInbound",
}
REQUIRED_REQUEST_EXAMPLES = {
    ("POST", PUSH_PATH, JSON): {
        "docsOutboundNewCall",
        "docsInboundNewCall",
        "munichDial",
        "berlinDial",
        "defaultDial",
        "blockedInbound",
        "answer",
        "hangup",
    },
    ("POST", PUSH_PATH, URLENCODED): FORM_EXAMPLES,
    ("POST", PUSH_PATH, MULTIPART): FORM_EXAMPLES,
}
REQUIRED_RESPONSE_EXAMPLES = {
    ("POST", PUSH_PATH, "200"): {"empty", "docsDefaultDial", "munichDial", "berlinDial", "reject"},
    ("POST", PUSH_PATH, "400"): {"badRequest"},
    ("POST", PUSH_PATH, "401"): {"invalidToken"},
    ("POST", PUSH_PATH, "404"): {"noRoute"},
    ("POST", PUSH_PATH, "413"): {"bodyTooLarge"},
    ("POST", PUSH_PATH, "422"): {"featureDisabled", "notConfigured", "invalidDirection", "unknownEvent",
                                  "featureDisabled2021", "invalidDirection2021", "missingColumn", "missingCallId",
                                  "duplicateCallRace", "duplicateCallRace2021"},
    ("POST", PUSH_PATH, "500"): {"duplicateCall", "duplicateCall2021", "unknownCall"},
    ("GET", LOG_PATH, "200"): {"twoCalls"},
    ("GET", LOG_PATH, "401"): {"unknownToken"},
    ("GET", LOG_PATH, "403"): {"notAuthenticated"},
}
REQUIRED_INVALID_EXAMPLES = {("POST", PUSH_PATH, JSON): {"invalidDirection"}}

# The documentation page's four newCall payloads, transcribed from the page
# (seeds/zammad-generic-cti-newcall.txt in the shared notes).
DOC_JSON_OUTBOUND = {
    "event": "newCall",
    "from": "493023125741",
    "to": "492214710334",
    "direction": "out",
    "callId": "f4ebd2be-7b9a-4d58-94c2-eb06a3c2ce76",
    "user": "Christopher Miller",
}
DOC_JSON_INBOUND = {
    "event": "newCall",
    "from": "493023125741",
    "to": "492214710334",
    "direction": "in",
    "callId": "307fa962-de8d-4ffc-817b-7f6993204159",
    "user": ["Christopher Miller", "Emma Taylor"],
}
DOC_FORM_OUTBOUND = {
    "event": "newCall",
    "from": "493023125741",
    "to": "492214710334",
    "direction": "out",
    "callId": "f0871278-0600-4f5c-a746-bec3acf04f41",
    "user": "Christopher Miller",
}
DOC_FORM_INBOUND = {
    "event": "newCall",
    "from": "493023125741",
    "to": "492214710334",
    "direction": "in",
    "callId": "25641e3f-3317-4c48-80b3-fc573c7ffe2b",
    "user[]": ["Christopher Miller", "Emma Taylor"],
}
DOC_DEFAULT_DIAL = {"action": "dial", "caller_id": "496990009111", "number": "492214710334"}
DOC_REJECT = {"action": "reject", "reason": "busy"}
# The one documented answer the server never sends (it spells the key caller_id).
DOC_MISSPELT_DIAL = {"action": "dial", "callerId": "493055571642", "number": "491711234567890"}


# --- helpers ---------------------------------------------------------------


def validator_for(schema: dict[str, Any]) -> Draft202012Validator:
    """A validator for ``schema`` whose local ``$ref``s resolve inside the spec."""
    root = {**schema, "components": SPEC["components"]}
    return Draft202012Validator(root, format_checker=Draft202012Validator.FORMAT_CHECKER)


def component(name: str) -> Draft202012Validator:
    return validator_for({"$ref": f"#/components/schemas/{name}"})


def operations() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in SPEC["paths"].items():
        for method, operation in item.items():
            if method in {"get", "put", "post", "delete", "patch", "head", "options", "trace"}:
                yield method.upper(), path, operation


def request_media() -> Iterator[tuple[str, str, str, dict[str, Any]]]:
    for method, path, operation in operations():
        body = operation.get("requestBody", {})
        for media_type, media in body.get("content", {}).items():
            yield method, path, media_type, media


def response_media() -> Iterator[tuple[str, str, str, str, dict[str, Any]]]:
    for method, path, operation in operations():
        for status, response in operation.get("responses", {}).items():
            for media_type, media in response.get("content", {}).items():
                yield method, path, str(status), media_type, media


def all_examples() -> list[Any]:
    cases = []
    for method, _path, media_type, media in request_media():
        for name, example in media.get("examples", {}).items():
            cases.append(pytest.param(media["schema"], example, id=f"{method}-{media_type}-{name}"))
    for method, _path, status, media_type, media in response_media():
        for name, example in media.get("examples", {}).items():
            cases.append(pytest.param(media["schema"], example, id=f"{method}-{status}-{media_type}-{name}"))
    return cases


def invalid_examples() -> list[Any]:
    return [
        pytest.param(media["schema"], example, id=f"{method}-{media_type}-{name}")
        for method, path, media_type, media in request_media()
        for name, example in media.get(INVALID_EXAMPLES_KEY, {}).items()
    ]


def request_examples(media_type: str) -> dict[str, Any]:
    media = SPEC["paths"][PUSH_PATH]["post"]["requestBody"]["content"][media_type]
    return {name: example["value"] for name, example in media["examples"].items()}


def response_examples(status: str, path: str = PUSH_PATH, method: str = "post") -> dict[str, Any]:
    media = SPEC["paths"][path][method]["responses"][status]["content"][JSON]
    return {name: example["value"] for name, example in media["examples"].items()}


def response_schema(status: str, path: str = PUSH_PATH, method: str = "post") -> Draft202012Validator:
    return validator_for(SPEC["paths"][path][method]["responses"][status]["content"][JSON]["schema"])


def request_schema(media_type: str) -> Draft202012Validator:
    return validator_for(SPEC["paths"][PUSH_PATH]["post"]["requestBody"]["content"][media_type]["schema"])


def describe_errors(validator: Draft202012Validator, instance: Any) -> str:
    return "; ".join(f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(instance))


# --- the document ------------------------------------------------------------


def test_spec_is_valid_openapi_3_1() -> None:
    assert SPEC["openapi"] == "3.1.0"
    validate_spec(SPEC)


def test_operations_and_ids() -> None:
    found = {(method, path): op.get("operationId") for method, path, op in operations()}
    assert found == {("POST", PUSH_PATH): "ctiPush", ("GET", LOG_PATH): "ctiCallerLog"}


def test_request_schemas_are_flat_objects() -> None:
    # urlencoded `encoding` is honoured by schemathesis only when the media
    # type's schema has top-level properties (no allOf/oneOf wrapper).
    for name in ("CtiEventJson", "CtiEventForm"):
        schema = SPEC["components"]["schemas"][name]
        assert schema["type"] == "object"
        assert "properties" in schema
        assert not {"allOf", "oneOf", "$ref"} & schema.keys(), name
        # A real Zammad ignores unknown attributes.
        assert schema.get("additionalProperties", True) is not False, name
    encoding = SPEC["paths"][PUSH_PATH]["post"]["requestBody"]["content"][URLENCODED]["encoding"]
    assert encoding["user[]"] == {"style": "form", "explode": True}


# --- examples ----------------------------------------------------------------


@pytest.mark.parametrize(("schema", "example"), all_examples())
def test_example_validates_against_its_schema(schema: dict[str, Any], example: dict[str, Any]) -> None:
    assert set(example) >= {"summary", "value"}
    validator = validator_for(schema)
    assert validator.is_valid(example["value"]), describe_errors(validator, example["value"])


@pytest.mark.parametrize(("schema", "example"), invalid_examples())
def test_invalid_example_does_not_validate(schema: dict[str, Any], example: dict[str, Any]) -> None:
    assert set(example) >= {"summary", "value"}
    assert not validator_for(schema).is_valid(example["value"])


def test_required_example_names_exist() -> None:
    missing = []
    for required, key in ((REQUIRED_REQUEST_EXAMPLES, "examples"), (REQUIRED_INVALID_EXAMPLES, INVALID_EXAMPLES_KEY)):
        have = {(m, p, mt): set(media.get(key, {})) for m, p, mt, media in request_media()}
        for where, wanted in required.items():
            missing += [f"{where} {key}: {name}" for name in sorted(wanted - have.get(where, set()))]
    have: dict[tuple[str, str, str], set[str]] = {}
    for m, p, status, _, media in response_media():  # a status may have JSON and HTML media
        have.setdefault((m, p, status), set()).update(media.get("examples", {}))
    for where, wanted in REQUIRED_RESPONSE_EXAMPLES.items():
        missing += [f"{where}: {name}" for name in sorted(wanted - have.get(where, set()))]
    assert not missing, missing


def test_request_examples_use_unique_call_ids() -> None:
    # Sending every example once (e.g. schemathesis' examples phase, all media
    # types) must not trip over the duplicate-newCall 500.
    ids = Counter()
    for _, _, _, media in request_media():
        for example in media.get("examples", {}).values():
            value = example["value"]
            ids[value.get("callId", value.get("call_id"))] += 1
    assert not [call_id for call_id, count in ids.items() if count > 1]


def test_documentation_payloads_appear_verbatim() -> None:
    assert request_examples(JSON)["docsOutboundNewCall"] == DOC_JSON_OUTBOUND
    assert request_examples(JSON)["docsInboundNewCall"] == DOC_JSON_INBOUND
    # `curl --form` sends multipart/form-data: that is where the verbatim copies live.
    assert request_examples(MULTIPART)["docsFormOutboundNewCall"] == DOC_FORM_OUTBOUND
    assert request_examples(MULTIPART)["docsFormInboundNewCall"] == DOC_FORM_INBOUND
    # The urlencoded copies differ only in a suffixed callId (see the spec).
    for name, doc in (("docsFormOutboundNewCall", DOC_FORM_OUTBOUND), ("docsFormInboundNewCall", DOC_FORM_INBOUND)):
        value = request_examples(URLENCODED)[name]
        assert value == {**doc, "callId": doc["callId"] + "-urlencoded"}
    assert response_examples("200")["docsDefaultDial"] == DOC_DEFAULT_DIAL
    assert response_examples("200")["reject"] == DOC_REJECT
    assert response_examples("200")["empty"] == {}


def _expected_answer(event: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """What the mock's rules (steps 5-7 of the reference) answer, to cross-check the examples."""
    action = new_call_action(config["cti_config"], event)
    return action.body if action is not None else {}


# Request example -> the 200 example that answers it under the documented config.
ANSWERED_BY = {
    "docsOutboundNewCall": "docsDefaultDial",
    "docsFormOutboundNewCall": "docsDefaultDial",
    "defaultDial": "docsDefaultDial",
    "munichDial": "munichDial",
    "berlinDial": "berlinDial",
    "blockedInbound": "reject",
    "docsInboundNewCall": "empty",
    "docsFormInboundNewCall": "empty",
}


@pytest.mark.parametrize("media_type", [JSON, URLENCODED, MULTIPART])
def test_examples_agree_with_documented_config(media_type: str) -> None:
    config = json.loads(CONFIG_PATH.read_text(encoding="utf-8"))
    answers = response_examples("200")
    checked = 0
    for name, event in request_examples(media_type).items():
        if name in ANSWERED_BY:
            assert _expected_answer(event, config) == answers[ANSWERED_BY[name]], name
            checked += 1
    assert checked >= 5


# --- the schemas have teeth ----------------------------------------------------

VALID_EVENT = {
    "event": "newCall",
    "from": "493023125741",
    "to": "498912345678",
    "direction": "out",
    "callId": "0b6c3f5e-2f1e-4b8e-9a57-1d2c3b4a5f60",
}


@pytest.mark.parametrize(
    ("status", "body"),
    [
        pytest.param("200", DOC_MISSPELT_DIAL, id="dial-with-callerId"),
        pytest.param("200", {"action": "dial", "caller_id": "496990009111"}, id="dial-without-number"),
        pytest.param("200", {**DOC_DEFAULT_DIAL, "note": "All from munich"}, id="dial-extra-key"),
        pytest.param("200", {"action": "reject", "reason": "declined"}, id="reject-other-reason"),
        pytest.param("200", {"action": "hangup"}, id="unknown-action"),
        pytest.param("200", [], id="array"),
        pytest.param("401", {"error": "Invalid token"}, id="401-other-text"),
        pytest.param("422", {"error": "Invalid direction"}, id="422-missing-bang"),
        pytest.param("422", {"error": "Call failed!"}, id="422-unknown-text"),
        pytest.param("500", {"error": "This object already exists.", "error_human": 1}, id="500-error-human-not-text"),
        pytest.param("400", {"error": "Bad Request"}, id="400-without-status"),
        pytest.param("422", {"error": "Error ID aB3_x-9: Please contact your administrator."}, id="422-short-id"),
        pytest.param("422", {"error": "Error ID aB3_x+9Q: Please contact your administrator."}, id="422-non-urlsafe"),
        pytest.param("422", {"error": "Invalid direction!", "code": 422}, id="422-extra-key"),
        pytest.param("500", {"error": "Invalid direction!"}, id="500-422-text"),
        pytest.param("500", {"message": "Object already exists!"}, id="500-wrong-key"),
        pytest.param("500", {"error": "Object already exists"}, id="500-2021-text-without-bang"),
        pytest.param("500", {"error": "This object already exists"}, id="500-current-text-without-dot"),
        pytest.param("422", {"error": "Feature is disabled, please contact your admin!"}, id="422-mixed-versions"),
        pytest.param("422", {"error": "Invalid 'direction'"}, id="422-current-missing-bang"),
        pytest.param("404", {"error": "Not Found"}, id="404-other-text"),
        pytest.param("404", {"error": "This page doesn't exist.", "error_human": "Not Found"}, id="404-other-human"),
        pytest.param("404", {"error": "This page doesn't exist.", "allow": "POST"}, id="404-extra-key"),
        pytest.param("400", {"error": 400}, id="400-non-string"),
    ],
)
def test_response_schema_rejects(status: str, body: Any) -> None:
    assert not response_schema(status).is_valid(body)


@pytest.mark.parametrize(
    ("media_type", "body"),
    [
        pytest.param(JSON, {k: v for k, v in VALID_EVENT.items() if k != "callId"}, id="json-no-call-id"),
        pytest.param(JSON, {**VALID_EVENT, "direction": "sideways"}, id="json-bad-direction"),
        pytest.param(JSON, {k: v for k, v in VALID_EVENT.items() if k != "direction"}, id="json-no-direction"),
        pytest.param(JSON, {**VALID_EVENT, "event": "ring"}, id="json-bad-event"),
        pytest.param(JSON, {**VALID_EVENT, "callId": ""}, id="json-empty-call-id"),
        pytest.param(JSON, {**VALID_EVENT, "callId": "x" * 251}, id="json-long-call-id"),
        pytest.param(JSON, {**VALID_EVENT, "cause": "timeout"}, id="json-bad-cause"),
        pytest.param(JSON, {**VALID_EVENT, "user": ["A", 1]}, id="json-user-non-string"),
        pytest.param(URLENCODED, {**VALID_EVENT, "user": ["A", "B"]}, id="form-user-array"),
        pytest.param(MULTIPART, {**VALID_EVENT, "user[]": "A"}, id="form-user-brackets-string"),
        # Rack's parameter conflict: Rails answers 400 before Zammad runs.
        pytest.param(URLENCODED, {**VALID_EVENT, "user[]": ["A", "B"], "user": "C"}, id="form-both-users"),
    ],
)
def test_request_schema_rejects(media_type: str, body: Any) -> None:
    assert not request_schema(media_type).is_valid(body)


@pytest.mark.parametrize(
    ("media_type", "body"),
    [
        pytest.param(JSON, VALID_EVENT, id="json-minimal"),
        pytest.param(JSON, {**{k: v for k, v in VALID_EVENT.items() if k != "callId"}, "call_id": "a"}, id="json-alias"),
        pytest.param(JSON, {**VALID_EVENT, "callId": "x" * 250}, id="json-250-chars"),
        pytest.param(JSON, {**VALID_EVENT, "customField": "ignored"}, id="json-unknown-field"),
        pytest.param(URLENCODED, {**VALID_EVENT, "user[]": ["A", "B"]}, id="form-user-brackets"),
    ],
)
def test_request_schema_accepts(media_type: str, body: Any) -> None:
    validator = request_schema(media_type)
    assert validator.is_valid(body), describe_errors(validator, body)


# --- Zammad versions: the spec holds every text of both profiles -----------------

PROFILES = {path.stem: json.loads(path.read_text(encoding="utf-8")) for path in sorted(PROFILES_DIR.glob("*.json"))}
# Answer cases of the caller log; every other case is an answer of the push endpoint.
LOG_CASES = {"authentication-required", "unknown-api-token"}
SAMPLE_ERROR_ID = "Error ID aB3_x-9Q: Please contact your administrator."


def profile_answers() -> list[Any]:
    cases = []
    for name, profile in PROFILES.items():
        for case, answer in profile["answers"].items():
            text = SAMPLE_ERROR_ID if answer.get("error_id") else answer["error"]
            for column in ("from", "to", "call_id") if "{column}" in text else (None,):
                error = text.replace("{column}", column) if column else text
                body = {"error": error, **({"error_human": error} if answer.get("error_human") else {})}
                cases.append(pytest.param(case, answer, body, id=f"{name}-{case}" + (f"-{column}" if column else "")))
    return cases


def test_both_profiles_are_known() -> None:
    assert set(PROFILES) == {"current", "2021"}


@pytest.mark.parametrize(("case", "answer", "body"), profile_answers())
def test_profile_answer_is_documented(case: str, answer: dict[str, Any], body: dict[str, Any]) -> None:
    path, method = (LOG_PATH, "get") if case in LOG_CASES else (PUSH_PATH, "post")
    status = str(answer["status"])
    assert status in SPEC["paths"][path][method]["responses"], (case, status)
    validator = response_schema(status, path, method)
    assert validator.is_valid(body), describe_errors(validator, body)
    content = SPEC["paths"][path][method]["responses"][status]["content"]
    if answer.get("handler"):
        # The error handler answers HTML to a client that does not accept JSON.
        assert content.get("text/html", {}).get("schema", {}).get("type") == "string", (case, status)


@pytest.mark.parametrize("status", ["401"])
def test_controller_answers_are_json_only(status: str) -> None:
    # The controller's own answer ignores Accept: the 401 of the push endpoint is JSON, never HTML.
    assert set(SPEC["paths"][PUSH_PATH]["post"]["responses"][status]["content"]) == {JSON}


def _examples_by_text() -> dict[str, list[tuple[str, str]]]:
    found: dict[str, list[tuple[str, str]]] = {}
    for _m, _p, _status, media_type, media in response_media():
        if media_type != JSON:
            continue
        for name, example in media.get("examples", {}).items():
            value = example["value"]
            if isinstance(value, dict) and isinstance(value.get("error"), str):
                found.setdefault(value["error"], []).append((name, example["summary"]))
    return found


def test_every_fixed_text_of_each_profile_has_a_named_example() -> None:
    by_text = _examples_by_text()
    current = PROFILES["current"]["answers"]
    missing = []
    for name, profile in PROFILES.items():
        for case, answer in profile["answers"].items():
            if answer.get("error_id") or "{column}" in answer.get("error", ""):
                continue
            text = answer["error"]
            examples = by_text.get(text, [])
            if name == "2021" and text != current[case].get("error"):
                # A text only Zammad 5.x words: an example named ...2021 that says so.
                examples = [(n, summ) for n, summ in examples if n.endswith("2021") and "Zammad 5.x (2021)" in summ]
            else:
                examples = [(n, summ) for n, summ in examples if not n.endswith("2021")]
            if not examples:
                missing.append(f"{name}/{case}: {text}")
    assert not missing, missing


def test_2021_examples_are_marked_and_hold_no_current_text() -> None:
    by_text = _examples_by_text()
    current_texts = {a["error"] for a in PROFILES["current"]["answers"].values() if "error" in a}
    named_2021 = [(text, name, summ) for text, found in by_text.items() for name, summ in found if name.endswith("2021")]
    assert len(named_2021) >= 4
    for text, name, summary in named_2021:
        assert "Zammad 5.x (2021)" in summary, name
        assert text not in current_texts, name


def test_info_names_both_versions() -> None:
    info = SPEC["info"]
    assert "x-zammad-versions" in info["description"]
    versions = info["x-zammad-versions"]
    assert set(versions) == {"current", "2021"}
    assert versions["current"]["code"].endswith("4ca1e987")
    assert versions["current"]["error-handler"].endswith("369c62ec")
    assert versions["2021"]["code"].endswith("5df98684")
    for commit in ("4ca1e987", "369c62ec", "5df98684"):
        assert commit in info["description"], commit
    # The format rule is stated up front.
    assert "text/html" in info["description"] and "*/*" in info["description"]


def test_no_405_is_documented() -> None:
    # Zammad's catch-all route answers unrouted methods 404; there is no 405.
    statuses = {status for _m, _p, operation in operations() for status in operation.get("responses", {})}
    assert "405" not in statuses
    assert "404" in SPEC["paths"][PUSH_PATH]["post"]["responses"]


def test_caller_log_entry_schema() -> None:
    entry = response_examples("200", LOG_PATH, "get")["twoCalls"]["list"][0]
    validator = component("CallerLogEntry")
    assert validator.is_valid({**entry, "from": None, "comment": None})
    assert not validator.is_valid({**entry, "duration_waiting_time": 1.5})
    assert not validator.is_valid({**entry, "end_at": "yesterday"})
    assert not validator.is_valid({**entry, "state": "ringing"})
    assert not validator.is_valid({k: v for k, v in entry.items() if k != "preferences"})
    assert not validator.is_valid({k: v for k, v in entry.items() if k != "from_pretty"})
    record = entry["preferences"]["from"][0]
    assert validator.is_valid({**entry, "preferences": {**entry["preferences"], "from": [record] * 20}})
    assert not validator.is_valid({**entry, "preferences": {**entry["preferences"], "from": [record] * 21}})
    assert not validator.is_valid({**entry, "preferences": {"from": [{**record, "level": "unknown"}]}})
    assert not validator.is_valid({**entry, "preferences": {"from": [{**record, "object": "Organization"}]}})


def test_caller_log_backends_and_assets() -> None:
    log = response_examples("200", LOG_PATH, "get")["twoCalls"]
    assert [b["name"] for b in log["backends"]] == ["CTI (generic)", "sipgate.io", "Placetel"]
    assert log["backends"][0] == {"name": "CTI (generic)", "enabled": True, "url": "#system/integration/cti"}
    user_ids = {str(r["user_id"]) for e in log["list"] for r in e["preferences"].get("from", []) + e["preferences"].get("to", [])}
    assert user_ids and user_ids <= set(log["assets"]["User"])
    validator = component("CallerLog")
    assert not validator.is_valid({k: v for k, v in log.items() if k != "backends"})
    assert not validator.is_valid({**log, "backends": [{"name": "CTI (generic)", "enabled": True}]})


# --- schemathesis ----------------------------------------------------------------


@pytest.fixture(scope="module")
def st_schema():
    import schemathesis
    from schemathesis.config import SchemathesisConfig

    # An explicit default config: the project's own schemathesis.toml (if any)
    # belongs to the contract tests, not to this check of the document.
    return schemathesis.openapi.from_path(SPEC_PATH, config=SchemathesisConfig())


def test_schemathesis_loads_both_operations(st_schema) -> None:
    from schemathesis.core.result import Err

    results = list(st_schema.get_all_operations())
    errors = [result.err() for result in results if isinstance(result, Err)]
    assert not errors
    labels = {(op.method.upper(), op.path) for op in (result.ok() for result in results)}
    assert labels == {("POST", PUSH_PATH), ("GET", LOG_PATH)}


def test_schemathesis_examples_are_exactly_the_named_ones(st_schema) -> None:
    # The examples phase must send the named examples and nothing else:
    # schema-level `examples` on properties would add combined requests
    # sharing one callId, and x-invalid-examples must stay out.
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    operation = st_schema[PUSH_PATH]["POST"]
    drawn: list[Any] = []

    @settings(max_examples=1, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.tuples(*operation.get_strategies_from_examples()))
    def draw(cases) -> None:
        drawn[:] = cases

    draw()
    sent = sorted((case.media_type, json.dumps(case.body, sort_keys=True)) for case in drawn)
    named = sorted(
        (media_type, json.dumps(value, sort_keys=True))
        for media_type in (JSON, URLENCODED, MULTIPART)
        for value in request_examples(media_type).values()
    )
    assert sent == named


def test_schemathesis_generates_valid_bodies_for_each_media_type(st_schema) -> None:
    from hypothesis import HealthCheck, given, settings

    operation = st_schema[PUSH_PATH]["POST"]
    validators = {media_type: request_schema(media_type) for media_type in (JSON, URLENCODED, MULTIPART)}
    seen: Counter[str] = Counter()
    invalid: list[str] = []

    # `as_strategy(media_type=...)` only applies to an explicit body: the
    # media type of generated bodies is drawn, so draw enough to see all three.
    @settings(
        max_examples=120,
        database=None,
        derandomize=True,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(operation.as_strategy(path_parameters={"token": "spec-test-token"}))
    def draw(case) -> None:
        seen[case.media_type] += 1
        assert case.path_parameters == {"token": "spec-test-token"}
        validator = validators[case.media_type]
        if not validator.is_valid(case.body):
            invalid.append(f"{case.media_type}: {describe_errors(validator, case.body)}")

    draw()
    assert set(seen) == set(validators), seen
    assert not invalid, invalid[:5]


def test_schemathesis_generates_caller_log_requests(st_schema) -> None:
    from hypothesis import HealthCheck, given, settings

    operation = st_schema[LOG_PATH]["GET"]
    cases = []

    @settings(max_examples=3, database=None, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
    @given(operation.as_strategy())
    def draw(case) -> None:
        cases.append(case)

    draw()
    assert cases
    assert all(case.formatted_path == LOG_PATH for case in cases)
