"""The replay scenarios: valid files, requests and answers that agree with openapi.yaml, a suite with teeth.

* every file under fixtures/scenarios validates against fixtures/scenario.schema.json
  and loads (names, configurations, call aliases);
* every request, in every encoding it is sent in, validates against the
  contract's request schema for that media type, and every step flagged
  ``invalid_request`` really does not; every expected answer validates
  against the contract's response schema for its status, and every
  caller-log expectation against the caller-log entry schema;
* the documentation's payloads are replayed verbatim (call ID aside);
* the replay suite passes against a healthy external target, and fails
  against a broken one with a message a user can act on.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator
from werkzeug.serving import WSGIRequestHandler, make_server

from contract_tests.context import CALL_ID_PREFIX
from contract_tests.requests_builder import ENCODINGS, form_pairs
from contract_tests.scenarios import (
    MAX_CALL_ID_LENGTH,
    Expectation,
    Scenario,
    ScenarioError,
    load_scenario,
    load_scenarios,
    make_call_id,
    scenario_from_mapping,
)
from mock_server import create_app, load_config
from mock_server.zammad.profiles import profile_names

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"
SCENARIO_DIR = FIXTURES / "scenarios"
SCENARIO_SCHEMA = json.loads((FIXTURES / "scenario.schema.json").read_text(encoding="utf-8"))
SPEC: dict[str, Any] = yaml.safe_load((ROOT / "openapi.yaml").read_text(encoding="utf-8"))
PUSH = SPEC["paths"]["/api/v1/cti/{token}"]["post"]
DOCUMENTED_TOKEN = load_config(FIXTURES / "documented-config.json").token
API_TOKEN = json.loads((FIXTURES / "documented-config.json").read_text())["agents"][0]["token"]  # the documented agent
MUNICH = "498999998145"
ERROR_ID = "Error ID aB3_x-9Q: Please contact your administrator."

MEDIA_TYPES = {
    "json": "application/json",
    "urlencoded": "application/x-www-form-urlencoded",
    "multipart": "multipart/form-data",
}
# Query-string variables are not declared in the contract: Rails folds them
# into the same parameter map as a JSON body, so they obey the JSON schema.
QUERY_SCHEMA = "#/components/schemas/CtiEventJson"

# Made concrete for the configuration each runs against: its own, or for the
# scenarios that fit any configuration the documented one (and, in
# tests/test_needs.py, another one).
SCENARIOS = [scenario.bind(load_config(scenario.config_path)) for scenario in load_scenarios(SCENARIO_DIR)]
SCENARIO_FILES = sorted(SCENARIO_DIR.glob("*.json"))

REQUIRED_SCENARIOS = {
    "docs-json-outbound", "docs-json-inbound", "docs-form-outbound", "docs-form-inbound",
    "munich-dial", "berlin-dial", "default-dial", "wildcard-prefix-alone",
    "inbound-blocked", "inbound-near-miss", "wrong-token", "invalid-direction", "missing-direction",
    "unknown-event", "inbound-answered", "outbound-answered", "inbound-missed", "inbound-forwarded",
    "answer-after-hangup", "duplicate-newcall", "unknown-call", "user-array", "call-id-alias",
    "feature-disabled", "not-configured",
}


# --- helpers ---------------------------------------------------------------------------


def validator_for(schema: dict[str, Any]) -> Draft202012Validator:
    """A validator for ``schema`` whose ``#/components/...`` references resolve inside the spec."""
    return Draft202012Validator({**schema, "components": SPEC["components"]},
                                format_checker=Draft202012Validator.FORMAT_CHECKER)


def request_validator(encoding: str) -> Draft202012Validator:
    if encoding == "query":
        return validator_for({"$ref": QUERY_SCHEMA})
    return validator_for(PUSH["requestBody"]["content"][MEDIA_TYPES[encoding]]["schema"])


def response_media(status: int) -> dict[str, Any]:
    return PUSH["responses"][str(status)]["content"]["application/json"]


def errors_of(validator: Draft202012Validator, instance: Any) -> str:
    return "; ".join(f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
                     for e in validator.iter_errors(instance))


