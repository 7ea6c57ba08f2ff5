"""Fixture replay: every scenario under ``fixtures/scenarios``, in every encoding it lists.

Each (scenario, encoding) is one test, e.g. ``munich-dial[multipart]``. Its
steps are sent in order over one shared HTTP session; the first answer that
differs from the scenario (status, Content-Type, body) fails the test with the
scenario and step, the request, the masked URL, expected and actual, and a
curl command. The caller log is then compared field by field where the run
can read it: on the built-in mock, or on a real Zammad when an agent's API
token was given (``--zammad-api-token``).

Scenarios that assume a configuration the target does not run are skipped,
with a reason naming that configuration.

Run: ``pytest --pyargs contract_tests.test_replay [--target URL]``.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from contract_tests.context import ContractContext, caller_log_headers, note_once
from contract_tests.failures import ContractFailure, contract_failure, response_body
from contract_tests.needs import NeedUnmet
from contract_tests.requests_builder import request_kwargs
from contract_tests.scenarios import (
    Scenario,
    ScenarioRun,
    Step,
    load_scenarios,
    same_json,
)
from contract_tests.target import Target
from mock_server import load_config

pytestmark = pytest.mark.contract_fixtures

JSON_MEDIA_TYPE = "application/json"

SCENARIOS = load_scenarios()


def _cases() -> list[Any]:
    return [
        pytest.param(scenario, encoding, id=f"{scenario.name}[{encoding}]")
        for scenario in SCENARIOS
        for encoding in scenario.encodings
    ]


@pytest.fixture(scope="module")
def replayer(contract_context: ContractContext) -> Any:
    """Sends scenarios over keep-alive sessions (one per thread) for the whole module."""
    replayer = Replayer(contract_context)
    yield replayer
    replayer.close()


@pytest.fixture(scope="module")
def replayed(request: pytest.FixtureRequest, replayer: Replayer) -> dict[tuple[str, str], BaseException | None]:
    """Every selected (scenario, encoding) replayed up front, ``--concurrency`` at a time: its outcome.

    Scenarios are independent (call IDs of their own), and against a slow
    target waiting for each answer in turn is what makes a check slow. Each
    test then reports its own scenario's outcome.
    """
    cases = [(item.callspec.params["scenario"], item.callspec.params["encoding"])
             for item in request.session.items
             if getattr(item, "function", None) is test_scenario and hasattr(item, "callspec")]

    def outcome(case: tuple[Scenario, str]) -> BaseException | None:
        try:
            replayer.replay(*case)
        except BaseException as exc:  # noqa: B036 - a skip or failure, re-raised by its own test
            if isinstance(exc, KeyboardInterrupt):
                raise
            return exc
        return None

    # Scenarios are independent (call IDs of their own); each sends its steps in order.
    pool = ThreadPoolExecutor(max_workers=replayer.context.concurrency, thread_name_prefix="replay")
    try:
        results = list(pool.map(outcome, cases))
    finally:
        # On Ctrl-C, start no further scenario: only those in flight finish their current push.
        pool.shutdown(wait=True, cancel_futures=True)
    return {(scenario.name, encoding): result for (scenario, encoding), result in zip(cases, results, strict=True)}


@pytest.mark.parametrize(("scenario", "encoding"), _cases())
def test_scenario(scenario: Scenario, encoding: str, replayed: dict[tuple[str, str], BaseException | None]) -> None:
    __tracebackhide__ = True
    problem = replayed[(scenario.name, encoding)]
    if problem is not None:
        raise problem


class Replayer:
    """Replays scenarios against the run's target (or the one running a scenario's configuration).

    Its repr shows the masked URL only: pytest prints test arguments in
    tracebacks, and the target's token must never appear there.
    """

    def __init__(self, context: ContractContext) -> None:
        self.context = context
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()
        self._targets: dict[Path, Target | None] = {}

    def __repr__(self) -> str:
        return f"<Replayer {self.context.describe()}>"

    @property
    def http(self) -> requests.Session:
        """This thread's keep-alive session (a requests.Session is not meant to be shared by threads)."""
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = self.context.session()
            with self._lock:
                self._sessions.append(session)
        return session

    def close(self) -> None:
        with self._lock:
            for session in self._sessions:
                session.close()
            self._sessions.clear()

    def _target_for(self, config_path: Path) -> Target | None:
        with self._lock:
            if config_path not in self._targets:
                self._targets[config_path] = self.context.target_for(config_path)
            return self._targets[config_path]

    def replay(self, scenario: Scenario, encoding: str) -> None:
        __tracebackhide__ = True
        if scenario.fits_any_config:
            # Expectations follow from the configuration the target runs, whichever it is.
            target, config = self.context.target, self.context.config
        else:
            target = self._target_for(scenario.config_path)
            if target is None:
                # The same text for every such scenario, so the summary counts them on one line.
                pytest.skip(
                    f"assumes configuration {scenario.config_path.name}; the target is only known "
                    f"to run {self.context.config_path.name} (--target-config), and only its admin can change that"
                )
            config = load_config(scenario.config_path)
        try:
            bound = scenario.bind(config, self.context.profile)
        except NeedUnmet as exc:
            pytest.skip(f"{exc}; {config_name(self.context, scenario)} lacks it")
        run = bound.for_run(encoding)
        http = self.http
        log = CallerLogReader(self.context, target, http) if self.can_read_log(target) else None
        if log is None:
            note_once("caller-log checks skipped: a real Zammad serves GET /api/v1/cti/log to agents only "
                      "(403 without --zammad-api-token); pass an agent's API token to compare the caller log")
        elif CallerLogReader.refused is not None:
            log = None  # the caller log refused the API token once: said once, not checked again
        for number, step in enumerate(run.steps, 1):
            where = f"{run.label} step {number} '{step.name}'"
            send_step(http, target, run, step, where, self.context.timeout)
            if step.caller_log and log is not None and not log.check(run, step.caller_log,
                                                                     f"{where}: caller log after this step"):
                log = None
        if bound.caller_log and log is not None:
            log.check(run, bound.caller_log, f"{run.label}: caller log after the last step")

    def can_read_log(self, target: Target) -> bool:
        """The built-in mock serves its caller log freely; a real Zammad wants an agent's API token."""
        return target.builtin_mock or bool(self.context.api_token)


