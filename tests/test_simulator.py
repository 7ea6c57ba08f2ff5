"""The PBX simulator: scenario file, flow builder, engine, ``zammad-cti simulate`` and the Locust file.

The flows are checked twice: against ``openapi.yaml`` (every push is a valid
request in its encoding) and against the mock (every call gets Zammad's
answers and ends in the caller log with the done flag its outcome means).
"""

from __future__ import annotations

import copy
import csv
import importlib.util
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from agent import AGENT_AUTH
from broken_targets import BROKEN
from broken_targets import serve as serve_broken
from click.testing import CliRunner
from jsonschema import Draft202012Validator
from werkzeug.serving import make_server

from contract_tests.requests_builder import ENCODINGS, form_pairs
from contract_tests.target import Target
from mock_server import MockServer
from mock_server.cli import main
from mock_server.resources import documented_config_path, openapi_path
from mock_server.zammad.routing import blocked_entry, outbound_route
from pbx_simulator.simulation import (
    OUTCOMES,
    REJECT,
    SIM_CALL_ID_PREFIX,
    Answer,
    CallFlow,
    FlowBuilder,
    ScenarioFileError,
    Simulation,
    Step,
    default_scenario_path,
    format_report,
    load_scenario,
    play,
    scenario_from_mapping,
)

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTED_CONFIG_PATH = documented_config_path()
BIN = Path(sys.executable).parent
TOKEN = "sim-secret-7f3a91c2e5"
FAST = 1000.0  # ring and talk times in milliseconds
DESTINATIONS = ("munich", "berlin", "other")


@pytest.fixture(scope="module")
def scenario():
    return load_scenario()


@pytest.fixture(scope="module")
def documented_cti_config() -> dict[str, Any]:
    return json.loads(DOCUMENTED_CONFIG_PATH.read_text(encoding="utf-8"))["cti_config"]


@pytest.fixture(scope="module")
def mock() -> Iterator[MockServer]:
    """The faithful mock with a token of its own and room for every call in the caller log."""
    config = json.loads(DOCUMENTED_CONFIG_PATH.read_text(encoding="utf-8"))
    config["cti_config"]["view_limit"] = 1000
    with MockServer({"CTI_CONFIG": config, "TOKEN": TOKEN}) as server:
        yield server


def caller_log(server: MockServer) -> dict[str, dict[str, Any]]:
    entries = requests.get(f"{server.url}/api/v1/cti/log", headers=AGENT_AUTH, timeout=10).json()["list"]
    return {entry["call_id"]: entry for entry in entries}


_covering_seeds: dict[tuple[int, int], int] = {}


def covering_seed(scenario, calls: int) -> int:
    """The first seed whose first ``calls`` calls include every outcome, encoding and destination."""
    key = (id(scenario), calls)
    if key not in _covering_seeds:
        _covering_seeds[key] = _find_covering_seed(scenario, calls)
    return _covering_seeds[key]


def _find_covering_seed(scenario, calls: int) -> int:
    for seed in range(2000):
        flows = list(FlowBuilder(scenario, FAST, seed, run_id="probe").flows(calls))
        if ({f.outcome for f in flows} == set(OUTCOMES) and {f.encoding for f in flows} == set(ENCODINGS)
                and {f.destination for f in flows} >= set(DESTINATIONS)):
            return seed
    raise AssertionError(f"no seed below 2000 covers every outcome in {calls} calls: check the weights")


# --- the scenario file -------------------------------------------------------------------------