def as_received(params: dict[str, Any], encoding: str) -> dict[str, Any]:
    """The request as the contract describes it for ``encoding``.

    Form bodies are described field by field (``user[]`` is a field of its
    own); a query string reaches Zammad folded the Rails way (``user[]``
    becomes the list ``user``), like a JSON body.
    """
    if encoding == "json":
        return dict(params)
    received: dict[str, Any] = {}
    for key, value in form_pairs(params):
        if key.endswith("[]"):
            received.setdefault(key if encoding != "query" else key[:-2], []).append(value)
        else:
            received[key] = value
    return received


def step_cases() -> list[Any]:
    return list(_step_cases())


def _step_cases() -> Iterator[Any]:
    for scenario in SCENARIOS:
        for encoding in scenario.encodings:
            run = scenario.for_run(encoding, run_id="0123456789ab")
            for number, step in enumerate(run.steps, 1):
                yield pytest.param(step, encoding, id=f"{run.label}-step{number}")


def answer_cases() -> list[Any]:
    return list(_answer_cases())


def _answer_cases() -> Iterator[Any]:
    for scenario in load_scenarios(SCENARIO_DIR):
        config = load_config(scenario.config_path)
        for name in profile_names():  # a named refusal is bound in each Zammad version's words
            bound = scenario.bind(config, profile=name)
            for number, (step, raw) in enumerate(zip(bound.steps, scenario.steps, strict=True), 1):
                if raw.expect.error is not None or name == profile_names()[0]:
                    yield pytest.param(step.expect, id=f"{scenario.name}-step{number}-{name}")


def caller_log_cases() -> list[Any]:
    return list(_caller_log_cases())


def _caller_log_cases() -> Iterator[Any]:
    for scenario in SCENARIOS:
        expectations = [scenario.caller_log] + [step.caller_log for step in scenario.steps]
        for expected in filter(None, expectations):
            for alias, fields in expected.items():
                if fields is not None:
                    yield pytest.param(fields, id=f"{scenario.name}-{alias}")


# --- the files -----------------------------------------------------------------------------


def test_scenario_schema_is_valid() -> None:
    Draft202012Validator.check_schema(SCENARIO_SCHEMA)


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=lambda path: path.stem)
def test_scenario_file_validates(path: Path) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    validator = Draft202012Validator(SCENARIO_SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)
    assert validator.is_valid(data), errors_of(validator, data)
    assert load_scenario(path).name == path.stem


def test_required_scenarios_exist() -> None:
    assert REQUIRED_SCENARIOS <= {scenario.name for scenario in SCENARIOS}


def test_every_scenario_runs_in_every_encoding_that_applies() -> None:
    for scenario in SCENARIOS:
        form_only = any(key.endswith("[]") for step in scenario.steps for key in step.request)
        documented = scenario.name.startswith("docs-")
        if not (form_only or documented):
            assert scenario.encodings == ENCODINGS, scenario.name


def test_other_configurations() -> None:
    documented = load_config(FIXTURES / "documented-config.json")
    disabled = load_config(FIXTURES / "disabled-config.json")
    unconfigured = load_config(FIXTURES / "unconfigured-config.json")
    assert disabled.integration is False and disabled.cti_config == documented.cti_config
    assert unconfigured.integration is True and not unconfigured.cti_config
    assert len({documented.token, disabled.token, unconfigured.token}) == 3
    assert {s.config_path.name for s in SCENARIOS} == {
        "documented-config.json", "disabled-config.json", "unconfigured-config.json",
    }


# --- the requests and answers agree with the contract ------------------------------------------


@pytest.mark.parametrize(("step", "encoding"), step_cases())
def test_request_matches_the_contract(step: Any, encoding: str) -> None:
    validator = request_validator(encoding)
    received = as_received(step.request, encoding)
    if step.invalid_request:
        assert not validator.is_valid(received), "flagged invalid_request, but the contract accepts it"
    else:
        assert validator.is_valid(received), errors_of(validator, received)


@pytest.mark.parametrize("expect", answer_cases())
def test_expected_answer_matches_the_contract(expect: Any) -> None:
    if expect.html_page:  # Zammad's error page: the contract must declare it for that status
        assert "text/html" in PUSH["responses"][str(expect.status)]["content"], expect.status
        return
    media = response_media(expect.status)
    validator = validator_for(media["schema"])
    if expect.body_matches is None:
        assert validator.is_valid(expect.body), errors_of(validator, expect.body)
        return
    # A pattern stands for a family of bodies: the contract's own examples
    # for that status must include one it accepts, and that one is valid.
    matching = [
        example["value"] for example in media["examples"].values()
        if set(example["value"]) == set(expect.body_matches)
        and all(re.fullmatch(pattern, example["value"][key]) for key, pattern in expect.body_matches.items())
    ]
    assert matching, f"no {expect.status} example of openapi.yaml matches {expect.body_matches}"
    assert all(validator.is_valid(body) for body in matching)


