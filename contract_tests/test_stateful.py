"""Random call life cycles against the target: a Hypothesis state machine with its own model of each call.

Each step is one push a PBX can send, in any of the four encodings, with
``callId`` or its alias ``call_id``:

- ``new_call``: an inbound or outbound newCall to a number drawn so that the
  routing rows, the default caller ID, the block list and their near misses
  (``4989`` for ``4989*``, a blocked number with one digit more) are all hit;
- ``answer`` and ``hangup`` of a known call, also out of order (an answer
  after the hangup is ignored by Zammad, answered ``200 {}``);
- ``repeat_new_call``: a newCall for a callId already used (``500 This object already exists.``);
- ``stray_event``: an answer or hangup nobody started (``500`` with an Error ID),
  or a newCall with a direction Zammad refuses (``422 Invalid 'direction'!``);
  neither is logged.

Every answer goes through the rules of :mod:`contract_tests.checks`, then is
compared with what the model expects for this very call. When the caller log
can be read (the built-in mock, or a real Zammad with ``--zammad-api-token``)
the touched call's entry is checked after each step: state, done, direction,
``from`` after the dial-out rewrite, durations present when due and never
negative.

A failure is a plain ``AssertionError`` (a :class:`ContractFailure`) naming
the step and the rule, with the request and a curl command, so Hypothesis
prints the whole step list that led to it.

Concurrency: each step waits for its answer (the model needs it), so
against a slow target one machine is slow. With ``--concurrency N`` (N > 1)
against a target (not the built-in mock: :attr:`ContractContext.case_concurrency`)
the test runs N machines at once, each in a thread of its own with its own
calls and session, their examples adding up to ``SETTINGS.max_examples``
(:func:`lanes`). Hypothesis supports running a
test in several threads since 6.136.9 (its thread-safety policy); each
thread draws from its own random source, and a derandomized run (the ``ci``
profile) gives each machine a seed of its own, so the machines explore
different paths. ``--concurrency 1`` runs the one machine in the test's thread.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, seed, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    get_state_machine_test,
    precondition,
    rule,
    run_state_machine_as_test,
)

from . import checks
from .context import (
    ContractContext,
    caller_log_headers,
    new_call_id,
)
from .failures import contract_failure
from .requests_builder import ENCODINGS, request_kwargs
from .target import Target

pytestmark = pytest.mark.contract_stateful

SETTINGS = settings(
    max_examples=22,
    stateful_step_count=10,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


# --- numbers that reach every rule of the configuration ----------------------------------------


def outbound_numbers(cti_config: Mapping[str, Any]) -> st.SearchStrategy[str]:
    """``to`` numbers: one per routing row (and its bare prefix, which ``*`` does not match), unrouted ones, blank."""
    options: list[st.SearchStrategy[str]] = [st.sampled_from(["492214710334", "0221 4710334", "anonymous", ""])]
    for row in (cti_config.get("outbound") or {}).get("routing_table") or ():
        dest = row.get("dest")
        if not isinstance(dest, str) or not dest:
            continue
        parts = dest.split("*")
        options.append(st.lists(st.text("0123456789", min_size=1, max_size=6), min_size=len(parts) - 1,
                                max_size=len(parts) - 1)
                       .map(lambda fill, parts=parts: "".join(p + f for p, f in zip(parts, [*fill, ""], strict=False))))
        options.append(st.just(dest.replace("*", "")))
    return st.one_of(options)


def inbound_numbers(cti_config: Mapping[str, Any]) -> st.SearchStrategy[str]:
    """``from`` numbers: each blocked one, its near misses (a digit more or less, a ``+``), ordinary callers."""
    numbers = ["493023125741", "02214710334", "anonymous"]
    for row in (cti_config.get("inbound") or {}).get("block_caller_ids") or ():
        caller_id = row.get("caller_id")
        if isinstance(caller_id, str) and caller_id:
            numbers += [caller_id, caller_id, caller_id + "0", caller_id[:-1], "+" + caller_id]
    return st.sampled_from(numbers)


USERS = st.sampled_from([None, "Christopher Miller", ["Christopher Miller", "Emma Taylor"], "voicemail"])
CAUSES = st.sampled_from(["normalClearing", "busy", "cancel", "noAnswer", "congestion", "notFound", "forwarded"])
CALL_ID_KEYS = st.sampled_from(["callId", "call_id"])
DIRECTIONS = st.sampled_from(["in", "out"])


# --- the model -------------------------------------------------------------------------------------


@dataclass
class ModelCall:
    """What Zammad's caller log holds for one call, as far as this suite predicts it."""

    call_id: str
    direction: str
    sent_from: str
    sent_to: str
    logged_from: str  # outbound: the dial-out caller ID when one was chosen
    state: str = "newCall"
    done: bool = False
    answered: bool = False
    to_comment: Any = None  # inbound: the user; only "voicemail" matters to the model

    def __repr__(self) -> str:  # Hypothesis prints bundle values in the step list
        return f"<call {self.call_id} {self.direction} {self.state}>"