def config_name(context: ContractContext, scenario: Scenario) -> str:
    if scenario.fits_any_config:
        return f"{context.config_path.name} (--target-config)"
    return scenario.config_path.name


# --- one push -----------------------------------------------------------------------


def send_step(http: requests.Session, target: Target, run: ScenarioRun, step: Step, where: str,
              timeout: float) -> None:
    """Send ``step`` and raise a :class:`ContractFailure` unless the answer is the expected one."""
    __tracebackhide__ = True
    token = target.token if step.token == "valid" else f"wrong-{secrets.token_hex(8)}"

    def failure(problem: str, status: int | None, body: Any) -> ContractFailure:
        return contract_failure(
            scenario=where, problem=problem, target=target, params=step.request, encoding=run.encoding,
            expected=step.expect.describe(), actual_status=status, actual_body=body, token=token,
        )

    try:
        kwargs = request_kwargs(step.request, run.encoding)
        response = http.post(target.endpoint_url_with(token), timeout=timeout, **kwargs)
    except requests.RequestException as exc:
        # requests puts the full URL, token included, into its messages.
        raise failure(f"no answer: {type(exc).__name__}: {target.mask(str(exc))}", None, None) from None

    body = response_body(response)
    content_type = response.headers.get("Content-Type", "")
    if content_type.split(";")[0].strip().lower() != JSON_MEDIA_TYPE:
        raise failure(f"Content-Type is {content_type!r}, expected {JSON_MEDIA_TYPE} (Zammad answers JSON only)",
                      response.status_code, body)
    problem = step.expect.mismatch(response.status_code, body)
    if problem is not None:
        raise failure(problem, response.status_code, body)


