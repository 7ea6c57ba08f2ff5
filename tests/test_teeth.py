"""The contract suites have teeth: ``zammad-cti check`` fails every broken target, and says why.

Each target of :mod:`broken_targets` gets one thing Zammad does wrong. For
each, ``zammad-cti check --target URL --suite fixtures,examples`` (the console
script, in a subprocess, as a user runs it) must exit 1, name the failing
test and scenario, show expected, actual and a curl command, and attribute
failures to every suite listed in :data:`CAUGHT_BY` (each of those suites
catches the break on its own). The faithful mock, served the same way, must
pass. The token must never show, in any spelling a wrong-token test derives
from it.

The runs are started together (one subprocess each) so the module stays
well under a minute on two cores.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import pytest
from broken_targets import BROKEN, TOKEN, serve, serve_faithful

from mock_server import MockServer

DOCUMENTED = Path(__file__).resolve().parents[1] / "fixtures" / "documented-config.json"
CHECK = Path(sys.executable).parent / ("zammad-cti.exe" if os.name == "nt" else "zammad-cti")
SUITES = "fixtures,examples"
RUN_TIMEOUT = 180  # seconds per check run; a hang fails the test instead of the whole session

# Broken target -> (suites that must each catch it, what the failure text must show of the break).
CAUGHT_BY: dict[str, tuple[tuple[str, ...], str]] = {
    "callerId-key": (("fixtures", "examples"), r"callerId"),
    "routing-ignored": (("fixtures", "examples"), r"498999998145|493023125877"),
    "default-ignored": (("fixtures", "examples"), r"496990009111"),
    "any-token": (("fixtures", "examples"), r"\b401\b"),
    "rejects-all-inbound": (("fixtures", "examples"), r"reject"),
    "ignores-urlencoded": (("fixtures", "examples"), r"urlencoded"),
    "ignores-multipart": (("fixtures", "examples"), r"multipart"),
    "user-array-crash": (("fixtures", "examples"), r"\b500\b"),
    "html-errors": (("fixtures", "examples"), r"text/html"),
    # schemathesis asks for JSON (Accept: application/json), so only a fixture scenario sends no Accept.
    "always-json-errors": (("fixtures",), r"expected text/html \(a request with no Accept header gets Zammad's HTML"),
    "reject-403": (("fixtures", "examples"), r"\b403\b"),
    "newcall-always-duplicate": (("fixtures", "examples"), r"This object already exists"),
}

JUNIT_TARGET = "any-token"  # the run whose failures show the most (wrong) tokens


def test_every_broken_target_is_listed() -> None:
    assert set(CAUGHT_BY) == set(BROKEN)


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CTI_TARGET", "CTI_TARGET_CONFIG", "ZAMMAD_API_TOKEN")}
    env["NO_COLOR"] = "1"
    return env


def run_check(*args: str, timeout: float = RUN_TIMEOUT) -> subprocess.CompletedProcess[str]:
    if not CHECK.exists():
        pytest.fail(f"{CHECK} not found: install the project (pip install -e '.[test]') first")
    return subprocess.run([str(CHECK), "check", *args], capture_output=True, text=True, timeout=timeout,
                          env=_environment(), stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def junit_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("junit") / "check.xml"


@pytest.fixture(scope="module")
def runs(junit_path: Path) -> Iterator[dict[str, subprocess.CompletedProcess[str]]]:
    """Every broken target and the faithful mock, checked at the same time."""
    with ExitStack() as stack:
        targets = {"faithful": stack.enter_context(serve_faithful())}
        for name, broken in BROKEN.items():
            targets[name] = stack.enter_context(serve(broken))

        def check(name: str) -> subprocess.CompletedProcess[str]:
            extra = ["--junit", str(junit_path)] if name == JUNIT_TARGET else []
            return run_check("--target", targets[name].endpoint_url, "--suite", SUITES, *extra)

        workers = min(len(targets), max(3, 2 * (os.cpu_count() or 1)))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = dict(zip(targets, pool.map(check, targets), strict=True))
        yield results


def _output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


def assert_no_token(text: str, where: str) -> None:
    """Neither the token nor the near misses a wrong-token test derives from it, in any case."""
    lowered = text.lower()
    for spelling in (TOKEN, TOKEN[:-1], TOKEN[1:]):
        assert spelling.lower() not in lowered, f"{where} shows the target's token (or most of it)"


def _failure_section(output: str) -> str:
    match = re.search(r"^FAILURES$(.*?)^suite\s+tests\s+passed", output, re.MULTILINE | re.DOTALL)
    assert match, f"no FAILURES section in the output:\n{output[-3000:]}"
    return match.group(1)


def test_the_faithful_mock_passes(runs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    result = runs["faithful"]
    output = _output(result)
    assert result.returncode == 0, output[-4000:]
    assert "PASSED" in output
    assert re.search(r"^fixtures\s+\d+\s+[1-9]", output, re.MULTILINE), "no fixtures test passed"
    assert re.search(r"^examples\s+\d+\s+[1-9]", output, re.MULTILINE), "no examples test passed"
    assert_no_token(output, "the faithful run's output")


@pytest.mark.parametrize("name", list(CAUGHT_BY))
def test_broken_target_fails_the_check(name: str, runs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    result = runs[name]
    output = _output(result)
    suites, evidence = CAUGHT_BY[name]
    assert result.returncode == 1, f"{name} ({BROKEN[name].breaks}) exited {result.returncode}:\n{output[-4000:]}"
    failures = _failure_section(output)
    # Named: the failing test, with its suite, and the scenario its text starts with.
    first = re.search(r"^(?:FAILED|ERROR) \[(\w+)\] (test_\w+\.py::\S+.*)\n  (\S.*)$", failures, re.MULTILINE)
    assert first, f"{name}: no failure names its test:\n{failures[:3000]}"
    assert first.group(3).strip(), f"{name}: the failure text is empty"
    for suite in suites:
        assert f"[{suite}]" in failures, (
            f"{name} ({BROKEN[name].breaks}) is not caught by the {suite} suite:\n{output[-4000:]}")
    assert "expected" in failures and "actual" in failures, f"{name}: no expected/actual in:\n{failures[:3000]}"
    assert re.search(r"\bcurl\b", failures), f"{name}: no curl command in:\n{failures[:3000]}"
    assert re.search(evidence, failures), f"{name}: the failures never show {evidence!r}:\n{failures[:3000]}"
    assert_no_token(output, f"the output of the {name} run")


def test_junit_report_is_written_without_the_token(junit_path: Path,
                                                    runs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    assert runs[JUNIT_TARGET].returncode == 1
    text = junit_path.read_text(encoding="utf-8")
    assert "<testsuite" in text and 'failures="0"' not in text
    assert "test_replay" in text and "test_schema" in text
    assert "***" in text  # the masked URL of the failures
    assert_no_token(text, "the JUnit report")


def test_unknown_suite_is_a_usage_error() -> None:
    result = run_check("--suite", "fixtures,nonsense", timeout=60)
    assert result.returncode == 2, _output(result)
    assert "nonsense" in result.stderr and "fixtures, examples, fuzz, stateful" in result.stderr


def test_target_that_is_no_cti_endpoint_is_a_usage_error() -> None:
    # The old documentation's path: the URL a user pastes from it still ends with the token.
    result = run_check("--target", f"http://127.0.0.1:9/api/v1/integration/cti/{TOKEN}", "--suite", "examples",
                       timeout=60)
    assert result.returncode == 2, _output(result)
    assert "not a CTI endpoint URL" in result.stderr
    assert_no_token(_output(result), "the usage error")


def test_token_is_masked_in_streamed_output_whatever_the_chunks() -> None:
    """pytest's output reaches the terminal in arbitrary chunks; no chunk boundary lets the token through."""
    from contract_tests.runner import Masker

    masker = Masker([TOKEN])
    text = f"POST /api/v1/cti/{TOKEN} ok\nwrong {TOKEN.swapcase()} / {TOKEN[:-1]} / {TOKEN}x\ntail {TOKEN[:5]}"
    expected = masker.mask(text)
    assert_no_token(expected, "the masked text")
    for size in (1, 2, 3, 5, 7, 11, len(TOKEN) - 1, len(TOKEN), 64):
        stream = masker.stream()
        streamed = "".join(stream.feed(text[i:i + size]) for i in range(0, len(text), size)) + stream.flush()
        assert streamed == expected, f"chunks of {size}"


@pytest.mark.parametrize(("serves", "assumed"), [("2021", "current"), ("current", "2021")])
def test_the_check_tells_zammad_versions_apart(serves: str, assumed: str) -> None:
    """A target of one version fails a check that assumes the other; told nothing, the probe finds it."""
    config = {**json.loads(DOCUMENTED.read_text(encoding="utf-8")), "zammad": serves}
    with MockServer({"CTI_CONFIG": config}) as mock:
        wrong = run_check("--target", mock.endpoint_url, "--suite", "fixtures", "--zammad", assumed)
        probed = run_check("--target", mock.endpoint_url, "--suite", "fixtures")
    assert wrong.returncode == 1, wrong.stdout[-2000:]
    assert "invalid-direction" in wrong.stdout or "direction" in wrong.stdout
    assert probed.returncode == 0, probed.stdout[-2000:]
    assert f"Zammad version assumed: {serves} " in probed.stdout and "detected" in probed.stdout
