"""The fixture replay engine: send a scenario's steps to the target and compare every answer.

:class:`Replayer` replays one (scenario, encoding) pair; the first answer
that differs from the scenario (status, Content-Type, body) raises a
:class:`ContractFailure` with the scenario and step, the request, the masked
URL, expected and actual, and a curl command; the caller log is compared
where the run can read it. The tests are in :mod:`contract_tests.test_replay`;
:mod:`contract_tests.ahead` runs the same engine in a process of its own.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from mock_server import load_config

from .context import ContractContext, caller_log_headers, note_once
from .failures import ContractFailure, contract_failure, response_body
from .needs import NeedUnmet
from .requests_builder import request_kwargs
from .scenarios import DEFAULT_ACCEPT, Scenario, ScenarioRun, Step, same_json
from .target import Target
from .transport import SessionPerThread

Case = tuple[Scenario, str]  # a scenario and the encoding it is sent in: one test
Outcome = BaseException | None  # the failure or skip a replay raised, None when it passed


def every_case(scenarios: Iterable[Scenario]) -> list[Case]:
    """One case per scenario and encoding it lists, in file order: the tests of the fixtures suite."""
    return [(scenario, encoding) for scenario in scenarios for encoding in scenario.encodings]


class Replayer:
    """Replays scenarios against the run's target (or the one running a scenario's configuration).

    Its repr shows the masked URL only: pytest prints test arguments in
    tracebacks, and the target's token must never appear there.
    """

    def __init__(self, context: ContractContext) -> None:
        self.context = context
        self._sessions = SessionPerThread(context.session)
        self._lock = threading.Lock()
        self._targets: dict[Path, Target | None] = {}

    def __repr__(self) -> str:
        return f"<Replayer {self.context.describe()}>"

    @property
    def http(self) -> requests.Session:
        """This thread's keep-alive session (a requests.Session is not meant to be shared by threads)."""
        return self._sessions.get()

    def close(self) -> None:
        self._sessions.close()

    def _target_for(self, config_path: Path) -> Target | None:
        with self._lock:
            if config_path not in self._targets:
                self._targets[config_path] = self.context.target_for(config_path)
            return self._targets[config_path]

    def outcome(self, scenario: Scenario, encoding: str) -> Outcome:
        """Replay and return what it raised (a failure, a skip) instead of raising it."""
        try:
            self.replay(scenario, encoding)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - a skip or failure, re-raised by its own test
            return exc
        return None

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
            expected=step.expect.describe(), actual_status=status, actual_body=body, token=token, accept=step.accept,
        )

    try:
        kwargs = request_kwargs(step.request, run.encoding)
        # requests drops a header whose value is None: no Accept at all, as Go's net/http sends.
        kwargs["headers"] = {**kwargs.get("headers", {}), "Accept": step.accept}
        response = http.post(target.endpoint_url_with(token), timeout=timeout, **kwargs)
    except requests.RequestException as exc:
        # requests puts the full URL, token included, into its messages.
        raise failure(f"no answer: {type(exc).__name__}: {target.mask(str(exc))}", None, None) from None

    body = response_body(response)
    content_type = response.headers.get("Content-Type", "")
    if content_type.split(";")[0].strip().lower() != step.expect.content_type:
        raise failure(f"Content-Type is {content_type!r}, expected {step.expect.content_type} "
                      f"({_why_content_type(step)})", response.status_code, body)
    problem = step.expect.mismatch(response.status_code, body)
    if problem is not None:
        raise failure(problem, response.status_code, body)


def _why_content_type(step: Step) -> str:
    sent = "no Accept header" if step.accept is None else f"Accept {step.accept!r}"
    if step.expect.html_page:
        return (f"a request with {sent} gets Zammad's HTML error page for an error its error handler raises: "
                "respond_to renders JSON only for a client that accepts it")
    if step.accept == DEFAULT_ACCEPT:
        return "Zammad answers JSON only"
    return f"Zammad's controller answers JSON whatever the Accept header; {sent} changes only its error handler's errors"


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


def longest_first(cases: list[Case]) -> list[Case]:
    """The cases with the most steps first: against a slow target the last scenario started ends the suite."""
    return sorted(cases, key=lambda case: -len(case[0].steps))


def replay_all(replayer: Replayer, cases: list[Case], concurrency: int) -> list[Outcome]:
    """Every case's outcome, in the order given, ``concurrency`` scenarios at a time (each sends its steps in order)."""
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="replay")
    try:
        futures = {id(case): pool.submit(replayer.outcome, *case) for case in longest_first(cases)}
        return [futures[id(case)].result() for case in cases]
    finally:
        # On Ctrl-C, start no further scenario: only those in flight finish their current push.
        pool.shutdown(wait=True, cancel_futures=True)