# --- the caller log -------------------------------------------------------------------


class CallerLogReader:
    """Reads ``GET /api/v1/cti/log`` and compares entries with a scenario's expectations."""

    refused: str | None = None  # why a real Zammad's caller log refused the run's API token, once known

    def __init__(self, context: ContractContext, target: Target, http: requests.Session) -> None:
        self.context = context
        self.target = target
        self.http = http

    def _curl(self) -> str:
        header = " --header 'Authorization: Token token=$ZAMMAD_API_TOKEN'" if self.context.api_token else ""
        return f"curl --silent --show-error{header} {self.target.caller_log_url}"

    def _fail(self, title: str, lines: list[str]) -> ContractFailure:
        head = [title, f"  caller log: GET {self.target.caller_log_url}"]
        text = "\n".join([*head, *lines, f"  reproduce: {self._curl()}"])
        if self.context.api_token:
            text = text.replace(self.context.api_token, "***")
        return ContractFailure(self.target.mask(text))

    def entries(self, where: str) -> list[Mapping[str, Any]] | None:
        """The newest entries; None when a real Zammad refuses the caller log (noted once for the summary)."""
        __tracebackhide__ = True
        try:
            headers = caller_log_headers(self.context)
            response = self.http.get(self.target.caller_log_url, headers=headers, timeout=self.context.timeout)
        except requests.RequestException as exc:
            actual = f"  actual:   {type(exc).__name__}: {exc}"
            raise self._fail(f"{where}: cannot read the caller log", [actual]) from None
        body = response_body(response)
        if response.status_code in (401, 403) and not self.target.builtin_mock:
            CallerLogReader.refused = (
                f"the caller log ({self.target.caller_log_url}) answered {response.status_code} to "
                + ("the --zammad-api-token: the token lacks an agent's permission (cti.agent)"
                   if self.context.api_token else "a request without --zammad-api-token")
                + "; caller-log checks skipped"
            )
            note_once(CallerLogReader.refused)
            return None
        entries = body.get("list") if isinstance(body, dict) else None
        if response.status_code != 200 or not isinstance(entries, list):
            raise self._fail(
                f"{where}: cannot read the caller log",
                ['  expected: 200 {"list": [...], "assets": {...}}',
                 f"  actual:   {response.status_code} {_show(body)}"],
            )
        return entries

    def check(self, run: ScenarioRun, expected: Mapping[str, Any], where: str) -> bool:
        """Raise a failure when the log differs; False when the log could not be read (refused)."""
        __tracebackhide__ = True
        entries = self.entries(where)
        if entries is None:
            return False
        by_call_id: dict[Any, list[Any]] = {}
        for entry in entries:
            if isinstance(entry, dict):
                by_call_id.setdefault(entry.get("call_id"), []).append(entry)
        problems: list[str] = []
        for alias, fields in expected.items():
            call = f"call {alias} ({run.call_ids[alias]})"
            logged = by_call_id.get(run.call_ids[alias], [])
            if len(logged) > 1:  # Zammad keeps one caller-log entry per callId
                problems.append(f"  {call}: expected one entry, actual: {len(logged)}: {_show(logged)}")
                continue
            entry = logged[0] if logged else None
            if fields is None:
                if entry is not None:
                    problems.append(f"  {call}: expected no entry (the push was refused), actual: {_show(entry)}")
                continue
            if entry is None:
                problems.append(f"  {call}: expected an entry, actual: none among the {len(entries)} newest")
                continue
            for field, value in fields.items():
                actual = entry.get(field, _MISSING)
                if actual is _MISSING or not same_json(actual, value):
                    problems.append(f"  {call} field {field}: expected {_show(value)}, actual {_show(actual)}")
        if problems:
            raise self._fail(f"{where} differs", problems)
        return True


_MISSING = object()


def _show(value: Any) -> str:
    if value is _MISSING:
        return "(no such field)"
    return json.dumps(value, ensure_ascii=False, sort_keys=True)