@pytest.mark.parametrize("fields", caller_log_cases())
def test_caller_log_expectation_matches_the_contract(fields: dict[str, Any]) -> None:
    entry = SPEC["components"]["schemas"]["CallerLogEntry"]["properties"]
    for name, value in fields.items():
        assert name in entry, name
        validator = validator_for(entry[name])
        assert validator.is_valid(value), f"{name}: {errors_of(validator, value)}"


def test_documentation_payloads_are_replayed_verbatim() -> None:
    content = PUSH["requestBody"]["content"]
    json_examples = {name: e["value"] for name, e in content["application/json"]["examples"].items()}
    form_examples = {name: e["value"] for name, e in content["multipart/form-data"]["examples"].items()}
    by_name = {scenario.name: scenario for scenario in SCENARIOS}

    def without_call_id(params: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in params.items() if k not in ("callId", "call_id")}

    for scenario, example in (
        ("docs-json-outbound", json_examples["docsOutboundNewCall"]),
        ("docs-json-inbound", json_examples["docsInboundNewCall"]),
        ("docs-form-outbound", form_examples["docsFormOutboundNewCall"]),
        ("docs-form-inbound", form_examples["docsFormInboundNewCall"]),
    ):
        (step,) = by_name[scenario].steps
        assert without_call_id(step.request) == without_call_id(example), scenario
        assert step.request["callId"] == "{call:a}"
        assert example["callId"] in by_name[scenario].description  # the page's own ID stays findable
    dial = {"action": "dial", "caller_id": "496990009111", "number": "492214710334"}
    assert by_name["docs-json-outbound"].steps[0].expect.body == dial
    assert by_name["docs-form-outbound"].steps[0].expect.body == dial


# --- the loader ---------------------------------------------------------------------------------


def test_call_ids_are_fresh_per_run_and_encoding() -> None:
    scenario = next(s for s in SCENARIOS if s.name == "duplicate-newcall")
    first, second = scenario.for_run("json"), scenario.for_run("json")
    other = scenario.for_run("query")
    ids = [*first.call_ids.values(), *second.call_ids.values(), *other.call_ids.values()]
    assert len(set(ids)) == len(ids) == 6
    for call_id in ids:
        assert call_id.startswith(f"{CALL_ID_PREFIX}duplicate-newcall-")
    assert "-json-inbound-" in first.call_ids["inbound"]
    # The steps carry the filled-in IDs, the same within a run for one alias.
    assert first.steps[0].request["callId"] == first.steps[1].request["callId"] == first.call_ids["inbound"]


def test_call_ids_fit_zammads_column() -> None:
    call_id = make_call_id("x" * 400, "urlencoded", "a" * 30, "0123456789ab")
    assert len(call_id) == MAX_CALL_ID_LENGTH
    assert call_id.endswith("-urlencoded-" + "a" * 30 + "-0123456789ab")
    assert max(len(id_) for s in SCENARIOS for e in s.encodings for id_ in s.call_ids(e).values()) < 120


def test_for_run_refuses_an_encoding_the_scenario_does_not_list() -> None:
    scenario = next(s for s in SCENARIOS if s.name == "docs-form-inbound")
    with pytest.raises(ValueError, match="not sent as json"):
        scenario.for_run("json")


@pytest.mark.parametrize(
    ("status", "body", "problem"),
    [
        pytest.param(500, {"error": ERROR_ID}, None, id="matches"),
        pytest.param(422, {"error": ERROR_ID}, "status 422, expected 500", id="other-status"),
        pytest.param(500, {"error": ERROR_ID.replace("-", "+")}, "does not match", id="not-urlsafe"),
        pytest.param(500, {"error": ERROR_ID + " Thanks"}, "does not match", id="trailing-text"),
        pytest.param(500, {"error": ERROR_ID, "id": 1}, "body keys", id="extra-key"),
        pytest.param(500, {"error": 5}, "does not match", id="not-a-string"),
        pytest.param(500, ["error"], "body keys list", id="not-an-object"),
    ],
)
def test_body_patterns(status: int, body: Any, problem: str | None) -> None:
    (expect,) = (step.expect for s in SCENARIOS if s.name == "unknown-call" for step in s.steps[:1])
    mismatch = expect.mismatch(status, body)
    assert mismatch is None if problem is None else problem in mismatch