def joined(user: Any) -> Any:
    return ", ".join(user) if isinstance(user, list) else user


@dataclass(frozen=True)
class Expected:
    """Zammad's answer to this step, and why (the step's place in the call's history)."""

    why: str
    status: int
    body: Any = None  # None: any body with the Error ID text

    def matches(self, status: int, body: Any) -> bool:
        if status != self.status:
            return False
        if self.body is None:
            return isinstance(body, dict) and set(body) == {"error"} and checks.is_error_id(body["error"])
        return body == self.body

    def show(self) -> Any:
        body = self.body if self.body is not None else {"error": "Error ID xxxxxxxx: Please contact your administrator."}
        return {"status": self.status, "body": body}


# --- the machine -------------------------------------------------------------------------------------


class CallLifecycle(RuleBasedStateMachine):
    """Places calls and pushes their events in any order; checks every answer and the caller log."""

    calls = Bundle("calls")
    hung_up = Bundle("hung_up")

    def __init__(self, context: ContractContext, session: requests.Session,
                 stopping: threading.Event | None = None) -> None:
        super().__init__()
        self.stopping = stopping  # set: the run was interrupted, send nothing more
        self.context = context
        self.target: Target = context.target
        self.cti_config: Mapping[str, Any] = context.config.cti_config or {}
        self.zammad = context.profile
        self.session = session
        self.read_log = self.target.builtin_mock or bool(context.api_token)
        self.step = 0
        self.placed = 0

    # --- steps --------------------------------------------------------------------------------------

    @rule(target=calls, data=st.data(), direction=DIRECTIONS, user=USERS, key=CALL_ID_KEYS,
          encoding=st.sampled_from(ENCODINGS))
    def new_call(self, data: st.DataObject, direction: str, user: Any, key: str, encoding: str) -> ModelCall:
        if direction == "in":
            sent_from, sent_to = data.draw(inbound_numbers(self.cti_config), label="from"), "493023125741"
        else:
            sent_from, sent_to = "493023125741", data.draw(outbound_numbers(self.cti_config), label="to")
        params = _drop_none({"event": "newCall", "from": sent_from, "to": sent_to, "direction": direction,
                             key: new_call_id("sm"), "user": user})
        why, answer = checks.expected_new_call_answer(self.cti_config, params)
        self.push("new_call", params, encoding, Expected(f"a new {why}", 200, answer), fresh=True)
        self.placed += 1
        call = ModelCall(
            call_id=params[key], direction=direction, sent_from=sent_from, sent_to=sent_to,
            logged_from=answer.get("caller_id", sent_from) if answer.get("action") == "dial" else sent_from,
            done=direction == "out", to_comment=joined(user) if direction == "in" else None,
        )
        self.check_log_entry("new_call", call)
        return call

    @rule(call=calls, user=USERS, key=CALL_ID_KEYS, encoding=st.sampled_from(ENCODINGS))
    def answer(self, call: ModelCall, user: Any, key: str, encoding: str) -> None:
        params = _drop_none({"event": "answer", "from": call.sent_from, "to": call.sent_to, "direction": call.direction,
                             key: call.call_id, "user": user, "answeringNumber": "493023125741"})
        if call.state == "hangup":
            expected = Expected(f"answer after the hangup of {call.call_id!r}: Zammad ignores it", 200, {})
        elif call.direction == "in" and isinstance(user, list):
            # Zammad saves the answer, then looks the agent up with user.downcase: an array fails (500).
            expected = Expected(f"inbound answer of {call.call_id!r} with user as an array: Zammad updates the "
                                "caller log, then fails on user.downcase (500, Error ID)", 500)
        else:
            expected = Expected(f"answer of {call.call_id!r}, state {call.state}", 200, {})
        self.push("answer" if call.state != "hangup" else "answer_after_hangup", params, encoding, expected)
        if call.state != "hangup":  # Zammad ignores an answer for a call that is already over
            call.state, call.done, call.answered = "answer", True, True
            if user is not None:
                call.to_comment = joined(user)
        self.check_log_entry("answer", call)

    @rule(target=hung_up, call=consumes(calls), cause=CAUSES, key=CALL_ID_KEYS, encoding=st.sampled_from(ENCODINGS))
    def hangup(self, call: ModelCall, cause: str, key: str, encoding: str) -> ModelCall:
        params = {"event": "hangup", "from": call.sent_from, "to": call.sent_to, "direction": call.direction,
                  key: call.call_id, "cause": cause}
        self.push("hangup", params, encoding, Expected(f"hangup of {call.call_id!r}, state {call.state}", 200, {}))
        missed = call.direction == "in" and (
            (call.state == "newCall" and cause != "forwarded") or call.to_comment == "voicemail"
        )
        call.state, call.done = "hangup", not missed
        self.check_log_entry("hangup", call)
        return call

    @rule(call=hung_up, user=USERS, encoding=st.sampled_from(ENCODINGS))
    def answer_after_hangup(self, call: ModelCall, user: Any, encoding: str) -> None:
        self.answer(call, user, "callId", encoding)

    @rule(call=st.one_of(calls, hung_up), data=st.data(), encoding=st.sampled_from(ENCODINGS))
    def repeat_new_call(self, call: ModelCall, data: st.DataObject, encoding: str) -> None:
        """A retried newCall: Zammad refuses it whatever it says, and the log entry stays as it was."""
        direction = data.draw(DIRECTIONS, label="direction")
        params = {"event": "newCall", "from": call.sent_from, "to": call.sent_to, "direction": direction,
                  "callId": call.call_id}
        duplicate = checks.expected_error("duplicate-call", self.zammad)
        expected = Expected(f"newCall for {call.call_id!r}, which exists: Zammad refuses the duplicate",
                            duplicate["status"], duplicate["body"])
        self.push("repeat_new_call", params, encoding, expected)
        self.check_log_entry("repeat_new_call", call)

    @precondition(lambda self: self.placed > 0)  # let calls exist first: a stray event is the exception
    @rule(kind=st.sampled_from(["answer_for_unknown_call", "hangup_for_unknown_call", "invalid_direction"]),
          direction=DIRECTIONS, key=CALL_ID_KEYS, encoding=st.sampled_from(ENCODINGS))
    def stray_event(self, kind: str, direction: str, key: str, encoding: str) -> None:
        """An answer or hangup nobody started (500, Error ID), or a direction Zammad refuses (422); nothing logged."""
        if kind == "invalid_direction":
            params = {"event": "newCall", "from": "492214710334", "to": "498912345678",
                      "direction": direction.upper() if direction == "in" else "sideways", key: new_call_id("sm")}
            refused = checks.expected_error("invalid-direction", self.zammad)
            expected = Expected(f"direction {params['direction']!r} is neither 'in' nor 'out'",
                                refused["status"], refused["body"])
        else:
            params = {"event": kind.split("_", 1)[0], "from": "492214710334", "to": "493023125741",
                      "direction": direction, key: new_call_id("sm"), "cause": "normalClearing"}
            expected = Expected(f"{params['event']} for a callId no newCall created: Zammad's error handler "
                                "answers 500 with an Error ID", 500)
        # The rules know a bad direction; only the model knows that nobody started this call.
        self.push(kind, params, encoding, expected, fresh=kind == "invalid_direction")
        self.check_no_log_entry(kind, params[key])

    # --- sending and judging --------------------------------------------------------------------

    def push(self, step: str, params: dict[str, Any], encoding: str, expected: Expected, fresh: bool = False) -> None:
        """Send one event; the answer must be the model's and obey every rule of :mod:`checks`.

        A wrong answer to a ``fresh`` event (no history: a new callId) is
        reported by the rule it breaks; to any other, by what the call's
        history makes Zammad answer (a rule sees one request, not the history).
        """
        if self.stopping is not None and self.stopping.is_set():
            raise KeyboardInterrupt  # Hypothesis passes it on: no shrinking, no failure
        self.step += 1
        self._last = (params, encoding)
        try:
            response = self.session.post(self.target.endpoint_url, timeout=self.context.timeout,
                                         **request_kwargs(params, encoding))
        except requests.RequestException as exc:
            # requests puts the full URL, token included, into its messages.
            raise self.failure(step, f"no answer: {type(exc).__name__}: {self.target.mask(str(exc))}",
                               params, encoding, expected.show(), None, None) from None
        body = checks.decode_answer(response.headers.get("Content-Type"), response.content)
        status = response.status_code
        if not expected.matches(status, body) and not fresh:
            raise self.failure(step, expected.why, params, encoding, expected.show(), status, body)
        try:
            for check in checks.ALL_CHECKS:
                check(self.cti_config, params, status, body, zammad=self.zammad)
        except checks.RuleViolation as violation:
            raise self.failure(f"{step}: {violation.rule}", violation.problem, params, encoding,
                               violation.expected, status, body) from None
        if not expected.matches(status, body):
            raise self.failure(step, expected.why, params, encoding, expected.show(), status, body)

    def failure(self, scenario: str, problem: str, params: Mapping[str, Any], encoding: str,
                expected: Any, status: int | None, body: Any) -> AssertionError:
        return contract_failure(scenario=f"step {self.step} {scenario}", problem=problem, target=self.target,
                                params=params, encoding=encoding, expected=expected,
                                actual_status=status, actual_body=body)

    # --- the caller log -------------------------------------------------------------------------

    def log_entries(self, call_id: str) -> list[dict[str, Any]]:
        response = self.session.get(self.target.caller_log_url, headers=caller_log_headers(self.context),
                                    timeout=self.context.timeout)
        body = checks.decode_answer(response.headers.get("Content-Type"), response.content)
        if response.status_code != 200 or not isinstance(body, dict) or not isinstance(body.get("list"), list):
            params, encoding = self._last
            raise self.failure("caller log", "GET /api/v1/cti/log answers 200 {\"list\": [...], \"assets\": {...}}",
                               params, encoding, {"status": 200, "body": {"list": "[...]", "assets": "{...}"}},
                               response.status_code, body)
        return [entry for entry in body["list"] if isinstance(entry, dict) and entry.get("call_id") == call_id]

    def check_no_log_entry(self, step: str, call_id: str) -> None:
        if not self.read_log:
            return
        entries = self.log_entries(call_id)
        if entries:
            params, encoding = self._last
            raise self.failure(f"{step}: caller log", f"a refused event created caller-log entry {call_id!r}",
                               params, encoding, "no entry", 200, entries[0])

    def check_log_entry(self, step: str, call: ModelCall) -> None:
        if not self.read_log:
            return
        entries = self.log_entries(call.call_id)
        expected = {"call_id": call.call_id, "state": call.state, "done": call.done, "direction": call.direction,
                    "from": call.logged_from}
        params, encoding = self._last
        if len(entries) != 1:
            raise self.failure(f"{step}: caller log", f"expected one caller-log entry for {call.call_id!r}, "
                               f"found {len(entries)}", params, encoding, expected, 200, entries)
        entry = entries[0]
        problems = [f"{key} is {entry.get(key)!r}, expected {value!r}"
                    for key, value in expected.items() if entry.get(key) != value]
        problems += duration_problems(entry, call)
        if problems:
            raise self.failure(f"{step}: caller log", "; ".join(problems), params, encoding, expected, 200, entry)


