"""Send what a Hypothesis test generates ``--concurrency`` at a time; fail the test once every answer is judged.

Drawing a schemathesis case costs CPU only; sending it costs the target's
answer time. A test marked :func:`pipelined` keeps Hypothesis drawing in the
test's own thread and hands each case to the running :class:`Pipeline`
(:func:`submit`), whose worker threads send it and run its checks, at most
``workers`` cases at once (the draw waits for a free worker; the requests on
the wire are bounded by the run's slots too, :mod:`contract_tests.transport`).
When Hypothesis has
drawn its last case, the plugin (``contract_tests.plugin.pytest_pyfunc_call``)
waits for the answers and raises one ``AssertionError`` for everything that
failed: each distinct failure in full (case, request, expected, actual,
curl), then how many more cases failed the same way.

With one worker nothing is threaded: each case is sent in the test's thread
before the next is drawn, one request after the other as before.

What is given up: Hypothesis never sees a failure, so it does not shrink a
generated case to a smaller one (coverage cases, explicit examples, were
never shrunk) and the fuzzing phase runs even after a coverage case failed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

PIPELINED = "_zcti_pipelined"  # attribute that marks a test function (survives functools.wraps)
DISTINCT_AS = "zcti_distinct_as"  # optional attribute of a failure: what makes it distinct from others
FAILURES_IN_FULL = 5  # distinct failures shown in full; more are counted

F = TypeVar("F", bound=Callable[..., Any])


def pipelined(test: F) -> F:
    """Mark a Hypothesis test whose body calls :func:`submit`."""
    setattr(test, PIPELINED, True)
    return test


def is_pipelined(function: Any) -> bool:
    return bool(getattr(function, PIPELINED, False))


@dataclass
class CaseFailure:
    number: int  # the case's place in the order Hypothesis drew them, from 1
    label: str  # what the case is (phase, description)
    error: BaseException

    @property
    def distinct_as(self) -> Any:
        key = getattr(self.error, DISTINCT_AS, None)
        if key is not None:
            return key
        lines = str(self.error).strip().splitlines()
        return (type(self.error).__name__, lines[0] if lines else "")


class Pipeline:
    """At most ``workers`` cases in flight; failures kept in the order the cases were drawn."""

    def __init__(self, workers: int) -> None:
        self.workers = max(1, workers)
        self.sent = 0
        self._failures: list[CaseFailure] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(self.workers)
        self._pool = (ThreadPoolExecutor(self.workers, thread_name_prefix="zcti-case")
                      if self.workers > 1 else None)

    def submit(self, label: str, send: Callable[[], None]) -> None:
        """Send one case (``send`` raises ``AssertionError`` when a check fails); waits for a free slot."""
        self.sent += 1
        number = self.sent
        if self._pool is None:
            self._run(number, label, send)
            return
        self._slots.acquire()
        try:
            self._pool.submit(self._run, number, label, send, True)
        except BaseException:
            self._slots.release()
            raise

    def _run(self, number: int, label: str, send: Callable[[], None], slot: bool = False) -> None:
        try:
            send()
        except Exception as exc:  # noqa: BLE001 - a crash of one case is reported with the others
            with self._lock:
                self._failures.append(CaseFailure(number, label, exc))
        finally:
            if slot:
                self._slots.release()

    def close(self, cancel: bool = False) -> None:
        """Wait for every case in flight (``cancel``: start no queued one)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=cancel)

    @property
    def failures(self) -> list[CaseFailure]:
        with self._lock:
            return sorted(self._failures, key=lambda failure: failure.number)

    def failure_report(self) -> AssertionError | None:
        """One ``AssertionError`` for every failed case, grouped by distinct failure; None when all passed."""
        failures = self.failures
        if not failures:
            return None
        groups: dict[Any, list[CaseFailure]] = {}
        for failure in failures:
            groups.setdefault(failure.distinct_as, []).append(failure)
        distinct = len(groups)
        lines = [f"{len(failures)} of {self.sent} cases failed ({distinct} distinct "
                 f"failure{'s' if distinct != 1 else ''}, the first case of each shown)"]
        for index, group in enumerate(list(groups.values())[:FAILURES_IN_FULL], 1):
            first = group[0]
            lines.append(f"[{index}] case {first.number} of {self.sent}: {first.label}")
            lines += ["    " + line if line else line for line in _describe(first.error).splitlines()]
            if len(group) > 1:
                numbers = ", ".join(str(f.number) for f in group[1:6]) + (", ..." if len(group) > 6 else "")
                lines.append(f"    ({len(group) - 1} more cases failed the same way: {numbers})")
        if distinct > FAILURES_IN_FULL:
            lines.append(f"... and {distinct - FAILURES_IN_FULL} more distinct failures "
                         f"({sum(len(g) for g in list(groups.values())[FAILURES_IN_FULL:])} cases)")
        return AssertionError("\n".join(lines))


def _describe(error: BaseException) -> str:
    if isinstance(error, AssertionError) and str(error):
        return str(error).rstrip()
    return f"{type(error).__name__}: {error}"


_current = threading.local()


@contextmanager
def running(workers: int) -> Iterator[Pipeline]:
    """The pipeline for one test; waits for the cases in flight even when the test was interrupted."""
    pipeline = Pipeline(workers)
    _current.pipeline = pipeline
    try:
        yield pipeline
    except BaseException:
        pipeline.close(cancel=True)
        raise
    finally:
        _current.pipeline = None
    pipeline.close()


def submit(label: str, send: Callable[[], None]) -> None:
    """Hand a case to the running pipeline; outside one (a plain call), send it here and raise at once."""
    pipeline = getattr(_current, "pipeline", None)
    if pipeline is None:
        send()
        return
    pipeline.submit(label, send)
