"""`zammad-cti check` against a target with a configuration of its own (issue 11).

A mock serving fixtures/staging-example-config.json (another routing table,
block list and contacts than the documented one) stands in for a staging
Zammad. With --target-config naming that file the scenarios that fit any
configuration run and pass; without it the preflight says in one line that
the configuration differs. Nothing listening and a wrong token are one line
each, exit 4, in seconds.
"""

from __future__ import annotations

import io
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests
from zammad_answers import (
    ALREADY_EXISTS,
    FEATURE_DISABLED,
    INVALID_DIRECTION,
    INVALID_TOKEN,
    NOT_CONFIGURED,
    ZAMMAD_2021,
)

from contract_tests import runner
from contract_tests.needs import ERROR_CODES, NeedUnmet, expected_error, number_for_dest, resolve_needs
from contract_tests.runner import CheckOptions, Masker, RunResults, SuiteStats, _report, _table, percentile
from contract_tests.scenarios import load_scenarios
from mock_server import MockServer, load_config
from mock_server.zammad import errors
from mock_server.zammad.routing import outbound_route

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"
STAGING = FIXTURES / "staging-example-config.json"
DOCUMENTED = FIXTURES / "documented-config.json"
CHECK = Path(sys.executable).with_name("zammad-cti")
TIMEOUT = 300


