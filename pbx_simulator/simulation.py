"""A simulated PBX: realistic call flows drawn from a scenario and played against a CTI endpoint.

Four layers, each usable on its own (``zammad-cti simulate`` uses them all,
``benchmarks/locustfile.py`` the first three)::

    scenario = load_scenario()                      # fixtures/simulator/default-mix.json, validated
    builder = FlowBuilder(scenario, speed=100, seed=7)
    flow = builder.build(0)                         # pure: the call's events, waits and expected answers
    result = play(flow, send, sleep)                # sends the events, honours the answers
    report = run_simulation(target, scenario, calls=40, concurrency=8, speed=100, seed=7)

A flow is what a PBX sends for one call: ``newCall``, the ring time, ``answer``,
the talk time, ``hangup``, with Zammad's causes and the ``user`` names the
outcome calls for (see ``fixtures/simulator/scenario.schema.json`` for the
outcomes). :func:`play` honours Zammad's answers as a PBX does: a ``reject``
answer to ``newCall`` makes it hang up with cause ``busy`` at once; a ``dial``
answer gives the caller ID it dials out with, kept in the call's result.

Call IDs start with :data:`SIM_CALL_ID_PREFIX`, then a run ID that is new for
every run (also with ``seed``: a rerun must not reuse call IDs), then the
call's index. ``seed`` makes everything else reproducible: call ``i`` of two
runs with the same scenario, speed and seed is the same call.

Nothing here prints, reads the environment or imports click: the report is
data (:meth:`SimulationReport.to_dict`) and :func:`format_report` renders it as
text. The token is only ever sent, never written: the report names the target
by its masked URL and masks the token in every error message.
"""

from __future__ import annotations

import json
import math
import random
import re
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import requests

from contract_tests.requests_builder import ENCODINGS, curl_command, request_kwargs
from contract_tests.target import Target
from mock_server.resources import data_path
from mock_server.zammad.calls import EVENTS
from mock_server.zammad.routing import REJECT_ANSWER

SIM_CALL_ID_PREFIX = "zcti-sim-"
DEFAULT_SCENARIO = "fixtures/simulator/default-mix.json"
SCHEMA_FILE = "fixtures/simulator/scenario.schema.json"
DEFAULT_CALLS = 50
DEFAULT_CONCURRENCY = 10
DEFAULT_TIMEOUT = 10.0
MAX_MISMATCHES_KEPT = 50

INBOUND_OUTCOMES = ("answered", "missed", "busy", "forwarded", "voicemail", "blocked")
OUTBOUND_OUTCOMES = ("outbound-answered", "outbound-unanswered")
OUTCOMES = INBOUND_OUTCOMES + OUTBOUND_OUTCOMES
VOICEMAIL_USER = "voicemail"
REJECT = REJECT_ANSWER  # what a blocked caller's newCall gets


class ScenarioFileError(ValueError):
    """A scenario file the simulator cannot play; the message names the file and each problem."""


# --- the scenario ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Agent:
    name: str
    number: str


@dataclass(frozen=True)
class Destination:
    name: str
    weight: float
    numbers: tuple[str, ...]
    expect_caller_id: str | None


@dataclass(frozen=True)
class Scenario:
    """A validated scenario file (see ``fixtures/simulator/scenario.schema.json``)."""

    name: str
    description: str
    path: Path | None
    data: Mapping[str, Any] = field(repr=False)

    @property
    def agents(self) -> tuple[Agent, ...]:
        return tuple(Agent(a["name"], a["number"]) for a in self.data["agents"])

    @property
    def destinations(self) -> tuple[Destination, ...]:
        return tuple(Destination(d["name"], d["weight"], tuple(d["numbers"]), d["expect_caller_id"])
                     for d in self.data["outbound"]["destinations"])

    def seconds(self, name: str) -> tuple[float, float]:
        low, high = self.data["timing"][name]
        return float(low), float(high)