def test_default_scenario_expects_what_the_documented_configuration_answers(scenario, documented_cti_config):
    assert scenario.name == "default-mix" and scenario.data["config"] == DOCUMENTED_CONFIG_PATH.name
    for destination in scenario.destinations:
        for number in destination.numbers:
            caller_id, _row = outbound_route(documented_cti_config, number)
            assert caller_id == destination.expect_caller_id, f"{destination.name}: {number}"
    inbound = scenario.data["inbound"]
    assert all(blocked_entry(documented_cti_config, n) for n in inbound["blocked_callers"])
    assert not any(blocked_entry(documented_cti_config, n) for n in inbound["callers"])


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d["inbound"]["outcomes"].update(answerd=3),
     "inbound/outcomes: Additional properties are not allowed ('answerd' was unexpected)"),
    (lambda d: d["encodings"].pop("query"), "encodings: 'query' is a required property"),
    (lambda d: d["directions"].update({"in": -1}), "directions/in: -1 is less than the minimum of 0"),
    (lambda d: d["outbound"]["unanswered_causes"].update(hungUp=1),
     "outbound/unanswered_causes: 'hungUp' is not one of"),
    (lambda d: d["timing"].update(talk_seconds=[300, 30]), "timing/talk_seconds: [300, 30] is reversed"),
    (lambda d: d["inbound"].update(ring_group=[1, 9]), "inbound/ring_group: rings up to 9 agents but agents lists 4"),
    (lambda d: d["encodings"].update(json=0, urlencoded=0, multipart=0, query=0), "encodings: every weight is 0"),
    (lambda d: d["inbound"]["callers"].append("491715000000"), "inbound/callers: 491715000000 also in blocked_callers"),
])
def test_scenario_errors_name_the_place_and_the_problem(scenario, change, message):
    data = copy.deepcopy(dict(scenario.data))
    change(data)
    with pytest.raises(ScenarioFileError) as caught:
        scenario_from_mapping(data, Path("office.json"))
    assert str(caught.value).startswith("office.json is not a valid simulator scenario")
    assert message in str(caught.value)


