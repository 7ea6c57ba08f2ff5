"""`zammad-cti check --concurrency N`: never more than N requests at the target at once; 1 is one after the other.

The target is the faithful mock behind a counter of the requests it is
answering at any moment (each held a few milliseconds, so that requests sent
together really overlap). All four suites run against it, once with
``--concurrency 3`` and once with ``--concurrency 1``, side by side. The same
runs pin the created-calls list: exactly the call IDs the target's caller log
holds, none of the newCalls it refused.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from agent import AGENT_AUTH
from broken_targets import ServedTarget, documented_config, faithful_app, serve_app

CHECK = Path(sys.executable).with_name("zammad-cti")
HOLD_SECONDS = 0.005  # each answer takes this long at least, so that concurrent requests overlap
RUN_TIMEOUT = 300


class InFlight:
    """WSGI middleware: how many requests to the CTI endpoint (pushes and caller log) are being answered."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app
        self.now = 0
        self.most = 0
        self.requests = 0
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if not environ.get("PATH_INFO", "").startswith("/api/v1/cti/"):
            return self.app(environ, start_response)
        with self._lock:
            self.now += 1
            self.requests += 1
            self.most = max(self.most, self.now)
        try:
            time.sleep(HOLD_SECONDS)
            return list(self.app(environ, start_response))  # the whole answer, inside the count
        finally:
            with self._lock:
                self.now -= 1


@dataclass
class CountedRun:
    target: ServedTarget
    counter: InFlight
    result: subprocess.CompletedProcess[str]
    created: Path

    @property
    def output(self) -> str:
        return self.result.stdout + self.result.stderr