@lru_cache(maxsize=1)
def _validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(data_path(SCHEMA_FILE).read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


def default_scenario_path() -> Path:
    return data_path(DEFAULT_SCENARIO)


def load_scenario(path: str | Path | None = None) -> Scenario:
    """Read and validate a scenario file (default: ``fixtures/simulator/default-mix.json``)."""
    path = Path(path) if path else default_scenario_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioFileError(f"{path}: cannot read: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise ScenarioFileError(f"{path}: not valid JSON: {exc}") from exc
    return scenario_from_mapping(data, path)


def scenario_from_mapping(data: Any, path: Path | None = None) -> Scenario:
    """Validate parsed scenario data against the schema, then the rules a schema cannot state."""
    source = str(path) if path else "scenario"
    errors = sorted(_validator().iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        lines = [f"  {_where(e.absolute_path)}: {e.message}" for e in errors[:10]]
        more = [f"  ... and {len(errors) - 10} more"] if len(errors) > 10 else []
        raise ScenarioFileError(f"{source} is not a valid simulator scenario "
                                f"(see {SCHEMA_FILE}):\n" + "\n".join(lines + more))
    problems = _semantic_problems(data)
    if problems:
        raise ScenarioFileError(f"{source} is not a valid simulator scenario:\n"
                                + "\n".join(f"  {p}" for p in problems))
    return Scenario(name=data["name"], description=data["description"], path=path, data=data)


def _where(path: Sequence[Any]) -> str:
    return "/".join(str(part) for part in path) or "(top level)"


def _semantic_problems(data: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    for name, (low, high) in data["timing"].items():
        if low > high:
            problems.append(f"timing/{name}: [{low}, {high}] is reversed; write [shortest, longest]")
    fewest, most = data["inbound"]["ring_group"]
    if fewest > most:
        problems.append(f"inbound/ring_group: [{fewest}, {most}] is reversed; write [fewest, most]")
    if most > len(data["agents"]):
        problems.append(f"inbound/ring_group: rings up to {most} agents but agents lists {len(data['agents'])}")

    def no_weight(where: str, weights: Mapping[str, float]) -> None:
        if not any(w > 0 for w in weights.values()):
            problems.append(f"{where}: every weight is 0; give at least one a weight above 0")

    no_weight("directions", data["directions"])
    no_weight("encodings", data["encodings"])
    if data["directions"]["in"] > 0:
        inbound = data["inbound"]
        no_weight("inbound/outcomes", inbound["outcomes"])
        if inbound["outcomes"]["missed"] > 0:
            no_weight("inbound/missed_causes", inbound["missed_causes"])
        overlap = sorted(set(inbound["callers"]) & set(inbound["blocked_callers"]))
        if overlap:
            problems.append(f"inbound/callers: {', '.join(overlap)} also in blocked_callers; "
                            "an ordinary caller must not be on the block list")
    if data["directions"]["out"] > 0:
        outbound = data["outbound"]
        no_weight("outbound/outcomes", outbound["outcomes"])
        if outbound["outcomes"]["unanswered"] > 0:
            no_weight("outbound/unanswered_causes", outbound["unanswered_causes"])
        no_weight("outbound/destinations", {d["name"]: d["weight"] for d in outbound["destinations"]})
    return problems


# --- flows -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One push of a call: wait ``wait`` seconds (already divided by speed), send ``params``."""

    event: str
    params: Mapping[str, Any]
    wait: float
    expect: Mapping[str, Any]  # the body of the 200 answer Zammad gives

    def mismatch(self, answer: Answer) -> str | None:
        """None when ``answer`` is Zammad's, else what differs (no token, no call ID: safe to group)."""
        if answer.status == 200 and isinstance(answer.body, dict) and answer.body == dict(self.expect):
            return None
        return f"expected {shape_of(200, self.expect)}, got {answer.shape}"


@dataclass(frozen=True)
class CallFlow:
    """Everything a PBX sends for one call, and what Zammad should make of it."""

    index: int
    call_id: str
    outcome: str
    direction: str
    encoding: str
    steps: tuple[Step, ...]
    expect_done: bool
    cause: str
    destination: str | None = None
    expect_caller_id: str | None = None
    answered_by: str | None = None

    def reject_hangup(self) -> Step:
        """The hangup the PBX sends at once when Zammad answers ``newCall`` with reject."""
        first = self.steps[0].params
        params = {key: first[key] for key in ("from", "to", "direction", "callId")}
        return Step("hangup", {"event": "hangup", **params, "cause": "busy"}, 0.0, {})

    def expected_log_entry(self) -> dict[str, Any]:
        """The fields Zammad's caller log shows for this call once it is hung up."""
        entry: dict[str, Any] = {"call_id": self.call_id, "direction": self.direction, "state": "hangup",
                                 "done": self.expect_done, "comment": self.cause}
        if self.answered_by is not None and self.direction == "in":
            entry["to_comment"] = self.answered_by
        if self.direction == "out" and self.expect_caller_id is not None:
            entry["from"] = self.expect_caller_id
        return entry


class FlowBuilder:
    """Draws call ``index`` from the scenario: the same ``seed`` and index give the same call.

    ``speed`` divides every time of the scenario; ``run_id`` (default: random)
    keeps call IDs of different runs apart.
    """

    def __init__(self, scenario: Scenario, speed: float = 1.0, seed: int | None = None,
                 run_id: str | None = None) -> None:
        if not speed > 0 or math.isinf(speed):
            raise ValueError(f"speed must be a positive number, not {speed!r}")
        self.scenario = scenario
        self.speed = float(speed)
        self.seed = seed if seed is not None else secrets.randbelow(2**31)
        self.run_id = run_id or secrets.token_hex(4)
        self._agents = scenario.agents
        self._destinations = scenario.destinations

    def call_id(self, index: int) -> str:
        return f"{SIM_CALL_ID_PREFIX}{self.run_id}-{index:06d}"

    def rng(self, index: int, purpose: str = "call") -> random.Random:
        return random.Random(f"{self.seed}:{purpose}:{index}")

    def pause(self, rng: random.Random) -> float:
        """A pause between two calls of one Locust user, divided by speed."""
        return self._seconds(rng, "between_calls_seconds")

    def flows(self, count: int, start: int = 0) -> Iterator[CallFlow]:
        return (self.build(index) for index in range(start, start + count))

    def build(self, index: int) -> CallFlow:
        rng = self.rng(index)
        data = self.scenario.data
        direction = _weighted(rng, data["directions"])
        encoding = _weighted(rng, data["encodings"])
        if direction == "in":
            return self._inbound(rng, index, encoding, _weighted(rng, data["inbound"]["outcomes"]))
        return self._outbound(rng, index, encoding, "outbound-" + _weighted(rng, data["outbound"]["outcomes"]))

    def _seconds(self, rng: random.Random, name: str) -> float:
        low, high = self.scenario.seconds(name)
        return rng.uniform(low, high) / self.speed

    def _inbound(self, rng: random.Random, index: int, encoding: str, outcome: str) -> CallFlow:
        inbound = self.scenario.data["inbound"]
        blocked = outcome == "blocked"
        base = {
            "from": rng.choice(inbound["blocked_callers"] if blocked else inbound["callers"]),
            "to": rng.choice(inbound["lines"]),
            "direction": "in",
            "callId": self.call_id(index),
        }
        fewest, most = inbound["ring_group"]
        ringing = rng.sample(self._agents, rng.randint(fewest, most))
        names = [agent.name for agent in ringing]
        new_call = Step("newCall", {"event": "newCall", **base, "user": names[0] if len(names) == 1 else names},
                        0.0, REJECT if blocked else {})
        steps = [new_call]
        answered_by = None
        if outcome == "answered":
            agent = rng.choice(ringing)
            answered_by = agent.name
            pickup = {"user": agent.name, "answeringNumber": agent.number}
            steps.append(Step("answer", {"event": "answer", **base, **pickup}, self._seconds(rng, "ring_seconds"), {}))
            cause = "normalClearing"
            steps.append(Step("hangup", {"event": "hangup", **base, "cause": cause, "answeringNumber": agent.number},
                              self._seconds(rng, "talk_seconds"), {}))
        elif outcome == "voicemail":
            answered_by = VOICEMAIL_USER
            steps.append(Step("answer", {"event": "answer", **base, "user": VOICEMAIL_USER},
                              self._seconds(rng, "ring_seconds"), {}))
            cause = "normalClearing"
            steps.append(Step("hangup", {"event": "hangup", **base, "cause": cause},
                              self._seconds(rng, "voicemail_seconds"), {}))
        else:
            if outcome == "missed":
                cause, wait = _weighted(rng, inbound["missed_causes"]), self._seconds(rng, "ring_seconds")
            elif outcome == "forwarded":
                cause, wait = "forwarded", self._seconds(rng, "ring_seconds")
            elif outcome == "busy":
                cause, wait = "busy", self._seconds(rng, "busy_seconds")
            else:  # blocked: Zammad's reject makes the PBX hang up at once
                cause, wait = "busy", 0.0
            steps.append(Step("hangup", {"event": "hangup", **base, "cause": cause}, wait, {}))
        done = outcome in ("answered", "forwarded")
        return CallFlow(index=index, call_id=base["callId"], outcome=outcome, direction="in", encoding=encoding,
                        steps=tuple(steps), expect_done=done, cause=cause, answered_by=answered_by)

    def _outbound(self, rng: random.Random, index: int, encoding: str, outcome: str) -> CallFlow:
        outbound = self.scenario.data["outbound"]
        destination = rng.choices(self._destinations, [d.weight for d in self._destinations])[0]
        agent = rng.choice(self._agents)
        to = rng.choice(destination.numbers)
        base = {"from": agent.number, "to": to, "direction": "out", "callId": self.call_id(index)}
        expect: dict[str, Any] = {}
        if destination.expect_caller_id is not None:
            expect = {"action": "dial", "caller_id": destination.expect_caller_id, "number": to}
        steps = [Step("newCall", {"event": "newCall", **base, "user": agent.name}, 0.0, expect)]
        ring = self._seconds(rng, "ring_seconds")
        if outcome == "outbound-answered":
            cause = "normalClearing"
            steps.append(Step("answer", {"event": "answer", **base}, ring, {}))
            steps.append(Step("hangup", {"event": "hangup", **base, "cause": cause},
                              self._seconds(rng, "talk_seconds"), {}))
        else:
            cause = _weighted(rng, outbound["unanswered_causes"])
            steps.append(Step("hangup", {"event": "hangup", **base, "cause": cause}, ring, {}))
        return CallFlow(index=index, call_id=base["callId"], outcome=outcome, direction="out", encoding=encoding,
                        steps=tuple(steps), expect_done=True, cause=cause, destination=destination.name,
                        expect_caller_id=destination.expect_caller_id)


def _weighted(rng: random.Random, weights: Mapping[str, float]) -> str:
    names = list(weights)
    return rng.choices(names, [weights[name] for name in names])[0]


# --- answers and playing a flow ----------------------------------------------------------------


_ERROR_ID = re.compile(r"Error ID [A-Za-z0-9_-]{8}")


@dataclass(frozen=True)
class Answer:
    """What came back for one push: ``status`` None when no HTTP answer came (``error`` says why)."""

    status: int | None
    body: Any = None  # parsed JSON, or None when the body is not JSON
    content_type: str = ""
    latency: float = 0.0  # seconds
    error: str | None = None  # the exception's class name, e.g. ConnectionError, ReadTimeout

    @classmethod
    def from_http(cls, status: int, content_type: str, content: bytes, latency: float) -> Answer:
        try:
            body = json.loads(content) if content else None
        except ValueError:
            body = None
        return cls(status=status, body=body, content_type=content_type or "", latency=latency)

    @property
    def shape(self) -> str:
        if self.status is None:
            return f"no answer ({self.error})"
        if self.body is None:
            kind = self.content_type.split(";", 1)[0].strip() or "no content type"
            return f"{self.status} not JSON ({kind})"
        return shape_of(self.status, self.body)


def shape_of(status: int, body: Any) -> str:
    """A short, countable name for an answer.

    ``200 {}``, ``200 reject busy``, ``200 dial 498999998145``,
    ``500 error This object already exists.`` (Error IDs blanked so that they count together).
    """
    if isinstance(body, dict):
        if not body:
            return f"{status} {{}}"
        if body.get("action") == "reject":
            return f"{status} reject {body.get('reason')}"
        if body.get("action") == "dial":
            if "caller_id" in body:
                return f"{status} dial {body['caller_id']}"
            return f"{status} dial without caller_id (keys {', '.join(sorted(body))})"
        if set(body) == {"error"} and isinstance(body["error"], str):
            return f"{status} error {_ERROR_ID.sub('Error ID ...', body['error'])}"
    text = json.dumps(body, sort_keys=True)
    return f"{status} JSON {text if len(text) <= 60 else text[:57] + '...'}"


@dataclass(frozen=True)
class StepResult:
    step: Step
    answer: Answer
    mismatch: str | None


@dataclass
class CallResult:
    """One call as it went: the answers, what differed, and the caller ID Zammad dialled out with."""

    flow: CallFlow
    steps: list[StepResult] = field(default_factory=list)
    rejected: bool = False
    dialed_caller_id: str | None = None

    @property
    def as_expected(self) -> bool:
        return all(result.mismatch is None for result in self.steps)


Send = Callable[[CallFlow, Step], Answer]


def play(flow: CallFlow, send: Send, sleep: Callable[[float], Any] = time.sleep) -> CallResult:
    """Send the flow's pushes in order, waiting before each, honouring Zammad's answers.

    A reject answer to ``newCall`` ends the call: the PBX hangs up with cause
    ``busy`` at once (whether or not the flow expected the reject). A dial
    answer gives the caller ID the PBX dials out with. Errors do not stop the
    call: a PBX sends its later events all the same.
    """
    result = CallResult(flow)
    steps: list[Step] = list(flow.steps)
    while steps:
        step = steps.pop(0)
        if step.wait > 0:
            sleep(step.wait)
        answer = send(flow, step)
        result.steps.append(StepResult(step, answer, step.mismatch(answer)))
        if step.event != "newCall" or answer.status != 200 or not isinstance(answer.body, dict):
            continue
        if answer.body.get("action") == "reject":
            result.rejected = True
            steps = [flow.reject_hangup()]
        elif answer.body.get("action") == "dial":
            caller_id = answer.body.get("caller_id")
            result.dialed_caller_id = caller_id if isinstance(caller_id, str) else None
    return result


def http_sender(session: requests.Session, target: Target, timeout: float = DEFAULT_TIMEOUT) -> Send:
    """A :data:`Send` that posts to ``target`` over ``session`` (one session per thread)."""

    def send(flow: CallFlow, step: Step) -> Answer:
        started = time.perf_counter()
        try:
            response = session.post(target.endpoint_url, timeout=timeout, **request_kwargs(step.params, flow.encoding))
        except requests.RequestException as exc:
            return Answer(None, latency=time.perf_counter() - started, error=type(exc).__name__)
        return Answer.from_http(response.status_code, response.headers.get("Content-Type", ""), response.content,
                                time.perf_counter() - started)

    return send


# --- running many calls ------------------------------------------------------------------------


@dataclass(frozen=True)
class Mismatch:
    call_id: str
    outcome: str
    encoding: str
    event: str
    message: str
    curl: str  # with the masked URL

    def to_dict(self) -> dict[str, str]:
        return {"call_id": self.call_id, "outcome": self.outcome, "encoding": self.encoding,
                "event": self.event, "message": self.message, "curl": self.curl}


@dataclass
class SimulationReport:
    """What a run did and got. ``ok``: every call got Zammad's answers, no errors."""

    target: str  # masked URL
    scenario: str
    seed: int
    run_id: str
    speed: float
    concurrency: int
    calls_planned: int | None
    duration_cap: float | None
    calls_started: int = 0
    calls_done: int = 0
    requests: int = 0
    elapsed: float = 0.0
    stopped_early: str | None = None  # "duration", "interrupted" or "error"
    outcomes: dict[str, dict[str, int]] = field(default_factory=dict)
    answers: Counter = field(default_factory=Counter)
    dial_outs: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    latencies: dict[str, list[float]] = field(default_factory=dict)  # event -> seconds
    mismatches: list[Mismatch] = field(default_factory=list)  # the first wrong answer of each call
    mismatched_calls: int = 0
    mismatched_requests: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def ok(self) -> bool:
        return self.calls_done > 0 and self.mismatched_calls == 0 and not self.errors

    def add(self, result: CallResult, masked_url: str) -> None:
        flow = result.flow
        with self._lock:
            self.calls_done += 1
            counts = self.outcomes.setdefault(flow.outcome, {"calls": 0, "as_expected": 0})
            counts["calls"] += 1
            if result.as_expected:
                counts["as_expected"] += 1
            else:
                self.mismatched_calls += 1
            if result.dialed_caller_id is not None:
                self.dial_outs[f"{flow.destination or 'inbound'} as {result.dialed_caller_id}"] += 1
            for step_result in result.steps:
                answer = step_result.answer
                self.requests += 1
                self.answers[answer.shape] += 1
                self.latencies.setdefault(step_result.step.event, []).append(answer.latency)
                if answer.status is None:
                    self.errors[f"{step_result.step.event}: no answer ({answer.error})"] += 1
                elif answer.status != 200:
                    self.errors[f"{step_result.step.event}: status {answer.status}"] += 1
            wrong = [step_result for step_result in result.steps if step_result.mismatch is not None]
            self.mismatched_requests += len(wrong)
            if wrong and len(self.mismatches) < MAX_MISMATCHES_KEPT:
                first = wrong[0]  # the later ones usually follow from it (an unknown call, say)
                later = f" (and {len(wrong) - 1} later event(s) of this call)" if len(wrong) > 1 else ""
                self.mismatches.append(Mismatch(
                    call_id=flow.call_id, outcome=flow.outcome, encoding=flow.encoding,
                    event=first.step.event, message=first.mismatch + later,
                    curl=curl_command(masked_url, first.step.params, flow.encoding)))

    def latency_summary(self) -> dict[str, dict[str, float]]:
        """Milliseconds per event and over all requests: p50, p95, max, and the count."""
        summary = {event: _percentiles(values) for event, values in self.latencies.items() if values}
        everything = [v for values in self.latencies.values() for v in values]
        if everything:
            summary["all"] = _percentiles(everything)
        return {key: summary[key] for key in (*EVENTS, "all") if key in summary}

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "target": self.target,
            "scenario": self.scenario,
            "seed": self.seed,
            "run_id": self.run_id,
            "call_id_prefix": f"{SIM_CALL_ID_PREFIX}{self.run_id}-",
            "speed": self.speed,
            "concurrency": self.concurrency,
            "calls_planned": self.calls_planned,
            "duration_cap": self.duration_cap,
            "calls_started": self.calls_started,
            "calls_done": self.calls_done,
            "requests": self.requests,
            "elapsed_seconds": round(self.elapsed, 3),
            "stopped_early": self.stopped_early,
            "outcomes": {name: dict(self.outcomes[name]) for name in OUTCOMES if name in self.outcomes},
            "answers": dict(self.answers.most_common()),
            "dial_outs": dict(self.dial_outs.most_common()),
            "latency_ms": self.latency_summary(),
            "errors": dict(self.errors.most_common()),
            "mismatched_calls": self.mismatched_calls,
            "mismatched_requests": self.mismatched_requests,
            "mismatches": [m.to_dict() for m in self.mismatches],
        }


def _percentiles(seconds: Sequence[float]) -> dict[str, float]:
    ordered = sorted(seconds)

    def rank(p: float) -> float:  # nearest rank
        return ordered[max(0, math.ceil(p * len(ordered)) - 1)] * 1000

    return {"p50": round(rank(0.50), 2), "p95": round(rank(0.95), 2), "max": round(ordered[-1] * 1000, 2),
            "count": len(ordered)}


Progress = Callable[[SimulationReport], None]


class Simulation:
    """``calls`` calls (or as many as fit in ``duration`` seconds) over ``concurrency`` threads.

    Each thread has its own ``requests.Session`` and plays one call at a time.
    When ``duration`` runs out (or :meth:`stop` is called) no new call starts
    and the calls in flight skip their remaining waits: every started call is
    still hung up, so the target's caller log keeps no ringing leftovers.
    """

    def __init__(self, target: Target, scenario: Scenario, *, calls: int | None = None,
                 concurrency: int = DEFAULT_CONCURRENCY, speed: float = 1.0, seed: int | None = None,
                 duration: float | None = None, timeout: float = DEFAULT_TIMEOUT,
                 progress: Progress | None = None) -> None:
        if calls is None and duration is None:
            calls = DEFAULT_CALLS
        if calls is not None and calls < 1:
            raise ValueError("calls must be at least 1")
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if duration is not None and not duration > 0:
            raise ValueError("duration must be positive")
        self.target = target
        self.builder = FlowBuilder(scenario, speed=speed, seed=seed)
        self.calls = calls
        self.concurrency = concurrency if calls is None else min(concurrency, calls)
        self.duration = duration
        self.timeout = timeout
        self.progress = progress
        self.report = SimulationReport(
            target=target.masked_url, scenario=scenario.name, seed=self.builder.seed, run_id=self.builder.run_id,
            speed=self.builder.speed, concurrency=self.concurrency, calls_planned=calls, duration_cap=duration)
        self._stop = threading.Event()
        self._next = 0
        self._lock = threading.Lock()
        self._progress_lock = threading.Lock()

    def stop(self, reason: str = "interrupted") -> None:
        if not self._stop.is_set():
            self.report.stopped_early = self.report.stopped_early or reason
            self._stop.set()

    def run(self) -> SimulationReport:
        started = time.monotonic()
        deadline = started + self.duration if self.duration else None
        threads = [threading.Thread(target=self._worker, name=f"zammad-cti-sim-{n}", daemon=True)
                   for n in range(self.concurrency)]
        for thread in threads:
            thread.start()
        try:
            while alive := [thread for thread in threads if thread.is_alive()]:
                if deadline is not None and time.monotonic() >= deadline:
                    self.stop("duration")
                alive[0].join(timeout=0.05)
        except KeyboardInterrupt:
            self.stop("interrupted")
            for thread in threads:
                thread.join()
        self.report.elapsed = time.monotonic() - started
        return self.report

    def _take(self) -> int | None:
        with self._lock:
            if self._stop.is_set() or (self.calls is not None and self._next >= self.calls):
                return None
            index = self._next
            self._next += 1
            self.report.calls_started += 1
            return index

    def _worker(self) -> None:
        with requests.Session() as session:
            send = http_sender(session, self.target, self.timeout)
            while (index := self._take()) is not None:
                try:
                    result = play(self.builder.build(index), send, self._stop.wait)
                    self.report.add(result, self.target.masked_url)
                    if self.progress is not None:
                        with self._progress_lock:
                            self.progress(self.report)
                except Exception as exc:  # a bug here must fail the run, not shrink it silently
                    with self.report._lock:
                        self.report.errors[f"simulator: {type(exc).__name__}: {self.target.mask(str(exc))}"] += 1
                    self.stop("error")


def run_simulation(target: Target, scenario: Scenario | None = None, **options: Any) -> SimulationReport:
    """Run a :class:`Simulation` (options as its keyword arguments) and return its report."""
    return Simulation(target, scenario or load_scenario(), **options).run()


# --- the report as text ------------------------------------------------------------------------


def format_report(report: SimulationReport, max_mismatches: int = 10) -> str:
    """The report for a terminal: outcomes, answers, dial-outs, latencies, errors, mismatches."""
    lines: list[str] = []
    rate = report.requests / report.elapsed if report.elapsed > 0 else 0.0
    stopped = {"duration": " (duration cap reached)", "interrupted": " (interrupted)",
               "error": " (stopped by an error of the simulator)"}
    stopped_text = stopped.get(report.stopped_early or "", "")
    lines.append(f"{report.calls_done} calls, {report.requests} requests in {report.elapsed:.1f} s "
                 f"({rate:.1f} requests/s){stopped_text}")
    lines.append(f"call IDs: {SIM_CALL_ID_PREFIX}{report.run_id}-NNNNNN   seed: {report.seed} "
                 f"(rerun with --seed {report.seed})")
    lines.append("")
    lines.append(f"{'Outcome':<22}{'calls':>7}{'as expected':>13}")
    for name in OUTCOMES:
        counts = report.outcomes.get(name)
        if counts:
            lines.append(f"  {name:<20}{counts['calls']:>7}{counts['as_expected']:>13}")
    lines.append("")
    lines.append("Answers received")
    for shape, count in report.answers.most_common():
        lines.append(f"  {shape:<46}{count:>7}")
    if report.dial_outs:
        lines.append("")
        lines.append("Dialled out (destination as caller ID)")
        for what, count in report.dial_outs.most_common():
            lines.append(f"  {what:<46}{count:>7}")
    lines.append("")
    lines.append(f"{'Latency (ms)':<22}{'p50':>9}{'p95':>9}{'max':>9}{'requests':>10}")
    for event, figures in report.latency_summary().items():
        lines.append(f"  {event:<20}{figures['p50']:>9.1f}{figures['p95']:>9.1f}{figures['max']:>9.1f}"
                     f"{figures['count']:>10}")
    lines.append("")
    if report.errors:
        lines.append("Errors")
        for what, count in report.errors.most_common():
            lines.append(f"  {what:<46}{count:>7}")
    else:
        lines.append("Errors: none")
    if report.mismatched_calls:
        lines.append("")
        lines.append(f"Mismatches: {report.mismatched_calls} of {report.calls_done} calls did not get "
                     "the answers Zammad gives")
        for mismatch in report.mismatches[:max_mismatches]:
            lines.append(f"  {mismatch.call_id} {mismatch.outcome} [{mismatch.encoding}] "
                         f"{mismatch.event}: {mismatch.message}")
            lines.append(f"    {mismatch.curl}")
        shown = min(len(report.mismatches), max_mismatches)
        if report.mismatched_calls > shown:
            lines.append(f"  ... and {report.mismatched_calls - shown} more calls "
                         f"(the JSON report lists the first {MAX_MISMATCHES_KEPT})")
    lines.append("")
    if report.ok and report.stopped_early == "interrupted":
        lines.append(f"Interrupted after {report.calls_done} calls; each got the answers Zammad gives.")
    elif report.ok:
        lines.append("OK: every call got the answers Zammad gives.")
    elif report.calls_done == 0:
        lines.append("FAILED: no call finished.")
    else:
        lines.append("FAILED: the target did not answer every call as Zammad does.")
    return "\n".join(lines)


__all__ = [
    "ENCODINGS",
    "OUTCOMES",
    "SIM_CALL_ID_PREFIX",
    "Answer",
    "CallFlow",
    "CallResult",
    "FlowBuilder",
    "Mismatch",
    "Scenario",
    "ScenarioFileError",
    "Simulation",
    "SimulationReport",
    "Step",
    "default_scenario_path",
    "format_report",
    "http_sender",
    "load_scenario",
    "play",
    "run_simulation",
    "scenario_from_mapping",
    "shape_of",
]