def run_check(*args: str, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CTI_TARGET", "CTI_TARGET_CONFIG", "ZAMMAD_API_TOKEN")}
    env["NO_COLOR"] = "1"
    return subprocess.run([str(CHECK), "check", *args], capture_output=True, text=True, timeout=timeout, env=env,
                          stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def staging() -> Any:
    with MockServer({"CTI_CONFIG": str(STAGING)}) as mock:
        yield mock


STAGING_AGENT = {"Authorization": "Token token=staging-agent-api-token-41c0e2"}  # the staging configuration's agent


def _fixtures_row(output: str) -> list[int]:
    match = re.search(r"^fixtures\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", output, re.MULTILINE)
    assert match, output[-3000:]
    return [int(group) for group in match.groups()]


# --- the Done-when of the issue ----------------------------------------------------------------------


def test_staging_configuration_passes_with_its_target_config(staging: Any, tmp_path: Path) -> None:
    created = tmp_path / "created.txt"
    result = run_check("--target", staging.endpoint_url, "--target-config", str(STAGING), "--suite", "fixtures",
                       "--created-calls", str(created))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    tests, passed, failed, _skipped = _fixtures_row(output)
    assert tests >= 40 and passed >= 40 and failed == 0, output[-3000:]
    assert "assumes: configuration staging-example-config.json" in output
    ids = created.read_text(encoding="utf-8").split()
    assert len(ids) >= 40 and all(call_id.startswith("zcti-check-") for call_id in ids)
    # The calls are really in the target's log: the check lists what it created.
    logged = {entry["call_id"] for entry in requests.get(f"{staging.url}/api/v1/cti/log", timeout=10,
                                                     headers=STAGING_AGENT).json()["list"]}
    assert set(ids[-20:]) & logged


def test_staging_configuration_without_target_config_is_one_line(staging: Any) -> None:
    result = run_check("--target", staging.endpoint_url, "--suite", "fixtures")
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    (line,) = [line for line in output.splitlines() if line.startswith("preflight:")]
    assert "another configuration than --target-config documented-config.json" in line
    assert "494088880999" in line and "498999998145" in line  # what it answered, what was assumed
    assert "FAILURES" not in output and len(output.splitlines()) < 10


def test_nothing_listening_is_exit_4_in_a_few_lines() -> None:
    """The time it takes (under 10 s) is measured by benchmarks/check_setup.py, not asserted here."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    result = run_check("--target", f"http://127.0.0.1:{port}/api/v1/cti/some-token-1234567")
    output = result.stdout + result.stderr
    assert result.returncode == 4, output
    assert len(output.splitlines()) < 15
    assert "connection refused" in output and "some-token-1234567" not in output


def test_wrong_token_is_one_line_naming_the_token(staging: Any) -> None:
    url = staging.endpoint_url.rsplit("/", 1)[0] + "/not-the-token-0000"
    result = run_check("--target", url, "--target-config", str(STAGING))
    output = result.stdout + result.stderr
    assert result.returncode == 4, output
    assert len(output.splitlines()) < 30
    assert "the token in the URL is wrong" in output and "not-the-token-0000" not in output


# --- needs and error codes -----------------------------------------------------------------------------


def test_needs_follow_from_the_configuration() -> None:
    staging = load_config(STAGING)
    resolved = resolve_needs({"first": "outbound-first-row", "last": "outbound-last-row",
                              "none": "outbound-unrouted", "blocked": "blocked-caller",
                              "known": "known-contact", "caller": "unblocked-caller"}, staging)
    assert resolved["first"] == {"number": "494012345678", "caller_id": "494088880100"}
    assert resolved["last"] == {"number": "4312345678", "caller_id": "43155550300"}
    assert outbound_route(staging.cti_config, resolved["none"]["number"])[1] is None  # the default applies
    assert resolved["none"]["caller_id"] == "494088880999"
    assert resolved["blocked"] == {"number": "4915799990000"}
    assert resolved["known"] == {"number": "494088880123", "name": "Jana Novak"}
    documented = resolve_needs({"first": "outbound-first-row", "known": "known-contact"}, load_config(DOCUMENTED))
    assert documented["first"]["caller_id"] == "498999998145"
    assert documented["known"]["name"] == "Christopher Miller"


def test_a_configuration_that_lacks_a_need_says_what() -> None:
    bare = load_config(STAGING)
    bare.cti_config["inbound"]["block_caller_ids"] = []
    with pytest.raises(NeedUnmet, match="a caller on the block list"):
        resolve_needs({"caller": "blocked-caller"}, bare)
    assert number_for_dest("4930*") == "493012345678"


def test_error_codes_resolve_to_the_versions_texts() -> None:
    assert expected_error("invalid-direction") == (422, INVALID_DIRECTION, None)
    assert expected_error("duplicate-call") == (500, ALREADY_EXISTS, None)
    assert expected_error("invalid-direction", "2021") == (422, ZAMMAD_2021["INVALID_DIRECTION"], None)
    assert expected_error("duplicate-call", "2021") == (500, ZAMMAD_2021["ALREADY_EXISTS"], None)
    status, body, matches = expected_error("unknown-call")
    assert (status, body) == (500, None) and re.fullmatch(matches["error"], errors.error_id_message())
    assert {"feature-disabled", "not-configured", "invalid-token", "invalid-direction", "duplicate-call",
            "unknown-call", "unknown-event", "missing-column"} <= set(ERROR_CODES)


def test_scenario_files_name_no_error_text() -> None:
    texts = [FEATURE_DISABLED["error"], NOT_CONFIGURED["error"], INVALID_TOKEN["error"], ALREADY_EXISTS["error"],
             '"error": "' + INVALID_DIRECTION["error"], "Error ID",
             *(body["error"] for body in ZAMMAD_2021.values())]
    for path in sorted((FIXTURES / "scenarios").glob("*.json")):
        steps = path.read_text(encoding="utf-8").split('"steps"', 1)[1]  # descriptions may quote them
        assert not [text for text in texts if text in steps], path.name


def test_enough_scenarios_fit_any_configuration() -> None:
    fitting = [s for s in load_scenarios() if s.fits_any_config]
    assert sum(len(s.encodings) for s in fitting) >= 40
    for scenario in fitting:  # each binds to both configurations
        for config in (load_config(STAGING), load_config(DOCUMENTED)):
            bound = scenario.bind(config)
            assert "{need:" not in repr(bound.steps) + repr(bound.caller_log), scenario.name


def test_rule_derived_answers_differ_between_configurations() -> None:
    (scenario,) = [s for s in load_scenarios() if s.name == "any-outbound-first-row"]
    staging = scenario.bind(load_config(STAGING)).steps[0].expect.body
    documented = scenario.bind(load_config(DOCUMENTED)).steps[0].expect.body
    assert staging == {"action": "dial", "caller_id": "494088880100", "number": "494012345678"}
    assert documented == {"action": "dial", "caller_id": "498999998145", "number": "498912345678"}


# --- verdicts and the summary ------------------------------------------------------------------------


def _results(*outcomes: tuple[str, str]) -> RunResults:
    results = RunResults(session={"kind": "session", "exitstatus": 0})
    for number, (suite, outcome) in enumerate(outcomes):
        results.tests.append(runner.TestResult(f"t{number}", suite, outcome, 0.01, skip_reason="no reason here"))
    return results


def test_a_selected_suite_that_ran_nothing_is_exit_3() -> None:
    options = CheckOptions(suites=["fixtures", "examples"])
    out = io.StringIO()
    results = _results(("fixtures", "passed"), ("examples", "skipped"))
    code = _report(options, results, 0, "", Masker([]), 1.0, False, out)
    assert code == 3
    text = out.getvalue()
    assert "every test of suite 'examples' was skipped: no reason here" in text
    assert "NOTHING TESTED: suite(s) examples ran no test" in text
    out = io.StringIO()
    assert _report(options, _results(("fixtures", "passed"), ("examples", "passed")), 0, "", Masker([]), 1.0,
                   False, out) == 0


def test_summary_shows_answer_time_percentiles() -> None:
    stats = {"fixtures": SuiteStats(tests=1, passed=1)}
    table = _table(stats, SuiteStats(tests=1, passed=1), {"fixtures": [0.001 * n for n in range(1, 101)]})
    row = next(line for line in table.splitlines() if line.startswith("fixtures"))
    assert row.split()[-3:] == ["50ms", "95ms", "100ms"]
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0