def test_exact_bodies_compare_as_json() -> None:
    (expect,) = (step.expect for s in SCENARIOS if s.name == "munich-dial" for step in s.steps)
    assert expect.mismatch(200, dict(reversed(list(expect.body.items())))) is None
    assert expect.mismatch(200, {**expect.body, "caller_id": 498999998145}) == "body differs"
    assert Expectation(200, {"done": True}).mismatch(200, {"done": 1}) == "body differs"


def _broken(tmp_path: Path, change: Callable[[dict[str, Any]], None], name: str = "munich-dial") -> Scenario:
    data = json.loads((SCENARIO_DIR / "munich-dial.json").read_text(encoding="utf-8"))
    change(data)
    (tmp_path / "scenarios").mkdir(exist_ok=True)
    (tmp_path / "documented-config.json").write_text((FIXTURES / "documented-config.json").read_text())
    return scenario_from_mapping(data, tmp_path / "scenarios" / f"{name}.json")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param(lambda d: d["steps"][0]["request"].update({"user[]": ["A", "B"]}),
                     r"user\[\].*brackets are part of the key", id="form-key-in-json"),
        pytest.param(lambda d: d["steps"][0]["request"].update(callId="f4ebd2be"),
                     r"callId: 'f4ebd2be' does not match.*Literal call IDs are not allowed", id="literal-call-id"),
        pytest.param(lambda d: d.update(caller_log={"b": None}), r"call 'b' is not sent by any step",
                     id="unknown-alias"),
        pytest.param(lambda d: d.update(name="munich"), r"differs from the file name", id="name-not-file-name"),
        pytest.param(lambda d: d.update(config="nowhere.json"), r"nowhere.json does not exist", id="missing-config"),
        pytest.param(lambda d: d["steps"][0]["expect"].pop("body"), r"give the body either exactly", id="no-body"),
        pytest.param(lambda d: d["caller_log"]["a"].update(done="yes"),
                     r"caller_log/a/done: 'yes' is not of type 'boolean'", id="caller-log-type"),
        pytest.param(lambda d: d["caller_log"]["a"].update(stat="newCall"), r"'stat' was unexpected",
                     id="caller-log-typo"),
        pytest.param(lambda d: d.update(encodings=["xml"]), r"encodings/0: 'xml' is not one of", id="unknown-encoding"),
    ],
)
def test_loader_explains_invalid_scenarios(
    tmp_path: Path, change: Callable[[dict[str, Any]], None], message: str,
) -> None:
    with pytest.raises(ScenarioError, match=message) as info:
        _broken(tmp_path, change)
    assert "munich-dial.json" in str(info.value)