def duration_problems(entry: Mapping[str, Any], call: ModelCall) -> list[str]:
    """Durations are whole non-negative seconds, set exactly when Zammad sets them."""
    problems = []
    for key in ("duration_waiting_time", "duration_talking_time"):
        value = entry.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            problems.append(f"{key} is {value!r}, expected whole non-negative seconds")
    waiting_due = call.answered or call.state == "hangup"
    talking_due = call.answered and call.state == "hangup"
    if waiting_due != (entry.get("duration_waiting_time") is not None):
        problems.append(f"duration_waiting_time is {entry.get('duration_waiting_time')!r}, "
                        f"expected {'a number' if waiting_due else 'null'} in state {call.state}")
    if talking_due != (entry.get("duration_talking_time") is not None):
        problems.append(f"duration_talking_time is {entry.get('duration_talking_time')!r}, "
                        f"expected {'a number' if talking_due else 'null'} after "
                        f"{'an answered' if call.answered else 'an unanswered'} call's {call.state}")
    return problems


def _drop_none(params: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in params.items() if value is not None}


# --- the test ---------------------------------------------------------------------------------------


def test_call_lifecycles(contract_context: ContractContext) -> None:
    """Random interleaved call life cycles, every answer and (when readable) every log entry checked."""
    refusal = checks.integration_refusal(contract_context.config.integration, contract_context.config.cti_config,
                                         contract_context.profile)
    if refusal:
        pytest.skip(f"the target's configuration says {refusal}")
    plan = lanes(SETTINGS.max_examples, contract_context.case_concurrency)
    if len(plan) == 1:
        with contract_context.session() as session:
            run_state_machine_as_test(lambda: CallLifecycle(contract_context, session), settings=SETTINGS)
        return
    run_lanes(contract_context, plan)


