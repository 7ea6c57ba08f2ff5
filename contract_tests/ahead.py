"""The fixtures suite replayed ahead, in a process of its own, while pytest starts and collects the suites.

Against a slow target the fixtures suite is mostly waiting (263 pushes, each
scenario's steps in order), and pytest spends a second or two of CPU before
the first test (imports, schemathesis and Hypothesis setting up). So
``zammad-cti check`` against a ``--target`` starts, beside the pytest process::

    python -P -m contract_tests.ahead OUTCOMES

which replays every (scenario, encoding) ``--concurrency`` at a time with
the same engine (:class:`contract_tests.replay.Replayer`) and writes one JSON
line per case to OUTCOMES as it finishes::

    {"case": ["munich-dial", "json"], "outcome": "passed" | "failed" | "skipped" | "error", "text": "..."}

then ``{"facts": {...}}`` (answer times, created calls, notes) as the last
line; the runner writes ``{"stopped": "..."}`` instead when the process ended
without it. A process of its own, not a thread: in pytest's process the
collection would hold the interpreter and the answer times measured would be
the check's own waits, not the target's.

In the pytest process ``--cti-replay-ahead OUTCOMES`` makes an
:class:`AheadOutcomes`: the fixtures tests take their outcomes from it, and
until the last line is read it holds every one of the run's slots, so the
other suites cannot send yet and the target never sees more than
``--concurrency`` requests at once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TextIO

FINAL_KEYS = ("facts", "stopped")
POLL_SECONDS = 0.02


class ReplayError(Exception):
    """A scenario that crashed in the replay process, or that it never replayed."""


# --- the replay process ----------------------------------------------------------------------------


def encode(scenario: str, encoding: str, outcome: BaseException | None) -> dict[str, Any]:
    import pytest

    record: dict[str, Any] = {"case": [scenario, encoding], "outcome": "passed", "text": ""}
    if isinstance(outcome, pytest.skip.Exception):
        record.update(outcome="skipped", text=outcome.msg)
    elif isinstance(outcome, AssertionError):
        record.update(outcome="failed", text=str(outcome))
    elif outcome is not None:
        where = traceback.extract_tb(outcome.__traceback__)[-1:] if outcome.__traceback__ else []
        place = f"\n  (raised at {where[0].filename}:{where[0].lineno})" if where else ""
        record.update(outcome="error", text=f"{type(outcome).__name__}: {outcome}{place}")
    return record


def replay_ahead(out: TextIO) -> None:
    """Replay every case of the fixtures suite against the run's target; one line each to ``out``."""
    from . import context as run
    from .replay import Replayer, every_case, longest_first
    from .scenarios import load_scenarios

    context = run.ContractContext.create(
        target_url=os.environ["CTI_TARGET"], config_path=os.environ.get("CTI_TARGET_CONFIG"),
        api_token=os.environ.get("ZAMMAD_API_TOKEN"), zammad=os.environ.get("CTI_ZAMMAD"),
        concurrency=max(1, int(os.environ.get("ZAMMAD_CTI_CONCURRENCY") or run.DEFAULT_CONCURRENCY)),
        timeout=float(os.environ.get("ZAMMAD_CTI_TIMEOUT") or run.DEFAULT_TIMEOUT),
    )
    replayer = Replayer(context)
    lock = threading.Lock()

    def one(case: Any) -> None:
        scenario, encoding = case
        line = json.dumps(encode(scenario.name, encoding, replayer.outcome(scenario, encoding)))
        with lock:
            out.write(line + "\n")
            out.flush()

    run.set_running_suite("fixtures")
    with ThreadPoolExecutor(context.concurrency, thread_name_prefix="ahead") as pool:
        list(pool.map(one, longest_first(every_case(load_scenarios()))))
    replayer.close()
    out.write(json.dumps({"facts": run.facts()}) + "\n")
    out.flush()


def main(argv: list[str] | None = None) -> int:
    path = Path((argv if argv is not None else sys.argv[1:])[0])
    with open(path, "a", encoding="utf-8") as out:
        replay_ahead(out)
    return 0


# --- the runner's side ---------------------------------------------------------------------------