def test_unreadable_scenario_files(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"name": "x",', encoding="utf-8")
    with pytest.raises(ScenarioFileError, match=r"broken.json: not valid JSON: .*line 1"):
        load_scenario(broken)
    with pytest.raises(ScenarioFileError, match="missing.json: cannot read"):
        load_scenario(tmp_path / "missing.json")


# --- the flow builder --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def request_validators() -> dict[str, Draft202012Validator]:
    spec = yaml.safe_load(openapi_path().read_text(encoding="utf-8"))

    def validator(name: str) -> Draft202012Validator:
        return Draft202012Validator({"$ref": f"#/components/schemas/{name}", "components": spec["components"]})

    return {"json": validator("CtiEventJson"), "form": validator("CtiEventForm")}


def as_sent(step: Step, encoding: str) -> dict[str, Any]:
    """The parameters as the encoding carries them: form fields flattened the Rails way."""
    if encoding in ("json", "query"):
        return dict(step.params)
    sent: dict[str, Any] = {}
    for key, value in form_pairs(step.params):
        if key.endswith("[]"):
            sent.setdefault(key, []).append(value)
        else:
            sent[key] = value
    return sent


def test_every_push_is_a_valid_request_for_its_encoding(scenario, request_validators):
    flows = list(FlowBuilder(scenario, seed=11).flows(400))
    assert {f.outcome for f in flows} == set(OUTCOMES) and {f.encoding for f in flows} == set(ENCODINGS)
    ring_groups = 0
    for flow in flows:
        for step in flow.steps:
            sent = as_sent(step, flow.encoding)
            validator = request_validators["json" if flow.encoding in ("json", "query") else "form"]
            errors = [e.message for e in validator.iter_errors(sent)]
            assert not errors, f"{flow.outcome} [{flow.encoding}] {step.event}: {errors} in {sent}"
            ring_groups += isinstance(sent.get("user"), list) or "user[]" in sent
    assert ring_groups > 0, "no newCall rang several agents (user array / user[])"


def test_flows_follow_the_call_life_cycle(scenario):
    builder = FlowBuilder(scenario, seed=5)
    flows = list(builder.flows(400))
    assert len({f.call_id for f in flows}) == len(flows)
    for flow in flows:
        events = [step.event for step in flow.steps]
        assert flow.call_id.startswith(f"{SIM_CALL_ID_PREFIX}{builder.run_id}-")
        assert events[0] == "newCall" and events[-1] == "hangup" and set(events) <= {"newCall", "answer", "hangup"}
        assert {step.params["callId"] for step in flow.steps} == {flow.call_id}
        assert {step.params["direction"] for step in flow.steps} == {flow.direction}
        assert flow.steps[-1].params["cause"] == flow.cause
        answer = next((step for step in flow.steps if step.event == "answer"), None)
        new_call = flow.steps[0]
        if flow.direction == "out":
            dial = {"action": "dial", "caller_id": flow.expect_caller_id, "number": new_call.params["to"]}
            assert new_call.expect == dial and flow.expect_done
            assert (answer is not None) == (flow.outcome == "outbound-answered")
            continue
        assert new_call.expect == (REJECT if flow.outcome == "blocked" else {})
        expected = {
            "answered": ("normalClearing", True, True),
            "voicemail": ("normalClearing", True, False),
            "forwarded": ("forwarded", False, True),
            "busy": ("busy", False, False),
            "blocked": ("busy", False, False),
            "missed": (flow.cause, False, False),
        }[flow.outcome]
        assert (flow.cause, answer is not None, flow.expect_done) == expected, flow.outcome
        if flow.outcome == "missed":
            assert flow.cause in ("noAnswer", "cancel")
        if flow.outcome == "voicemail":
            assert answer.params["user"] == "voicemail"
        if flow.outcome == "answered":
            ringing = new_call.params["user"]
            assert answer.params["user"] in (ringing if isinstance(ringing, list) else [ringing])
        if flow.outcome == "blocked":
            assert new_call.params["from"] == "491715000000" and flow.steps[1].wait == 0


def test_seed_repeats_the_calls_and_speed_divides_the_times(scenario):
    def strip(flow: CallFlow) -> list[tuple[Any, ...]]:
        return [(s.event, {k: v for k, v in s.params.items() if k != "callId"}, s.wait) for s in flow.steps]

    first, again = FlowBuilder(scenario, seed=42), FlowBuilder(scenario, seed=42)
    assert first.run_id != again.run_id
    assert [strip(f) for f in first.flows(50)] == [strip(f) for f in again.flows(50)]
    assert [strip(f) for f in first.flows(50)] != [strip(f) for f in FlowBuilder(scenario, seed=43).flows(50)]
    slow, fast = FlowBuilder(scenario, 1, seed=42), FlowBuilder(scenario, 100, seed=42)
    for a, b in zip(slow.flows(50), fast.flows(50), strict=True):
        assert [s.wait / 100 for s in a.steps] == pytest.approx([s.wait for s in b.steps])
    with pytest.raises(ValueError, match="speed"):
        FlowBuilder(scenario, 0)


# --- playing a flow ----------------------------------------------------------------------------


def flow_of(scenario, outcome: str) -> CallFlow:
    return next(f for f in FlowBuilder(scenario, FAST, seed=3).flows(500) if f.outcome == outcome)


def fake_target(answer_new_call: dict[str, Any]):
    sent: list[Step] = []

    def send(flow: CallFlow, step: Step) -> Answer:
        sent.append(step)
        return Answer(200, answer_new_call if step.event == "newCall" else {})

    return sent, send


def test_a_reject_makes_the_pbx_hang_up_busy_at_once(scenario):
    waits: list[float] = []
    sent, send = fake_target(REJECT)
    result = play(flow_of(scenario, "answered"), send, waits.append)
    assert [(s.event, s.params.get("cause")) for s in sent] == [("newCall", None), ("hangup", "busy")]
    assert waits == [] and result.rejected and not result.as_expected
    assert result.steps[0].mismatch == "expected 200 {}, got 200 reject busy"

    sent, send = fake_target(REJECT)
    result = play(flow_of(scenario, "blocked"), send, waits.append)
    assert [s.event for s in sent] == ["newCall", "hangup"] and result.as_expected and result.rejected


def test_a_dial_answer_gives_the_caller_id_the_pbx_dials_out_with(scenario):
    flow = flow_of(scenario, "outbound-answered")
    sent, send = fake_target({"action": "dial", "caller_id": "4912345", "number": flow.steps[0].params["to"]})
    result = play(flow, send, lambda seconds: None)
    assert result.dialed_caller_id == "4912345" and [s.event for s in sent] == ["newCall", "answer", "hangup"]
    assert result.steps[0].mismatch == f"expected 200 dial {flow.expect_caller_id}, got 200 dial 4912345"


# --- the engine against the mock ---------------------------------------------------------------


def test_a_bounded_run_gets_zammads_answers_and_leaves_every_call_hung_up(scenario, mock):
    seed = covering_seed(scenario, 40)
    simulation = Simulation(Target.from_url(mock.endpoint_url), scenario, calls=40, concurrency=8, speed=FAST,
                            seed=seed)
    report = simulation.run()
    summary = report.to_dict()

    assert report.ok, format_report(report)
    assert summary["calls_done"] == 40 and summary["errors"] == {} and summary["mismatches"] == []
    assert set(summary["outcomes"]) == set(OUTCOMES)
    assert all(counts["calls"] == counts["as_expected"] for counts in summary["outcomes"].values())
    assert {"200 {}", "200 reject busy", "200 dial 498999998145", "200 dial 493023125877",
            "200 dial 496990009111"} == set(summary["answers"])
    assert summary["answers"]["200 reject busy"] == summary["outcomes"]["blocked"]["calls"]
    assert set(summary["latency_ms"]) == {"newCall", "answer", "hangup", "all"}
    assert TOKEN not in json.dumps(summary) and TOKEN not in format_report(report)

    log = caller_log(mock)
    builder = FlowBuilder(scenario, FAST, seed=report.seed, run_id=report.run_id)
    for flow in builder.flows(40):
        entry = log.get(flow.call_id)
        assert entry is not None, f"{flow.call_id} ({flow.outcome}) is not in the caller log"
        expected = flow.expected_log_entry()
        assert {key: entry[key] for key in expected} == expected, flow.outcome


def test_a_duration_cap_stops_new_calls_and_hangs_up_the_ones_in_flight(scenario, mock):
    target = Target.from_url(mock.endpoint_url)
    report = Simulation(target, scenario, concurrency=4, speed=20, seed=1, duration=0.5).run()
    assert report.stopped_early == "duration" and report.elapsed < 5
    assert report.calls_started == report.calls_done >= 4 and report.ok, format_report(report)
    log = caller_log(mock)
    for flow in FlowBuilder(scenario, 20, seed=1, run_id=report.run_id).flows(report.calls_done):
        assert log[flow.call_id]["state"] == "hangup"


def test_an_error_inside_the_simulator_fails_the_run_instead_of_shrinking_it(scenario, mock):
    def progress(report):
        raise RuntimeError(f"display broke while showing {mock.endpoint_url}")

    report = Simulation(Target.from_url(mock.endpoint_url), scenario, calls=20, concurrency=2, speed=FAST,
                        progress=progress).run()
    assert not report.ok and report.stopped_early == "error"
    assert list(report.errors) == [f"simulator: RuntimeError: display broke while showing {mock.url}/api/v1/cti/***"]


@pytest.mark.parametrize(("name", "wrong"), [pytest.param(name, wrong, id=name) for name, wrong in [
    ("callerId-key", "expected 200 dial 498999998145, got 200 dial without caller_id (keys action, callerId, number)"),
    ("routing-ignored", "expected 200 dial 498999998145, got 200 dial 496990009111"),
    ("rejects-all-inbound", "expected 200 {}, got 200 reject busy"),
    ("ignores-multipart", "got 422 error Invalid 'direction'!"),
    ("reject-403", "expected 200 reject busy, got 403 reject busy"),
]])
def test_a_target_that_gets_zammad_wrong_fails_the_simulation(scenario, name, wrong):
    """Targets of tests/broken_targets.py, each wrong in one way Zammad is not."""
    with serve_broken(BROKEN[name]) as served:
        report = Simulation(Target.from_url(served.endpoint_url), scenario, calls=40, concurrency=8, speed=FAST,
                            seed=covering_seed(scenario, 40)).run()
    assert not report.ok
    messages = [m.message for m in report.mismatches]
    assert any(wrong in message for message in messages), "\n".join(messages)


# --- zammad-cti simulate -----------------------------------------------------------------------


def simulate_process(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CTI_TARGET"}
    return subprocess.run([str(BIN / "zammad-cti"), "simulate", *args], capture_output=True, text=True,
                          timeout=60, env=env, check=False)


def test_simulate_prints_counts_and_exits_0_against_the_mock(mock):
    done = simulate_process("--target", mock.endpoint_url, "--calls", "24", "--concurrency", "6",
                            "--speed", str(FAST), "--seed", "9")
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert TOKEN not in output and f"{mock.url}/api/v1/cti/***" in output
    assert "Outcome" in done.stdout and "Answers received" in done.stdout and "200 {}" in done.stdout
    assert "Latency (ms)" in done.stdout and "Errors: none" in done.stdout
    assert "OK: every call got the answers Zammad gives." in done.stdout
    assert "24 calls" in done.stdout and "24/24 calls done" in done.stderr


def test_simulate_json_report(mock):
    done = simulate_process("--target", mock.endpoint_url, "--calls", "10", "--speed", str(FAST), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is True and report["calls_done"] == 10 and report["target"].endswith("/api/v1/cti/***")
    assert sum(counts["calls"] for counts in report["outcomes"].values()) == 10
    assert TOKEN not in done.stdout + done.stderr


@pytest.fixture
def broken_target() -> Iterator[str]:
    """A server that answers every request with a 500 HTML page, as a crashing Rails app does."""

    def app(environ, start_response):
        start_response("500 Internal Server Error", [("Content-Type", "text/html; charset=utf-8")])
        return [b"<html><body><h1>We're sorry, but something went wrong.</h1></body></html>"]

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/api/v1/cti/{TOKEN}"
    server.shutdown()
    server.server_close()


def test_simulate_exits_1_and_lists_mismatches_against_a_broken_target(broken_target):
    done = simulate_process("--target", broken_target, "--calls", "6", "--concurrency", "3", "--speed", str(FAST))
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert TOKEN not in output
    assert "500 not JSON (text/html)" in done.stdout and "newCall: status 500" in done.stdout
    assert "Mismatches: 6 of 6 calls" in done.stdout and "got 500 not JSON (text/html)" in done.stdout
    assert "curl --silent" in done.stdout and "/api/v1/cti/***" in done.stdout
    assert "FAILED" in done.stdout


@pytest.mark.parametrize(("args", "message"), [
    ([], "Missing option '--target'"),
    (["--target", "http://127.0.0.1:1/somewhere"], "is not a CTI endpoint URL"),
    (["--target", "http://127.0.0.1:1/api/v1/cti/x", "--speed", "0"], "--speed"),
])
def test_simulate_usage_errors(args, message):
    result = CliRunner().invoke(main, ["simulate", *args], env={"CTI_TARGET": None})
    assert result.exit_code == 2 and message in result.output


def test_simulate_rejects_an_invalid_scenario_file(tmp_path):
    data = json.loads(default_scenario_path().read_text(encoding="utf-8"))
    data["timing"]["ring_seconds"] = [30, 3]
    bad = tmp_path / "office.json"
    bad.write_text(json.dumps(data), encoding="utf-8")
    result = CliRunner().invoke(main, ["simulate", "--target", "http://127.0.0.1:1/api/v1/cti/x",
                                       "--scenario", str(bad)])
    assert result.exit_code == 2 and "timing/ring_seconds: [30, 3] is reversed" in result.output


# --- Locust ------------------------------------------------------------------------------------


@pytest.mark.skipif(importlib.util.find_spec("locust") is None, reason="locust is not installed")
def test_a_short_headless_locust_run_has_no_failures(mock, tmp_path):
    command = [sys.executable, "-m", "locust", "-f", str(ROOT / "benchmarks" / "locustfile.py"), "--headless",
               "-u", "5", "-r", "5", "-t", "4s", "--stop-timeout", "5s", "--only-summary",
               "--csv", str(tmp_path / "run"), "--cti-speed", "200", "--cti-seed", "1"]
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("CTI_", "LOCUST_"))},
           "CTI_TARGET": mock.endpoint_url}
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    with open(tmp_path / "run_stats.csv", newline="", encoding="utf-8") as stats:
        rows = {row["Name"]: row for row in csv.DictReader(stats)}
    assert {"newCall", "answer", "hangup"} <= set(rows) <= {"newCall", "answer", "hangup", "Aggregated"}
    assert int(rows["Aggregated"]["Request Count"]) > 0 and int(rows["Aggregated"]["Failure Count"]) == 0
    written = "".join(path.read_text(encoding="utf-8") for path in tmp_path.glob("run_*.csv"))
    assert TOKEN not in output and TOKEN not in written