def _check(target: ServedTarget, concurrency: int, created: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CTI_TARGET", "CTI_TARGET_CONFIG", "ZAMMAD_API_TOKEN")}
    return subprocess.run([str(CHECK), "check", "--target", target.endpoint_url, "--concurrency", str(concurrency),
                           "--created-calls", str(created)],
                          capture_output=True, text=True, timeout=RUN_TIMEOUT, env=env, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[int, CountedRun]]:
    """The full check at --concurrency 3 and 1, each against a counted faithful mock of its own."""
    config = documented_config()
    config["cti_config"]["view_limit"] = 1000  # the caller log shows every call of the run
    with ExitStack() as stack:
        served: dict[int, tuple[ServedTarget, InFlight]] = {}
        for concurrency in (3, 1):
            counter = InFlight(faithful_app(config))
            served[concurrency] = (stack.enter_context(serve_app(counter, f"counted-{concurrency}")), counter)
        folder = tmp_path_factory.mktemp("created")

        def run(concurrency: int) -> CountedRun:
            target, counter = served[concurrency]
            created = folder / f"created-{concurrency}.txt"
            return CountedRun(target, counter, _check(target, concurrency, created), created)

        with ThreadPoolExecutor(2) as pool:
            yield dict(zip(served, pool.map(run, served), strict=True))


def test_never_more_requests_at_once_than_concurrency(runs: dict[int, CountedRun]) -> None:
    run = runs[3]
    assert run.result.returncode == 0, run.output[-4000:]
    assert run.counter.most <= 3, f"the target answered {run.counter.most} requests at once with --concurrency 3"
    assert run.counter.most >= 2, "nothing was sent concurrently: the suites ran one request after the other"


def test_concurrency_one_sends_one_request_after_the_other(runs: dict[int, CountedRun]) -> None:
    run = runs[1]
    assert run.result.returncode == 0, run.output[-4000:]
    assert run.counter.most == 1, f"the target answered {run.counter.most} requests at once with --concurrency 1"
    # The same cases either way: the concurrent run sends at least nine tenths of the sequential one's requests
    # (the suites draw random cases, so the counts differ a little).
    assert runs[3].counter.requests >= 0.9 * run.counter.requests, (runs[3].counter.requests, run.counter.requests)


def _caller_log_ids(target: ServedTarget) -> set[str]:
    log = requests.get(f"{target.url}/api/v1/cti/log", headers=AGENT_AUTH, timeout=10).json()["list"]
    return {entry["call_id"] for entry in log if entry["call_id"].startswith("zcti-check-")}


def _refused_new_calls(target: ServedTarget) -> set[str]:
    """Call IDs whose every newCall the target refused (a duplicate's ID was accepted once, so it is not here)."""
    journal = requests.get(f"{target.url}/__admin/requests", params={"limit": 100000}, timeout=30).json()["requests"]
    new_calls = [entry for entry in journal if entry.get("event") == "newCall"
                 and str(entry.get("call_id") or "").startswith("zcti-check-")]
    accepted = {entry["call_id"] for entry in new_calls if 200 <= entry["status"] < 300}
    return {entry["call_id"] for entry in new_calls if entry["status"] >= 400} - accepted


@pytest.mark.parametrize("concurrency", [3, 1])
def test_created_calls_are_the_accepted_new_calls(runs: dict[int, CountedRun], concurrency: int) -> None:
    run = runs[concurrency]
    written = run.created.read_text(encoding="utf-8").split()
    assert len(written) == len(set(written)), "a call ID is listed twice"
    assert set(written) == _caller_log_ids(run.target), "the list differs from the target's caller log"
    refused = _refused_new_calls(run.target)
    assert refused, "the run sent no newCall the target refused: the test shows nothing"
    assert not refused & set(written), f"refused newCalls listed as created: {sorted(refused & set(written))[:5]}"
    assert f"created calls: {len(written)} call IDs written to" in run.output
    assert "newCalls the target accepted (2xx)" in run.output


def test_created_calls_cut_long_call_ids_as_zammad_does() -> None:
    """The fuzz suite sends callIds over 250 characters; Zammad logs them cut, and so does the list."""
    from contract_tests import context, transport

    prepared = requests.Request("POST", "http://127.0.0.1:9/api/v1/cti/t", json={
        "event": "newCall", "callId": "zcti-check-" + "x" * 300}).prepare()
    before = dict(context.CREATED_CALL_IDS)
    try:
        transport._note_push(prepared, 200, None)
        added = [call_id for call_id in context.CREATED_CALL_IDS if call_id not in before]
        assert added == ["zcti-check-" + "x" * 239]
        transport._note_push(requests.Request("POST", "http://127.0.0.1:9/api/v1/cti/t", data={
            "event": "newCall", "callId": "zcti-check-refused"}).prepare(), 500, None)
        assert "zcti-check-refused" not in context.CREATED_CALL_IDS
    finally:
        context.CREATED_CALL_IDS.clear()
        context.CREATED_CALL_IDS.update(before)


def test_the_token_stays_masked(runs: dict[int, CountedRun]) -> None:
    from broken_targets import TOKEN

    for run in runs.values():
        assert TOKEN not in run.output and TOKEN not in run.created.read_text(encoding="utf-8")



# --- the pieces ------------------------------------------------------------------------------------


@pytest.mark.parametrize("concurrency", [1, 2, 3, 8, 22, 40])
def test_state_machines_share_the_examples(concurrency: int) -> None:
    from contract_tests.test_stateful import SETTINGS, lanes

    plan = lanes(SETTINGS.max_examples, concurrency)
    assert sum(plan) == SETTINGS.max_examples and min(plan) >= 1
    assert len(plan) == min(concurrency, SETTINGS.max_examples)  # one machine per slot; one at --concurrency 1


def test_pipeline_with_one_worker_sends_in_order_in_the_callers_thread() -> None:
    from contract_tests.pipeline import Pipeline

    seen: list[tuple[int, str]] = []
    pipe = Pipeline(1)
    for number in range(5):
        pipe.submit(f"case {number}", lambda n=number: seen.append((n, threading.current_thread().name)))
    pipe.close()
    assert seen == [(n, threading.current_thread().name) for n in range(5)]


def test_pipeline_keeps_at_most_its_workers_busy_and_reports_each_distinct_failure() -> None:
    from contract_tests.pipeline import Pipeline

    busy, most, lock = [0], [0], threading.Lock()

    def send(number: int) -> None:
        with lock:
            busy[0] += 1
            most[0] = max(most[0], busy[0])
        time.sleep(0.01)
        with lock:
            busy[0] -= 1
        if number % 5 == 0:
            raise AssertionError(f"rule A broken\n  case {number}")
        if number == 7:
            raise AssertionError("rule B broken")

    pipe = Pipeline(3)
    for number in range(1, 21):
        pipe.submit(f"drawn {number}", lambda n=number: send(n))
    pipe.close()
    assert most[0] == 3
    report = str(pipe.failure_report())
    assert report.startswith("5 of 20 cases failed (2 distinct failures")
    assert "[1] case 5 of 20: drawn 5\n    rule A broken\n      case 5" in report
    assert "(3 more cases failed the same way: 10, 15, 20)" in report
    assert "[2] case 7 of 20: drawn 7\n    rule B broken" in report
    assert Pipeline(2).failure_report() is None


def test_replay_process_outcomes_hold_the_slots_until_the_last_line(tmp_path: Path) -> None:
    """The pytest process sends nothing while the replay process may; a replay process that died is said so."""
    from types import SimpleNamespace

    import pytest as _pytest

    from contract_tests.ahead import AheadOutcomes, ReplayError
    from contract_tests.failures import ContractFailure

    outcomes = tmp_path / "outcomes.jsonl"
    outcomes.write_text(
        json.dumps({"case": ["a", "json"], "outcome": "passed", "text": ""}) + "\n"
        + json.dumps({"case": ["b", "json"], "outcome": "failed", "text": "b step 1: status 500"}) + "\n"
        + json.dumps({"case": ["c", "json"], "outcome": "skipped", "text": "assumes disabled-config.json"}) + "\n",
        encoding="utf-8")
    slots = threading.BoundedSemaphore(3)
    reader = AheadOutcomes(outcomes, slots, 3)
    try:
        assert not slots.acquire(timeout=0.2), "a slot was free while the replay process may still send"
        with open(outcomes, "a", encoding="utf-8") as out:
            out.write(json.dumps({"stopped": "the replay process exited with status 1: Traceback ..."}) + "\n")
        cases = [(SimpleNamespace(name=name), "json") for name in ("a", "b", "c", "d")]
        passed, failed, skipped, missing = reader.outcomes(cases)
        assert passed is None
        assert isinstance(failed, ContractFailure) and str(failed) == "b step 1: status 500"
        assert isinstance(skipped, _pytest.skip.Exception) and skipped.msg == "assumes disabled-config.json"
        assert isinstance(missing, ReplayError) and "exited with status 1" in str(missing)
        assert slots.acquire(timeout=2), "the slots stayed held after the last line"
    finally:
        reader.close()