def lanes(examples: int, concurrency: int) -> list[int]:
    """Examples per machine, ``examples`` in all, one machine per slot (22 examples, 8 slots: 6 x 3 and 2 x 2).

    Two machines per slot were measured too: no faster against a 50 ms target,
    and the answer times measured grew with the threads waiting for the interpreter.
    """
    count = max(1, min(concurrency, examples))
    share, extra = divmod(examples, count)
    return [share + 1] * extra + [share] * (count - extra)


def run_lanes(context: ContractContext, plan: list[int]) -> None:
    """One machine per lane, all at once; the first lane's failure is raised, the others counted."""
    stopping = threading.Event()

    def lane(index: int) -> BaseException | None:
        with context.session() as session:
            test = get_state_machine_test(lambda: CallLifecycle(context, session, stopping),
                                          settings=settings(SETTINGS, max_examples=plan[index]))
            if settings.default.derandomize:  # one fixed seed would give every lane the same examples
                test = seed(zlib.crc32(f"{CallLifecycle.__name__}-lane-{index}".encode()))(test)
            try:
                test()
            except Exception as exc:  # noqa: BLE001 - re-raised below, in the test's thread
                return exc
        return None

    pool = ThreadPoolExecutor(max_workers=len(plan), thread_name_prefix="zcti-machine")
    try:
        outcomes = list(pool.map(lane, range(len(plan))))
    except BaseException:
        stopping.set()  # Ctrl-C: the machines stop at their next step
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    failed = [(index, exc) for index, exc in enumerate(outcomes) if exc is not None]
    if failed:
        index, first = failed[0]
        note = f"(machine {index + 1} of {len(plan)}, {plan[index]} of the {sum(plan)} examples"
        note += f"; {len(failed) - 1} other machines failed too)" if len(failed) > 1 else ")"
        first.add_note(note)
        raise first
