"""Per-test results of a ``zammad-cti check`` run, for the runner to summarise.

``zammad-cti check`` runs the suites in a pytest subprocess and loads this
module there with ``-p contract_tests._results``. It appends one JSON object
per line to the file named by ``ZAMMAD_CTI_RESULTS``, flushed as each test
finishes, so the runner can show progress while the run goes on:

``{"kind": "test", "nodeid", "suite", "outcome", "duration", "failure", "skip_reason"}``
    ``outcome`` is ``passed``, ``failed``, ``error`` (setup or teardown
    failed) or ``skipped``; ``failure`` is the text the suite raised
    (scenario, request, expected, actual, curl), not pytest's traceback.
``{"kind": "collect_error", "nodeid", "failure"}``
    a suite module that could not be collected.
``{"kind": "facts", "created_calls", "unanswered_calls", "answer_times", "notes"}``
    the call IDs of the newCalls the target accepted (2xx) and of those it
    never answered, and per suite the seconds the target took to answer each
    push; written when the session ends.
``{"kind": "session", "exitstatus", "collected"}``
    the last line, written when the session ends.

Nothing here masks the token: the file lives in the runner's private
temporary directory, and the runner masks everything it prints or writes.

It also prunes: a test function whose markers (on the function, its class or
its module) name only suites outside ``ZAMMAD_CTI_SUITES`` is not turned into
items at all. ``-m`` would deselect it anyway, but only after collection, and
collecting a schemathesis test builds its Hypothesis strategies: a second
per run for the fuzz suite when only the examples were asked for.
"""

from __future__ import annotations

import json
import os
import signal
from typing import IO, Any

import pytest

from . import context
from .plugin import SUITES

RESULTS_ENV = "ZAMMAD_CTI_RESULTS"
SUITES_ENV = "ZAMMAD_CTI_SUITES"  # comma-separated suites of the run
OTHER_SUITE = "other"


def suite_of(item: pytest.Item) -> str:
    """The suite a test belongs to: its closest ``contract_<suite>`` marker."""
    for mark in item.iter_markers():
        name = mark.name.removeprefix("contract_")
        if mark.name.startswith("contract_") and name in SUITES:
            return name
    return OTHER_SUITE


def _static_suites(collector: pytest.Collector, obj: object) -> set[str]:
    """The suites a test function is marked with before any item exists (function, class, module)."""
    own = getattr(obj, "pytestmark", None) or ()
    marks = list(own) if isinstance(own, (list, tuple)) else [own]  # a class may hold a single mark
    marks += list(collector.iter_markers())
    names = {getattr(mark, "name", "") for mark in marks}
    return {name.removeprefix("contract_") for name in names
            if name.startswith("contract_") and name.removeprefix("contract_") in SUITES}


class SuitePruner:
    def __init__(self, selected: set[str]) -> None:
        self.selected = selected

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_pycollect_makeitem(self, collector: pytest.Collector, name: str, obj: object):
        result = yield
        suites = _static_suites(collector, obj) if result else set()
        if suites and not suites & self.selected:
            return []
        return result


def describe_exception(exc: BaseException) -> str:
    """What a user needs from a failure: the message the suite raised, with Hypothesis' notes.

    Contract failures (:class:`~contract_tests.failures.ContractFailure`) and
    schemathesis' ``FailureGroup`` already carry scenario, request, expected,
    actual and curl in their message; anything else (a crash in the suite, a
    target that does not answer) is shown with its exception type.
    """
    if isinstance(exc, BaseExceptionGroup):
        text = exc.message
        # schemathesis' FailureGroup formats every failure into its message;
        # other groups (Hypothesis' "found N distinct failures") do not.
        if type(exc).__name__ != "FailureGroup":
            parts = [describe_exception(sub) for sub in exc.exceptions]
            text = "\n".join([text, *(_indent(f"[{n}] {part}") for n, part in enumerate(parts, 1))])
    elif isinstance(exc, AssertionError) and str(exc):
        text = str(exc)
    else:
        text = f"{type(exc).__module__}.{type(exc).__qualname__}: {exc}".removeprefix("builtins.")
    notes = [note for note in getattr(exc, "__notes__", ()) if isinstance(note, str)]
    return "\n".join([text.rstrip(), *notes]).rstrip()