def test_form_only_keys_are_fine_without_json(tmp_path: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        data["steps"][0]["request"]["user[]"] = ["A", "B"]
        data["encodings"] = ["multipart", "query"]

    assert _broken(tmp_path, change).encodings == ("multipart", "query")


# --- the suite against live targets ----------------------------------------------------------------



class Corrupting:
    """WSGI middleware that rewrites the mock's JSON answers: a target that breaks the contract."""

    def __init__(self, app: Any, change: Callable[[str, str, Any], tuple[Any, str]]) -> None:
        self.app, self.change = app, change

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured.update(status=status, headers=headers)
            return lambda data: None

        raw = b"".join(self.app(environ, capture))
        if "json" not in dict(captured["headers"]).get("Content-Type", ""):
            start_response(captured["status"], captured["headers"])  # Zammad's HTML error page, as it is
            return [raw]
        body, content_type = self.change(environ["REQUEST_METHOD"], environ["PATH_INFO"], json.loads(raw))
        data = (json.dumps(body) if content_type == "application/json" else str(body)).encode()
        headers = [(k, v) for k, v in captured["headers"] if k.lower() not in ("content-type", "content-length")]
        headers += [("Content-Type", content_type), ("Content-Length", str(len(data)))]
        start_response(captured["status"], headers)
        return [data]


def break_contract(method: str, path: str, body: Any) -> tuple[Any, str]:
    """Three faults: Munich dials with the wrong caller ID, 401s are not JSON, missed calls are done."""
    if isinstance(body, dict) and body.get("caller_id") == MUNICH:
        body = {**body, "caller_id": "498999998146"}
    if isinstance(body, dict) and body.get("error", "").startswith("Invalid token"):
        return "Invalid token", "text/plain"
    if path == "/api/v1/cti/log":
        for entry in body["list"]:
            if "-inbound-missed-" in entry["call_id"]:
                entry["done"] = True
    return body, "application/json"


class QuietHandler(WSGIRequestHandler):
    """No access log: its lines carry the endpoint URL, token included."""

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        pass


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """``app`` on a free 127.0.0.1 port; yields its CTI endpoint URL (documented token)."""
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/api/v1/cti/{DOCUMENTED_TOKEN}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def run_replay(url: str, tmp_path: Path, *extra: str) -> tuple[dict[str, tuple[str, str]], str]:
    """Run the replay suite against ``url`` in a subprocess: {test id: (outcome, message)}, output."""
    report = tmp_path / "replay.xml"
    command = [sys.executable, "-m", "pytest", "--pyargs", "contract_tests.test_replay", "-q", "-p", "no:cacheprovider",
               "--target", url, f"--junitxml={report}", *extra]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    results: dict[str, tuple[str, str]] = {}
    for case in ElementTree.parse(report).iter("testcase"):
        test_id = case.get("name", "").removeprefix("test_scenario[")[:-1]
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome, message = child.tag, f"{child.get('message', '')}\n{child.text or ''}"
        results[test_id] = (outcome, message)
    return results, done.stdout + done.stderr + report.read_text(encoding="utf-8")


def test_replay_passes_against_a_healthy_external_target(tmp_path: Path) -> None:
    with serve(create_app()) as url:
        results, output = run_replay(url, tmp_path, "--zammad-api-token", API_TOKEN)
    outcomes = {outcome for outcome, _ in results.values()}
    assert outcomes == {"passed", "skipped"}, output
    skipped = {test_id: message for test_id, (outcome, message) in results.items() if outcome == "skipped"}
    # Another configuration: only the external target's admin could switch to it.
    assert {test_id.split("[")[0] for test_id in skipped} == {"feature-disabled", "not-configured"}
    assert "disabled-config.json" in skipped["feature-disabled[json]"]
    assert "unconfigured-config.json" in skipped["not-configured[query]"]
    assert DOCUMENTED_TOKEN not in output and API_TOKEN not in output


def test_replay_fails_against_a_broken_target_with_actionable_messages(tmp_path: Path) -> None:
    with serve(Corrupting(create_app(), break_contract)) as url:
        results, output = run_replay(url, tmp_path, "--zammad-api-token", API_TOKEN)
    failed = {test_id: message for test_id, (outcome, message) in results.items() if outcome == "failure"}
    for encoding in ENCODINGS:
        assert f"munich-dial[{encoding}]" in failed
        assert f"wrong-token[{encoding}]" in failed
        assert f"inbound-missed[{encoding}]" in failed
        assert results[f"berlin-dial[{encoding}]"][0] == "passed"
    assert results["docs-json-inbound[json]"][0] == "passed"

    dial = failed["munich-dial[multipart]"]
    assert "munich-dial[multipart] step 1 'outbound newCall to 498912345678': body differs" in dial
    assert "POST http://127.0.0.1:" in dial and "/api/v1/cti/*** (multipart)" in dial
    assert 'expected: {"body": {"action": "dial", "caller_id": "498999998145"' in dial
    assert 'actual:   200 {"action": "dial", "caller_id": "498999998146"' in dial
    assert "reproduce: curl " in dial and "--form-string" in dial

    content_type = failed["wrong-token[json]"]
    assert "Content-Type is 'text/plain'" in content_type and "expected application/json" in content_type

    log = failed["inbound-missed[urlencoded]"]
    assert "inbound-missed[urlencoded]: caller log after the last step differs" in log
    call = r"call a \(zcti-check-inbound-missed-urlencoded-a-\w+\)"
    assert re.search(call + " field done: expected false, actual true", log)
    assert "GET http://127.0.0.1:" in log and "curl " in log

    assert DOCUMENTED_TOKEN not in output and API_TOKEN not in output