class AheadProcess:
    """The replay process as the runner starts, watches and stops it."""

    def __init__(self, outcomes: Path, env: Mapping[str, str], cwd: Path) -> None:
        self.outcomes = outcomes
        self._stderr = outcomes.with_suffix(".stderr")
        self.outcomes.touch()
        with open(self._stderr, "wb") as errors:
            self.process = subprocess.Popen([sys.executable, "-P", "-m", "contract_tests.ahead", str(outcomes)],
                                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errors,
                                            cwd=cwd, env=dict(env))
        self._settled = False

    def check(self) -> None:
        """Once the process has ended without its last line, write one that says so (the tests stop waiting)."""
        if self._settled or self.process.poll() is None:
            return
        self._settled = True
        lines = self.outcomes.read_text(encoding="utf-8", errors="replace").splitlines()
        if lines and any(key in _record(lines[-1]) for key in FINAL_KEYS):
            return
        tail = self._stderr.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-12:]
        why = f"the replay process exited with status {self.process.returncode}" + (
            ":\n" + "\n".join(tail) if tail else "")
        with open(self.outcomes, "a", encoding="utf-8") as out:
            out.write("\n" + json.dumps({"stopped": why}) + "\n")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.check()


def _record(line: str) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except ValueError:
        return {}
    return record if isinstance(record, dict) else {}


# --- the pytest process's side ------------------------------------------------------------------


class AheadOutcomes:
    """Reads OUTCOMES as it grows; holds the run's slots until the last line."""

    def __init__(self, path: Path, slots: threading.Semaphore, slot_count: int) -> None:
        self._path = path
        self._slots = slots
        self._held = 0
        for _ in range(slot_count):  # no other suite sends while the replay process does
            slots.acquire()
            self._held += 1
        self._records: dict[tuple[str, str], dict[str, Any]] = {}
        self._final: dict[str, Any] | None = None
        self._changed = threading.Condition()
        self._closing = threading.Event()
        self._reader = threading.Thread(target=self._read, name="zcti-ahead-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        from . import context as run

        offset, partial = 0, ""
        while not self._closing.is_set():
            with open(self._path, encoding="utf-8", errors="replace") as handle:
                handle.seek(offset)
                data = handle.read()
                offset = handle.tell()
            lines = (partial + data).split("\n")
            partial = lines.pop()
            with self._changed:
                for line in lines:
                    record = _record(line)
                    if "case" in record:
                        self._records[tuple(record["case"])] = record
                    elif "facts" in record:
                        run.merge_facts(record["facts"])
                        self._final = record
                    elif "stopped" in record:
                        self._final = record
                self._changed.notify_all()
            if self._final is not None:
                break
            time.sleep(POLL_SECONDS)
        self._release()

    def _release(self) -> None:
        with self._changed:
            while self._held:
                self._held -= 1
                self._slots.release()
            if self._final is None:
                self._final = {"stopped": "the run ended before the replay process finished"}
            self._changed.notify_all()

    def outcomes(self, cases: Iterable[tuple[Any, str]]) -> list[BaseException | None]:
        """Each case's outcome, as the replay process found it (waits for the ones still running)."""
        keys = [(scenario.name, encoding) for scenario, encoding in cases]
        with self._changed:
            self._changed.wait_for(lambda: self._final is not None or all(key in self._records for key in keys))
            return [self._decode(self._records.get(key)) for key in keys]

    def _decode(self, record: dict[str, Any] | None) -> BaseException | None:
        import pytest

        from .failures import ContractFailure

        if record is None:
            why = (self._final or {}).get("stopped", "it never got to this scenario")
            return ReplayError(f"not replayed: {why}")
        outcome, text = record.get("outcome"), str(record.get("text") or "")
        if outcome == "passed":
            return None
        if outcome == "skipped":
            return pytest.skip.Exception(text, _use_item_location=True)
        if outcome == "failed":
            return ContractFailure(text)
        return ReplayError(text)

    def close(self) -> None:
        self._closing.set()
        self._reader.join(timeout=5)


if __name__ == "__main__":
    sys.exit(main())