def _indent(text: str) -> str:
    return "\n".join("  " + line if line else line for line in text.splitlines())


class ResultsRecorder:
    """Collects the phase reports of each test and writes one line per test."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._suites: dict[str, str] = {}
        self._pending: dict[str, dict[str, Any]] = {}
        self._collected = 0

    def _write(self, record: dict[str, Any]) -> None:
        self._stream.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._stream.flush()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]):
        report = yield
        if report.failed and call.excinfo is not None:
            # The exception object is only here; the report keeps just its rendering.
            text = describe_exception(call.excinfo.value)
            crash = getattr(report.longrepr, "reprcrash", None)
            if not isinstance(call.excinfo.value, AssertionError) and crash is not None:
                text += f"\n  (raised at {crash.path}:{crash.lineno})"
            report._zcti_failure = text
        return report

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self._suites = {item.nodeid: suite_of(item) for item in session.items}
        self._collected = len(session.items)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self._write({"kind": "collect_error", "nodeid": report.nodeid or "<session>",
                         "failure": report.longreprtext})

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        state = self._pending.setdefault(report.nodeid, {"outcome": "passed", "duration": 0.0,
                                                         "failure": None, "skip_reason": None})
        state["duration"] += report.duration
        if report.failed:
            if state["outcome"] not in ("failed", "error"):
                state["outcome"] = "failed" if report.when == "call" else "error"
            text = getattr(report, "_zcti_failure", None) or report.longreprtext
            if report.when != "call":
                text = f"(in test {report.when}) {text}"
            state["failure"] = text if state["failure"] is None else f"{state['failure']}\n{text}"
        elif report.skipped and state["outcome"] == "passed":
            state["outcome"] = "skipped"
            state["skip_reason"] = _skip_reason(report)

    def pytest_runtest_logfinish(self, nodeid: str, location: tuple[str, int | None, str]) -> None:
        state = self._pending.pop(nodeid, None)
        if state is not None:
            self._write({"kind": "test", "nodeid": nodeid, "suite": self._suites.get(nodeid, OTHER_SUITE),
                         **state})

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None):
        # The transport times each push for the suite of the test that sends it.
        context.set_running_suite(self._suites.get(item.nodeid, OTHER_SUITE))
        try:
            return (yield)
        finally:
            context.set_running_suite(None)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        self._write({"kind": "facts", **context.facts()})
        self._write({"kind": "session", "exitstatus": int(exitstatus), "collected": self._collected})


def _skip_reason(report: pytest.TestReport) -> str:
    if hasattr(report, "wasxfail"):
        return f"xfail: {report.wasxfail}".rstrip(": ")
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr or "")


_STREAM_KEY = pytest.StashKey[IO[str]]()


def pytest_configure(config: pytest.Config) -> None:
    path = os.environ.get(RESULTS_ENV)
    if not path:
        return
    # Started from a shell's background job, the run inherits an ignored SIGINT;
    # the runner stops it with SIGINT on Ctrl-C, so let that raise KeyboardInterrupt.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    stream = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in pytest_unconfigure
    config.stash[_STREAM_KEY] = stream
    config.pluginmanager.register(ResultsRecorder(stream), "zammad_cti_results_recorder")
    selected = {name for name in os.environ.get(SUITES_ENV, "").split(",") if name}
    if selected:
        config.pluginmanager.register(SuitePruner(selected), "zammad_cti_suite_pruner")


def pytest_unconfigure(config: pytest.Config) -> None:
    stream = config.stash.get(_STREAM_KEY, None)
    if stream is not None:
        stream.close()
